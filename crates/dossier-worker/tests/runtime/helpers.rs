//! A real nats-server per test, jobs published as the operations service
//! would, and every event on `DOSSIER_EVENTS` recorded for assertions.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, consumer};
use dossier_broker::{BrokerConfig, Topology, TopologyConfig, job_consumer, job_subject};
use dossier_contracts::v1::{Job, OperationEvent, operation_event::Event};
use dossier_contracts::{Kind, time_ext};
use dossier_service::CancellationToken;
use dossier_testkit::{NatsServer, init_test_logging, wait_for, wait_until};
use dossier_worker::{Handler, JobContext, JobError, Outcome, Worker, WorkerConfig, WorkerError};
use prost::Message as _;
use serde_json::Value;
use tokio::task::JoinHandle;

/// The kind every test worker runs.
pub(crate) const KIND: Kind = Kind::SearchPeople;

/// Long enough for anything a test waits for; tests finish far sooner.
pub(crate) const DEADLINE: Duration = Duration::from_secs(15);

/// An event as it was stored, with its NATS headers.
#[derive(Clone, Debug)]
pub(crate) struct Recorded {
    pub(crate) event: OperationEvent,
    pub(crate) headers: HeaderMap,
}

/// A job as the operations service publishes it: the message, and the
/// request id and trace context its headers carry.
#[derive(Clone, Debug)]
pub(crate) struct TestJob {
    pub(crate) job: Job,
    pub(crate) request_id: String,
    pub(crate) traceparent: String,
}

/// One test's broker, and the events read from it so far.
pub(crate) struct TestEnv {
    pub(crate) nats: NatsServer,
    pub(crate) broker: BrokerConfig,
    /// What the topology was created with (by the test, as its owner).
    pub(crate) topology_config: TopologyConfig,
    pub(crate) js: jetstream::Context,
    pub(crate) topology: Topology,
    // Events are read straight from the stream by sequence, on demand: no
    // consumer state to lose when a test restarts the server.
    recorded: Mutex<Vec<Recorded>>,
}

impl TestEnv {
    /// A server with test broker settings: `ack_wait` 2 s, `max_deliver` 3.
    pub(crate) async fn start() -> TestEnv {
        Self::start_with(|_| {}).await
    }

    /// A server with test broker settings changed by `tweak`.
    pub(crate) async fn start_with(tweak: impl FnOnce(&mut TopologyConfig)) -> TestEnv {
        init_test_logging();
        let nats = NatsServer::start().await;
        let broker = nats.broker_config();
        let mut topology_config = nats.topology_config();
        topology_config.consumer.ack_wait = Duration::from_secs(2);
        topology_config.consumer.max_deliver = 3;
        tweak(&mut topology_config);
        let js = jetstream::new(nats.client().await);
        let topology = Topology::ensure(&js, &topology_config).await.unwrap();
        TestEnv {
            nats,
            broker,
            topology_config,
            js,
            topology,
            recorded: Mutex::new(Vec::new()),
        }
    }

    /// Reads the events stored since the last read (none while the server
    /// does not answer).
    async fn read_events(&self) {
        let mut stream = self.topology.events.clone();
        let Ok(info) = stream.info().await else {
            return;
        };
        let last = info.state.last_sequence;
        let next = self.recorded.lock().unwrap().len() as u64 + 1;
        for sequence in next..=last {
            let Ok(message) = stream.get_raw_message(sequence).await else {
                return;
            };
            let event = OperationEvent::decode(message.payload).unwrap();
            self.recorded.lock().unwrap().push(Recorded {
                event,
                headers: message.headers,
            });
        }
    }

    /// Fast settings for tests.
    pub(crate) fn config(&self) -> WorkerConfig {
        WorkerConfig {
            concurrency: 2,
            job_timeout: Duration::from_secs(10),
            retry_backoff_base: Duration::from_millis(50),
            retry_backoff_max: Duration::from_millis(200),
            inline_result_limit: 256 * 1024,
            progress_interval: Duration::from_millis(100),
            cancel_grace: Duration::from_millis(500),
            shutdown_grace: Duration::from_secs(2),
            worker_id: None,
        }
    }

    /// A worker on this server, with its own connection.
    pub(crate) async fn worker<H: Handler>(&self, config: WorkerConfig, handler: H) -> Worker<H> {
        Worker::new(self.nats.client().await, &self.broker, config, handler)
            .await
            .unwrap()
    }

