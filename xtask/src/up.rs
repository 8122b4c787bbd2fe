//! `cargo xtask up`: nats-server and every service as separate processes on
//! this machine, with their output prefixed by name, until Ctrl-C.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::supervise::{Output, Supervisor, Watch};
use crate::{cargo, directory, keygen, nats, root, run_checked, samples, target_dir};

/// How long a process may take to listen.
const STARTUP: Duration = Duration::from_secs(60);

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Port of the HTTP gateway.
    #[arg(long, default_value_t = 8080)]
    http_port: u16,
    /// Client port of nats-server.
    #[arg(long, default_value_t = 4222)]
    nats_port: u16,
    /// Monitoring port of nats-server.
    #[arg(long, default_value_t = 8222)]
    nats_monitor_port: u16,
    /// gRPC port of the operations service.
    #[arg(long, default_value_t = 50051)]
    grpc_port: u16,
    /// Admin port (`/healthz`, `/readyz`, `/metrics`) of the operations
    /// service; each worker gets the one its place in the start order adds.
    #[arg(long, default_value_t = 9090)]
    admin_port: u16,
    /// Build and run release binaries.
    #[arg(long)]
    release: bool,
}

/// A service binary and the extra environment it gets.
struct Service {
    package: &'static str,
    /// The port it must be listening on before the next one starts, if any.
    waits_for_port: Option<fn(&Args) -> u16>,
}

/// Start order: the operations service first (it owns the read model the
/// gateway reads), then the gateway, then the workers. Every service but the
/// gateway (which serves `/metrics` on its HTTP port) gets an admin port, see
/// [`admin_port`].
const SERVICES: &[Service] = &[
    Service {
        package: "operations",
        waits_for_port: Some(|a| a.grpc_port),
    },
    Service {
        package: "gateway",
        waits_for_port: Some(|a| a.http_port),
    },
    Service {
        package: "search-worker",
        waits_for_port: None,
    },
    Service {
        package: "enrichment-worker",
        waits_for_port: None,
    },
    Service {
        package: "research-worker",
        waits_for_port: None,
    },
    // Last, so the workers' admin ports stay where they were.
    Service {
        package: "webhooks",
        waits_for_port: None,
    },
];

