//! Sampling decided once at the edge, and the work of a trace that is not
//! recorded done without spans.
//!
//! Building a span costs: the `tracing` registry allocates and reference
//! counts it, the OpenTelemetry layer builds its data on every enter and
//! exit. Spans of a trace that is never exported are pure cost, so where a
//! request (or a message, or a call) enters a service the decision is made
//! *before* any span exists ([`Traced::edge`], [`Traced::continued`]):
//!
//! - **recorded**: the spans are built as ever, and the context they
//!   propagate carries the sampled flag (`-01`);
//! - **not recorded**: no span is built for the whole unit of work. It runs
//!   in a task-local scope ([`Untraced`]) holding the W3C context to pass on
//!   (the trace id, a parent span id and the incoming flags, `-00` for a
//!   trace decided here) and the ids log lines need (request, operation).
//!   Every hop still sends a `traceparent`; the next service follows its
//!   flag (parent-based), so a trace is recorded everywhere or nowhere.
//!
//! Which traces are recorded is a service's [`Sampling`]: parent-based, and
//! a new trace (no valid incoming `traceparent`) by the ratio of its trace
//! id. The decision for a new trace reads the last 4 bytes of the trace id:
//! random in a UUID v7 request id (the bytes before hold the variant bits
//! and the generator's monotonic counter) and in a random W3C trace id. The
//! OpenTelemetry SDK's own `TraceIdRatioBased` reads the last 8 bytes from
//! their top bit, which in a UUID v7 are always `10…` (the variant): it
//! would sample no request id at any ratio below one half.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use opentelemetry::trace::{
    Link, SpanContext, SpanKind, TraceContextExt as _, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{
    IdGenerator as _, RandomIdGenerator, SamplingDecision, SamplingResult, ShouldSample,
};
use tracing::Instrument as _;

use crate::format::{ContextFields, SPAN_OPERATION_ID};

/// `DOSSIER_TRACE_SAMPLE_RATIO`: the share of new traces a service records.
pub const ENV_SAMPLE_RATIO: &str = "DOSSIER_TRACE_SAMPLE_RATIO";

/// The ratio of new traces recorded when an OTLP endpoint is set and
/// [`ENV_SAMPLE_RATIO`] is not.
pub const DEFAULT_EXPORT_RATIO: f64 = 0.01;

/// Which traces a service records.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampling {
    ratio: f64,
    follow_parent: bool,
}

impl Sampling {
    /// Every trace: a caller's trace is followed, and every new one is
    /// recorded (what the tests' stacks run).
    pub const ALWAYS: Sampling = Sampling {
        ratio: 1.0,
        follow_parent: true,
    };

    /// No trace, not even one a caller sampled: a service that exports
    /// nowhere. Contexts still pass through, flags unchanged, so a service
    /// further on that does export still records a caller's sampled trace.
    pub const OFF: Sampling = Sampling {
        ratio: 0.0,
        follow_parent: false,
    };

    /// Parent-based: a trace whose incoming context says sampled is
    /// recorded, one that says not sampled is not, and a new trace is
    /// recorded with probability `ratio` (clamped to 0–1; NaN is 0).
    pub fn ratio(ratio: f64) -> Sampling {
        Sampling {
            ratio: if ratio.is_nan() {
                0.0
            } else {
                ratio.clamp(0.0, 1.0)
            },
            follow_parent: true,
        }
    }

    /// The sampling of a service: `ratio` when given; else, with an OTLP
    /// endpoint, [`DEFAULT_EXPORT_RATIO`]; else [`Sampling::OFF`].
    pub fn for_service(ratio: Option<f64>, exporting: bool) -> Sampling {
        match (ratio, exporting) {
            (Some(ratio), _) => Sampling::ratio(ratio),
            (None, true) => Sampling::ratio(DEFAULT_EXPORT_RATIO),
            (None, false) => Sampling::OFF,
        }
    }

    /// The share of new traces recorded.
    pub fn root_ratio(&self) -> f64 {
        self.ratio
    }

    /// The sampling of the service the current thread traces for: the one
    /// its subscriber was built with ([`crate::service_subscriber`]), or
    /// [`Sampling::ALWAYS`] under any other subscriber (tests that install
    /// a bare OpenTelemetry layer keep every span).
    pub fn current() -> Sampling {
        tracing::dispatcher::get_default(|dispatch| {
            dispatch
                .downcast_ref::<ContextFields>()
                .map(ContextFields::sampling)
        })
        .unwrap_or(Sampling::ALWAYS)
    }

