//! The `dossier` binary against the real stack (nats-server, operations
//! service, gateway and the workers in-process), run as a subprocess so
//! its exit codes and output are what a user gets.

#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // Tests fail loudly.

mod commands;
mod enrich;
mod helpers;