    /// A worker whose handler succeeds at once, and the count of its calls.
    pub(crate) async fn counting_worker(&self) -> (Worker<impl Handler + use<>>, Counter) {
        let calls = Counter::default();
        let handler_calls = calls.clone();
        let worker = self
            .worker(
                self.config(),
                handler_fn(move |_ctx, _job| {
                    handler_calls.incr();
                    async { Ok(Outcome::Succeeded(serde_json::json!({}))) }
                }),
            )
            .await;
        (worker, calls)
    }

    /// Publishes a job as the operations service does; returns its operation id.
    pub(crate) async fn publish_job(&self, payload: Value) -> String {
        self.publish(self.job(payload)).await
    }

    /// A job of [`KIND`] with a fresh id, a request id and a trace context.
    pub(crate) fn job(&self, payload: Value) -> TestJob {
        let operation_id = uuid::Uuid::now_v7().to_string();
        // As the gateway does with no incoming `traceparent`: the request id
        // is the trace id.
        let request_id = uuid::Uuid::now_v7();
        let span_id = &uuid::Uuid::new_v4().simple().to_string()[..16];
        TestJob {
            job: Job {
                operation_id,
                tenant_id: "tenant-a".to_owned(),
                kind: KIND.to_proto() as i32,
                payload_json: serde_json::to_vec(&payload).unwrap(),
                created_at: Some(time_ext::now()),
                payload_ref: None,
            },
            request_id: request_id.to_string(),
            traceparent: format!("00-{}-{span_id}-01", request_id.simple()),
        }
    }

    /// Publishes `job` with `Nats-Msg-Id` = operation id and waits for the ack.
    pub(crate) async fn publish(&self, job: TestJob) -> String {
        self.try_publish(job).await.expect("job stored")
    }

    /// Publishes `job` like [`TestEnv::publish`]; `None` while the broker
    /// does not take it (during a restart).
    pub(crate) async fn try_publish(&self, test_job: TestJob) -> Option<String> {
        let message_id = test_job.job.operation_id.clone();
        self.try_publish_as(test_job, &message_id).await
    }

    /// Publishes `job` again under another message id, as a retry after
    /// JetStream's duplicate window would: the broker stores it anew.
    pub(crate) async fn publish_again(&self, job: TestJob) {
        let message_id = format!("{}-again-{}", job.job.operation_id, uuid::Uuid::now_v7());
        self.try_publish_as(job, &message_id)
            .await
            .expect("job stored again");
    }

    async fn try_publish_as(&self, test_job: TestJob, message_id: &str) -> Option<String> {
        let TestJob {
            job,
            request_id,
            traceparent,
        } = test_job;
        let mut headers = HeaderMap::new();
        headers.insert(async_nats::header::NATS_MESSAGE_ID, message_id);
        headers.insert("Dossier-Request-Id", request_id.as_str());
        headers.insert("traceparent", traceparent.as_str());
        let ack = self
            .js
            .publish_with_headers(job_subject(KIND), headers, job.encode_to_vec().into())
            .await
            .ok()?;
        ack.await.ok()?;
        Some(job.operation_id)
    }

    /// Publishes raw bytes on the jobs subject.
    pub(crate) async fn publish_raw(&self, bytes: &'static [u8]) {
        self.js
            .publish(job_subject(KIND), bytes.into())
            .await
            .unwrap()
            .await
            .unwrap();
    }

    /// Requests cancellation, as the operations service does.
    pub(crate) async fn cancel(&self, operation_id: &str) {
        self.topology
            .cancellations
            .put(operation_id, "{}".into())
            .await
            .unwrap();
    }

