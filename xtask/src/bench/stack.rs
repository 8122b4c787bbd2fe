//! The stack for a benchmark: a fresh nats-server and the named services as
//! release processes on free ports, stopped (and the broker's store
//! removed) on drop. Process handling is `cargo xtask up`'s.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::Context as _;
use serde_json::Value;

use crate::{cargo, keygen, nats, run_checked, up};

/// A running benchmark stack.
pub(crate) struct Stack {
    /// `http://127.0.0.1:<port>` of the gateway.
    pub(crate) base: String,
    /// The API key of tenant `bench`.
    pub(crate) key: String,
    /// `nats://127.0.0.1:<port>` of the broker.
    pub(crate) nats_url: String,
    children: Vec<(String, Child)>,
    dir: PathBuf,
    bin_dir: PathBuf,
    keys_file: PathBuf,
    grpc_port: u16,
    http_port: u16,
    agent: ureq::Agent,
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

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
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
        let nats_bin = nats::ensure()?;
        std::fs::create_dir_all(dir)?;
        let (key, entry) = keygen::new_entry("bench", "bench-key");
        let keys_file = dir.join("api-keys.toml");
        std::fs::write(&keys_file, entry)?;
        let (nats_port, grpc_port, http_port) = (free_port()?, free_port()?, free_port()?);
        let never = AtomicBool::new(false);
        let mut stack = Stack {
            base: format!("http://127.0.0.1:{http_port}"),
            key,
            nats_url: format!("nats://127.0.0.1:{nats_port}"),
            children: Vec::new(),
            dir: dir.to_owned(),
            bin_dir: bin_dir.to_owned(),
            keys_file: keys_file.clone(),
            grpc_port,
            http_port,
            agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(60)))
                .build()
                .into(),
        };

        let mut cmd = Command::new(&nats_bin);
        cmd.args([
            "-js",
            "-a",
            "127.0.0.1",
            "-p",
            &nats_port.to_string(),
            "-sd",
        ])
        .arg(dir.join("nats"));
        stack
            .children
            .push(("nats-server".into(), up::spawn("nats-server", cmd)?));
        up::wait_for_port("nats-server", nats_port, &never)?;

        for (package, port) in [("operations", grpc_port), ("gateway", http_port)] {
            stack.add(package, package, &[])?;
            up::wait_for_port(package, port, &never)?;
        }
        for worker in workers {
            stack.add(worker.package, worker.package, &worker.env)?;
        }
        Ok(stack)
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
        let mut cmd = Command::new(self.bin_dir.join(package));
        up::stack_env(
            &mut cmd,
            &self.nats_url,
            self.grpc_port,
            self.http_port,
            &self.keys_file,
        );
        cmd.env("DOSSIER_LOG_FORMAT", "json")
            // Quiet: a benchmark's output is its table.
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
            );
        for (key, value) in env {
            cmd.env(key, value);
        }
        self.children.push((name.to_owned(), up::spawn(name, cmd)?));
        Ok(())
    }

    /// Stops the process started as `name` (SIGTERM, then kill after 10 s).
    pub(crate) fn stop(&mut self, name: &str) {
        if let Some(at) = self.children.iter().position(|(n, _)| n == name) {
            up::shut_down(vec![self.children.remove(at)]);
        }
    }

    /// Stops and starts the operations service again, and waits for its
    /// port: its list index rebuilds from the bucket while it starts.
    pub(crate) fn restart_operations(&mut self) -> anyhow::Result<()> {
        self.stop("operations");
        self.add("operations", "operations", &[])?;
        up::wait_for_port("operations", self.grpc_port, &AtomicBool::new(false))
    }

    /// The name and process id of every running process.
    pub(crate) fn pids(&self) -> Vec<(String, u32)> {
        self.children
            .iter()
            .map(|(name, child)| (name.clone(), child.id()))
            .collect()
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
        let status = response.status().as_u16();
        let bytes = response
            .into_body()
            .with_config()
            .limit(64 * 1024 * 1024)
            .read_to_vec()
            .with_context(|| format!("reading the answer of {method} {path}"))?;
        Ok((
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        ))
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        up::shut_down(std::mem::take(&mut self.children));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
