//! Research worker tests: the web step against a small site served on
//! loopback, the synthesis provider against wiremock, and whole researches
//! through the gateway (success, partial success, failure, cancel, and the
//! citation check).

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

mod helpers;
mod public_only;
mod synthesis;
mod through_gateway;
mod web;
