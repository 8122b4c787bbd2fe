//! The size limits of the accept path, stated once so that every hop agrees:
//! a body the gateway accepts always fits the gRPC call to the operations
//! service, and the job that call stores always fits a NATS message. Each
//! service takes its numbers from here; the README's "Limits and admission
//! control" table and the production Ingress state the same numbers (a
//! `dossier-stack` test checks that they do).
//!
//! ```text
//! client ─HTTP ≤ MAX_BODY_BYTES─▶ gateway ─gRPC ≤ MAX_GRPC_MESSAGE_BYTES─▶ operations
//!   operations ─payload > INLINE_JOB_PAYLOAD_BYTES─▶ object store dossier_payloads (chunked)
//!   operations ─job ≤ NATS_MAX_PAYLOAD (the payload inline, or a reference)─▶ DOSSIER_JOBS
//! ```

/// The largest request body the gateway accepts (`DOSSIER_MAX_BODY_BYTES`'s
/// default and its maximum): 8 MiB. Past it: `413`.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// Room for what wraps a body on the next hop: the other fields of a gRPC
/// `CreateOperationRequest` (tenant, kind, an idempotency key of at most 255
/// characters) and the framing. The gateway re-serialises a validated body
/// compactly, so its payload is never longer than the body it came in by
/// more than a few defaulted fields.
pub const ENVELOPE_HEADROOM_BYTES: usize = 64 * 1024;

/// The largest gRPC message between the gateway and the operations service,
/// in both directions and on both sides (tonic's own default, 4 MiB, is
/// smaller than a valid body).
pub const MAX_GRPC_MESSAGE_BYTES: usize = MAX_BODY_BYTES + ENVELOPE_HEADROOM_BYTES;

/// The largest body the production Ingress passes to the gateway: the body
/// limit plus headroom, so that an oversized body is refused by the gateway
/// with its `413` problem document rather than by the proxy's HTML page.
pub const INGRESS_MAX_BODY_BYTES: usize = MAX_BODY_BYTES + ENVELOPE_HEADROOM_BYTES;

/// NATS `max_payload`, the largest message the server accepts: nats-server's
/// default (1 MiB), which every configuration we ship and the tests use. It
/// is also the jobs stream's `max_msg_size`.
pub const NATS_MAX_PAYLOAD: usize = 1024 * 1024;

/// The largest job payload carried inside the job message; a larger one is
/// stored in the `dossier_payloads` object store first and the job carries a
/// reference (name, size, SHA-256). Well under [`NATS_MAX_PAYLOAD`], so jobs
/// stay small messages whatever the batch.
pub const INLINE_JOB_PAYLOAD_BYTES: usize = 256 * 1024;

// The numbers above must agree; a change that breaks them fails the build.
const _: () = assert!(MAX_GRPC_MESSAGE_BYTES > MAX_BODY_BYTES);
const _: () = assert!(INGRESS_MAX_BODY_BYTES >= MAX_BODY_BYTES);
const _: () = assert!(INLINE_JOB_PAYLOAD_BYTES * 2 <= NATS_MAX_PAYLOAD);
