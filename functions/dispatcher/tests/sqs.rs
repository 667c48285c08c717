//! The dispatcher end to end on moto: a real-shaped SQS event (three records)
//! into the handler; jobs recorded in DynamoDB, tasks started on moto's ECS.

use std::sync::Arc;

use aws_config::SdkConfig;
use aws_lambda_events::event::sqs::SqsEvent;
use octoscope::adapters::aws::dynamodb::{DynamoStore, create_table};
use octoscope::adapters::aws::ecs::{EcsLauncher, JOB_ID_ENV};
use octoscope::adapters::aws::sqs::GapMessage;
use octoscope::adapters::clock::SystemClock;
use octoscope::config::aws::EcsConfig;
use octoscope::domain::RepoName;
use octoscope::domain::{Gap, GapKind, JobState, Target};
use octoscope::ports::store::*;
use octoscope::services::dispatch::DispatchService;
use octoscope_dispatcher::{dispatch, handle};
use octoscope_testkit::moto::{MotoServer, ecs_fargate, unique};
use serde_json::{Value, json};

const FIXTURE: &str = include_str!("fixtures/sqs-gap-batch.json");
const TTL: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

async fn aws() -> SdkConfig {
    MotoServer::shared().sdk_config().await
}

struct World {
    store: Arc<DynamoStore>,
    ecs: aws_sdk_ecs::Client,
    settings: EcsConfig,
}

/// A table, an ECS cluster with a Fargate task definition, a VPC network.
async fn world(sdk: &SdkConfig) -> World {
    let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
    let table = unique("octoscope");
    create_table(&dynamodb, &table).await.unwrap();
    let (ecs, settings) = ecs_fargate(sdk, "batch-job").await.unwrap();
    World { store: Arc::new(DynamoStore::new(dynamodb, table)), ecs, settings }
}

fn dispatcher(w: &World) -> DispatchService {
    let launcher = Arc::new(EcsLauncher::new(w.ecs.clone(), w.settings.clone()));
    DispatchService::new(w.store.clone(), w.store.clone(), launcher, Arc::new(SystemClock))
}

fn gap(repo: &str, kind: GapKind) -> Gap {
    Gap {
        target: Target::Repo(RepoName::parse(repo).unwrap()),
        kind,
        watermark: None,
        reason: "pull request counts differ".into(),
    }
}

/// A gap message as the integrity check's queue sends it, its pending marker held.
async fn message(store: &dyn Store, gap: Gap) -> GapMessage {
    let m = GapMessage { gap, pending_owner: unique("pending") };
    assert!(store.try_lock(&m.pending_key(), &m.pending_owner, chrono::Utc::now(), TTL).await.unwrap());
    m
}

/// The fixture's three records with these bodies.
fn event(bodies: [&str; 3]) -> (SqsEvent, Vec<String>) {
    let mut e: Value = serde_json::from_str(FIXTURE).unwrap();
    let records = e["Records"].as_array_mut().unwrap();
    for (record, body) in records.iter_mut().zip(bodies) {
        record["body"] = json!(body);
    }
    let ids = records.iter().map(|r| r["messageId"].as_str().unwrap().to_owned()).collect();
    (serde_json::from_value(e).unwrap(), ids)
}

async fn tasks(w: &World) -> Vec<aws_sdk_ecs::types::Task> {
    let arns = w.ecs.list_tasks().cluster(&w.settings.cluster).send().await.unwrap().task_arns().to_vec();
    if arns.is_empty() {
        return Vec::new();
    }
    w.ecs.describe_tasks().cluster(&w.settings.cluster).set_tasks(Some(arns)).send().await.unwrap().tasks().to_vec()
}

async fn lock_is_free(store: &dyn Store, key: &str) -> bool {
    let probe = unique("probe");
    let free = store.try_lock(key, &probe, chrono::Utc::now(), TTL).await.unwrap();
    if free {
        store.release_lock(key, &probe).await.unwrap();
    }
    free
}

