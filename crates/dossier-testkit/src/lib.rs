//! Test kit: a real `nats-server` with JetStream for every test, on a port
//! the OS assigns with a temporary file store, that can be stopped and
//! restarted on the same port and store for fault tests; a three-node
//! JetStream cluster ([`NatsCluster`]) whose nodes can be killed and
//! restarted; plus condition waiting and opt-in test logs.
//!
//! The binary is the pinned release (`nats-server.version` at the repository
//! root): `NATS_SERVER_BIN` when set, else the copy `cargo xtask` installs
//! under `target/nats-server/<version>/`.
#![forbid(unsafe_code)]
#![allow(clippy::expect_used, clippy::unwrap_used)] // A test kit fails loudly.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use dossier_broker::{BrokerConfig, TopologyConfig};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;

mod cluster;

pub use cluster::{CLUSTER_SIZE, NatsCluster};
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// The pinned nats-server release.
pub const NATS_SERVER_VERSION: &str = include_str!("../../../nats-server.version").trim_ascii();

/// Env var naming the nats-server binary to use.
pub const ENV_NATS_SERVER_BIN: &str = "NATS_SERVER_BIN";

/// Path of the nats-server binary for tests.
pub fn nats_server_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os(ENV_NATS_SERVER_BIN) {
        return PathBuf::from(bin);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let bin = target
        .join("nats-server")
        .join(NATS_SERVER_VERSION)
        .join("nats-server");
    assert!(
        bin.exists(),
        "nats-server {NATS_SERVER_VERSION} not found at {}: run the tests with `cargo xtask test` \
         (it installs the pinned release) or set {ENV_NATS_SERVER_BIN}",
        bin.display()
    );
    bin
}

/// A nats-server process with JetStream on a loopback port and a temporary
/// store. Killed, and its store removed, on drop.
pub struct NatsServer {
    child: Option<Child>,
    /// The client port: `-1` (any, chosen by the server) until the first
    /// start, then the one it chose, which restarts reuse (as async-nats's
    /// own test harness does).
    port: i32,
    store: tempfile::TempDir,
    /// Where the server writes its ports file (`--ports_file_dir`).
    ports_dir: tempfile::TempDir,
    extra_args: Vec<String>,
}

impl NatsServer {
    /// Starts a server and waits until JetStream answers.
    pub async fn start() -> NatsServer {
        Self::start_with(&[]).await
    }

    /// Starts a server with extra command-line arguments (e.g. `--user`);
    /// with arguments it waits only until the port accepts connections.
    pub async fn start_with(extra_args: &[&str]) -> NatsServer {
        let store = tempfile::Builder::new()
            .prefix("dossier-nats-")
            .tempdir()
            .expect("temp dir");
        let ports_dir = tempfile::Builder::new()
            .prefix("dossier-nats-ports-")
            .tempdir()
            .expect("temp dir");
        let extra_args = extra_args.iter().map(|a| (*a).to_owned()).collect();
        let mut server = NatsServer {
            child: None,
            port: -1,
            store,
            ports_dir,
            extra_args,
        };
        server.spawn().await;
        server
    }

    /// The server process's id while it runs (to read its memory).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Broker settings pointing at this server, with a request timeout short
    /// enough for tests.
    pub fn broker_config(&self) -> BrokerConfig {
        test_broker_config(self.url())
    }

    /// Topology settings for tests (what the operations service, the owner,
    /// creates): a short ack deadline (a test that waits for a redelivery
    /// waits one `ack_wait`) and few deliveries.
    pub fn topology_config(&self) -> TopologyConfig {
        test_topology_config(1)
    }

    /// A client connected to this server.
    pub async fn client(&self) -> async_nats::Client {
        async_nats::connect(self.url())
            .await
            .expect("connect to test nats-server")
    }

    /// Kills the server (as a crash would: no clean shutdown). The store stays.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the server and starts it again on the same port and store.
    pub async fn restart(&mut self) {
        self.kill();
        self.spawn().await;
    }

