//! Core NATS subjects whose messages are contracts of their own: request-reply
//! calls that store nothing and so belong to no JetStream stream (the streams'
//! subjects are `dossier-broker`'s topology).

/// Request-reply subject of synchronous enrichment: an `EnrichPersonRequest`
/// in, an `EnrichPersonReply` back (`proto/dossier/v1/enrichment.proto`).
pub const ENRICH_PERSON: &str = "dossier.enrich.person";
/// Queue group the enrichment workers answer [`ENRICH_PERSON`] in, so each
/// request reaches exactly one of them.
pub const ENRICHMENT_QUEUE_GROUP: &str = "enrichment-worker";