#[tokio::test(flavor = "multi_thread")]
async fn two_gaps_of_one_repo_start_one_task_and_a_malformed_message_is_left_for_the_dlq() {
    // GIVEN two gaps of one repository (two kinds) and a malformed message
    let sdk = aws().await;
    let w = world(&sdk).await;
    let repo = format!("octo/{}", unique("hello"));
    let pulls = message(w.store.as_ref(), gap(&repo, GapKind::Pulls)).await;
    let branches = message(w.store.as_ref(), gap(&repo, GapKind::Branches)).await;
    let (event, ids) = event([&pulls.to_body(), "{\"not\": \"a gap\"}", &branches.to_body()]);

    // WHEN the dispatcher handles the batch
    let out = dispatch(&dispatcher(&w), event).await;
    let response = out.response();

    // THEN only the malformed message is reported (SQS retries it, then dead-letters it)
    let failed: Vec<&str> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
    assert_eq!(failed, vec![ids[1].as_str()], "{out:?}");
    // AND one Fargate task was started, handed the job id
    let started = tasks(&w).await;
    assert_eq!(started.len(), 1, "{started:?}");
    let overrides = started[0].overrides().unwrap().container_overrides();
    let env = overrides[0].environment();
    assert_eq!(env[0].name(), Some(JOB_ID_ENV));
    let job_id = env[0].value().unwrap().to_owned();
    // AND the job is recorded as queued, for both kinds
    let job = w.store.get_job(&job_id).await.unwrap().expect("the job is recorded");
    assert_eq!(job.state, JobState::Queued);
    assert!(job.kinds.contains(&GapKind::Pulls) && job.kinds.contains(&GapKind::Branches), "{job:?}");
    // AND the repository's lock is held for the job, the pending markers are released
    let target = Target::Repo(RepoName::parse(&repo).unwrap()).to_string();
    assert!(!lock_is_free(w.store.as_ref(), &target).await);
    assert!(w.store.try_lock(&target, &job_id, chrono::Utc::now(), TTL).await.unwrap(), "the job renews it");
    assert!(lock_is_free(w.store.as_ref(), &pulls.pending_key()).await);
    assert!(lock_is_free(w.store.as_ref(), &branches.pending_key()).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_target_being_resynced_starts_no_second_task() {
    // GIVEN a repository whose lock another job holds
    let sdk = aws().await;
    let w = world(&sdk).await;
    let repo = format!("octo/{}", unique("busy"));
    let target = Target::Repo(RepoName::parse(&repo).unwrap()).to_string();
    assert!(w.store.try_lock(&target, "resync-running", chrono::Utc::now(), TTL).await.unwrap());
    let m = message(w.store.as_ref(), gap(&repo, GapKind::Pulls)).await;
    let other = message(w.store.as_ref(), gap(&format!("octo/{}", unique("free")), GapKind::Pulls)).await;
    let (event, _) = event([&m.to_body(), &other.to_body(), "also not json"]);

    // WHEN the dispatcher handles it
    let out = dispatch(&dispatcher(&w), event).await;

    // THEN the busy target starts nothing and its message is taken (the next check re-finds what is left)
    assert_eq!(out.busy.len(), 1, "{out:?}");
    assert_eq!(out.launched.len(), 1, "the other target still starts: {out:?}");
    assert!(out.retry.is_empty(), "{out:?}");
    assert_eq!(out.malformed.len(), 1);
    assert_eq!(tasks(&w).await.len(), 1);
    assert!(lock_is_free(w.store.as_ref(), &m.pending_key()).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_task_that_cannot_be_started_leaves_its_messages_to_sqs_and_releases_the_lock() {
    // GIVEN a task definition that does not exist
    let sdk = aws().await;
    let mut w = world(&sdk).await;
    w.settings.task_definition = unique("no-such-family");
    let repo = format!("octo/{}", unique("broken"));
    let m = message(w.store.as_ref(), gap(&repo, GapKind::Pulls)).await;
    let (event, ids) = event([&m.to_body(), "[]", "{}"]);

    // WHEN the dispatcher handles it
    let response = handle(&dispatcher(&w), event).await;

    // THEN every message is reported: the gap is retried (then dead-lettered), none is lost
    let mut failed: Vec<String> = response.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect();
    failed.sort();
    let mut all = ids.clone();
    all.sort();
    assert_eq!(failed, all);
    // AND the target's lock is free again, the pending marker still held (the message is still queued)
    let target = Target::Repo(RepoName::parse(&repo).unwrap()).to_string();
    assert!(lock_is_free(w.store.as_ref(), &target).await);
    assert!(!lock_is_free(w.store.as_ref(), &m.pending_key()).await);
    // AND the failed launch is recorded
    let jobs = w.store.list_jobs(&octoscope::ports::PageRequest::first(500)).await.unwrap();
    let job = jobs.items.iter().find(|j| j.target.to_string() == target).expect("the job is recorded");
    assert_eq!(job.state, JobState::Failed);
    assert!(job.error.is_some());
}
