//! The spans that cross a process boundary, named and attributed per the
//! OpenTelemetry semantic conventions (RPC, and messaging as of semconv 1.26:
//! `{destination} publish` / `{destination} process`), so every service
//! makes them the same way.
//!
//! Each constructor declares the Dossier attributes a caller may record later
//! (`dossier.operation.id`, `request.id`, `tenant.id`, …) as empty fields:
//! tracing only records fields a span declared when it was made.
//! `otel.name`, `otel.kind` and `otel.status_code` are read by
//! tracing-opentelemetry as the span's name, kind and status.

use tracing::field::Empty;

/// `messaging.system` of every message span.
pub const MESSAGING_SYSTEM: &str = "nats";

/// The span of one gRPC call, e.g. `dossier.v1.Operations/GetOperation`, on
/// the client or the server side. The layers of [`crate::grpc`] make these
/// spans: they set a server span's parent from the call's metadata and
/// record the outcome with [`record_grpc_status`].
pub fn grpc(side: RpcSide, service: &str, method: &str) -> tracing::Span {
    tracing::info_span!(
        "grpc",
        otel.name = %format_args!("{service}/{method}"),
        otel.kind = match side {
            RpcSide::Client => "client",
            RpcSide::Server => "server",
        },
        otel.status_code = Empty,
        rpc.system = "grpc",
        rpc.service = service,
        rpc.method = method,
        rpc.grpc.status_code = Empty,
        dossier.operation.id = Empty,
        request.id = Empty,
        tenant.id = Empty,
    )
}

/// Which side of a gRPC call a span is (the error rule differs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RpcSide {
    /// The caller.
    Client,
    /// The callee.
    Server,
}

/// Records `rpc.grpc.status_code` and, per the RPC conventions, an error
/// status: on a client any code but OK; on a server only the codes that mean
/// the server failed (UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL,
/// UNAVAILABLE, DATA_LOSS), not the caller's mistakes (NOT_FOUND, …).
pub fn record_grpc_status(span: &tracing::Span, side: RpcSide, code: tonic::Code) {
    use tonic::Code;
    span.record("rpc.grpc.status_code", code as i64);
    let error = match side {
        RpcSide::Client => code != Code::Ok,
        RpcSide::Server => matches!(
            code,
            Code::Unknown
                | Code::DeadlineExceeded
                | Code::Unimplemented
                | Code::Internal
                | Code::Unavailable
                | Code::DataLoss
        ),
    };
    if error {
        span.record("otel.status_code", "ERROR");
    }
}

/// The producer span of publishing one message to `subject` with message id
/// `message_id` (the `Nats-Msg-Id`). The message's headers should carry this
/// span's context ([`crate::propagation::inject_nats`]).
pub fn nats_publish(subject: &str, message_id: &str) -> tracing::Span {
    nats(MessagingOperation::Publish, subject, message_id)
}

/// The consumer span of processing one message from `subject` with message
/// id `message_id`. Set its parent from the message's headers
/// ([`crate::propagation::nats_parent`]) before it is entered.
pub fn nats_process(subject: &str, message_id: &str) -> tracing::Span {
    nats(MessagingOperation::Process, subject, message_id)
}

#[derive(Clone, Copy)]
enum MessagingOperation {
    Publish,
    Process,
}

fn nats(operation: MessagingOperation, subject: &str, message_id: &str) -> tracing::Span {
    let (name, kind) = match operation {
        MessagingOperation::Publish => ("publish", "producer"),
        MessagingOperation::Process => ("process", "consumer"),
    };
    tracing::info_span!(
        "nats",
        otel.name = %format_args!("{subject} {name}"),
        otel.kind = kind,
        otel.status_code = Empty,
        messaging.system = MESSAGING_SYSTEM,
        messaging.operation.type = name,
        messaging.operation.name = name,
        messaging.destination.name = subject,
        messaging.message.id = message_id,
        messaging.consumer.group.name = Empty,
        dossier.operation.id = Empty,
        dossier.operation.kind = Empty,
        dossier.event.type = Empty,
        dossier.job.attempt = Empty,
        dossier.worker.id = Empty,
        tenant.id = Empty,
        request.id = Empty,
    )
}

/// Records `value` as the span's `request.id` unless it is empty.
pub fn record_request_id(span: &tracing::Span, value: &str) {
    if !value.is_empty() {
        span.record("request.id", value);
    }
}
