//! The chaos run's stack: nats-server (one node, or three forming a
//! JetStream cluster) and every service as separate processes on loopback,
//! each started again on the same addresses after a fault. Processes are
//! `crate::supervise`'s: output to log files in the run's folder, and every
//! one stopped (killed after a grace) when the stack is dropped.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use super::schedule::{Mode, SERVICES, WORKERS};
use crate::supervise::{Output, Supervisor, Watch};
use crate::up::{
    self, admin_listening, gateway_listening, operations_listening, webhooks_listening,
};
use crate::{keygen, nats};

/// How long a process may take to log its address.
const STARTUP: Duration = Duration::from_secs(60);
/// The jobs stream every kind's jobs are in.
pub(crate) const JOBS_STREAM: &str = "DOSSIER_JOBS";
/// The JetStream cluster's name.
const CLUSTER_NAME: &str = "dossier-chaos";

/// What the services are given beyond the stack's addresses.
pub(crate) struct Settings {
    /// The directory file(s) the workers load.
    pub(crate) directory: String,
    /// `domain=base-url` pairs: the research subjects' sites on loopback.
    pub(crate) site_overrides: String,
    /// The jobs' redelivery deadline (also every lease's length).
    pub(crate) ack_wait: Duration,
}

/// One nats-server node: its name, client address and configuration.
struct Node {
    name: String,
    client: SocketAddr,
    config: String,
    starts: usize,
}

/// A running chaos stack.
pub(crate) struct ChaosStack {
    // Fields drop in order: the services stop before the broker.
    services: Supervisor,
    brokers: Supervisor,
    nodes: Vec<Node>,
    /// For the broker's JetStream API (the cluster's leader and probes).
    runtime: tokio::runtime::Runtime,
    /// The API key of the run's tenant.
    pub(crate) key: String,
    /// `http://<gateway address>`.
    pub(crate) base: String,
    dir: PathBuf,
    bin_dir: PathBuf,
    files: up::StackFiles,
    nats_url: String,
    grpc_addr: SocketAddr,
    webhooks_addr: SocketAddr,
    http_addr: SocketAddr,
    admin: BTreeMap<&'static str, SocketAddr>,
    env: BTreeMap<&'static str, Vec<(&'static str, String)>>,
    starts: BTreeMap<&'static str, usize>,
}

/// Builds the services' debug binaries (unless `skip`) and returns their
/// folder: what the chaos run and contract fuzzing start.
pub(crate) fn build_services(skip: bool) -> anyhow::Result<PathBuf> {
    if !skip {
        let mut build = crate::cargo();
        build.args(["build", "--quiet", "--bins"]);
        for service in SERVICES {
            build.args(["-p", service]);
        }
        crate::run_checked(&mut build)?;
    }
    Ok(crate::target_dir().join("debug"))
}

/// A loopback port free now (bound, then let go): nodes need theirs before
/// they start, to name each other as routes and to come back on them.
fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Sends `signal` (`KILL`, `STOP`, `CONT`) to process `pid`.
fn signal(pid: u32, signal: &str) -> anyhow::Result<()> {
    // `kill`, not libc: the workspace forbids unsafe code.
    let status = Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .status()
        .context("running kill")?;
    anyhow::ensure!(status.success(), "kill -{signal} {pid}: {status}");
    Ok(())
}