/// The admin port of the service at `index` of [`SERVICES`], if it has one.
fn admin_port(args: &Args, index: usize) -> Option<u16> {
    let service = SERVICES.get(index)?;
    if service.package == "gateway" {
        return None;
    }
    args.admin_port.checked_add(u16::try_from(index).ok()?)
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let nats_bin = nats::ensure()?;
    let mut build = cargo();
    build.args(["build", "--bins"]);
    if args.release {
        build.arg("--release");
    }
    for s in SERVICES {
        build.args(["-p", s.package]);
    }
    run_checked(&mut build)?;
    let bin_dir = target_dir().join(if args.release { "release" } else { "debug" });

    let state = root().join(".dossier");
    std::fs::create_dir_all(&state)?;
    let (keys_file, dev_key) = api_keys(&state)?;
    // The gateway's service-token key pair (see dossier-identity), made on
    // the first run and kept.
    let service_keys = dossier_identity::write_key_pair(&state)?;
    let files = StackFiles {
        api_keys: keys_file.clone(),
        service_keys,
    };
    let directory = match std::env::var_os("DOSSIER_DIRECTORY_FILES") {
        Some(files) => files,
        None => directory::ensure_default(&state)?.into_os_string(),
    };
    // Worked out while the workers load the same file.
    let samples = {
        let first = std::env::split_paths(&directory).next();
        std::thread::spawn(move || first.map(|path| samples::Samples::from_directory(&path)))
    };

    let supervisor = Supervisor::new()?;
    let nats_url = format!("nats://127.0.0.1:{}", args.nats_port);
    let grpc_addr = loopback(args.grpc_port);
    let http_addr = loopback(args.http_port);
    // JetStream fsyncs before acknowledging (see `nats::server_config`).
    let config = nats::server_config(
        &loopback(args.nats_port).to_string(),
        Some(&loopback(args.nats_monitor_port).to_string()),
        &state.join("nats"),
        None,
    );
    let cmd = nats::server_command(&nats_bin, &state.join("nats.conf"), &config)?;
    supervisor.spawn("nats-server", cmd, Output::Prefixed, &[])?;
    supervisor.wait_for_port("nats-server", loopback(args.nats_port), STARTUP)?;

    for (index, service) in SERVICES.iter().enumerate() {
        let mut cmd = Command::new(bin_dir.join(service.package));
        if let Some(port) = admin_port(&args, index) {
            cmd.env("DOSSIER_ADMIN_ADDR", loopback(port).to_string());
        }
        stack_env(&mut cmd, &nats_url, grpc_addr, http_addr, &files);
        if service.package == "webhooks" {
            // A local stack: links to this gateway, and receivers on this
            // machine allowed (plain http, loopback), which production
            // refuses.
            cmd.env("DOSSIER_PUBLIC_BASE_URL", format!("http://{http_addr}"))
                .env("DOSSIER_WEBHOOKS_ALLOW_HTTP", "true")
                .env("DOSSIER_WEBHOOKS_ALLOW_PRIVATE_NETWORKS", "127.0.0.0/8");
        }
        cmd.env("DOSSIER_DIRECTORY_FILES", &directory).env(
            "DOSSIER_LOG_FORMAT",
            std::env::var("DOSSIER_LOG_FORMAT").unwrap_or_else(|_| "pretty".into()),
        );
        supervisor.spawn(service.package, cmd, Output::Prefixed, &[])?;
        if let Some(port) = service.waits_for_port {
            supervisor.wait_for_port(service.package, loopback(port(&args)), STARTUP)?;
        }
    }

    // Ready means every service says so: the workers load their directory
    // for a while after they start, and answer 503 until then.
    println!("Waiting for every service to be ready (the workers load the directory)...");
    let mut probes: Vec<(&str, u16)> = SERVICES
        .iter()
        .enumerate()
        .filter_map(|(index, service)| Some((service.package, admin_port(&args, index)?)))
        .collect();
    probes.push(("gateway", args.http_port));
    supervisor.wait_until("every service to be ready", READY, || {
        probes.iter().all(|(_, port)| is_ready(*port))
    })?;

    println!();
    println!("Dossier is running:");
    println!(
        "  gateway     http://127.0.0.1:{}   (HTTP API)",
        args.http_port
    );
    println!("  operations  127.0.0.1:{}          (gRPC)", args.grpc_port);
    println!(
        "  webhooks    127.0.0.1:50052          (gRPC; deliveries to http:// and loopback receivers allowed locally)"
    );
    println!(
        "  workers     search-worker, enrichment-worker, research-worker (directory {})",
        directory.to_string_lossy()
    );
    println!(
        "  nats-server {nats_url}   (monitoring http://127.0.0.1:{}, store {}, fsync always)",
        args.nats_monitor_port,
        state.join("nats").display()
    );
    for (index, service) in SERVICES.iter().enumerate() {
        if let Some(port) = admin_port(&args, index) {
            println!(
                "  admin       http://127.0.0.1:{port}/metrics   ({}; also /healthz, /readyz)",
                service.package
            );
        }
    }
    println!(
        "  gateway     http://127.0.0.1:{}/metrics   (also /healthz, /readyz)",
        args.http_port
    );
    println!("  API keys    {}", keys_file.display());
    if let Some(key) = &dev_key {
        println!("  dev key     {key}   (tenant `dev`)");
        println!();
        println!(
            "  curl -s -H 'Authorization: Bearer {key}' http://127.0.0.1:{}/api/me",
            args.http_port
        );
    }
    if let Ok(Some(Ok(samples))) = samples.join() {
        println!();
        print!("{}", samples.render(dev_key.as_deref(), args.http_port));
    }
    println!();
    println!("Press Ctrl-C to stop.");
    // Dropping the supervisor stops every process, in reverse order.
    supervisor.run_until_interrupted()
}

/// How long the services may take to be ready (the workers load the
/// directory: about 30 s for the default one in a debug build).
const READY: Duration = Duration::from_secs(300);

/// The start-up line of the operations service naming its gRPC address.
pub(crate) fn operations_listening() -> Watch {
    Watch::field("Operations service listening.", "addr")
}

/// The start-up line of the webhooks service naming its gRPC address.
pub(crate) fn webhooks_listening() -> Watch {
    Watch::field("Webhooks service listening.", "addr")
}

