use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::v1::{OperationKind, OperationStatus};

/// A name (kind or status) that is not one of the known values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown value `{0}`")]
pub struct UnknownName(pub String);

/// The kind of a long-running operation: `enrichment.batch` (enrich a batch
/// of person records), `search.people` (find people inside a target
/// account), `research.deep` (research a company or a person).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
pub enum Kind {
    /// `enrichment.batch`
    #[serde(rename = "enrichment.batch")]
    EnrichmentBatch,
    /// `search.people`
    #[serde(rename = "search.people")]
    SearchPeople,
    /// `research.deep`
    #[serde(rename = "research.deep")]
    ResearchDeep,
}

impl Kind {
    /// Every kind, in a stable order.
    pub const ALL: [Kind; 3] = [
        Kind::EnrichmentBatch,
        Kind::SearchPeople,
        Kind::ResearchDeep,
    ];

    /// The public wire name, e.g. `search.people`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::EnrichmentBatch => "enrichment.batch",
            Kind::SearchPeople => "search.people",
            Kind::ResearchDeep => "research.deep",
        }
    }

    /// A name safe for NATS consumer names and metric labels, e.g. `search-people`.
    pub fn slug(self) -> &'static str {
        match self {
            Kind::EnrichmentBatch => "enrichment-batch",
            Kind::SearchPeople => "search-people",
            Kind::ResearchDeep => "research-deep",
        }
    }

    /// The protobuf enum value.
    pub fn to_proto(self) -> OperationKind {
        match self {
            Kind::EnrichmentBatch => OperationKind::EnrichmentBatch,
            Kind::SearchPeople => OperationKind::SearchPeople,
            Kind::ResearchDeep => OperationKind::ResearchDeep,
        }
    }

    /// From the protobuf enum value (`None` for unspecified or unknown).
    pub fn from_proto(value: i32) -> Option<Kind> {
        match OperationKind::try_from(value).ok()? {
            OperationKind::EnrichmentBatch => Some(Kind::EnrichmentBatch),
            OperationKind::SearchPeople => Some(Kind::SearchPeople),
            OperationKind::ResearchDeep => Some(Kind::ResearchDeep),
            OperationKind::Unspecified => None,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Kind {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownName(s.to_owned()))
    }
}

/// The status of an operation. `queued`: accepted, waiting for a worker;
/// `processing`: a worker is running it (`progress` tells how far);
/// `succeeded`: finished, `result` holds the payload; `failed`: an
/// unrecoverable error, `error` says why; `partial_success`: finished but
/// some sub-tasks did not succeed, `result` holds what was produced;
/// `cancelled`: cancelled before it completed. The last four are terminal
/// and final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Accepted, waiting for a worker.
    Queued,
    /// A worker is running it.
    Processing,
    /// Finished; `result` holds the payload.
    Succeeded,
    /// Unrecoverable error; `error` says why.
    Failed,
    /// Finished, but some sub-tasks did not succeed.
    PartialSuccess,
    /// Cancelled before it completed.
    Cancelled,
}

impl Status {
    /// Every status, in lifecycle order.
    pub const ALL: [Status; 6] = [
        Status::Queued,
        Status::Processing,
        Status::Succeeded,
        Status::Failed,
        Status::PartialSuccess,
        Status::Cancelled,
    ];

    /// The public wire name, e.g. `partial_success`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::Processing => "processing",
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
            Status::PartialSuccess => "partial_success",
            Status::Cancelled => "cancelled",
        }
    }

    /// Whether the status is final.
    pub fn is_terminal(self) -> bool {
        self.rank() == 2
    }

    /// Lifecycle rank: queued 0, processing 1, any terminal 2. Status may only
    /// move to a higher rank.
    pub fn rank(self) -> u8 {
        match self {
            Status::Queued => 0,
            Status::Processing => 1,
            Status::Succeeded | Status::Failed | Status::PartialSuccess | Status::Cancelled => 2,
        }
    }

    /// The protobuf enum value.
    pub fn to_proto(self) -> OperationStatus {
        match self {
            Status::Queued => OperationStatus::Queued,
            Status::Processing => OperationStatus::Processing,
            Status::Succeeded => OperationStatus::Succeeded,
            Status::Failed => OperationStatus::Failed,
            Status::PartialSuccess => OperationStatus::PartialSuccess,
            Status::Cancelled => OperationStatus::Cancelled,
        }
    }

    /// From the protobuf enum value (`None` for unspecified or unknown).
    pub fn from_proto(value: i32) -> Option<Status> {
        match OperationStatus::try_from(value).ok()? {
            OperationStatus::Queued => Some(Status::Queued),
            OperationStatus::Processing => Some(Status::Processing),
            OperationStatus::Succeeded => Some(Status::Succeeded),
            OperationStatus::Failed => Some(Status::Failed),
            OperationStatus::PartialSuccess => Some(Status::PartialSuccess),
            OperationStatus::Cancelled => Some(Status::Cancelled),
            OperationStatus::Unspecified => None,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Status::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownName(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_names_and_proto() {
        for kind in Kind::ALL {
            assert_eq!(kind.as_str().parse::<Kind>(), Ok(kind));
            assert_eq!(Kind::from_proto(kind.to_proto() as i32), Some(kind));
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
        }
        assert!("search".parse::<Kind>().is_err());
        assert_eq!(Kind::from_proto(0), None);
    }

    #[test]
    fn statuses_round_trip_and_rank() {
        for status in Status::ALL {
            assert_eq!(status.as_str().parse::<Status>(), Ok(status));
            assert_eq!(Status::from_proto(status.to_proto() as i32), Some(status));
        }
        assert!(Status::Queued.rank() < Status::Processing.rank());
        assert!(Status::Processing.rank() < Status::Cancelled.rank());
        assert!(Status::PartialSuccess.is_terminal());
        assert!(!Status::Processing.is_terminal());
    }
}