    /// Every event stored so far for `operation_id`, in stream order.
    pub(crate) async fn recorded(&self, operation_id: &str) -> Vec<Recorded> {
        self.read_events().await;
        self.recorded
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.event.operation_id == operation_id)
            .cloned()
            .collect()
    }

    /// Every event stored so far for `operation_id`, in stream order.
    pub(crate) async fn events(&self, operation_id: &str) -> Vec<OperationEvent> {
        self.recorded(operation_id)
            .await
            .into_iter()
            .map(|r| r.event)
            .collect()
    }

    /// Every event stored so far, in stream order.
    pub(crate) async fn all_events(&self) -> Vec<OperationEvent> {
        self.read_events().await;
        let recorded = self.recorded.lock().unwrap();
        recorded.iter().map(|r| r.event.clone()).collect()
    }

    /// Waits for the operation's first terminal event.
    pub(crate) async fn wait_terminal(&self, operation_id: &str) -> OperationEvent {
        wait_for(
            &format!("a terminal event of {operation_id}"),
            DEADLINE,
            || async {
                self.events(operation_id)
                    .await
                    .into_iter()
                    .find(is_terminal)
            },
        )
        .await
    }

    /// Waits until the job consumer holds nothing: no job waiting, none
    /// delivered and unsettled (none waiting for a delayed redelivery). After
    /// this no further event can come from a job.
    pub(crate) async fn wait_settled(&self) {
        wait_until("the job consumer to settle", DEADLINE, || async {
            let info = self.consumer_info().await;
            info.num_pending == 0 && info.num_ack_pending == 0
        })
        .await;
    }

    /// The job consumer's current state.
    pub(crate) async fn consumer_info(&self) -> consumer::Info {
        let mut consumer: consumer::PullConsumer = self
            .topology
            .jobs
            .get_consumer(&job_consumer(KIND))
            .await
            .unwrap();
        consumer.info().await.unwrap().clone()
    }
}

/// Whether an event is terminal.
pub(crate) fn is_terminal(event: &OperationEvent) -> bool {
    event.event.as_ref().is_some_and(Event::is_terminal)
}

/// The event's variant name, for compact assertions.
pub(crate) fn name(event: &OperationEvent) -> &'static str {
    match &event.event {
        Some(Event::Started(_)) => "started",
        Some(Event::Progressed(_)) => "progressed",
        Some(Event::Succeeded(_)) => "succeeded",
        Some(Event::PartiallySucceeded(_)) => "partial_success",
        Some(Event::Failed(_)) => "failed",
        Some(Event::Cancelled(_)) => "cancelled",
        None => "none",
    }
}

/// The variant names of `events` in order.
pub(crate) fn names(events: &[OperationEvent]) -> Vec<&'static str> {
    events.iter().map(name).collect()
}

/// A handler made of a closure, for tests.
pub(crate) struct FnHandler<F>(F);

/// A handler of [`KIND`] that calls `f` (the bounds let closures infer
/// their argument types).
pub(crate) fn handler_fn<F, Fut>(f: F) -> FnHandler<F>
where
    F: Fn(JobContext, Job) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Outcome, JobError>> + Send + 'static,
{
    FnHandler(f)
}

impl<F, Fut> Handler for FnHandler<F>
where
    F: Fn(JobContext, Job) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Outcome, JobError>> + Send + 'static,
{
    fn kind(&self) -> Kind {
        KIND
    }

    fn handle(
        &self,
        ctx: JobContext,
        job: Job,
    ) -> impl Future<Output = Result<Outcome, JobError>> + Send {
        (self.0)(ctx, job)
    }
}

/// Counts calls; shared between a test and its handlers.
#[derive(Clone, Default)]
pub(crate) struct Counter(Arc<AtomicUsize>);

impl Counter {
    pub(crate) fn incr(&self) -> usize {
        self.0.fetch_add(1, Ordering::SeqCst) + 1
    }

    pub(crate) fn decr(&self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }

    pub(crate) fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }

    /// Raises the counter to at least `value`.
    pub(crate) fn raise_to(&self, value: usize) {
        self.0.fetch_max(value, Ordering::SeqCst);
    }
}

/// Set when dropped: proves a handler future was dropped (not left running).
pub(crate) struct DropFlag(pub Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// A worker running in a task, stopped by its token or aborted as a crash.
pub(crate) struct Running {
    pub(crate) shutdown: CancellationToken,
    pub(crate) task: JoinHandle<Result<(), WorkerError>>,
}

impl Running {
    /// Starts `worker.run` in a task.
    pub(crate) fn spawn<H: Handler>(worker: Worker<H>) -> Running {
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(worker.run(shutdown.clone()));
        Running { shutdown, task }
    }

    /// Begins a graceful shutdown and waits for `run` to return.
    pub(crate) async fn stop(mut self) {
        self.shutdown.cancel();
        tokio::time::timeout(DEADLINE, &mut self.task)
            .await
            .expect("worker stops")
            .unwrap()
            .unwrap();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}
