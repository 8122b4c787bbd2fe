//! The size limits are stated once, in `dossier_contracts::limits`; the
//! README's limits table and the production Ingress say the same numbers,
//! and this test fails when one of them drifts.

use std::path::PathBuf;

use dossier_contracts::limits::{
    INGRESS_MAX_BODY_BYTES, INLINE_JOB_PAYLOAD_BYTES, MAX_BODY_BYTES, MAX_GRPC_MESSAGE_BYTES,
    NATS_MAX_PAYLOAD,
};

fn read(path: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_readme_and_the_ingress_state_the_limits_of_the_code() {
    let readme = read("README.md");
    let table = readme
        .split("## Limits and admission control")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("README has a limits section");
    for (what, bytes) in [
        ("request body", MAX_BODY_BYTES),
        ("gRPC message", MAX_GRPC_MESSAGE_BYTES),
        ("job payload carried inline", INLINE_JOB_PAYLOAD_BYTES),
        ("NATS `max_payload`", NATS_MAX_PAYLOAD),
    ] {
        let row = table
            .lines()
            .find(|line| line.starts_with(&format!("| {what}")))
            .unwrap_or_else(|| panic!("README's limits table has a row for {what}"));
        assert!(
            row.contains(&format!("({bytes} bytes")),
            "README's row for {what} states {bytes} bytes: {row}"
        );
    }

    assert_eq!(INGRESS_MAX_BODY_BYTES % 1024, 0, "nginx sizes are in k");
    let size = format!(
        "nginx.ingress.kubernetes.io/proxy-body-size: \"{}k\"",
        INGRESS_MAX_BODY_BYTES / 1024
    );
    assert!(
        read("deploy/k8s/overlays/production/ingress.yaml").contains(&size),
        "the production Ingress sets {size}"
    );
    assert!(
        table.contains(&format!("`{}k`", INGRESS_MAX_BODY_BYTES / 1024)),
        "README states the Ingress body size"
    );
}
