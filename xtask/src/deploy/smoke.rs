//! Check 8: the smoke run — nats-server with `auth.conf`, the real service
//! binaries each connected as its own NATS user, a search end to end, and
//! the denials a worker must get.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, ensure};
use serde_json::{Value, json};

use super::Report;
use super::agreement::dev_key;
use super::catalog::{Service, ServiceCatalog};
use super::nats_auth::{nats_password_vars, nats_users};
use crate::supervise::{Output, Supervisor};
use crate::up::{admin_listening, gateway_listening, operations_listening};
use crate::{cargo, nats, run_checked, target_dir};

/// How long nats-server and each service may take to log their address.
const STARTUP: Duration = Duration::from_secs(60);

pub(super) fn smoke(
    root: &Path,
    work: &Path,
    nats_bin: &Path,
    services: &ServiceCatalog,
    report: &mut Report,
) -> anyhow::Result<()> {
    let mut problems = Vec::new();
    if let Err(error) = smoke_run(root, work, nats_bin, services, &mut problems) {
        problems.push(format!("{error:#}"));
    }
    report.check(
        "smoke: the services run with the NATS permissions of deploy/k8s (auth.conf); a worker cannot publish jobs, change the topology or purge a stream",
        problems,
    );
    Ok(())
}

/// `dossier-probe http <addr> <path>` succeeds (a 2xx answer).
fn probe_http(probe: &Path, addr: SocketAddr, path: &str) -> bool {
    Command::new(probe)
        .args(["http", &addr.to_string(), path])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn smoke_run(
    root: &Path,
    work: &Path,
    nats_bin: &Path,
    catalog: &ServiceCatalog,
    problems: &mut Vec<String>,
) -> anyhow::Result<()> {
    // The services' binaries are built (ServiceCatalog::load); the probe.
    let runnable: Vec<&Service> = catalog.services.values().collect();
    run_checked(
        cargo()
            .args([
                "build",
                "--quiet",
                "--manifest-path",
                "deploy/probe/Cargo.toml",
                "--target-dir",
            ])
            .arg(target_dir()),
    )?;
    let bin = target_dir().join("debug");
    let probe = bin.join("dossier-probe");

    let dir = work.join("smoke");
    std::fs::create_dir_all(&dir)?;
    let auth = std::fs::read_to_string(root.join("deploy/k8s/base/nats/auth.conf"))?;
    std::fs::write(dir.join("auth.conf"), &auth)?;
    // Port -1: nats-server picks a free one and logs it. The configuration
    // is the one `cargo xtask up` runs (fsync before every ack), with the
    // users of Kubernetes.
    let config = nats::server_config("127.0.0.1:-1", None, &dir.join("store"), Some("auth.conf"));
    // Each user's password, generated per run as the deploy docs make the
    // Secret `nats-users` (deploy/README.md): nats-server reads them from
    // its environment, each service gets its own.
    let users = nats_users(&auth)?;
    let passwords: BTreeMap<String, String> = users
        .iter()
        .map(|u| (u.password_var.clone(), random_password()))
        .collect();
    let procs = Supervisor::new()?;
    let mut cmd = nats::server_command(nats_bin, &dir.join("nats.conf"), &config)?;
    for var in nats_password_vars(&auth) {
        let password = passwords
            .get(&var)
            .with_context(|| format!("auth.conf reads ${var} outside a user entry"))?;
        cmd.env(&var, password);
    }
    let nats_log = dir.join("nats-server.log");
    let listening = nats::client_addr_line();
    procs.spawn(
        "nats-server",
        cmd,
        Output::File(nats_log.clone()),
        std::slice::from_ref(&listening),
    )?;
    let nats_addr = procs.logged_addr("nats-server", &listening, Duration::from_secs(20))?;
    procs.wait_until("nats-server", Duration::from_secs(20), || {
        TcpStream::connect(nats_addr).is_ok()
    })?;

    // Every service connects as its own user, with the credentials the
    // deploy files give it (DOSSIER_NATS_USER, DOSSIER_NATS_PASSWORD).
    let upstream = nats_addr.to_string();
    let nats_url = format!("nats://{upstream}");
    // A service has a NATS user when it reads DOSSIER_NATS_URL.
    let nats_clients: Vec<&Service> = runnable
        .iter()
        .copied()
        .filter(|s| s.reads.contains_key("DOSSIER_NATS_URL"))
        .collect();
    let mut logins: BTreeMap<String, (String, String)> = BTreeMap::new();
    for s in &nats_clients {
        let user = users
            .iter()
            .find(|u| u.name == s.name)
            .with_context(|| format!("auth.conf has no user for {}", s.name))?;
        let password = passwords[&user.password_var].clone();
        logins.insert(s.name.clone(), (user.name.clone(), password));
    }
    // The environment that connects `service` to NATS as its user.
    let connect = |cmd: &mut Command, service: &str| {
        if let Some((user, password)) = logins.get(service) {
            cmd.env("DOSSIER_NATS_URL", &nats_url)
                .env("DOSSIER_NATS_USER", user)
                .env("DOSSIER_NATS_PASSWORD", password);
        }
    };
    let result = (|| -> anyhow::Result<()> {
        // Every port is 0: each service binds a free one and logs it.
        ensure!(
            logins.contains_key("operations"),
            "no operations service reading DOSSIER_NATS_URL"
        );
        // The service-token key pair, made per run as the deploy docs make
        // its Secret.
        let service_keys = dossier_identity::write_key_pair(&dir.join("service-token"))?;
        let mut operations = Command::new(bin.join("operations"));
        connect(&mut operations, "operations");
        operations
            .env("DOSSIER_SERVICE_TOKEN_PUBLIC_KEYS", &service_keys.public)
            .env("DOSSIER_OPERATIONS_GRPC_ADDR", "127.0.0.1:0")
            .env("DOSSIER_ADMIN_ADDR", "127.0.0.1:0")
            .env("DOSSIER_LOG_FORMAT", "json");
        let grpc_listening = operations_listening();
        procs.spawn(
            "operations",
            operations,
            Output::File(dir.join("operations.log")),
            &[grpc_listening.clone(), admin_listening()],
        )?;
        let grpc = procs.logged_addr("operations", &grpc_listening, STARTUP)?;
        let ops_admin = procs.logged_addr("operations", &admin_listening(), STARTUP)?;
        // The image's HEALTHCHECK, against the real service.
        procs.wait_until(
            "operations SERVING (dossier-probe grpc)",
            Duration::from_secs(60),
            || {
                Command::new(&probe)
                    .args(["grpc", &grpc.to_string()])
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
            },
        )?;
        // Its admin port agrees (the compose and Kubernetes probes use it).
        ensure!(
            probe_http(&probe, ops_admin, "/readyz"),
            "operations /readyz on the admin port is not 2xx while gRPC health is SERVING"
        );
        let mut gateway = Command::new(bin.join("gateway"));
        connect(&mut gateway, "gateway");
        gateway
            .env("DOSSIER_HTTP_ADDR", "127.0.0.1:0")
            .env("DOSSIER_OPERATIONS_URL", format!("http://{grpc}"))
            .env("DOSSIER_SERVICE_TOKEN_KEY", &service_keys.private)
            .env(
                "DOSSIER_API_KEYS_FILE",
                root.join("deploy/compose/dev-api-keys.toml"),
            )
            .env("DOSSIER_LOG_FORMAT", "json");
        let http_listening = gateway_listening();
        procs.spawn(
            "gateway",
            gateway,
            Output::File(dir.join("gateway.log")),
            std::slice::from_ref(&http_listening),
        )?;
        let http = procs.logged_addr("gateway", &http_listening, STARTUP)?;
        procs.wait_until(
            "gateway ready (dossier-probe http /readyz)",
            Duration::from_secs(30),
            || probe_http(&probe, http, "/readyz"),
        )?;
        for s in &runnable {
            if s.name == "gateway" || s.name == "operations" {
                continue;
            }
            let log = dir.join(format!("{}.log", s.name));
            let mut worker = Command::new(bin.join(&s.name));
            connect(&mut worker, &s.name);
            if s.name == "webhooks" {
                // A gRPC service too: its own free port, the gateway's keys.
                worker
                    .env("DOSSIER_WEBHOOKS_GRPC_ADDR", "127.0.0.1:0")
                    .env("DOSSIER_SERVICE_TOKEN_PUBLIC_KEYS", &service_keys.public);
            }
            worker
                .env("DOSSIER_ADMIN_ADDR", "127.0.0.1:0")
                .env("DOSSIER_LOG_FORMAT", "json")
                // Every result goes to the object store.
                .env("DOSSIER_INLINE_RESULT_LIMIT", "1");
            procs.spawn(&s.name, worker, Output::File(log), &[admin_listening()])?;
            let admin = procs.logged_addr(&s.name, &admin_listening(), STARTUP)?;
            // The image's HEALTHCHECK, against the real worker.
            procs.wait_until(
                &format!("{} ready (dossier-probe http /readyz)", s.name),
                Duration::from_secs(60),
                || probe_http(&probe, admin, "/readyz"),
            )?;
        }

        // The API, with the published dev key.
        let api = Api {
            base: format!("http://{http}"),
            key: dev_key(root)?,
        };
        let (status, me) = api.call("GET", "/api/me", None, None)?;
        ensure!(status == 200, "GET /api/me with the dev key: {status} {me}");
        let body = json!({"targetAccount": {"domain": "acme.com"}, "limit": 5});
        let (id, done) = api.run("/api/search/people", &body, Some("deploy-check-1"), &procs)?;
        ensure!(done["status"] == "succeeded", "the search ended {}", done);
        ensure!(
            done["result"].is_object(),
            "the search's result (from the object store) is missing: {done}"
        );
        let (status, again) = api.call(
            "POST",
            "/api/search/people",
            Some(&body),
            Some("deploy-check-1"),
        )?;
        ensure!(
            again["id"] == id.as_str(),
            "an idempotent retry got {status} {again}"
        );

        // Synchronous enrichment: the gateway's request, a worker's reply.
        if logins.contains_key("gateway") && logins.contains_key("enrichment-worker") {
            let body = json!({"email": "jane@acme.com"});
            let (status, answer) = api.call("POST", "/api/enrichment/person", Some(&body), None)?;
            ensure!(
                status < 500,
                "POST /api/enrichment/person (NATS request-reply): {status} {answer}"
            );
        }

        // A batch job of the enrichment worker, when it runs.
        if logins.contains_key("enrichment-worker") {
            let body = json!({"records": [{"email": "jane@acme.com"}]});
            let (_, done) = api.run("/api/enrichment/batch", &body, None, &procs)?;
            ensure!(
                done["status"] == "succeeded" || done["status"] == "partial_success",
                "the enrichment batch ended {done}"
            );
        }

        // Research: a subject the directory does not know fails at the
        // first step, so the research worker consumes its job and publishes
        // its kind's events without fetching any web site (the smoke run has
        // no network).
        let body = json!({"subject": {"company": {"domain": "unknown-company.example"}}});
        let (status, accepted) = api.call("POST", "/api/research", Some(&body), None)?;
        ensure!(status == 202, "POST /api/research: {status} {accepted}");
        let id = accepted["id"]
            .as_str()
            .context("no id in the 202")?
            .to_owned();
        let done = api.wait_terminal(&id, &procs)?;
        ensure!(
            done["status"] == "failed" && done["error"]["code"] == "subject_unresolved",
            "the research of an unknown company ended {done}"
        );
        procs.check_alive()?;
        Ok(())
    })();
    // Give late permission errors a moment to reach the log.
    std::thread::sleep(Duration::from_millis(300));
    let log = std::fs::read_to_string(&nats_log).unwrap_or_default();
    // "Publish Violation", "Subscription Violation".
    let violations: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(" Violation - "))
        .collect();
    for v in violations.iter().take(20) {
        problems.push(format!("in the normal flow: {v}"));
    }
    if let Err(error) = result {
        problems.push(format!("{error:#} (logs in {})", dir.display()));
    }

    // What must be denied: to everyone but the operations service (the
    // topology's owner), jobs, changing, deleting or purging streams,
    // creating or deleting durable consumers, the read model, and listening
    // in on the subjects.
    for s in &nats_clients {
        if s.name == "operations" {
            continue;
        }
        let (user, password) = &logins[&s.name];
        let errors = nats_session(
            &upstream,
            Some((user, password)),
            &[
                "PUB dossier.jobs.search.people 0\r\n\r\n",
                "PUB $JS.API.STREAM.DELETE.DOSSIER_JOBS 0\r\n\r\n",
                "PUB $JS.API.STREAM.PURGE.DOSSIER_JOBS 0\r\n\r\n",
                "PUB $JS.API.CONSUMER.DELETE.DOSSIER_JOBS.jobs-search-people 0\r\n\r\n",
                "PUB $JS.API.STREAM.UPDATE.DOSSIER_JOBS 0\r\n\r\n",
                "PUB $JS.API.CONSUMER.CREATE.DOSSIER_JOBS.jobs-research-deep 0\r\n\r\n",
                "PUB $JS.API.CONSUMER.CREATE.DOSSIER_EVENTS.projector 0\r\n\r\n",
                "PUB $JS.API.STREAM.PURGE.OBJ_dossier_results 0\r\n\r\n",
                "PUB $KV.dossier_operations.x 0\r\n\r\n",
                "SUB dossier.> 1\r\n",
            ],
        )?;
        for subject in [
            "dossier.jobs.search.people",
            "$JS.API.STREAM.DELETE.DOSSIER_JOBS",
            "$JS.API.STREAM.PURGE.DOSSIER_JOBS",
            "$JS.API.CONSUMER.DELETE.DOSSIER_JOBS.jobs-search-people",
            "$JS.API.STREAM.UPDATE.DOSSIER_JOBS",
            "$JS.API.CONSUMER.CREATE.DOSSIER_JOBS.jobs-research-deep",
            "$JS.API.CONSUMER.CREATE.DOSSIER_EVENTS.projector",
            "$JS.API.STREAM.PURGE.OBJ_dossier_results",
            "$KV.dossier_operations.x",
            "dossier.>",
        ] {
            if !errors
                .iter()
                .any(|e| e.contains("Permissions Violation") && e.contains(subject))
            {
                problems.push(format!("{} may use {subject} (got {errors:?})", s.name));
            }
        }
    }
    let mut strangers = vec![("an anonymous client", None)];
    if !logins.contains_key("gateway") {
        strangers.push(("the gateway", Some(("gateway", "any"))));
    }
    for (who, login) in strangers {
        let errors = nats_session(&upstream, login, &[])?;
        if !errors.iter().any(|e| e.contains("Authorization Violation")) {
            problems.push(format!("{who} can connect to NATS (got {errors:?})"));
        }
    }
    drop(procs);
    Ok(())
}

