//! Enrichment worker tests: the matching rules on the committed fixture, and
//! the worker through the whole stack (real nats-server, operations service
//! and gateway in-process): the synchronous endpoint, batch outcomes,
//! resumption after a crash, paging through a large result, cancellation.

#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // Tests fail loudly.

mod batch;
mod cancel;
mod helpers;
mod invalid_records;
mod limits;
mod matching;
mod replicas;
mod resume;
mod sync;