    /// Whether a trace is recorded: with a valid incoming `parent`, by its
    /// flag (unless this service follows none); else by the ratio of
    /// `trace_id`.
    pub fn records(&self, parent: Option<&SpanContext>, trace_id: TraceId) -> bool {
        match parent {
            Some(parent) => self.follow_parent && parent.is_sampled(),
            None => self.records_new(trace_id),
        }
    }

    fn records_new(&self, trace_id: TraceId) -> bool {
        if self.ratio >= 1.0 {
            return true;
        }
        if self.ratio <= 0.0 {
            return false;
        }
        let bytes = trace_id.to_bytes();
        let low = u32::from_be_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]);
        f64::from(low) < self.ratio * f64::from(u32::MAX)
    }
}

/// The SDK's sampler for the spans a service does build: it agrees with
/// the decisions of [`Traced`] (a recorded trace's spans are all sampled)
/// and drops a stray span made directly with `tracing` macros inside a
/// trace that is not recorded, or a new trace the ratio leaves out.
#[derive(Debug, Clone)]
pub(crate) struct Sampler(pub(crate) Sampling);

impl ShouldSample for Sampler {
    fn should_sample(
        &self,
        parent_context: Option<&Context>,
        trace_id: TraceId,
        _name: &str,
        _span_kind: &SpanKind,
        _attributes: &[KeyValue],
        _links: &[Link],
    ) -> SamplingResult {
        let parent = parent_context
            .filter(|cx| cx.has_active_span())
            .map(|cx| cx.span().span_context().clone());
        let record = match &parent {
            Some(parent) => parent.is_sampled(),
            None => current_untraced().is_none() && self.0.records(None, trace_id),
        };
        SamplingResult {
            decision: if record {
                SamplingDecision::RecordAndSample
            } else {
                SamplingDecision::Drop
            },
            attributes: Vec::new(),
            trace_state: parent.map(|p| p.trace_state().clone()).unwrap_or_default(),
        }
    }
}

/// A unit of work (a request, a call, a message) whose trace is not
/// recorded here: what it passes on and what its log lines carry, in place
/// of its spans.
#[derive(Debug)]
pub struct Untraced {
    context: SpanContext,
    name: &'static str,
    request_id: Option<Box<str>>,
    // Learnt while the work runs (a handler knows the operation), as a
    // span's field would be recorded.
    operation_id: Mutex<Option<Box<str>>>,
}

impl Untraced {
    /// The context every hop of this work passes on: its trace id, a parent
    /// span id and its flags.
    pub fn span_context(&self) -> &SpanContext {
        &self.context
    }

    /// The name of the span this work would have had (`http.server`,
    /// `grpc`, `nats`): the `span` of its log lines.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The request id, when the work has one.
    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }

    /// The operation id, once recorded.
    pub fn operation_id(&self) -> Option<String> {
        self.operation_id
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_deref()
            .map(str::to_owned)
    }

    fn record_operation_id(&self, id: &str) {
        if !id.is_empty() {
            *self
                .operation_id
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(id.into());
        }
    }
}

tokio::task_local! {
    // The work in hand when its trace is not recorded; `None` inside
    // recorded work (its spans say everything).
    static UNTRACED: Option<Arc<Untraced>>;
}

/// The untraced work the current task is doing, if any.
pub fn current_untraced() -> Option<Arc<Untraced>> {
    UNTRACED.try_with(Clone::clone).ok().flatten()
}

/// Records `id` as the operation id of the current work: on the current
/// span (`dossier.operation.id`), or on the untraced scope when its trace
/// is not recorded, so log lines carry it either way.
pub fn record_operation_id(id: &str) {
    tracing::Span::current().record(SPAN_OPERATION_ID, id);
    if let Some(untraced) = current_untraced() {
        untraced.record_operation_id(id);
    }
}

/// The span a unit of work runs in, or — when its trace is not recorded —
/// the [`Untraced`] scope it runs in instead. Dereferences to the span (a
/// disabled one when untraced, on which recording a field does nothing).
#[derive(Debug, Clone)]
pub struct Traced {
    span: tracing::Span,
    untraced: Option<Arc<Untraced>>,
}

impl std::ops::Deref for Traced {
    type Target = tracing::Span;

    fn deref(&self) -> &tracing::Span {
        &self.span
    }
}

