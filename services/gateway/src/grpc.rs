//! The gateway's gRPC side: a lazily connected channel to the operations
//! service and the mapping of its status codes to HTTP problems.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use dossier_contracts::limits::MAX_GRPC_MESSAGE_BYTES;
use dossier_contracts::reasons;
use dossier_contracts::v1::OPERATION_ID_METADATA;
use dossier_contracts::v1::operations_client::OperationsClient;
use dossier_contracts::v1::webhooks_client::WebhooksClient;
use dossier_telemetry::grpc::{ClientTrace, ClientTraceLayer};
use tonic::Code;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_types::StatusExt as _;
use tower::Layer as _;

use crate::error::{ApiError, Issue};

/// The name the gateway signs its service tokens as (`iss`).
pub const SERVICE_NAME: &str = "gateway";

/// `DOSSIER_OPERATIONS_TLS_CA`: the CA the operations service's certificate
/// must chain to.
pub const ENV_OPERATIONS_TLS_CA: &str = "DOSSIER_OPERATIONS_TLS_CA";
/// `DOSSIER_OPERATIONS_TLS_CLIENT_CERT`: the gateway's client certificate.
pub const ENV_OPERATIONS_TLS_CLIENT_CERT: &str = "DOSSIER_OPERATIONS_TLS_CLIENT_CERT";
/// `DOSSIER_OPERATIONS_TLS_CLIENT_KEY`: its private key.
pub const ENV_OPERATIONS_TLS_CLIENT_KEY: &str = "DOSSIER_OPERATIONS_TLS_CLIENT_KEY";

/// TLS to the operations service: an `https://` URL needs the CA its
/// certificate chains to; a client certificate is presented when the
/// service asks for one (mutual TLS).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ClientTls {
    /// The CA (PEM) the operations service's certificate must chain to.
    #[arg(long, env = ENV_OPERATIONS_TLS_CA)]
    pub operations_tls_ca: Option<PathBuf>,
    /// The gateway's client certificate (PEM), for mutual TLS.
    #[arg(long, env = ENV_OPERATIONS_TLS_CLIENT_CERT,
          requires = "operations_tls_client_key")]
    pub operations_tls_client_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long, env = ENV_OPERATIONS_TLS_CLIENT_KEY,
          requires = "operations_tls_client_cert")]
    pub operations_tls_client_key: Option<PathBuf>,
}

impl ClientTls {
    /// The TLS settings for `url`: none for `http://`, which must then have
    /// no TLS files set (they would be silently unused); for `https://` the
    /// CA is required (the gateway trusts no public roots for an internal
    /// service).
    fn for_url(&self, url: &str) -> anyhow::Result<Option<ClientTlsConfig>> {
        let read = |path: &PathBuf| {
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
        };
        if !url.starts_with("https://") {
            anyhow::ensure!(
                self.operations_tls_ca.is_none() && self.operations_tls_client_cert.is_none(),
                "the operations service URL `{url}` is not https://, but TLS files are set"
            );
            return Ok(None);
        }
        let ca = self
            .operations_tls_ca
            .as_ref()
            .with_context(|| format!("an https:// operations URL needs {ENV_OPERATIONS_TLS_CA}"))?;
        let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read(ca)?));
        if let (Some(cert), Some(key)) = (
            &self.operations_tls_client_cert,
            &self.operations_tls_client_key,
        ) {
            tls = tls.identity(Identity::from_pem(read(cert)?, read(key)?));
        }
        Ok(Some(tls))
    }
}

/// The gRPC service name the operations service reports health for.
pub const OPERATIONS_SERVICE_NAME: &str = "dossier.v1.Operations";

/// A channel that connects on first use and reconnects by itself, so the
/// gateway starts while the operations service is down and recovers when it
/// comes back. Each call is bounded by `request_timeout`.
pub fn channel(
    url: &str,
    tls: &ClientTls,
    connect_timeout: Duration,
    request_timeout: Duration,
) -> anyhow::Result<Channel> {
    let mut endpoint = Endpoint::from_shared(url.to_owned())
        .with_context(|| format!("`{url}` is not a valid operations service URL"))?
        .connect_timeout(connect_timeout)
        .timeout(request_timeout)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_while_idle(true);
    if let Some(tls) = tls.for_url(url)? {
        endpoint = endpoint
            .tls_config(tls)
            .context("invalid TLS settings for the operations service")?;
    }
    Ok(endpoint.connect_lazy())
}

/// The channel of the operations client: every call is traced
/// (`dossier_telemetry::grpc::ClientTraceLayer`).
pub type OperationsChannel = ClientTrace<Channel>;

