//! Reasons the operations API gives for some of its errors, as
//! `google.rpc.ErrorInfo` details of the gRPC status (domain
//! [`DOMAIN`]), where the status code alone does not say enough for the
//! gateway to pick the HTTP answer.

/// The `ErrorInfo` domain of every reason here.
pub const DOMAIN: &str = "dossier.dev";
/// NOT_FOUND because the operation expired (HTTP 410 Gone).
pub const OPERATION_EXPIRED: &str = "OPERATION_EXPIRED";
/// RESOURCE_EXHAUSTED because a store of the broker is full (HTTP 503 with
/// a storage-full problem).
pub const STORAGE_FULL: &str = "STORAGE_FULL";
/// FAILED_PRECONDITION because the tenant has its most webhook endpoints
/// (HTTP 409).
pub const WEBHOOK_LIMIT_REACHED: &str = "WEBHOOK_LIMIT_REACHED";