    /// Starts the server again after [`NatsServer::kill`].
    pub async fn start_again(&mut self) {
        assert!(self.child.is_none(), "server is running");
        self.spawn().await;
    }

    async fn spawn(&mut self) {
        let mut cmd = nats_server_command(
            self.port,
            self.ports_dir.path(),
            self.store.path(),
            &self.extra_args,
        );
        let child = cmd.spawn().expect("spawn nats-server");
        let pid = child.id();
        self.child = Some(child);
        if self.port < 0 {
            self.port = wait_for_ports(self.ports_dir.path(), pid).await.client;
        }
        // A server started with credentials cannot be probed anonymously:
        // for it, accepting connections is ready enough.
        if self.extra_args.is_empty() {
            wait_for_jetstream(&self.url()).await;
        } else {
            let addr = format!("127.0.0.1:{}", self.port);
            wait_until(
                "nats-server to accept connections",
                Duration::from_secs(20),
                || {
                    let addr = addr.clone();
                    async move { tokio::net::TcpStream::connect(addr).await.is_ok() }
                },
            )
            .await;
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

impl TestBroker for NatsServer {
    fn url(&self) -> String {
        NatsServer::url(self)
    }

    fn broker_config(&self) -> BrokerConfig {
        NatsServer::broker_config(self)
    }

    fn topology_config(&self) -> TopologyConfig {
        NatsServer::topology_config(self)
    }

    async fn client(&self) -> async_nats::Client {
        NatsServer::client(self).await
    }
}

/// What a test stack needs of its broker, a single server
/// ([`NatsServer`]) or a cluster ([`NatsCluster`]).
pub trait TestBroker: Send + Sync + 'static {
    /// The client URL(s), comma separated (what `DOSSIER_NATS_URL` takes).
    fn url(&self) -> String;

    /// Broker settings pointing at it, with a request timeout short enough
    /// for tests.
    fn broker_config(&self) -> BrokerConfig;

    /// Topology settings for tests, with the replica count it supports.
    fn topology_config(&self) -> TopologyConfig;

    /// A client connected to it.
    fn client(&self) -> impl Future<Output = async_nats::Client> + Send;
}

/// Broker settings for `url` with a request timeout short enough for tests.
fn test_broker_config(url: String) -> BrokerConfig {
    BrokerConfig {
        url,
        request_timeout: Duration::from_secs(2),
        ..BrokerConfig::default()
    }
}

/// Topology settings for tests at `replicas`: a short ack deadline (a test
/// that waits for a redelivery waits one `ack_wait`) and few deliveries.
fn test_topology_config(replicas: usize) -> TopologyConfig {
    let mut cfg = TopologyConfig {
        replicas,
        ..TopologyConfig::default()
    };
    cfg.consumer.ack_wait = Duration::from_secs(2);
    cfg.consumer.max_deliver = 3;
    cfg
}

/// A nats-server command with JetStream on loopback: client port `port`
/// (`-1`: the OS chooses), its ports file in `ports_dir`, its store in
/// `store`, then `extra_args`; output only with `TEST_LOG`.
///
/// The server always runs with an explicit store limit: by default
/// nats-server allows 75 % of the disk free at its start, and the
/// topology's byte limits (several GiB together, reserved at stream
/// creation) then fail tests with "insufficient storage" on a machine with
/// less than ~9 GiB free. Tests write little; the limit only has to cover
/// the reservations. nats-server reads one configuration file (a second
/// `-c` replaces the first), so a caller's `-c <file>` is not passed on but
/// included from a file written next to it that adds the limit.
fn nats_server_command(
    port: i32,
    ports_dir: &Path,
    store: &Path,
    extra_args: &[String],
) -> Command {
    const LIMITS: &str = "jetstream { max_file_store: 1TB, max_memory_store: 1GB }\n";
    let mut args = extra_args.to_vec();
    let config = match args.iter().position(|a| a == "-c" || a == "--config") {
        Some(at) => {
            let caller = PathBuf::from(args.get(at + 1).expect("-c takes a file"));
            args.drain(at..at + 2);
            let name = caller
                .file_name()
                .expect("-c names a file")
                .to_string_lossy();
            let wrapper = caller.with_file_name(format!("{name}.with-store-limit.conf"));
            // `include` resolves relative to the including file: both sit
            // in the caller's directory.
            write_file(&wrapper, &format!("include {name:?}\n{LIMITS}"));
            wrapper
        }
        None => {
            let limits = ports_dir.join("limits.conf");
            write_file(&limits, LIMITS);
            limits
        }
    };
    let mut cmd = Command::new(nats_server_bin());
    cmd.arg("-c").arg(&config);
    cmd.args(["-js", "-a", "127.0.0.1", "-p"])
        .arg(port.to_string())
        .arg("--ports_file_dir")
        .arg(ports_dir)
        .arg("-sd")
        .arg(store)
        .args(args)
        .stdin(Stdio::null());
    if std::env::var_os("TEST_LOG").is_none() {
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
    }
    cmd
}

fn write_file(path: &Path, contents: &str) {
    if let Err(error) = std::fs::write(path, contents) {
        panic!("cannot write {}: {error}", path.display());
    }
}

/// The ports a nats-server reported in its ports file.
struct Ports {
    client: i32,
    /// The route port, when the server is a cluster node.
    cluster: Option<i32>,
}

/// Waits until nats-server `pid` has written its ports file into `dir`.
async fn wait_for_ports(dir: &Path, pid: u32) -> Ports {
    wait_for("nats-server's ports file", Duration::from_secs(20), || {
        let dir = dir.to_owned();
        async move { read_ports(&dir, pid) }
    })
    .await
}

/// The ports in the ports file nats-server `pid` wrote into `dir`
/// (`<executable>_<pid>.ports`, JSON with `"nats": ["nats://host:port"]`
/// and, for a cluster node, `"cluster"`), once it is there and complete.
fn read_ports(dir: &Path, pid: u32) -> Option<Ports> {
    let suffix = format!("_{pid}.ports");
    let file = std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .find(|entry| entry.file_name().to_string_lossy().ends_with(&suffix))?;
    let ports: serde_json::Value =
        serde_json::from_slice(&std::fs::read(file.path()).ok()?).ok()?;
    let port = |key: &str| -> Option<i32> {
        let url = ports[key].get(0)?.as_str()?;
        url.rsplit_once(':')?.1.parse().ok()
    };
    Some(Ports {
        client: port("nats")?,
        cluster: port("cluster"),
    })
}

/// Waits until the server at `url` answers JetStream requests.
async fn wait_for_jetstream(url: &str) {
    wait_until(
        "nats-server to serve JetStream",
        Duration::from_secs(30),
        || async move {
            let Ok(client) = async_nats::connect(url).await else {
                return false;
            };
            async_nats::jetstream::new(client)
                .query_account()
                .await
                .is_ok()
        },
    )
    .await;
}

/// A loopback port on which connections are refused, and no one else can
/// listen while the value lives: it is bound, never listened on.
pub struct ClosedPort(tokio::net::TcpSocket);

impl ClosedPort {
    /// Binds a port the OS assigns, without listening.
    pub fn new() -> ClosedPort {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
            .expect("bind");
        ClosedPort(socket)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.0.local_addr().expect("addr").port()
    }
}

impl Default for ClosedPort {
    fn default() -> Self {
        ClosedPort::new()
    }
}

/// Polls `check` every 20 ms until it returns true; panics naming `what`
/// after `deadline`. Use it instead of sleeping.
pub async fn wait_until<F, Fut>(what: &str, deadline: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let end = Instant::now() + deadline;
    loop {
        if check().await {
            return;
        }
        assert!(
            Instant::now() < end,
            "timed out after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls `check` until it returns `Some`, and returns the value; panics naming
/// `what` after `deadline`.
pub async fn wait_for<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let end = Instant::now() + deadline;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < end,
            "timed out after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Installs, once per test binary, the subscriber of in-process services:
/// an OpenTelemetry layer (no exporter), as every service binary has, so
/// spans carry trace context and every hop passes it on in its headers; and
/// the services' logs when `TEST_LOG` is set (`TEST_LOG=1 cargo xtask test`).
pub fn init_test_logging() {
    static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();
    PROVIDER.get_or_init(|| {
        dossier_telemetry::init_propagator();
        // The services' ids (a request's trace id is its request id), and
        // no exporter.
        let provider = dossier_telemetry::tracer_provider_to("tests", None)
            .expect("a tracer provider without an exporter builds");
        let otel = tracing_opentelemetry::layer().with_tracer(provider.tracer("tests"));
        let fmt = std::env::var_os("TEST_LOG").map(|_| {
            tracing_subscriber::fmt::layer()
                .with_test_writer()
                .with_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| "info".into()),
                )
        });
        let _ = tracing_subscriber::registry()
            .with(otel)
            .with(fmt)
            .try_init();
        provider
    });
}

/// The service-token key pair of a test binary's stacks, on disk (the
/// services load keys from files) for the binary's lifetime.
pub struct ServiceKeys {
    files: dossier_identity::KeyPairFiles,
    signer: dossier_identity::TokenSigner,
    _dir: tempfile::TempDir,
}

impl ServiceKeys {
    /// The private key (what the gateway's `DOSSIER_SERVICE_TOKEN_KEY` names).
    pub fn private_key(&self) -> &Path {
        &self.files.private
    }

    /// The public key (what the operations service's
    /// `DOSSIER_SERVICE_TOKEN_PUBLIC_KEYS` names).
    pub fn public_key(&self) -> &Path {
        &self.files.public
    }

    /// `message` as the gateway sends it: with a token for its tenant.
    pub fn signed<T: dossier_contracts::v1::Tenanted>(&self, message: T) -> tonic::Request<T> {
        self.signer.request(message).expect("a test token signs")
    }
}

/// The key pair every service of this test binary uses, made once.
pub fn service_keys() -> &'static ServiceKeys {
    static KEYS: OnceLock<ServiceKeys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let files = dossier_identity::write_key_pair(dir.path()).expect("test keys are written");
        let signer = dossier_identity::TokenSigner::from_file(&files.private, "gateway")
            .expect("the test key loads");
        ServiceKeys {
            files,
            signer,
            _dir: dir,
        }
    })
}

