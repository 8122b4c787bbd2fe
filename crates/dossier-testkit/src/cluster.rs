//! A three-node JetStream cluster on loopback, as production runs it (R3),
//! for tests of what a clustered broker changes: which replica answers a
//! read, and what clients see while a node dies and a leader is elected.
//!
//! Every node is its own nats-server process with its own file store, a
//! client port and a route port the OS chooses (`-1`, read back from its
//! ports file) and kept across restarts. nats-server refuses to start a
//! JetStream cluster node without a configured route, and the others' route
//! ports are not known before they start: so the first node's route points
//! at a port that is bound and never listened on ([`ClosedPort`]: refused,
//! and no one else can take it), the two others route to the first, and the
//! cluster learns the rest by gossip. A node started again routes to every
//! other node.

use std::process::Child;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use async_nats::jetstream;
use dossier_broker::{BrokerConfig, TopologyConfig};
use futures::StreamExt as _;

use crate::{
    ClosedPort, TestBroker, nats_server_command, test_broker_config, test_topology_config,
    wait_for, wait_for_jetstream, wait_for_ports, wait_until,
};

/// How many nodes a [`NatsCluster`] has: the smallest cluster that keeps a
/// quorum (2) when one node is lost, and the production overlay's size.
pub const CLUSTER_SIZE: usize = 3;

/// How long cluster helpers wait: a leader election takes a few seconds
/// (nats-server's election timeouts are 4–9 s), on a loaded machine more.
const CLUSTER_DEADLINE: Duration = Duration::from_secs(45);

/// The cluster's name (`--cluster_name`).
const CLUSTER_NAME: &str = "dossier-test";

/// Three nats-server processes forming one JetStream cluster on loopback.
/// Every node is killed, and its store removed, on drop.
pub struct NatsCluster {
    nodes: Vec<Node>,
    /// The first node's placeholder route (see the module docs), held for
    /// the cluster's lifetime so no one else listens on it.
    _placeholder: ClosedPort,
}

/// One node of a [`NatsCluster`].
struct Node {
    /// `--server_name`, what stream and consumer infos name leaders by.
    name: String,
    /// The running process; behind a lock so that a test can kill and
    /// restart nodes while the stack on top of the cluster is shared by
    /// its load tasks.
    child: Mutex<Option<Child>>,
    client_port: i32,
    cluster_port: i32,
    store: tempfile::TempDir,
    ports_dir: tempfile::TempDir,
}