impl ChaosStack {
    /// Starts the broker in `mode` and every service, and waits until all
    /// are ready.
    pub(crate) fn start(
        mode: Mode,
        bin_dir: &Path,
        dir: &Path,
        settings: &Settings,
    ) -> anyhow::Result<ChaosStack> {
        std::fs::create_dir_all(dir)?;
        let (key, entry) = keygen::new_entry("chaos", "chaos-key");
        let keys_file = dir.join("api-keys.toml");
        std::fs::write(&keys_file, entry)?;
        let files = up::StackFiles {
            api_keys: keys_file,
            service_keys: dossier_identity::write_key_pair(dir)?,
        };
        let size = match mode {
            Mode::Single => 1,
            Mode::Cluster => 3,
        };
        let clients = (0..size)
            .map(|_| free_port())
            .collect::<anyhow::Result<Vec<u16>>>()?;
        let routes = (0..size)
            .map(|_| free_port())
            .collect::<anyhow::Result<Vec<u16>>>()?;
        let route_list: Vec<String> = routes
            .iter()
            .map(|port| format!("nats://127.0.0.1:{port}"))
            .collect();
        let nodes: Vec<Node> = (0..size)
            .map(|i| {
                let client = SocketAddr::from(([127, 0, 0, 1], clients[i]));
                // The configuration `cargo xtask up` runs (fsync before
                // every ack), and in a cluster the routes to every node.
                let mut config = nats::server_config(
                    &client.to_string(),
                    None,
                    &dir.join(format!("nats-n{i}")),
                    None,
                );
                if mode == Mode::Cluster {
                    config.push_str(&format!(
                        "server_name: n{i}\ncluster {{\n  name: {CLUSTER_NAME}\n  \
                         listen: 127.0.0.1:{}\n  routes: [{}]\n}}\n",
                        routes[i],
                        route_list.join(", ")
                    ));
                }
                Node {
                    name: format!("n{i}"),
                    client,
                    config,
                    starts: 0,
                }
            })
            .collect();
        let nats_url = nodes
            .iter()
            .map(|n| format!("nats://{}", n.client))
            .collect::<Vec<_>>()
            .join(",");
        let any_port = SocketAddr::from(([127, 0, 0, 1], 0));
        let replicas = size.to_string();
        let ack_wait = format!("{}ms", settings.ack_wait.as_millis());
        let mut env: BTreeMap<&'static str, Vec<(&'static str, String)>> = BTreeMap::new();
        env.insert(
            "operations",
            vec![
                ("DOSSIER_NATS_REPLICAS", replicas),
                ("DOSSIER_JOB_ACK_WAIT", ack_wait),
                ("DOSSIER_JOB_MAX_DELIVER", "5".to_owned()),
            ],
        );
        env.insert("gateway", vec![("DOSSIER_SHUTDOWN_GRACE", "2s".to_owned())]);
        // As in production: receivers must be public https endpoints.
        env.insert(
            "webhooks",
            vec![("DOSSIER_WEBHOOKS_SHUTDOWN_GRACE", "2s".to_owned())],
        );
        for worker in WORKERS {
            let mut vars = vec![
                ("DOSSIER_DIRECTORY_FILES", settings.directory.clone()),
                ("DOSSIER_SHUTDOWN_GRACE", "2s".to_owned()),
                // A job failing on a fault comes back within the run.
                ("DOSSIER_RETRY_BACKOFF_MAX", "5s".to_owned()),
            ];
            match worker {
                // Batches of up to 200 records span several checkpointed
                // chunks.
                "enrichment-worker" => vars.push(("DOSSIER_ENRICH_CHUNK_SIZE", "50".to_owned())),
                // Nothing leaves the machine: the subjects' sites are a
                // loopback fixture, which research refuses unless allowed.
                "research-worker" => {
                    vars.push((
                        "DOSSIER_RESEARCH_SITE_OVERRIDES",
                        settings.site_overrides.clone(),
                    ));
                    vars.push((
                        "DOSSIER_RESEARCH_ALLOW_PRIVATE_NETWORKS",
                        "127.0.0.0/8".to_owned(),
                    ));
                }
                _ => {}
            }
            env.insert(worker, vars);
        }
        let mut stack = ChaosStack {
            services: Supervisor::new()?,
            brokers: Supervisor::new()?,
            nodes,
            runtime: tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()?,
            key,
            base: String::new(),
            dir: dir.to_owned(),
            bin_dir: bin_dir.to_owned(),
            files,
            nats_url,
            grpc_addr: any_port,
            webhooks_addr: any_port,
            http_addr: any_port,
            admin: BTreeMap::new(),
            env,
            starts: BTreeMap::new(),
        };
        for node in 0..size {
            stack.start_node(node)?;
        }
        if mode == Mode::Cluster {
            stack.wait_for_r3()?;
        }
        for service in SERVICES {
            stack.start_service(service)?;
        }
        stack.base = format!("http://{}", stack.http_addr);
        stack.wait_ready(Duration::from_secs(180))?;
        Ok(stack)
    }

    fn start_node(&mut self, index: usize) -> anyhow::Result<()> {
        let bin = nats::ensure()?;
        let node = &mut self.nodes[index];
        node.starts += 1;
        let conf = self.dir.join(format!("nats-{}.conf", node.name));
        let cmd = nats::server_command(&bin, &conf, &node.config)?;
        let name = format!("nats-{}", node.name);
        let log = self.dir.join(format!("{name}.{}.log", node.starts));
        self.brokers.spawn(&name, cmd, Output::File(log), &[])?;
        self.brokers.wait_for_port(&name, node.client, STARTUP)
    }

    /// Waits until the cluster can place a stream at R3 (every node has
    /// joined the meta group): until then the operations service could
    /// not make its topology.
    fn wait_for_r3(&self) -> anyhow::Result<()> {
        let url = self.nats_url.clone();
        let deadline = Instant::now() + Duration::from_secs(60);
        self.runtime.block_on(async move {
            loop {
                let made = async {
                    let servers: Vec<async_nats::ServerAddr> = url
                        .split(',')
                        .map(str::parse)
                        .collect::<Result<_, _>>()
                        .ok()?;
                    let js = async_nats::jetstream::new(async_nats::connect(servers).await.ok()?);
                    js.create_stream(async_nats::jetstream::stream::Config {
                        name: "CHAOS_PROBE".to_owned(),
                        subjects: vec!["chaos.probe".to_owned()],
                        num_replicas: 3,
                        ..Default::default()
                    })
                    .await
                    .ok()?;
                    js.delete_stream("CHAOS_PROBE").await.ok()
                };
                if tokio::time::timeout(Duration::from_secs(5), made)
                    .await
                    .ok()
                    .flatten()
                    .is_some()
                {
                    return Ok(());
                }
                if Instant::now() > deadline {
                    bail!("the cluster could not place an R3 stream within 60 s");
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    }

    fn start_service(&mut self, name: &'static str) -> anyhow::Result<()> {
        let mut cmd = Command::new(self.bin_dir.join(name));
        up::stack_env(
            &mut cmd,
            &self.nats_url,
            self.grpc_addr,
            self.http_addr,
            &self.files,
        );
        cmd.env("DOSSIER_LOG_FORMAT", "json")
            .env("RUST_LOG", "info");
        // The webhooks service's address: any free port at first, the same
        // one after a restart.
        match name {
            "webhooks" => cmd.env("DOSSIER_WEBHOOKS_GRPC_ADDR", self.webhooks_addr.to_string()),
            "gateway" => cmd.env(
                "DOSSIER_WEBHOOKS_URL",
                format!("http://{}", self.webhooks_addr),
            ),
            _ => &mut cmd,
        };
        let watches: Vec<Watch> = match name {
            "gateway" => vec![gateway_listening()],
            "operations" => vec![operations_listening(), admin_listening()],
            "webhooks" => vec![webhooks_listening(), admin_listening()],
            _ => vec![admin_listening()],
        };
        if name != "gateway" {
            let admin = self
                .admin
                .get(name)
                .copied()
                .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 0)));
            cmd.env("DOSSIER_ADMIN_ADDR", admin.to_string());
        }
        for (key, value) in self.env.get(name).into_iter().flatten() {
            cmd.env(key, value);
        }
        let starts = self.starts.entry(name).or_default();
        *starts += 1;
        let log = self.dir.join(format!("{name}.{starts}.log"));
        self.services
            .spawn(name, cmd, Output::File(log), &watches)?;
        // The addresses it bound (the same ones after a restart).
        match name {
            "gateway" => {
                self.http_addr = self
                    .services
                    .logged_addr(name, &gateway_listening(), STARTUP)?;
            }
            "operations" => {
                self.grpc_addr =
                    self.services
                        .logged_addr(name, &operations_listening(), STARTUP)?;
            }
            "webhooks" => {
                self.webhooks_addr =
                    self.services
                        .logged_addr(name, &webhooks_listening(), STARTUP)?;
            }
            _ => {}
        }
        if name != "gateway" {
            let admin = self
                .services
                .logged_addr(name, &admin_listening(), STARTUP)?;
            self.admin.insert(name, admin);
        }
        Ok(())
    }

    /// Waits (at most `timeout`) until every service's `/readyz` answers
    /// 2xx; fails early if a process exits.
    pub(crate) fn wait_ready(&self, timeout: Duration) -> anyhow::Result<()> {
        let mut ports: Vec<u16> = self.admin.values().map(SocketAddr::port).collect();
        ports.push(self.http_addr.port());
        self.services
            .wait_until("every service to be ready", timeout, || {
                ports.iter().all(|port| up::is_ready(*port))
            })?;
        self.brokers.check_alive()
    }

    fn pid(supervisor: &Supervisor, name: &str) -> anyhow::Result<u32> {
        supervisor
            .pids()
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, pid)| pid)
            .with_context(|| format!("no process {name}"))
    }

    /// SIGKILL of service `name` (reaped at once).
    pub(crate) fn kill_service(&mut self, name: &str) -> anyhow::Result<()> {
        signal(Self::pid(&self.services, name)?, "KILL")?;
        self.services.stop(name);
        Ok(())
    }

    /// Starts service `name` again on its addresses.
    pub(crate) fn restart_service(&mut self, name: &'static str) -> anyhow::Result<()> {
        self.start_service(name)
    }

    /// SIGSTOP (`stop`) or SIGCONT of service `name`.
    pub(crate) fn pause_service(&self, name: &str, stop: bool) -> anyhow::Result<()> {
        signal(
            Self::pid(&self.services, name)?,
            if stop { "STOP" } else { "CONT" },
        )
    }

    /// SIGKILL of broker node `index`.
    pub(crate) fn kill_node(&mut self, index: usize) -> anyhow::Result<()> {
        let name = format!("nats-{}", self.nodes[index].name);
        signal(Self::pid(&self.brokers, &name)?, "KILL")?;
        self.brokers.stop(&name);
        Ok(())
    }

    /// Starts broker node `index` again on its ports and store.
    pub(crate) fn restart_node(&mut self, index: usize) -> anyhow::Result<()> {
        self.start_node(index)
    }

    /// The name of node `index` (`n0`…).
    pub(crate) fn node_name(&self, index: usize) -> &str {
        &self.nodes[index].name
    }

    /// The node leading the jobs stream now, asked of the running nodes
    /// (`$JS.API.STREAM.INFO.DOSSIER_JOBS`, its cluster's leader); `None`
    /// while there is none (an election).
    pub(crate) fn jobs_leader(&self) -> Option<usize> {
        let running: Vec<String> = self
            .brokers
            .pids()
            .into_iter()
            .filter_map(|(name, _)| {
                let node = self
                    .nodes
                    .iter()
                    .find(|n| format!("nats-{}", n.name) == name)?;
                Some(format!("nats://{}", node.client))
            })
            .collect();
        let leader = self.runtime.block_on(async move {
            for url in running {
                let ask = async {
                    let js = async_nats::jetstream::new(async_nats::connect(url).await.ok()?);
                    let mut stream = js.get_stream(JOBS_STREAM).await.ok()?;
                    let info = stream.info().await.ok()?;
                    info.cluster.as_ref()?.leader.clone()
                };
                if let Ok(Some(leader)) = tokio::time::timeout(Duration::from_secs(2), ask).await {
                    return Some(leader);
                }
            }
            None
        })?;
        let index = self.nodes.iter().position(|n| n.name == leader)?;
        let alive = format!("nats-{leader}");
        self.brokers
            .pids()
            .iter()
            .any(|(name, _)| *name == alive)
            .then_some(index)
    }
}