/// A throw-away certificate authority for TLS tests: a CA and the
/// certificates it issues, as PEM files in a temporary directory.
pub struct TestPki {
    dir: tempfile::TempDir,
    ca: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
}

/// A certificate and its key, as PEM files.
#[derive(Debug, Clone)]
pub struct IssuedCert {
    /// The certificate (PEM).
    pub cert: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
}

impl TestPki {
    /// A fresh CA.
    pub fn new() -> TestPki {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Dossier test CA");
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let ca = rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().unwrap())
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
        TestPki { dir, ca }
    }

    /// The CA certificate (PEM): what clients and servers trust.
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// A certificate for `localhost` and 127.0.0.1, usable by a server and
    /// a client, named `name` on disk.
    pub fn issue(&self, name: &str) -> IssuedCert {
        let mut params =
            rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.extended_key_usages = vec![
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca).unwrap();
        let issued = IssuedCert {
            cert: self.dir.path().join(format!("{name}.pem")),
            key: self.dir.path().join(format!("{name}.key")),
        };
        std::fs::write(&issued.cert, cert.pem()).unwrap();
        std::fs::write(&issued.key, key.serialize_pem()).unwrap();
        issued
    }
}

impl Default for TestPki {
    fn default() -> Self {
        TestPki::new()
    }
}
