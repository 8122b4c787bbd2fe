//! Integration tests of the operations service: a real nats-server per test,
//! the real `App` in-process on port 0, and a tonic client.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

mod admin;
mod bench;
mod cancel;
mod create;
mod dead_letter;
mod helpers;
mod idempotency;
mod identity;
mod list;
mod projection;
mod results;
mod retention;
mod tenants;
mod watch;
