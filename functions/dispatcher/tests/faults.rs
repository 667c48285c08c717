//! Fault drills on the dispatcher: its DynamoDB and ECS clients talk to moto
//! through the testkit's fault proxy. A batch of gap messages for several
//! repositories, where the calls of some targets hit a fault (the lock, the
//! job record, RunTask): the batch item failures list exactly those targets'
//! messages, every other target got one task, no lock is left held by a job
//! that did not start, and the redelivery of the failed messages (faults off)
//! starts their jobs.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::SqsEvent;
use octoscope::adapters::aws::dynamodb::{DynamoStore, create_table};
use octoscope::adapters::aws::ecs::EcsLauncher;
use octoscope::adapters::aws::sqs::GapMessage;
use octoscope::adapters::clock::{ManualClock, SystemClock};
use octoscope::config::aws::EcsConfig;
use octoscope::domain::{Gap, GapKind, RepoName, Target};
use octoscope::ports::Clock;
use octoscope::ports::store::*;
use octoscope::services::dispatch::DispatchService;
use octoscope::services::resync::LOCK_TTL;
use octoscope_dispatcher::handle;
use octoscope_testkit::faults::{Fault, FaultProxy, Rule};
use octoscope_testkit::moto::{MotoServer, ecs_fargate, unique};
use serde_json::{Value, json};

const FIXTURE: &str = include_str!("fixtures/sqs-gap-batch.json");
const TTL: chrono::TimeDelta = chrono::TimeDelta::minutes(5);
const ATTEMPT: Duration = Duration::from_millis(3000);
const DELAY: Duration = Duration::from_millis(3500);
/// The operation of the job record's write (`save_job`).
const RECORD_OP: &str = "UpdateItem";
/// Repositories per batch; the faults hit the calls of the 2nd and the 4th.
const REPOS: usize = 5;
const FAULTY: [usize; 2] = [1, 3];

/// A table and an ECS cluster on moto; the dispatcher's clients through two
/// fault proxies (DynamoDB straight to moto, ECS to the testkit's ECS proxy).
struct World {
    /// The store, read and written past the proxies.
    store: Arc<DynamoStore>,
    ecs: aws_sdk_ecs::Client,
    settings: EcsConfig,
    /// The dispatcher's store and launcher, through the proxies.
    faulty_store: Arc<DynamoStore>,
    launcher: Arc<EcsLauncher>,
    dynamodb_faults: FaultProxy,
    ecs_faults: FaultProxy,
}

async fn world() -> World {
    let moto = MotoServer::shared();
    let sdk = moto.sdk_config().await;
    let table = unique("octoscope");
    create_table(&aws_sdk_dynamodb::Client::new(&sdk), &table).await.unwrap();
    let (ecs, settings) = ecs_fargate(&sdk, "batch-job").await.unwrap();
    let dynamodb_faults = FaultProxy::start(&moto.endpoint).await.unwrap();
    let ecs_upstream = octoscope_testkit::moto::ecs_proxy().await;
    let ecs_faults = FaultProxy::start(&ecs_upstream).await.unwrap();
    let proxied = octoscope_testkit::faults::sdk_config(&dynamodb_faults.url, ATTEMPT).await;
    let faulty_store = Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(&proxied), &table));
    let ecs_proxied = octoscope_testkit::faults::sdk_config(&ecs_faults.url, ATTEMPT).await;
    let launcher = Arc::new(EcsLauncher::new(aws_sdk_ecs::Client::new(&ecs_proxied), settings.clone()));
    let store = Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), table));
    World { store, ecs, settings, faulty_store, launcher, dynamodb_faults, ecs_faults }
}

impl World {
    fn dispatcher(&self, clock: Arc<dyn Clock>) -> DispatchService {
        DispatchService::new(self.faulty_store.clone(), self.faulty_store.clone(), self.launcher.clone(), clock)
    }
}

fn gap(repo: &str) -> Gap {
    Gap {
        target: Target::Repo(RepoName::parse(repo).unwrap()),
        kind: GapKind::Pulls,
        watermark: None,
        reason: "pull request counts differ".into(),
    }
}

/// An SQS event of these messages (ids made unique), as the event source mapping sends it.
fn event(messages: &[GapMessage]) -> (SqsEvent, Vec<String>) {
    let fixture: Value = serde_json::from_str(FIXTURE).unwrap();
    let template = fixture["Records"][0].clone();
    let mut ids = Vec::new();
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            let mut r = template.clone();
            let id = uuid::Uuid::new_v4().to_string();
            r["messageId"] = json!(id);
            r["body"] = json!(m.to_body());
            ids.push(id);
            r
        })
        .collect();
    (serde_json::from_value(json!({ "Records": records })).unwrap(), ids)
}

/// Tasks started for `repo`'s jobs (their job-id tag names the target).
async fn tasks_of(w: &World, repo: &str) -> usize {
    let arns = w.ecs.list_tasks().cluster(&w.settings.cluster).send().await.unwrap().task_arns().to_vec();
    if arns.is_empty() {
        return 0;
    }
    let tasks = w
        .ecs
        .describe_tasks()
        .cluster(&w.settings.cluster)
        .set_tasks(Some(arns))
        .send()
        .await
        .unwrap()
        .tasks()
        .to_vec();
    let mine = |t: &aws_sdk_ecs::types::Task| {
        t.overrides()
            .and_then(|o| o.container_overrides().first())
            .and_then(|c| c.environment().first())
            .and_then(|e| e.value())
            .is_some_and(|job| job.ends_with(&format!("repo:{repo}")))
    };
    tasks.iter().filter(|t| mine(t)).count()
}

