//! Integration tests of the directory crate: the committed fixture, the CSV
//! loader, generated directories, the HTTP provider against real loopback
//! servers, and provider fan-out.

// Tests fail loudly; helpers outside `#[test]` functions too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod csv_files;
mod fixture;
mod generated;
mod helpers;
mod http_provider;
mod linkedin;
mod provider_set;