impl Node {
    fn new(index: usize) -> Node {
        let temp = |prefix: &str| {
            tempfile::Builder::new()
                .prefix(prefix)
                .tempdir()
                .expect("temp dir")
        };
        Node {
            name: format!("n{index}"),
            child: Mutex::new(None),
            client_port: -1,
            cluster_port: -1,
            store: temp("dossier-nats-cluster-"),
            ports_dir: temp("dossier-nats-ports-"),
        }
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.client_port)
    }

    fn route(&self) -> String {
        format!("nats://127.0.0.1:{}", self.cluster_port)
    }

    /// Starts the node for the first time, routing to `routes`, and learns
    /// the ports the OS gave it.
    async fn first_spawn(&mut self, routes: &[String]) {
        let pid = self.spawn(routes);
        let ports = wait_for_ports(self.ports_dir.path(), pid).await;
        self.client_port = ports.client;
        self.cluster_port = ports
            .cluster
            .expect("a cluster node reports its route port");
    }

    /// Starts the node's process routing to `routes`; returns its pid.
    fn spawn(&self, routes: &[String]) -> u32 {
        let mut cmd = nats_server_command(
            self.client_port,
            self.ports_dir.path(),
            self.store.path(),
            &[],
        );
        cmd.args(["--server_name", &self.name, "--cluster_name", CLUSTER_NAME])
            .arg("--cluster")
            .arg(format!("nats://127.0.0.1:{}", self.cluster_port))
            .arg("--routes")
            .arg(routes.join(","));
        let child = cmd.spawn().expect("spawn nats-server");
        let pid = child.id();
        *self.child() = Some(child);
        pid
    }

    fn child(&self) -> std::sync::MutexGuard<'_, Option<Child>> {
        self.child.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn is_running(&self) -> bool {
        self.child().is_some()
    }

    fn kill(&self) {
        if let Some(mut child) = self.child().take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl NatsCluster {
    /// Starts three nodes and waits until the cluster can hold a stream at
    /// R3 (every node has joined the JetStream meta group).
    pub async fn start() -> NatsCluster {
        let placeholder = ClosedPort::new();
        let mut nodes: Vec<Node> = (0..CLUSTER_SIZE).map(Node::new).collect();
        nodes[0]
            .first_spawn(&[format!("nats://127.0.0.1:{}", placeholder.port())])
            .await;
        let first = nodes[0].route();
        for node in &mut nodes[1..] {
            node.first_spawn(std::slice::from_ref(&first)).await;
        }
        let cluster = NatsCluster {
            nodes,
            _placeholder: placeholder,
        };
        for node in &cluster.nodes {
            wait_for_jetstream(&node.url()).await;
        }
        cluster.wait_until_r3_streams_can_be_made().await;
        cluster
    }

    /// A stream at R3 can be created once all three nodes are known to the
    /// meta leader; until then creating one fails ("insufficient
    /// resources"), which the topology's owner would take for an error.
    async fn wait_until_r3_streams_can_be_made(&self) {
        let js = jetstream::new(self.client().await);
        wait_until(
            "the cluster to place an R3 stream",
            CLUSTER_DEADLINE,
            || {
                let js = js.clone();
                async move {
                    let created = js
                        .create_stream(jetstream::stream::Config {
                            name: "TESTKIT_PROBE".to_owned(),
                            subjects: vec!["testkit.probe".to_owned()],
                            num_replicas: CLUSTER_SIZE,
                            ..Default::default()
                        })
                        .await
                        .is_ok();
                    created && js.delete_stream("TESTKIT_PROBE").await.is_ok()
                }
            },
        )
        .await;
    }

    /// How many nodes the cluster has.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the cluster has no nodes (never: it has [`CLUSTER_SIZE`]).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// `nats://127.0.0.1:<port>` of every node, in node order.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(Node::url).collect()
    }

    /// `nats://127.0.0.1:<port>` of node `node`.
    pub fn node_url(&self, node: usize) -> String {
        self.nodes[node].url()
    }

    /// The server name of node `node` (what infos name leaders by).
    pub fn node_name(&self, node: usize) -> &str {
        &self.nodes[node].name
    }

    /// The node whose server name is `name`.
    pub fn node_named(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name == name)
    }

    /// Whether node `node`'s process runs.
    pub fn is_running(&self, node: usize) -> bool {
        self.nodes[node].is_running()
    }

    /// Broker settings reaching only node `node` (a client then reads
    /// through that node, whichever replica leads).
    pub fn broker_config_via(&self, node: usize) -> BrokerConfig {
        test_broker_config(self.node_url(node))
    }

    /// A client connected to node `node` only.
    pub async fn node_client(&self, node: usize) -> async_nats::Client {
        async_nats::connect(self.node_url(node))
            .await
            .expect("connect to a cluster node")
    }

    /// The node leading stream `stream` now (`cluster.leader` of its
    /// info), if the stream has a leader and a running node answers.
    pub async fn stream_leader(&self, stream: &str) -> Option<usize> {
        let js = jetstream::new(self.running_client().await?);
        let mut stream = js.get_stream(stream).await.ok()?;
        let info = stream.info().await.ok()?;
        self.node_named(info.cluster.as_ref()?.leader.as_ref()?)
    }

    /// Waits until stream `stream` has a leader on a running node, and
    /// returns that node.
    pub async fn wait_for_stream_leader(&self, stream: &str) -> usize {
        wait_for(
            &format!("stream {stream} to have a leader"),
            CLUSTER_DEADLINE,
            || async move {
                self.stream_leader(stream)
                    .await
                    .filter(|&node| self.is_running(node))
            },
        )
        .await
    }

    /// Moves the leadership of every stream and every durable consumer
    /// off node `node` (a leader step-down preferring another running
    /// node), and waits until the node leads none of them: it is then a
    /// follower of everything, and killing it elects nothing.
    pub async fn move_leaders_off(&self, node: usize) {
        let name = self.node_name(node).to_owned();
        let preferred = (0..self.len())
            .find(|&n| n != node && self.is_running(n))
            .expect("another node runs");
        let body = serde_json::json!({ "placement": { "preferred": self.node_name(preferred) } })
            .to_string();
        wait_until(
            &format!("node {name} to lead nothing"),
            CLUSTER_DEADLINE,
            || {
                let (name, body) = (name.clone(), body.clone());
                async move {
                    let Some(client) = self.running_client().await else {
                        return false;
                    };
                    let led = led_by(&client, &name).await;
                    for subject in &led {
                        // A failed step-down (an election in progress) is
                        // tried again on the next round.
                        let _ = client.request(subject.clone(), body.clone().into()).await;
                    }
                    led.is_empty()
                }
            },
        )
        .await;
    }

    /// Kills node `node` with SIGKILL (as a crash would). Its store stays.
    pub fn kill(&self, node: usize) {
        self.nodes[node].kill();
    }

    /// Starts node `node` again after [`NatsCluster::kill`], on the same
    /// ports and store, routing to every other node; returns once it serves
    /// JetStream.
    pub async fn start_again(&self, node: usize) {
        assert!(!self.is_running(node), "node {node} is running");
        let routes: Vec<String> = (0..self.len())
            .filter(|&n| n != node)
            .map(|n| self.nodes[n].route())
            .collect();
        self.nodes[node].spawn(&routes);
        wait_for_jetstream(&self.node_url(node)).await;
    }

    /// Kills node `node` and starts it again on the same ports and store.
    pub async fn restart(&self, node: usize) {
        self.kill(node);
        self.start_again(node).await;
    }

    /// A client connected to any running node, or `None` when none
    /// answers.
    async fn running_client(&self) -> Option<async_nats::Client> {
        for node in (0..self.len()).filter(|&n| self.is_running(n)) {
            if let Ok(client) = async_nats::connect(self.node_url(node)).await {
                return Some(client);
            }
        }
        None
    }
}