/// The operations client on `channel`. Each call gets its client span
/// (`dossier.v1.Operations/<method>`, a child of the current span) and
/// carries its trace context and the request's id in its metadata (the trace
/// id and the request id differ when the caller sent a `traceparent`: the
/// operations service logs its calls with both).
///
/// Messages may be as large as
/// [`MAX_GRPC_MESSAGE_BYTES`](dossier_contracts::limits::MAX_GRPC_MESSAGE_BYTES)
/// each way (the largest body plus its envelope; the operations server
/// allows the same), not tonic's default 4 MiB.
pub fn operations_client(channel: Channel) -> OperationsClient<OperationsChannel> {
    let layer =
        ClientTraceLayer::new(|| crate::context::current_request_id().map(|id| id.to_string()));
    OperationsClient::new(layer.layer(channel))
        .max_decoding_message_size(MAX_GRPC_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_GRPC_MESSAGE_BYTES)
}

/// Whether the operations service answers its gRPC health check `SERVING`
/// within `timeout`. It is asked for its service's status, and for the
/// server's overall status (`""`) when it does not report one per service.
pub async fn operations_serving(channel: Channel, timeout: Duration) -> bool {
    let mut health = HealthClient::new(channel);
    let check = async move {
        for service in [OPERATIONS_SERVICE_NAME, ""] {
            let request = HealthCheckRequest {
                service: service.to_owned(),
            };
            match health.check(request).await {
                Ok(response) => {
                    return response.into_inner().status == ServingStatus::Serving as i32;
                }
                Err(status) if status.code() == Code::NotFound => {}
                Err(status) => {
                    tracing::debug!(message = "Operations health check failed.", error = %status);
                    return false;
                }
            }
        }
        false
    };
    tokio::time::timeout(timeout, check).await.unwrap_or(false)
}

/// Maps a failed operations call to the client's answer. `NOT_FOUND` is 404
/// (also for another tenant's operation), `ALREADY_EXISTS` an idempotency
/// conflict, `FAILED_PRECONDITION` a state conflict, unavailability and
/// deadlines 503; anything else is our bug and becomes a logged 500
/// (OUT_OF_RANGE here is an answer over the message limit: our bug too;
/// see [`map_create_status`] for requests). RESOURCE_EXHAUSTED is a quota
/// or capacity of the moment, so 503: tonic uses it for a message size only
/// past 4 GiB, which the message limits rule out.
///
/// Two answers carry a reason (`google.rpc.ErrorInfo`,
/// `dossier_contracts::reasons`) that picks a more precise problem:
/// NOT_FOUND with `OPERATION_EXPIRED` is 410 Gone, RESOURCE_EXHAUSTED with
/// `STORAGE_FULL` a 503 saying storage is full.
pub fn map_status(status: tonic::Status) -> ApiError {
    map_status_of(OPERATIONS, status)
}

/// [`map_status`] for a call to `service` (named in the logged error).
fn map_status_of(service: &'static str, status: tonic::Status) -> ApiError {
    let reason = status
        .get_details_error_info()
        .filter(|info| info.domain == reasons::DOMAIN)
        .map(|info| info.reason);
    match (status.code(), reason.as_deref()) {
        (Code::NotFound, Some(reasons::OPERATION_EXPIRED)) => return ApiError::OperationExpired,
        (Code::ResourceExhausted, Some(reasons::STORAGE_FULL)) => {
            return ApiError::StorageFull {
                source: anyhow::Error::new(GrpcError(service, status)),
            };
        }
        _ => {}
    }
    match status.code() {
        Code::NotFound => ApiError::OperationNotFound,
        Code::AlreadyExists => ApiError::IdempotencyConflict,
        Code::FailedPrecondition => ApiError::OperationConflict(
            "The operation has already finished; it can no longer be cancelled.".to_owned(),
        ),
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::ResourceExhausted => {
            ApiError::unavailable(
                "The service is temporarily unavailable. Retry shortly.",
                GrpcError(service, status),
            )
        }
        Code::InvalidArgument => {
            ApiError::invalid_request(format!("The request was refused: {}", status.message()))
        }
        // A transport failure that tonic could not classify (e.g. a reset
        // connection while the operations service restarts) is as transient
        // as UNAVAILABLE.
        Code::Unknown if is_transport_error(&status) => ApiError::unavailable(
            "The service is temporarily unavailable. Retry shortly.",
            GrpcError(service, status),
        ),
        _ => ApiError::Internal(anyhow::Error::new(GrpcError(service, status))),
    }
}

/// The channel of the webhooks client: traced as the operations client's.
pub type WebhooksChannel = ClientTrace<Channel>;

