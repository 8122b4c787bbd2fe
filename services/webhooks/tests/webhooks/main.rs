//! The webhooks service through the whole stack: the gateway's
//! `/api/webhooks` routes, the webhooks service, a real nats-server, and
//! receivers on loopback that check every signature with an independent
//! Standard Webhooks implementation (the `standardwebhooks` crate).
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

mod delivery;
mod helpers;
mod registration;
