//! The platform end to end: the real gateway, operations service and worker
//! runtime over a real nats-server, with job handlers written here. Each test
//! names the SYSTEM.md invariant it guards.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

mod cluster;
mod config_docs;
mod handler;
mod invariants;
mod limits_docs;
mod live;
mod logs;
mod observability;
mod sampling;
mod traces;
