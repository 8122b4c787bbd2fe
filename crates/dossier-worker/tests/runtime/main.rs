//! The worker runtime against a real nats-server: jobs are published as the
//! operations service publishes them, and outcomes are read back from the
//! `DOSSIER_EVENTS` stream.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cancellation;
mod faults;
mod helpers;
mod leases;
mod lifecycle;
mod payloads;
mod retries;
mod shutdown;
mod topology;