/// The owner of `key`'s lock if someone holds it now (probed past the proxies).
async fn lock_is_free(store: &dyn Store, key: &str) -> bool {
    let probe = unique("probe");
    let free = store.try_lock(key, &probe, chrono::Utc::now(), TTL).await.unwrap();
    if free {
        store.release_lock(key, &probe).await.unwrap();
    }
    free
}

/// Which of the dispatcher's calls a drill hits: (name, proxy, operation, body text naming the target).
#[derive(Clone, Copy)]
enum Call {
    Lock,
    RecordJob,
    RunTask,
}

/// One drill: `fault` on `call` for the faulty repositories, every attempt the SDK makes.
async fn drill(call: Call, fault: Fault) -> String {
    let w = world().await;
    let repos: Vec<String> = (0..REPOS).map(|i| format!("octo/{}", unique(&format!("r{i}")))).collect();
    let mut messages = Vec::new();
    for repo in &repos {
        let m = GapMessage { gap: gap(repo), pending_owner: unique("pending") };
        assert!(w.store.try_lock(&m.pending_key(), &m.pending_owner, chrono::Utc::now(), TTL).await.unwrap());
        messages.push(m);
    }
    for &i in &FAULTY {
        let rule = match call {
            Call::Lock => Rule::on("UpdateItem", fault).containing(&format!("LOCK#repo:{}", repos[i])),
            Call::RecordJob => Rule::on(RECORD_OP, fault).containing("RJOB#resync-").containing(&repos[i]),
            Call::RunTask => Rule::on("RunTask", fault).containing(&repos[i]),
        };
        let proxy = if matches!(call, Call::RunTask) { &w.ecs_faults } else { &w.dynamodb_faults };
        proxy.add(rule.times(3));
    }
    let (sqs, ids) = event(&messages);

    // WHEN the dispatcher handles the batch
    let response = handle(&w.dispatcher(Arc::new(SystemClock)), sqs).await;
    let injected = w.dynamodb_faults.injected() + w.ecs_faults.injected();
    w.dynamodb_faults.clear();
    w.ecs_faults.clear();

    // THEN the batch item failures are exactly the faulty targets' messages
    let name = format!("{:?} on {}", fault, call_name(call));
    assert!(injected >= FAULTY.len(), "{name}: the rules picked {injected} requests");
    let mut failed: Vec<String> = response.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect();
    failed.sort();
    let mut want: Vec<String> = FAULTY.iter().map(|&i| ids[i].clone()).collect();
    want.sort();
    assert_eq!(failed, want, "{name}");
    // AND every other target got one task, its pending marker released, its lock held for its job
    for (i, repo) in repos.iter().enumerate().filter(|(i, _)| !FAULTY.contains(i)) {
        assert_eq!(tasks_of(&w, repo).await, 1, "{name}: {repo}");
        assert!(lock_is_free(w.store.as_ref(), &messages[i].pending_key()).await, "{name}: {repo}'s marker");
        assert!(!lock_is_free(w.store.as_ref(), &format!("repo:{repo}")).await, "{name}: {repo}'s lock");
    }
    // AND no faulty target is left locked (the next delivery is not blocked), its marker still held;
    // but a lock write that lands after the dispatcher gave up (and released) holds until it expires
    let late = matches!((call, fault), (Call::Lock, Fault::Delay(_)));
    if late {
        tokio::time::sleep(DELAY).await;
    }
    for &i in &FAULTY {
        let repo = &repos[i];
        let free = lock_is_free(w.store.as_ref(), &format!("repo:{repo}")).await;
        assert!(free != late, "{name}: {repo}'s lock free: {free}");
        assert!(!lock_is_free(w.store.as_ref(), &messages[i].pending_key()).await, "{name}: {repo}'s marker");
    }

    // WHEN SQS delivers the failed messages again (faults off)
    let again: Vec<GapMessage> = FAULTY.iter().map(|&i| messages[i].clone()).collect();
    let (sqs, _) = event(&again);
    // (after a late lock, once it has expired: LOCK_TTL)
    let at =
        chrono::Utc::now() + if late { LOCK_TTL + chrono::TimeDelta::minutes(1) } else { chrono::TimeDelta::zero() };
    let response = handle(&w.dispatcher(Arc::new(ManualClock::new(at))), sqs).await;

    // THEN none fails and each faulty target has its task (two, when RunTask landed but its answer was
    // lost: moto ignores RunTask's clientToken, which makes ECS start one task for both)
    assert!(response.batch_item_failures.is_empty(), "{name}: {:?}", response.batch_item_failures);
    for &i in &FAULTY {
        let tasks = tasks_of(&w, &repos[i]).await;
        let landed = matches!((call, fault), (Call::RunTask, Fault::DropAfter | Fault::Delay(_)));
        assert!(tasks == 1 || (landed && tasks >= 1), "{name}: {} tasks for {}", tasks, repos[i]);
    }
    format!("{name}: {} failed of {}", failed.len(), ids.len())
}

fn call_name(call: Call) -> &'static str {
    match call {
        Call::Lock => "the lock",
        Call::RecordJob => "the job record",
        Call::RunTask => "RunTask",
    }
}

async fn drills(call: Call) {
    let mut said = Vec::new();
    for fault in Fault::all(DELAY) {
        said.push(drill(call, fault).await);
    }
    println!("{}", said.join("\n"));
}

#[tokio::test(flavor = "multi_thread")]
async fn faults_on_the_target_lock() {
    drills(Call::Lock).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn faults_on_the_job_record() {
    drills(Call::RecordJob).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn faults_on_run_task() {
    drills(Call::RunTask).await;
}
