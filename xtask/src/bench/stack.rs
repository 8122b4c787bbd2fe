//! The stack for a benchmark: a fresh nats-server and the named services as
//! release processes on ports the OS assigns, stopped (and the broker's
//! store removed) on drop. Processes are `crate::supervise`'s, as for
//! `cargo xtask up`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::Context as _;
use serde_json::Value;

use crate::supervise::{Output, Supervisor, Watch};
use crate::up::{gateway_listening, operations_listening};
use crate::{cargo, keygen, nats, run_checked, up};

/// How long a process may take to log its address and listen.
const STARTUP: Duration = Duration::from_secs(60);

/// The services' log filter. Quiet, as a benchmark's output is its table,
/// but for the lines of each service's root module: they name the
/// addresses the services bound (`Gateway listening.`, `Operations service
/// listening.`), which the stack reads back.
const LOG_FILTER: &str = "warn,gateway=info,gateway::=warn,operations=info,operations::=warn";

/// The tenant of the stack's API key.
pub(crate) const TENANT: &str = "bench";

/// A running benchmark stack.
pub(crate) struct Stack {
    /// `http://127.0.0.1:<port>` of the gateway.
    pub(crate) base: String,
    /// The API key of tenant [`TENANT`].
    pub(crate) key: String,
    /// `nats://127.0.0.1:<port>` of the broker.
    pub(crate) nats_url: String,
    /// The operations service's gRPC address (port 0 until it started; a
    /// restart binds the same one, which the gateway knows).
    pub(crate) grpc_addr: SocketAddr,
    supervisor: Supervisor,
    dir: PathBuf,
    bin_dir: PathBuf,
    files: up::StackFiles,
    http_addr: SocketAddr,
    agent: ureq::Agent,
}

/// When nats-server fsyncs JetStream writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fsync {
    /// Before every acknowledgement: what `cargo xtask up` and every
    /// shipped configuration run (`nats::server_config`).
    Always,
    /// nats-server's default (every 2 minutes): only to measure what
    /// [`Fsync::Always`] costs (`cargo xtask bench fsync`).
    Lazy,
}

/// A service to start after nats-server: its package (binary) name and
/// extra environment.
pub(crate) struct Service<'a> {
    pub(crate) package: &'a str,
    pub(crate) env: Vec<(&'a str, String)>,
}

/// Builds the binaries of `packages` in release (where [`Stack::start`]
/// finds them: `target/release/`).
pub(crate) fn build_release(packages: &[&str]) -> anyhow::Result<()> {
    let mut build = cargo();
    build.args(["build", "--release", "--bins"]);
    for package in packages {
        build.args(["-p", package]);
    }
    run_checked(&mut build)
}

impl Stack {
    /// Starts nats-server (store under `dir`), the operations service, the
    /// gateway and `workers` from `bin_dir`, and waits for the ports.
    /// Workers have no port: the caller waits for them its own way.
    pub(crate) fn start(
        bin_dir: &Path,
        dir: &Path,
        workers: &[Service<'_>],
    ) -> anyhow::Result<Stack> {
        Stack::start_with(bin_dir, dir, workers, Fsync::Always)
    }

    /// [`Stack::start`] with nats-server's fsync as `fsync` says.
    pub(crate) fn start_with(
        bin_dir: &Path,
        dir: &Path,
        workers: &[Service<'_>],
        fsync: Fsync,
    ) -> anyhow::Result<Stack> {
        let nats_bin = nats::ensure()?;
        std::fs::create_dir_all(dir)?;
        let (key, entry) = keygen::new_entry(TENANT, "bench-key");
        let keys_file = dir.join("api-keys.toml");
        std::fs::write(&keys_file, entry)?;
        let files = up::StackFiles {
            api_keys: keys_file,
            service_keys: dossier_identity::write_key_pair(dir)?,
        };
        let supervisor = Supervisor::new()?;

        // The broker `cargo xtask up` runs: fsync before every ack.
        let mut config = nats::server_config("127.0.0.1:-1", None, &dir.join("nats"), None);
        if fsync == Fsync::Lazy {
            let always = "  sync_interval: always\n";
            anyhow::ensure!(
                config.contains(always),
                "nats::server_config has no `{}`",
                always.trim()
            );
            config = config.replace(always, "");
        }
        let cmd = nats::server_command(&nats_bin, &dir.join("nats.conf"), &config)?;
        let listening = nats::client_addr_line();
        supervisor.spawn(
            "nats-server",
            cmd,
            Output::Prefixed,
            std::slice::from_ref(&listening),
        )?;
        let nats_addr = supervisor.logged_addr("nats-server", &listening, STARTUP)?;
        supervisor.wait_for_port("nats-server", nats_addr, STARTUP)?;

        let any_port = SocketAddr::from(([127, 0, 0, 1], 0));
        let mut stack = Stack {
            base: String::new(),
            key,
            nats_url: format!("nats://{nats_addr}"),
            grpc_addr: any_port,
            supervisor,
            dir: dir.to_owned(),
            bin_dir: bin_dir.to_owned(),
            files,
            http_addr: any_port,
            agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(60)))
                .build()
                .into(),
        };
        stack.grpc_addr = stack.start_listening("operations", &operations_listening())?;
        stack.http_addr = stack.start_listening("gateway", &gateway_listening())?;
        stack.base = format!("http://{}", stack.http_addr);
        for worker in workers {
            stack.add(worker.package, worker.package, &worker.env)?;
        }
        Ok(stack)
    }

