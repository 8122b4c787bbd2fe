//! Dossier's contracts: the protobuf messages that travel on NATS and over
//! gRPC (generated from `proto/dossier/v1`), plus the domain vocabulary that
//! every service shares — operation kinds and statuses with their wire names,
//! and the JSON request bodies of the public API.
#![forbid(unsafe_code)]

pub mod api;
mod domain;
pub mod limits;
pub mod reasons;
pub mod subjects;
pub mod time_ext;

pub use domain::{Kind, Status, UnknownName};

impl v1::operation_event::Event {
    /// The event's type as logs and spans name it: `started`, `progressed`,
    /// `succeeded`, `partial_success`, `failed` or `cancelled`.
    pub fn type_name(&self) -> &'static str {
        use v1::operation_event::Event;
        match self {
            Event::Started(_) => "started",
            Event::Progressed(_) => "progressed",
            Event::Succeeded(_) => "succeeded",
            Event::PartiallySucceeded(_) => "partial_success",
            Event::Failed(_) => "failed",
            Event::Cancelled(_) => "cancelled",
        }
    }

    /// Whether the event ends its operation (`succeeded`,
    /// `partial_success`, `failed` or `cancelled`).
    pub fn is_terminal(&self) -> bool {
        !matches!(self, Self::Started(_) | Self::Progressed(_))
    }
}

/// Generated protobuf and gRPC code for package `dossier.v1`.
#[allow(missing_docs, clippy::all, unreachable_pub)]
pub mod v1 {
    tonic::include_proto!("dossier.v1");

    /// Encoded `FileDescriptorSet` of every Dossier proto, for gRPC reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("dossier_descriptor");

    /// The metadata key that names the operation in a DEADLINE_EXCEEDED
    /// answer to `CreateOperation`: the accept may have happened, and
    /// polling this id tells.
    pub const OPERATION_ID_METADATA: &str = "dossier-operation-id";

    /// A request of the operations API that acts for one tenant: the tenant
    /// its service token must name (see `dossier-identity`).
    pub trait Tenanted {
        /// The tenant the request acts for.
        fn tenant_id(&self) -> &str;
    }

    macro_rules! tenanted {
        ($($message:ty),+) => {$(
            impl Tenanted for $message {
                fn tenant_id(&self) -> &str {
                    &self.tenant_id
                }
            }
        )+};
    }

    tenanted!(
        CreateOperationRequest,
        GetOperationRequest,
        ListOperationsRequest,
        CancelOperationRequest,
        GetOperationResultsRequest,
        CreateEndpointRequest,
        ListEndpointsRequest,
        GetEndpointRequest,
        ListDeliveriesRequest
    );
}