/// The webhooks client on `channel`, traced as [`operations_client`]'s.
pub fn webhooks_client(channel: Channel) -> WebhooksClient<WebhooksChannel> {
    let layer =
        ClientTraceLayer::new(|| crate::context::current_request_id().map(|id| id.to_string()));
    WebhooksClient::new(layer.layer(channel))
}

/// Maps a failed call to the webhooks service: NOT_FOUND is 404
/// `webhook_not_found` (also for another tenant's endpoint),
/// INVALID_ARGUMENT a 400 naming each field of its `BadRequest` (body
/// fields by JSON pointer, `limit` and `cursor` as query parameters),
/// FAILED_PRECONDITION with `WEBHOOK_LIMIT_REACHED` a 409; the rest as
/// [`map_status`].
pub fn map_webhooks_status(status: tonic::Status) -> ApiError {
    let reason = status
        .get_details_error_info()
        .filter(|info| info.domain == reasons::DOMAIN)
        .map(|info| info.reason);
    match (status.code(), reason.as_deref()) {
        (Code::NotFound, _) => ApiError::WebhookNotFound,
        (Code::FailedPrecondition, Some(reasons::WEBHOOK_LIMIT_REACHED)) => {
            ApiError::WebhookLimitReached(status.message().to_owned())
        }
        (Code::InvalidArgument, _) => {
            let violations = status
                .get_details_bad_request()
                .map(|bad| bad.field_violations)
                .unwrap_or_default();
            if violations.is_empty() {
                return map_status_of(WEBHOOKS, status);
            }
            let issues: Vec<Issue> = violations
                .into_iter()
                .map(|v| match v.field.as_str() {
                    "limit" | "cursor" => Issue::parameter(v.field, v.description),
                    field => Issue::pointer(json_pointer(field), v.description),
                })
                .collect();
            ApiError::invalid_fields(issues)
        }
        _ => map_status_of(WEBHOOKS, status),
    }
}

/// `event_types[1]` → `/eventTypes/1`: a protobuf field path as the JSON
/// pointer of the public body's camelCase field.
fn json_pointer(field: &str) -> String {
    let mut pointer = String::new();
    for segment in field.split('.') {
        let (name, index) = match segment.split_once('[') {
            Some((name, rest)) => (name, Some(rest.trim_end_matches(']'))),
            None => (segment, None),
        };
        pointer.push('/');
        let mut upper = false;
        for c in name.chars() {
            if c == '_' {
                upper = true;
            } else if upper {
                pointer.push(c.to_ascii_uppercase());
                upper = false;
            } else {
                pointer.push(c);
            }
        }
        if let Some(index) = index {
            pointer.push('/');
            pointer.push_str(index);
        }
    }
    pointer
}

/// Maps a failed `CreateOperation` call: as [`map_status`], except that
/// OUT_OF_RANGE (tonic's "message length too large") means the request's
/// message is over the gRPC limit, so the body is too large and no retry
/// can help: `413` naming `body_limit`, never `503`. The limits are aligned
/// (`dossier_contracts::limits`), so this is a backstop.
///
/// A 503 says what is known. UNAVAILABLE from the operations service itself
/// means nothing was stored. DEADLINE_EXCEEDED (with the operation id in its
/// metadata), a call that timed out or a connection lost mid-call mean the
/// operation may have been accepted: the problem says so and names the
/// operation when the service did, so the client can poll it.
pub fn map_create_status(status: tonic::Status, body_limit: usize) -> ApiError {
    match status.code() {
        Code::OutOfRange => ApiError::PayloadTooLarge { limit: body_limit },
        // The service said so, or the call never reached it.
        Code::Unavailable if !is_transport_error(&status) || never_sent(&status) => {
            ApiError::unavailable(
                "The service is temporarily unavailable; the request was not stored. Retry shortly.",
                GrpcError(OPERATIONS, status),
            )
        }
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => outcome_unknown(status),
        Code::Unknown if is_transport_error(&status) => outcome_unknown(status),
        _ => map_status(status),
    }
}

/// An accept that may have happened, naming the operation when the service
/// did.
fn outcome_unknown(status: tonic::Status) -> ApiError {
    let operation_id = status
        .metadata()
        .get(OPERATION_ID_METADATA)
        .and_then(|value| value.to_str().ok())
        .and_then(|id| uuid::Uuid::parse_str(id).ok());
    ApiError::AcceptOutcomeUnknown {
        operation_id,
        source: GrpcError(OPERATIONS, status).into(),
    }
}

