//! The workspace's layering, checked over `cargo metadata` so that it cannot
//! drift silently (ARCHITECTURE.md, "Crate map"):
//!
//! - a production crate (a library under `crates/` or a service under
//!   `services/`) never depends on a test kit, a development tool or a
//!   service — services talk over NATS and gRPC, not through each other's
//!   code;
//! - `xtask` depends on no service, not even for its tests;
//! - the `dossier` client (`dossier-cli`) links no crate of ours but
//!   dossier-contracts: it speaks only HTTP;
//! - every member has a role: `services/*` are services, `xtask` is a tool,
//!   and a crate under `crates/` is a library unless its manifest says
//!   `[package.metadata.dossier] role = "test-kit"` or `"dev-tool"`.
#![allow(clippy::expect_used, clippy::unwrap_used)] // A test fails loudly.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Library,
    Service,
    TestKit,
    DevTool,
}

struct Member {
    role: Role,
    /// (dependency name, kind: "normal", "dev" or "build") of workspace members.
    deps: Vec<(String, String)>,
}

fn members() -> BTreeMap<String, Member> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(root)
        .output()
        .expect("run cargo metadata");
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value = serde_json::from_slice(&output.stdout).expect("metadata JSON");
    let packages = metadata["packages"].as_array().expect("packages");
    let names: Vec<&str> = packages
        .iter()
        .map(|p| p["name"].as_str().expect("name"))
        .collect();
    packages
        .iter()
        .map(|p| {
            let name = p["name"].as_str().expect("name").to_owned();
            let manifest = Path::new(p["manifest_path"].as_str().expect("manifest path"));
            let relative = manifest.strip_prefix(root).expect("member inside the root");
            let declared = p["metadata"]["dossier"]["role"].as_str();
            let role = match (relative.components().next(), declared) {
                (_, Some("test-kit")) => Role::TestKit,
                (_, Some("dev-tool")) => Role::DevTool,
                (_, Some(other)) => panic!("{name}: unknown role `{other}`"),
                (Some(c), None) if c.as_os_str() == "services" => Role::Service,
                (Some(c), None) if c.as_os_str() == "crates" => Role::Library,
                _ if name == "xtask" => Role::DevTool,
                _ => panic!("{name} ({}) has no role", relative.display()),
            };
            let deps = p["dependencies"]
                .as_array()
                .expect("dependencies")
                .iter()
                .filter_map(|d| {
                    let dep = d["name"].as_str()?;
                    names.contains(&dep).then(|| {
                        let kind = d["kind"].as_str().unwrap_or("normal").to_owned();
                        (dep.to_owned(), kind)
                    })
                })
                .collect();
            (name, Member { role, deps })
        })
        .collect()
}

#[test]
fn production_crates_depend_on_no_test_kit_tool_or_service() {
    let members = members();
    let mut violations = Vec::new();
    for (name, member) in &members {
        if !matches!(member.role, Role::Library | Role::Service) {
            continue;
        }
        for (dep, kind) in &member.deps {
            if kind == "dev" {
                continue;
            }
            let role = members[dep].role;
            if matches!(role, Role::TestKit | Role::DevTool | Role::Service) {
                violations.push(format!("{name} → {dep} ({role:?}, {kind})"));
            }
        }
    }
    assert!(violations.is_empty(), "layering broken: {violations:#?}");
}

#[test]
fn xtask_depends_on_no_service() {
    let members = members();
    let services: Vec<&String> = members
        .get("xtask")
        .expect("xtask is a member")
        .deps
        .iter()
        .map(|(dep, _)| dep)
        .filter(|dep| members[*dep].role == Role::Service)
        .collect();
    assert!(
        services.is_empty(),
        "xtask depends on services: {services:?}"
    );
}

#[test]
fn the_roles_are_what_the_architecture_says() {
    let members = members();
    let role = |name: &str| members.get(name).map(|m| m.role);
    assert_eq!(role("gateway"), Some(Role::Service));
    assert_eq!(role("operations"), Some(Role::Service));
    assert_eq!(role("dossier-testkit"), Some(Role::TestKit));
    assert_eq!(role("dossier-stack"), Some(Role::TestKit));
    assert_eq!(role("dossier-contracts"), Some(Role::Library));
    assert_eq!(role("xtask"), Some(Role::DevTool));
    assert_eq!(role("dossier-directory-gen"), Some(Role::DevTool));
    assert_eq!(role("dossier-directory"), Some(Role::Library));
}

#[test]
fn the_cli_speaks_only_http() {
    // The `dossier` client must work against any deployment of the
    // documented API, so it links no crate of the services (at most the
    // API's vocabulary in dossier-contracts); its tests may use the stack.
    let members = members();
    let linked: Vec<&String> = members
        .get("dossier-cli")
        .expect("dossier-cli is a member")
        .deps
        .iter()
        .filter(|(dep, kind)| kind != "dev" && dep != "dossier-contracts")
        .map(|(dep, _)| dep)
        .collect();
    assert!(linked.is_empty(), "dossier-cli links {linked:?}");
}
