//! Dossier's contracts: the protobuf messages that travel on NATS and over
//! gRPC (generated from `proto/dossier/v1`), plus the domain vocabulary that
//! every service shares — operation kinds and statuses with their wire names,
//! and the JSON request bodies of the public API.
#![forbid(unsafe_code)]

pub mod api;
mod domain;
pub mod time_ext;

pub use domain::{Kind, Status, UnknownName};

/// Generated protobuf and gRPC code for package `dossier.v1`.
#[allow(missing_docs, clippy::all, unreachable_pub)]
pub mod v1 {
    tonic::include_proto!("dossier.v1");

    /// Encoded `FileDescriptorSet` of every Dossier proto, for gRPC reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("dossier_descriptor");
}