/// The start-up line of the gateway naming its HTTP address.
pub(crate) fn gateway_listening() -> Watch {
    Watch::field("Gateway listening.", "http_addr")
}

/// The start-up line naming the admin server's address (every service but
/// the gateway binds one; port 0 lets it pick).
pub(crate) fn admin_listening() -> Watch {
    Watch::field("Admin server listening.", "admin_addr")
}

/// Whether `/readyz` on `port` (loopback) answers 2xx.
pub(crate) fn is_ready(port: u16) -> bool {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(2)))
        .http_status_as_error(false)
        .build()
        .into();
    agent
        .get(&format!("http://127.0.0.1:{port}/readyz"))
        .call()
        .is_ok_and(|response| response.status().is_success())
}

/// `127.0.0.1:<port>`.
fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// The keys file and, when we made it, the dev key to print.
fn api_keys(state: &Path) -> anyhow::Result<(PathBuf, Option<String>)> {
    if let Some(file) = std::env::var_os("DOSSIER_API_KEYS_FILE") {
        return Ok((PathBuf::from(file), None));
    }
    Ok((state.join("api-keys.toml"), Some(dev_api_key(state)?)))
}

/// The dev API key in `state/dev-api-key` (made on the first run: a stable
/// key across runs keeps scripts and shell history working) and its keys
/// file `state/api-keys.toml`. The key is a secret: its file is readable
/// by its owner only, also when an earlier version wrote it wider.
fn dev_api_key(state: &Path) -> anyhow::Result<String> {
    let key_path = state.join("dev-api-key");
    let key = match std::fs::read_to_string(&key_path) {
        Ok(key) => {
            dossier_identity::restrict_to_owner(&key_path)?;
            key.trim().to_owned()
        }
        Err(_) => {
            let (key, _) = keygen::new_entry("dev", "dev-key");
            dossier_identity::write_secret(&key_path, key.as_bytes())?;
            key
        }
    };
    std::fs::write(
        state.join("api-keys.toml"),
        keygen::entry_for("dev", "dev-key", &key),
    )?;
    Ok(key)
}

/// The files a local stack's services are given.
pub(crate) struct StackFiles {
    /// The gateway's API keys file.
    pub(crate) api_keys: PathBuf,
    /// The service-token key pair: the gateway signs with the private key,
    /// the operations service verifies with the public one.
    pub(crate) service_keys: dossier_identity::KeyPairFiles,
}

/// The environment every service of a local stack gets: where NATS, the
/// operations service and the gateway are, the API keys and the
/// service-token keys (the bench's stack uses it too, so it runs the
/// services as `up` does). A port 0 lets the service bind any free port.
pub(crate) fn stack_env(
    cmd: &mut Command,
    nats_url: &str,
    grpc_addr: SocketAddr,
    http_addr: SocketAddr,
    files: &StackFiles,
) {
    cmd.env("DOSSIER_NATS_URL", nats_url)
        .env("DOSSIER_OPERATIONS_GRPC_ADDR", grpc_addr.to_string())
        .env("DOSSIER_OPERATIONS_URL", format!("http://{grpc_addr}"))
        .env("DOSSIER_HTTP_ADDR", http_addr.to_string())
        .env("DOSSIER_API_KEYS_FILE", &files.api_keys)
        .env("DOSSIER_SERVICE_TOKEN_KEY", &files.service_keys.private)
        .env(
            "DOSSIER_SERVICE_TOKEN_PUBLIC_KEYS",
            &files.service_keys.public,
        );
}

#[cfg(all(test, unix))]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn the_dev_api_key_is_readable_by_its_owner_only_and_stable() {
        let state = tempfile::tempdir().unwrap();
        let key = dev_api_key(state.path()).unwrap();
        let key_file = state.path().join("dev-api-key");
        assert_eq!(mode(&key_file), 0o600);
        let keys = std::fs::read_to_string(state.path().join("api-keys.toml")).unwrap();
        assert!(keys.contains("tenant = \"dev\""), "{keys}");

        // A key an earlier version left world-readable is narrowed, and
        // kept.
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(dev_api_key(state.path()).unwrap(), key);
        assert_eq!(mode(&key_file), 0o600);
    }
}
