//! A `search.people` handler whose behaviour each test chooses, and a worker
//! running it inside the test stack.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use dossier_contracts::Kind;
use dossier_contracts::v1::Job;
use dossier_stack::{Running, TestApp};
use dossier_testkit::TestBroker;
use dossier_worker::{Handler, JobContext, JobError, Outcome, Worker, WorkerConfig};
use futures::future::BoxFuture;

type Behaviour =
    dyn Fn(JobContext, Job) -> BoxFuture<'static, Result<Outcome, JobError>> + Send + Sync;

/// Runs `behaviour` for every job and counts the runs.
#[derive(Clone)]
pub(crate) struct TestHandler {
    behaviour: Arc<Behaviour>,
    pub(crate) runs: Arc<AtomicU32>,
}

impl TestHandler {
    pub(crate) fn new<F, Fut>(behaviour: F) -> Self
    where
        F: Fn(JobContext, Job) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Outcome, JobError>> + Send + 'static,
    {
        let behaviour: Arc<Behaviour> = Arc::new(move |ctx, job| Box::pin(behaviour(ctx, job)));
        Self {
            behaviour,
            runs: Arc::new(AtomicU32::new(0)),
        }
    }

    pub(crate) fn runs(&self) -> u32 {
        self.runs.load(Ordering::SeqCst)
    }
}

impl Handler for TestHandler {
    fn kind(&self) -> Kind {
        Kind::SearchPeople
    }

    async fn handle(&self, ctx: JobContext, job: Job) -> Result<Outcome, JobError> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        (self.behaviour)(ctx, job).await
    }
}

/// Starts a worker running `handler` against the stack's broker, retrying
/// quickly.
pub(crate) async fn start_worker(app: &TestApp, handler: TestHandler) -> Running {
    let config = WorkerConfig {
        retry_backoff_base: Duration::from_millis(50),
        retry_backoff_max: Duration::from_millis(200),
        progress_interval: Duration::from_millis(50),
        cancel_grace: Duration::from_millis(500),
        ..WorkerConfig::default()
    };
    start_worker_with(app, handler, config).await
}

/// Starts a worker running `handler` with `config` against the stack's
/// broker.
pub(crate) async fn start_worker_with<B: TestBroker>(
    app: &TestApp<B>,
    handler: TestHandler,
    config: WorkerConfig,
) -> Running {
    let broker = app.broker_config();
    let client = dossier_broker::connect(&broker, "test-worker")
        .await
        .unwrap();
    let worker = Worker::new(client, &broker, config, handler).await.unwrap();
    Running::spawn(|token| async move { Ok(worker.run(token).await?) })
}