struct Api {
    base: String,
    pub(super) key: String,
}

impl Api {
    pub(super) fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        idempotency: Option<&str>,
    ) -> anyhow::Result<(u16, Value)> {
        let url = format!("{}{path}", self.base);
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into();
        let auth = format!("Bearer {}", self.key);
        let response = match method {
            "GET" => agent.get(&url).header("Authorization", &auth).call(),
            _ => {
                let mut req = agent.post(&url).header("Authorization", &auth);
                if let Some(key) = idempotency {
                    req = req.header("Idempotency-Key", key);
                }
                match body {
                    Some(b) => req
                        .header("Content-Type", "application/json")
                        .send(b.to_string()),
                    None => req.send_empty(),
                }
            }
        }
        .with_context(|| format!("{method} {path}"))?;
        let status = response.status().as_u16();
        let text = response.into_body().read_to_string().unwrap_or_default();
        Ok((
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        ))
    }

    /// POSTs `body` to `path` (with an idempotency `key`), requires a 202,
    /// and waits for the operation to end: its id and last state.
    fn run(
        &self,
        path: &str,
        body: &Value,
        key: Option<&str>,
        procs: &Supervisor,
    ) -> anyhow::Result<(String, Value)> {
        let (status, accepted) = self.call("POST", path, Some(body), key)?;
        ensure!(status == 202, "POST {path}: {status} {accepted}");
        let id = accepted["id"]
            .as_str()
            .context("no id in the 202")?
            .to_owned();
        let done = self.wait_terminal(&id, procs)?;
        Ok((id, done))
    }

    fn wait_terminal(&self, id: &str, procs: &Supervisor) -> anyhow::Result<Value> {
        let mut last = Value::Null;
        let path = format!("/api/operations/{id}");
        procs
            .wait_until(
                &format!("operation {id} to end"),
                Duration::from_secs(30),
                || {
                    if let Ok((200, op)) = self.call("GET", &path, None, None) {
                        let done = ["succeeded", "failed", "partial_success", "cancelled"]
                            .iter()
                            .any(|s| op["status"] == *s);
                        last = op;
                        return done;
                    }
                    false
                },
            )
            .with_context(|| format!("last seen: {last}"))?;
        Ok(last)
    }
}