/// The status's causes, nearest first.
fn causes(status: &tonic::Status) -> impl Iterator<Item = &(dyn std::error::Error + 'static)> {
    std::iter::successors(std::error::Error::source(status), |error| error.source())
}

fn is_transport_error(status: &tonic::Status) -> bool {
    causes(status)
        .any(|error| error.is::<tonic::transport::Error>() || error.is::<std::io::Error>())
}

/// Whether the call failed to connect, so the service never saw it.
fn never_sent(status: &tonic::Status) -> bool {
    use std::io::ErrorKind;
    causes(status)
        .find_map(|error| error.downcast_ref::<std::io::Error>())
        .is_some_and(|io| {
            matches!(
                io.kind(),
                ErrorKind::ConnectionRefused
                    | ErrorKind::AddrNotAvailable
                    | ErrorKind::HostUnreachable
                    | ErrorKind::NetworkUnreachable
            )
        })
}

/// The operations service, as [`GrpcError`] names it.
const OPERATIONS: &str = "operations";
/// The webhooks service, as [`GrpcError`] names it.
const WEBHOOKS: &str = "webhooks";

/// A `tonic::Status` from a service (`operations`, `webhooks`) as an error
/// with a readable message (the service, code and message) and its
/// transport cause as the source.
#[derive(Debug)]
pub struct GrpcError(pub &'static str, pub tonic::Status);

impl std::fmt::Display for GrpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} service answered {:?}: {}",
            self.0,
            self.1.code(),
            self.1.message()
        )
    }
}

impl std::error::Error for GrpcError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_call_is_logged_with_the_service_that_answered() {
        let logged = |error: ApiError| match error {
            ApiError::Unavailable {
                source: Some(source),
                ..
            } => source.to_string(),
            other => panic!("not a 503: {other:?}"),
        };
        assert_eq!(
            logged(map_webhooks_status(tonic::Status::unavailable("down"))),
            "webhooks service answered Unavailable: down"
        );
        assert_eq!(
            logged(map_status(tonic::Status::unavailable("down"))),
            "operations service answered Unavailable: down"
        );
    }

    #[test]
    fn webhook_field_paths_become_body_pointers() {
        assert_eq!(json_pointer("url"), "/url");
        assert_eq!(json_pointer("event_types[1]"), "/eventTypes/1");
        assert_eq!(json_pointer("description"), "/description");
    }

    #[test]
    fn a_create_over_the_message_limit_is_413_naming_the_body_limit() {
        let too_large = tonic::Status::out_of_range(
            "Error, encoded message length too large: found 9000000 bytes, the limit is: 8454144 bytes",
        );
        let error = map_create_status(too_large, 8_388_608);
        assert!(
            matches!(error, ApiError::PayloadTooLarge { limit: 8_388_608 }),
            "{error:?}"
        );
        // Transient faults stay 503; other calls' answers over the limit
        // are our bug.
        let down = map_create_status(tonic::Status::unavailable("down"), 8_388_608);
        assert!(matches!(down, ApiError::Unavailable { .. }), "{down:?}");
        let answer = map_status(tonic::Status::out_of_range("too large"));
        assert!(matches!(answer, ApiError::Internal(_)), "{answer:?}");
    }

    #[test]
    fn a_create_of_unknown_outcome_names_its_operation_and_claims_nothing() {
        let id = uuid::Uuid::now_v7();
        let mut status = tonic::Status::deadline_exceeded("may have been accepted");
        status
            .metadata_mut()
            .insert(OPERATION_ID_METADATA, id.to_string().parse().unwrap());
        let error = map_create_status(status, 1);
        assert!(
            matches!(error, ApiError::AcceptOutcomeUnknown { operation_id: Some(named), .. } if named == id),
            "{error:?}"
        );
        let response = error.to_response(uuid::Uuid::now_v7());
        assert_eq!(response.status(), http::StatusCode::SERVICE_UNAVAILABLE);

        // The gateway's own deadline: unknown, without a name.
        let error = map_create_status(tonic::Status::cancelled("Timeout expired"), 1);
        assert!(
            matches!(
                error,
                ApiError::AcceptOutcomeUnknown {
                    operation_id: None,
                    ..
                }
            ),
            "{error:?}"
        );
        // The service said nothing was stored.
        let error = map_create_status(tonic::Status::unavailable("the broker is unavailable"), 1);
        assert!(matches!(error, ApiError::Unavailable { .. }), "{error:?}");
        // Reads never claim anything about changes.
        let ApiError::Unavailable { detail, .. } = map_status(tonic::Status::unavailable("x"))
        else {
            panic!("not a 503");
        };
        assert!(!detail.contains("nothing was changed"), "{detail}");
    }
}
