//! Search worker tests: the outcome table on the committed fixture, provider
//! failures through a real HTTP provider on loopback, and the full path
//! through the gateway.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

mod admin;
mod outcomes;
mod providers;
mod through_gateway;
