//! The webhooks service's metrics, served on its admin port.

/// `dossier_webhooks_events_total{type}`: deliveries created from
/// operation events.
pub const EVENTS: &str = "dossier_webhooks_events_total";
/// `dossier_webhooks_attempts_total{outcome}`: delivery attempts by outcome
/// (`delivered` or the failure class).
pub const ATTEMPTS: &str = "dossier_webhooks_attempts_total";

/// Describes the metrics to the recorder.
pub fn describe() {
    metrics::describe_counter!(EVENTS, "Webhook deliveries created from operation events.");
    metrics::describe_counter!(
        ATTEMPTS,
        "Webhook delivery attempts, by outcome (delivered or the failure class)."
    );
}