impl From<tracing::Span> for Traced {
    fn from(span: tracing::Span) -> Traced {
        Traced {
            span,
            untraced: None,
        }
    }
}

impl Traced {
    /// The root of a request at the edge. With a valid incoming context
    /// (`remote`, a caller's `traceparent`) the request continues it when
    /// this service follows its flag; otherwise a new trace with id
    /// `trace_id` (the request id) is recorded by the service's ratio. When
    /// recorded, `make` builds the span (a child of the caller's span, or
    /// a root with `trace_id`); otherwise no span is built.
    pub fn edge(
        remote: &Context,
        trace_id: TraceId,
        request_id: &str,
        name: &'static str,
        make: impl FnOnce() -> tracing::Span,
    ) -> Traced {
        Traced::decide(remote, Some(trace_id), request_id, name, make)
    }

    /// Work that continues the incoming context `remote` (a gRPC call, a
    /// message), parent-based; with no valid incoming context a new trace
    /// with a random id, recorded by the service's ratio. `request_id` is
    /// the one the caller sent (empty when none).
    pub fn continued(
        remote: &Context,
        request_id: &str,
        name: &'static str,
        make: impl FnOnce() -> tracing::Span,
    ) -> Traced {
        Traced::decide(remote, None, request_id, name, make)
    }

    fn decide(
        remote: &Context,
        root_trace_id: Option<TraceId>,
        request_id: &str,
        name: &'static str,
        make: impl FnOnce() -> tracing::Span,
    ) -> Traced {
        let remote_span = remote.span();
        let parent = remote_span.span_context();
        let parent = parent.is_valid().then_some(parent);
        let trace_id = match (parent, root_trace_id) {
            (Some(parent), _) => parent.trace_id(),
            (None, Some(id)) => id,
            (None, None) => RandomIdGenerator::default().new_trace_id(),
        };
        if Sampling::current().records(parent, trace_id) {
            let span = if parent.is_some() {
                let span = make();
                crate::propagation::set_remote_parent(&span, remote.clone());
                span
            } else {
                crate::root_span_with_trace_id(trace_id, make)
            };
            return Traced::from(span);
        }
        let context = match parent {
            // Passed on as it came: the flags are the caller's decision.
            Some(parent) => parent.clone(),
            None => SpanContext::new(
                trace_id,
                RandomIdGenerator::default().new_span_id(),
                TraceFlags::NOT_SAMPLED,
                false,
                TraceState::NONE,
            ),
        };
        Traced {
            span: tracing::Span::none(),
            untraced: Some(Arc::new(Untraced {
                context,
                name,
                request_id: (!request_id.is_empty()).then(|| request_id.into()),
                operation_id: Mutex::new(None),
            })),
        }
    }

    /// The current work: the current span, and the untraced scope the task
    /// runs in, if any (to carry both into a task it spawns).
    pub fn current() -> Traced {
        Traced {
            span: tracing::Span::current(),
            untraced: current_untraced(),
        }
    }

    /// A child of the current work made by `make` (which builds a span whose
    /// parent is the current span); nothing is built inside untraced work.
    pub fn current_child(make: impl FnOnce() -> tracing::Span) -> Traced {
        match current_untraced() {
            Some(untraced) => Traced {
                span: tracing::Span::none(),
                untraced: Some(untraced),
            },
            None => Traced::from(make()),
        }
    }

    /// A child of this work made by `make` (run inside this work's span);
    /// nothing is built when this work is untraced.
    pub fn child(&self, make: impl FnOnce() -> tracing::Span) -> Traced {
        match &self.untraced {
            Some(untraced) => Traced {
                span: tracing::Span::none(),
                untraced: Some(untraced.clone()),
            },
            None => Traced::from(self.span.in_scope(make)),
        }
    }

    /// The span (disabled when untraced).
    pub fn span(&self) -> &tracing::Span {
        &self.span
    }

    /// The untraced scope, when this work's trace is not recorded.
    pub fn untraced(&self) -> Option<&Arc<Untraced>> {
        self.untraced.as_ref()
    }

    /// Whether this work's spans are built.
    pub fn is_recorded(&self) -> bool {
        self.untraced.is_none()
    }

    /// Records the operation id (`dossier.operation.id`) for the spans and
    /// log lines of this work.
    pub fn record_operation_id(&self, id: &str) {
        self.span.record(SPAN_OPERATION_ID, id);
        if let Some(untraced) = &self.untraced {
            untraced.record_operation_id(id);
        }
    }