    /// Starts `package` and waits until the address its line `listening`
    /// names accepts connections; returns that address.
    fn start_listening(&mut self, package: &str, listening: &Watch) -> anyhow::Result<SocketAddr> {
        self.spawn(package, package, &[], std::slice::from_ref(listening))?;
        let addr = self.supervisor.logged_addr(package, listening, STARTUP)?;
        self.supervisor.wait_for_port(package, addr, STARTUP)?;
        Ok(addr)
    }

    /// Starts one more process of `package` under `name` (unique, e.g.
    /// `search-worker-2` for a replica), with the stack's environment and
    /// `env`. Does not wait for it.
    pub(crate) fn add(
        &mut self,
        name: &str,
        package: &str,
        env: &[(&str, String)],
    ) -> anyhow::Result<()> {
        self.spawn(name, package, env, &[])
    }

    fn spawn(
        &mut self,
        name: &str,
        package: &str,
        env: &[(&str, String)],
        watch: &[Watch],
    ) -> anyhow::Result<()> {
        let mut cmd = Command::new(self.bin_dir.join(package));
        up::stack_env(
            &mut cmd,
            &self.nats_url,
            self.grpc_addr,
            self.http_addr,
            &self.files,
        );
        cmd.env("DOSSIER_LOG_FORMAT", "json").env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| LOG_FILTER.into()),
        );
        for (key, value) in env {
            cmd.env(key, value);
        }
        self.supervisor.spawn(name, cmd, Output::Prefixed, watch)
    }

    /// A signer of service tokens as the stack's gateway signs them, for
    /// calls straight to the operations service.
    pub(crate) fn service_token_signer(&self) -> anyhow::Result<dossier_identity::TokenSigner> {
        Ok(dossier_identity::TokenSigner::from_file(
            &self.files.service_keys.private,
            "gateway",
        )?)
    }

    /// Stops the process started as `name` (SIGTERM, then kill after 10 s).
    pub(crate) fn stop(&mut self, name: &str) {
        self.supervisor.stop(name);
    }

    /// Stops and starts the operations service again on the same address,
    /// and waits for its port: its list index rebuilds from the bucket while
    /// it starts.
    pub(crate) fn restart_operations(&mut self) -> anyhow::Result<()> {
        self.stop("operations");
        self.add("operations", "operations", &[])?;
        self.supervisor
            .wait_for_port("operations", self.grpc_addr, STARTUP)
    }

    /// The name and process id of every running process.
    pub(crate) fn pids(&self) -> Vec<(String, u32)> {
        self.supervisor.pids()
    }

    /// `method path` with a JSON body (or none) as tenant `bench`: the status
    /// and the JSON answer (`null` when the body is not JSON).
    pub(crate) fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> anyhow::Result<(u16, Value)> {
        let url = format!("{}{path}", self.base);
        let auth = format!("Bearer {}", self.key);
        let response = match (method, body) {
            ("GET", _) => self.agent.get(&url).header("Authorization", &auth).call(),
            (_, Some(body)) => self
                .agent
                .post(&url)
                .header("Authorization", &auth)
                .header("Content-Type", "application/json")
                .send(body),
            (_, None) => self
                .agent
                .post(&url)
                .header("Authorization", &auth)
                .send_empty(),
        }
        .with_context(|| format!("{method} {path}"))?;
        crate::json_answer(response)
            .with_context(|| format!("reading the answer of {method} {path}"))
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // The processes first: nats-server still writes to its store.
        self.supervisor.stop_all();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
