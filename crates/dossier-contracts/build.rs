//! Compiles `proto/dossier/v1/*.proto` in pure Rust (protox: no system
//! `protoc`), generates prost messages and tonic stubs, and writes the
//! descriptor set that the operations service serves for gRPC reflection.

use std::path::PathBuf;

use prost::Message as _;

const PROTOS: &[&str] = &[
    "dossier/v1/common.proto",
    "dossier/v1/jobs.proto",
    "dossier/v1/events.proto",
    "dossier/v1/operations.proto",
    "dossier/v1/enrichment.proto",
    "dossier/v1/webhooks.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    println!("cargo:rerun-if-changed={}", root.display());

    let fds = protox::compile(PROTOS, [&root])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out_dir.join("dossier_descriptor.bin"), fds.encode_to_vec())?;

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
