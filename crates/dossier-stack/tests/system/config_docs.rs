//! The README's table of configuration variables is generated from the
//! services' own clap definitions, and this test fails when it drifts: a
//! variable added, renamed, re-defaulted or re-described without the README.
//! `DOSSIER_UPDATE_README=1 cargo xtask test config_docs` rewrites it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::CommandFactory as _;

const START: &str = "<!-- config-table:start -->";
const END: &str = "<!-- config-table:end -->";

/// Every service binary and its command line.
fn services() -> Vec<(&'static str, clap::Command)> {
    vec![
        ("gateway", gateway::Config::command()),
        ("operations", operations::Config::command()),
        ("search-worker", search_worker::Config::command()),
        ("enrichment-worker", enrichment_worker::Config::command()),
        ("research-worker", research_worker::Config::command()),
        ("webhooks", webhooks::Config::command()),
    ]
}

#[test]
fn every_service_command_line_is_well_formed() {
    // clap checks ids, `requires` targets and conflicts only here (and in
    // debug builds at parse time): flattened groups must not clash.
    for (_, command) in services() {
        command.debug_assert();
    }
}

/// What one variable is, per service.
#[derive(Default)]
struct Row {
    services: Vec<&'static str>,
    defaults: Vec<(&'static str, String)>,
    meanings: Vec<(&'static str, String)>,
}

/// `value`, or `a, b: value; c: other` when services disagree.
fn per_service(values: &[(&'static str, String)], all: &[&'static str]) -> String {
    let mut groups: Vec<(String, Vec<&str>)> = Vec::new();
    for (service, value) in values {
        match groups.iter_mut().find(|(v, _)| v == value) {
            Some((_, services)) => services.push(service),
            None => groups.push((value.clone(), vec![service])),
        }
    }
    if groups.len() == 1 && groups[0].1.len() == all.len() {
        return groups.remove(0).0;
    }
    groups
        .into_iter()
        .map(|(value, services)| format!("{}: {value}", services.join(", ")))
        .collect::<Vec<_>>()
        .join("; ")
}

fn cell(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

/// The Markdown table of every variable of every service.
fn table() -> String {
    let mut rows: BTreeMap<String, Row> = BTreeMap::new();
    for (service, command) in services() {
        for arg in command.get_arguments() {
            let Some(env) = arg.get_env() else { continue };
            let row = rows.entry(env.to_string_lossy().into_owned()).or_default();
            row.services.push(service);
            let default = arg
                .get_default_values()
                .iter()
                .map(|v| format!("`{}`", v.to_string_lossy()))
                .collect::<Vec<_>>()
                .join(", ");
            row.defaults.push((
                service,
                if default.is_empty() {
                    "—".to_owned()
                } else {
                    default
                },
            ));
            let meaning = arg.get_help().map(ToString::to_string).unwrap_or_default();
            row.meanings.push((service, cell(&meaning)));
        }
    }
    let mut out = String::from("| variable | services | default | meaning |\n|---|---|---|---|\n");
    for (name, row) in rows {
        out.push_str(&format!(
            "| `{name}` | {} | {} | {} |\n",
            row.services.join(", "),
            cell(&per_service(&row.defaults, &row.services)),
            per_service(&row.meanings, &row.services),
        ));
    }
    out
}

#[test]
fn the_readme_documents_every_configuration_variable() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let start = readme
        .find(START)
        .expect("README has the config table start marker")
        + START.len();
    let end = readme
        .find(END)
        .expect("README has the config table end marker");
    let documented = readme[start..end].trim();
    let generated = table();
    if std::env::var_os("DOSSIER_UPDATE_README").is_some() {
        let updated = format!("{}\n{}{}", &readme[..start], generated, &readme[end..]);
        std::fs::write(&path, updated).unwrap();
        return;
    }
    assert_eq!(
        documented,
        generated.trim(),
        "README.md's configuration table is out of date: run \
         `DOSSIER_UPDATE_README=1 cargo xtask test config_docs` and commit the result"
    );
    // Every variable a service reads appears in it (the table is built from
    // them, so this guards the builder itself).
    for (service, command) in services() {
        for arg in command.get_arguments() {
            if let Some(env) = arg.get_env() {
                let name = format!("`{}`", env.to_string_lossy());
                assert!(documented.contains(&name), "{service}: {name}");
            }
        }
    }
}
