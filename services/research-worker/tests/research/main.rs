//! Research worker tests: the web step against a small site served on
//! loopback, reaching only public addresses, the synthesis provider against wiremock, whole researches
//! through the gateway (success, partial success, failure, cancel, and the
//! citation check), the questions sellers ask on generated directories, and
//! the evaluation of the answers (`eval.rs`, accuracy per intent).

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

mod eval;
mod helpers;
mod public_only;
mod questions;
mod synthesis;
mod through_gateway;
mod web;
