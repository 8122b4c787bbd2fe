//! Starting the stack with the workers a test needs, and running the
//! `dossier` binary against it.

use std::path::Path;
use std::time::Duration;

use dossier_stack::{KEY_A, Running, TestApp};
use serde_json::Value;

/// A stack and the workers running on it.
pub struct Stack {
    /// The stack (gateway address, helpers).
    pub app: TestApp,
    _workers: Vec<Running>,
}

/// Which workers to start.
#[derive(Default, Clone, Copy)]
pub struct Workers {
    pub enrichment: bool,
    pub search: bool,
    /// The research worker, with `acme.com`'s site served from this base URL.
    pub research_site: Option<&'static str>,
}

impl Workers {
    /// The enrichment worker only.
    pub const ENRICHMENT: Workers = Workers {
        enrichment: true,
        search: false,
        research_site: None,
    };
    /// The search worker only.
    pub const SEARCH: Workers = Workers {
        enrichment: false,
        search: true,
        research_site: None,
    };
}

/// The stack with `workers`; they serve the embedded demo directory.
pub async fn stack(workers: Workers) -> Stack {
    let app = dossier_stack::spawn_app().await;
    let mut running = Vec::new();
    if workers.enrichment {
        let mut config = enrichment_worker::Config::from_env().unwrap();
        config.service.broker = app.broker_config();
        config.service.worker.progress_interval = Duration::from_millis(10);
        let worker = enrichment_worker::App::build(config).await.unwrap();
        running.push(Running::spawn(|token| worker.run(token)));
    }
    if workers.search {
        let mut config = <search_worker::Config as clap::Parser>::parse_from(["search-worker"]);
        config.service.broker = app.broker_config();
        let worker = search_worker::App::build(config).await.unwrap();
        running.push(Running::spawn(|token| worker.run(token)));
    }
    if let Some(site) = workers.research_site {
        let mut config = <research_worker::Config as clap::Parser>::parse_from(["research-worker"]);
        config.service.broker = app.broker_config();
        config.research.site_overrides = vec![format!("acme.com={site}").parse().unwrap()];
        config.research.allow_private_networks = vec!["127.0.0.0/8".parse().unwrap()];
        config.research.page_timeout = Duration::from_secs(2);
        let worker = research_worker::App::build(config).await.unwrap();
        running.push(Running::spawn(|token| worker.run(token)));
    }
    Stack {
        app,
        _workers: running,
    }
}

/// What one run of the binary printed and returned.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Asserts the exit code, showing the output when it differs.
    pub fn expect(self, code: i32) -> Run {
        assert_eq!(self.code, code, "exit code; {self:#?}");
        self
    }
}

/// Runs `dossier args…` against `api` with `key`, in `dir`, with no
/// configuration file of the user's in the way.
pub async fn dossier_at(api: &str, key: &str, dir: &Path, args: &[&str]) -> Run {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_dossier"))
        .args(args)
        .current_dir(dir)
        .env("DOSSIER_API_URL", api)
        .env("DOSSIER_API_KEY", key)
        .env_remove("DOSSIER_CONFIG")
        .env("XDG_CONFIG_HOME", dir.join("no-config"))
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(120), output)
        .await
        .expect("dossier ends within two minutes")
        .unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs `dossier args…` against the stack as tenant `acme`.
pub async fn dossier(stack: &Stack, dir: &Path, args: &[&str]) -> Run {
    dossier_at(&stack.app.address, KEY_A, dir, args).await
}

/// The ids of tenant `acme`'s operations of `kind`.
pub async fn operations(stack: &Stack, kind: &str) -> Vec<String> {
    stack
        .app
        .all_operation_ids(&format!("kind={kind}"), KEY_A, 100)
        .await
}

/// Distinct emails of people in the directory the workers serve.
pub fn known_emails() -> Vec<String> {
    let mut emails: Vec<String> = Vec::new();
    for person in dossier_directory::embedded_demo().unwrap().people() {
        if let Some(email) = &person.email {
            let email = email.to_lowercase();
            if !emails.contains(&email) {
                emails.push(email);
            }
        }
    }
    emails
}

/// The JSON on stdout.
pub fn json(run: &Run) -> Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {run:#?}"))
}