/// A fresh password for one smoke run: 48 random hex digits, as
/// `openssl rand -hex 24` makes them for the Secret (deploy/README.md);
/// from a fresh API key's hash, which is random (no extra dependency).
fn random_password() -> String {
    dossier_keys::generate_key().1[..48].to_owned()
}

/// Speaks the NATS protocol by hand: CONNECT (as `login`), the given
/// operations, PING; returns the `-ERR` lines the server sent.
fn nats_session(
    addr: &str,
    login: Option<(&str, &str)>,
    ops: &[&str],
) -> anyhow::Result<Vec<String>> {
    let stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line)?; // INFO
    let mut connect = json!({"verbose": false, "pedantic": false, "lang": "xtask", "version": "0", "protocol": 1});
    if let Some((user, pass)) = login {
        connect["user"] = json!(user);
        connect["pass"] = json!(pass);
    }
    let mut out = format!("CONNECT {connect}\r\n");
    for op in ops {
        out.push_str(op);
    }
    out.push_str("PING\r\n");
    writer.write_all(out.as_bytes())?;
    let mut errors = Vec::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) if line.starts_with("PONG") => break,
            Ok(_) if line.starts_with("-ERR") => {
                errors.push(line.trim().to_owned());
                if line.contains("Authorization Violation") {
                    break;
                }
            }
            Ok(_) => {}
        }
    }
    Ok(errors)
}
