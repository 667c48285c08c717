//! What AWS hands the functions and the batch job: the dispatcher's SQS event
//! (the Lambda event JSON, each record's body a gap message) through the
//! dispatch service over a temporary SQLite store, and the environment every
//! function and the ECS task read their configuration from.
//!
//! Input: byte 0 even: the rest is the SQS event JSON, decoded as the Lambda
//! runtime decodes it; odd: the rest is the environment, `NAME=value` lines.
//!
//! Invariants: a record whose body is a gap message is dispatched, any other
//! is reported malformed, none is lost; every target of the batch gets at most
//! one job, launched once, or is busy; no configuration loader panics.
#![no_main]

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, LazyLock, Mutex};

use async_trait::async_trait;
use aws_lambda_events::event::sqs::SqsEvent;
use libfuzzer_sys::fuzz_target;
use octoscope::adapters::aws::sqs::GapMessage;
use octoscope::adapters::clock::SystemClock;
use octoscope::config::aws::{ApiConfig, BatchJobConfig, DispatcherConfig, IntegrityConfig, WebhookConfig};
use octoscope::domain::ResyncJob;
use octoscope::ports::{JobLauncher, LaunchError};
use octoscope::services::dispatch::{DispatchService, Dispatched};
use octoscope_fuzz::{App, runtime};

static RT: LazyLock<tokio::runtime::Runtime> = LazyLock::new(runtime);

/// Records each job it is asked to start (ECS RunTask in the product).
#[derive(Default)]
struct Launches(Mutex<Vec<String>>);

#[async_trait]
impl JobLauncher for Launches {
    async fn launch(&self, job: &ResyncJob) -> Result<(), LaunchError> {
        self.0.lock().unwrap().push(job.id.clone());
        Ok(())
    }
}

struct Dispatcher {
    _app: App,
    launches: Arc<Launches>,
    service: DispatchService,
}

static DISPATCHER: LazyLock<Dispatcher> = LazyLock::new(|| {
    let app = App::new();
    let launches = Arc::new(Launches::default());
    let service = DispatchService::new(app.store.clone(), app.store.clone(), launches.clone(), Arc::new(SystemClock));
    Dispatcher { _app: app, launches, service }
});

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else { return };
    if pick % 2 == 0 {
        sqs_event(rest);
    } else {
        environment(rest);
    }
});

fn sqs_event(json: &[u8]) {
    let Ok(event) = serde_json::from_slice::<SqsEvent>(json) else { return };
    let d = &*DISPATCHER;
    let records = event.records.len();
    let mut gaps = Vec::new();
    let mut malformed = 0;
    for record in &event.records {
        match GapMessage::parse(record.body.as_deref().unwrap_or_default()) {
            Ok(m) => {
                // What is parsed is what is sent: a message survives its own round trip.
                let again = GapMessage::parse(&m.to_body()).expect("a gap message's own body parses");
                assert_eq!(again.to_body(), m.to_body());
                gaps.push(m.queued());
            }
            Err(_) => malformed += 1,
        }
    }
    assert_eq!(gaps.len() + malformed, records, "a record was lost");
    d.launches.0.lock().unwrap().clear();
    let targets: BTreeSet<String> = gaps.iter().map(|q| format!("{:?}", q.gap.target)).collect();
    let outcomes = RT.block_on(d.service.dispatch(&gaps));
    // At most one job per target (a target whose gaps ask for nothing gets none).
    let jobs: BTreeSet<String> = outcomes.iter().map(|t| format!("{:?}", t.job.target)).collect();
    assert_eq!(jobs.len(), outcomes.len(), "two jobs for one target");
    assert!(jobs.is_subset(&targets), "a job for a target no message named");
    let launched: Vec<String> =
        outcomes.iter().filter(|t| matches!(t.outcome, Dispatched::Launched)).map(|t| t.job.id.clone()).collect();
    assert_eq!(*d.launches.0.lock().unwrap(), launched, "a job was started other than once");
    for t in &outcomes {
        assert!(!matches!(t.outcome, Dispatched::Failed(_)), "a job failed to start on a working store and launcher");
    }
}

fn environment(text: &[u8]) {
    let text = String::from_utf8_lossy(text);
    let vars: HashMap<String, String> =
        text.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
    let env = |k: &str| vars.get(k).cloned();
    let _ = BatchJobConfig::load(env);
    let _ = DispatcherConfig::load(env);
    let _ = IntegrityConfig::load(env);
    let _ = ApiConfig::load(env);
    let _ = WebhookConfig::load(env);
}