    /// The context to pass on: the span's, or the untraced one (empty when
    /// neither, e.g. with no OpenTelemetry layer).
    pub fn context(&self) -> Context {
        use tracing_opentelemetry::OpenTelemetrySpanExt as _;
        match &self.untraced {
            Some(untraced) => Context::new().with_remote_span_context(untraced.context.clone()),
            None => self.span.context(),
        }
    }

    /// The trace id as 32 hex digits, when there is one.
    pub fn trace_id(&self) -> Option<String> {
        let cx = self.context();
        let span = cx.span();
        let sc = span.span_context();
        sc.is_valid().then(|| sc.trace_id().to_string())
    }

    /// Runs `future` in this work: inside its span, and in its untraced
    /// scope (or in none, inside recorded work). (Not `instrument`: that
    /// name would resolve to `tracing::Instrument` on a `Traced` value.)
    pub fn wrap<F: Future>(&self, future: F) -> impl Future<Output = F::Output> + use<F> {
        UNTRACED.scope(self.untraced.clone(), future.instrument(self.span.clone()))
    }

    /// Runs `f` in this work, as [`Traced::wrap`] does a future.
    pub fn in_scope<T>(&self, f: impl FnOnce() -> T) -> T {
        UNTRACED.sync_scope(self.untraced.clone(), || self.span.in_scope(f))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn uuid_trace_id() -> TraceId {
        TraceId::from_bytes(*uuid::Uuid::now_v7().as_bytes())
    }

    #[test]
    fn a_ratio_samples_about_its_share_of_request_ids() {
        for ratio in [0.01, 0.25, 0.5] {
            let sampling = Sampling::ratio(ratio);
            let n = 20_000;
            let kept = (0..n)
                .filter(|_| sampling.records(None, uuid_trace_id()))
                .count();
            let share = kept as f64 / f64::from(n);
            // Binomial: 5 standard deviations either side.
            let sd = (ratio * (1.0 - ratio) / f64::from(n)).sqrt();
            assert!((share - ratio).abs() < 5.0 * sd, "{ratio}: {share}");
        }
    }

    #[test]
    fn the_sdk_ratio_sampler_would_keep_no_request_id() {
        // Why the decision is ours: the SDK's ratio sampler on UUID v7 ids.
        let sdk = opentelemetry_sdk::trace::Sampler::TraceIdRatioBased(0.4);
        let kept = (0..2_000)
            .filter(|_| {
                let result =
                    sdk.should_sample(None, uuid_trace_id(), "x", &SpanKind::Server, &[], &[]);
                result.decision == SamplingDecision::RecordAndSample
            })
            .count();
        assert_eq!(kept, 0);
        let ours = (0..2_000)
            .filter(|_| Sampling::ratio(0.4).records(None, uuid_trace_id()))
            .count();
        assert!(ours > 600, "{ours}");
    }

    #[test]
    fn a_parent_decides_unless_the_service_is_off() {
        let remote = |flags| {
            let span_id = opentelemetry::trace::SpanId::from(9);
            SpanContext::new(TraceId::from(7), span_id, flags, true, TraceState::NONE)
        };
        let (sampled, unsampled) = (remote(TraceFlags::SAMPLED), remote(TraceFlags::NOT_SAMPLED));
        for sampling in [Sampling::ratio(0.0), Sampling::ratio(1.0), Sampling::ALWAYS] {
            assert!(sampling.records(Some(&sampled), TraceId::from(7)));
            assert!(!sampling.records(Some(&unsampled), TraceId::from(7)));
        }
        assert!(!Sampling::OFF.records(Some(&sampled), TraceId::from(7)));
        assert!(!Sampling::OFF.records(None, uuid_trace_id()));
        assert!(Sampling::ALWAYS.records(None, uuid_trace_id()));
        assert_eq!(Sampling::ratio(f64::NAN), Sampling::ratio(0.0));
        assert_eq!(Sampling::ratio(7.0), Sampling::ratio(1.0));
    }

    #[test]
    fn a_service_exporting_nowhere_records_nothing_by_default() {
        assert_eq!(Sampling::for_service(None, false), Sampling::OFF);
        assert_eq!(
            Sampling::for_service(None, true),
            Sampling::ratio(DEFAULT_EXPORT_RATIO)
        );
        assert_eq!(
            Sampling::for_service(Some(0.5), false),
            Sampling::ratio(0.5)
        );
    }
}