/// The leader step-down subjects of every stream and durable consumer led
/// by the server named `name`.
async fn led_by(client: &async_nats::Client, name: &str) -> Vec<String> {
    let js = jetstream::new(client.clone());
    let mut led = Vec::new();
    let names: Vec<String> = js
        .stream_names()
        .filter_map(|n| async move { n.ok() })
        .collect()
        .await;
    for stream_name in names {
        let Ok(mut stream) = js.get_stream(&stream_name).await else {
            continue;
        };
        let Ok(info) = stream.info().await else {
            continue;
        };
        if leader_is(info.cluster.as_ref(), name) {
            led.push(format!("$JS.API.STREAM.LEADER.STEPDOWN.{stream_name}"));
        }
        let consumers: Vec<jetstream::consumer::Info> = stream
            .consumers()
            .filter_map(|c| async move { c.ok() })
            .collect()
            .await;
        for consumer in consumers {
            // Ephemeral consumers (watchers) are R1: nothing to move.
            if consumer.config.durable_name.is_some() && leader_is(consumer.cluster.as_ref(), name)
            {
                led.push(format!(
                    "$JS.API.CONSUMER.LEADER.STEPDOWN.{stream_name}.{}",
                    consumer.name
                ));
            }
        }
    }
    led
}

fn leader_is(cluster: Option<&jetstream::stream::ClusterInfo>, name: &str) -> bool {
    cluster.and_then(|c| c.leader.as_deref()) == Some(name)
}

impl TestBroker for NatsCluster {
    /// Every node's URL, comma separated: a client reconnects to another
    /// node when its own dies.
    fn url(&self) -> String {
        self.urls().join(",")
    }

    fn broker_config(&self) -> BrokerConfig {
        test_broker_config(self.url())
    }

    /// Every stream and bucket at R3, jobs redelivered after 5 s and tried
    /// 5 times (as in production). Not the single server's 2 s and 3
    /// deliveries: a leader election lasts seconds, and a job a worker pulled
    /// over a connection that died with its node, or handed back because the
    /// broker could not answer, spends a delivery each time; short settings
    /// would fail accepted jobs that never ran.
    fn topology_config(&self) -> TopologyConfig {
        let mut cfg = test_topology_config(CLUSTER_SIZE);
        cfg.consumer.ack_wait = Duration::from_secs(5);
        cfg.consumer.max_deliver = 5;
        cfg
    }

    async fn client(&self) -> async_nats::Client {
        let servers: Vec<async_nats::ServerAddr> = self
            .urls()
            .iter()
            .map(|url| url.parse().expect("a node URL parses"))
            .collect();
        async_nats::connect(servers)
            .await
            .expect("connect to the test cluster")
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for node in &self.nodes {
            node.kill();
        }
    }
}
