//! The gateway's API tests against the real stack: a nats-server per test,
//! the operations service and the gateway booted in-process on free ports.
//! Logs with `TEST_LOG=1`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;

mod accepted;
mod auth;
mod contract;
mod events;
mod faults;
mod idempotency;
mod lifecycle;
mod openapi;
mod retention;
mod trace_context;
mod validation;
mod wait;
