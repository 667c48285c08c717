//! The AWS adapters (S3 archive, SQS gap queue, ECS launcher, SSM secret)
//! against a local moto server, through the real SDK.
#![cfg(all(feature = "s3", feature = "sqs", feature = "ecs", feature = "ssm", feature = "sqlite"))]

use std::sync::Arc;

use aws_config::SdkConfig;
use chrono::{TimeDelta, TimeZone as _, Utc};
use octoscope::adapters::aws::ecs::{EcsLauncher, JOB_ID_ENV, JOB_ID_TAG, started_by};
use octoscope::adapters::aws::s3::S3Archive;
use octoscope::adapters::aws::sqs::{GapMessage, SqsGapQueue};
use octoscope::adapters::aws::ssm::{SecretError, SecretParameter, SsmClient};
use octoscope::adapters::clock::ManualClock;
use octoscope::adapters::sqlite::SqliteStore;
use octoscope::domain::*;
use octoscope::domain::{Gap, GapKind, ResyncJob, Target};
use octoscope::ports::{ArchiveCursor, GapQueue, JobLauncher, QueueError, RawArchive, Store};
use octoscope::services::pending;
use octoscope::webhook::WebhookSecrets;
use octoscope_testkit::moto::{MotoServer, ecs_fargate, unique};

async fn aws() -> SdkConfig {
    MotoServer::shared().sdk_config().await
}

fn s3(cfg: &SdkConfig) -> aws_sdk_s3::Client {
    // moto serves buckets by path, not as virtual hosts.
    aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(cfg).force_path_style(true).build())
}

fn at(secs: i64) -> Timestamp {
    Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap() + TimeDelta::seconds(secs) + TimeDelta::microseconds(secs)
}

fn delivery(n: i64, received_at: Timestamp, body: Vec<u8>) -> RawDelivery {
    RawDelivery {
        key: DeliveryKey {
            hook_id: HookId::parse("123456").unwrap(),
            delivery_id: DeliveryId::parse(&format!("0000{n:04}-aaaa-11ee-8000-000000000000")).unwrap(),
        },
        event: EventName::parse("pull_request").unwrap(),
        received_at,
        content_type: Some("application/json".into()),
        body,
    }
}

async fn bucket(cfg: &SdkConfig) -> String {
    let name = unique("octoscope-archive");
    s3(cfg).create_bucket().bucket(&name).send().await.unwrap();
    name
}

async fn keys(client: &aws_sdk_s3::Client, bucket: &str) -> Vec<String> {
    let out = client.list_objects_v2().bucket(bucket).send().await.unwrap();
    out.contents().iter().filter_map(|o| o.key().map(str::to_owned)).collect()
}

// ---- S3 -------------------------------------------------------------------

#[tokio::test]
async fn s3_put_stores_one_compressed_object_per_delivery_and_is_idempotent() {
    // GIVEN an archive in an empty bucket, and a real GitHub payload
    let cfg = aws().await;
    let bucket = bucket(&cfg).await;
    let archive = S3Archive::new(s3(&cfg), &bucket, "archive");
    let body = octoscope_testkit::fixture("pull_request", "opened.payload.json");
    let d = delivery(1, at(0), body.clone());

    // WHEN it is put, twice
    archive.put(&d).await.unwrap();
    archive.put(&d).await.unwrap();

    // THEN there is one object, at the delivery's key, zstd-compressed and smaller than the body
    let key = archive.object_key(&d);
    assert_eq!(key, "archive/raw/2026-11-22/100000.000000Z/123456/00000001-aaaa-11ee-8000-000000000000.json.zst");
    assert_eq!(keys(&s3(&cfg), &bucket).await, vec![key.clone()]);
    let object = s3(&cfg).get_object().bucket(&bucket).key(&key).send().await.unwrap();
    let stored = object.body.collect().await.unwrap().into_bytes();
    assert!(stored.len() * 3 < body.len(), "compressed {} of {} bytes", stored.len(), body.len());
    assert_eq!(zstd::stream::decode_all(&stored[..]).unwrap(), body);
    // AND it reads back as the same delivery
    let scanned = archive.scan(None, 10).await.unwrap();
    assert_eq!(scanned.len(), 1);
    assert_eq!(scanned[0].1, d);
    assert_eq!(scanned[0].0, ArchiveCursor::new(key));
}

#[tokio::test]
async fn s3_scan_returns_deliveries_in_archive_order_across_list_pages() {
    // GIVEN 7 deliveries put out of order, and list pages of 2 keys
    let cfg = aws().await;
    let bucket = bucket(&cfg).await;
    let archive = S3Archive::new(s3(&cfg), &bucket, "").with_list_page_size(2);
    let order = [5, 0, 3, 6, 1, 4, 2];
    for n in order {
        // Minutes apart, and across a day boundary for the last ones.
        let when = at(n * 60 * 60 * 3);
        archive.put(&delivery(n, when, format!("{{\"n\":{n}}}").into_bytes())).await.unwrap();
    }

    // WHEN it is scanned 3 at a time (each scan spans two list pages)
    let mut seen = Vec::new();
    let mut after: Option<ArchiveCursor> = None;
    loop {
        let batch = archive.scan(after.as_ref(), 3).await.unwrap();
        if batch.is_empty() {
            break;
        }
        assert!(batch.len() <= 3);
        after = batch.last().map(|(c, _)| c.clone());
        seen.extend(batch.into_iter().map(|(_, d)| d));
    }

    // THEN every delivery comes back once, oldest first
    let bodies: Vec<String> = seen.iter().map(|d| String::from_utf8(d.body.clone()).unwrap()).collect();
    let expected: Vec<String> = (0..7).map(|n| format!("{{\"n\":{n}}}")).collect();
    assert_eq!(bodies, expected);
    assert!(seen.windows(2).all(|w| w[0].received_at < w[1].received_at));
    assert_eq!(seen[6].received_at, at(6 * 60 * 60 * 3));
}

#[tokio::test]
async fn s3_a_missing_bucket_is_a_retryable_outage() {
    // GIVEN an archive whose bucket does not exist (a deploy mistake, an outage)
    let cfg = aws().await;
    let archive = S3Archive::new(s3(&cfg), unique("missing-bucket"), "");

    // WHEN a delivery is put, or the archive scanned
    let put = archive.put(&delivery(1, at(0), b"{}".to_vec())).await.unwrap_err();
    let scan = archive.scan(None, 10).await.unwrap_err();

    // THEN both fail with a retryable error that keeps S3's own error
    assert!(put.is_retryable(), "{put:?}");
    assert!(scan.is_retryable(), "{scan:?}");
    assert!(format!("{put:?}").contains("NoSuchBucket"), "{put:?}");
}

#[tokio::test]
async fn s3_a_cursor_from_elsewhere_is_refused() {
    let cfg = aws().await;
    let archive = S3Archive::new(s3(&cfg), bucket(&cfg).await, "a");
    let err = archive.scan(Some(&ArchiveCursor::new("42")), 10).await.unwrap_err();
    assert!(!err.is_retryable());
}

// ---- SQS ------------------------------------------------------------------

struct Queue {
    client: aws_sdk_sqs::Client,
    url: String,
    store: Arc<SqliteStore>,
    clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
}

impl Queue {
    async fn new(attributes: &[(&str, &str)]) -> Self {
        let client = aws_sdk_sqs::Client::new(&aws().await);
        let mut create = client.create_queue().queue_name(unique("octoscope-gaps"));
        for (k, v) in attributes {
            create = create.attributes(aws_sdk_sqs::types::QueueAttributeName::from(*k), *v);
        }
        let url = create.send().await.unwrap().queue_url().unwrap().to_owned();
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(&dir.path().join("octoscope.db")).unwrap());
        let clock = Arc::new(ManualClock::new(at(0)));
        Self { client, url, store, clock, _dir: dir }
    }

    fn adapter(&self) -> SqsGapQueue {
        SqsGapQueue::new(self.client.clone(), &self.url, self.store.clone() as Arc<dyn Store>, self.clock.clone())
    }

    async fn receive_all(&self) -> Vec<GapMessage> {
        let mut out = Vec::new();
        loop {
            let got =
                self.client.receive_message().queue_url(&self.url).max_number_of_messages(10).send().await.unwrap();
            if got.messages().is_empty() {
                return out;
            }
            for m in got.messages() {
                out.push(GapMessage::parse(m.body().unwrap()).expect("a gap message"));
                self.client
                    .delete_message()
                    .queue_url(&self.url)
                    .receipt_handle(m.receipt_handle().unwrap())
                    .send()
                    .await
                    .unwrap();
            }
        }
    }
}

fn gap(repo: &str, kind: GapKind) -> Gap {
    Gap {
        target: Target::Repo(RepoName::parse(repo).unwrap()),
        kind,
        watermark: Some(at(0)),
        reason: format!("{kind:?} differ for {repo}"),
    }
}

#[tokio::test]
async fn sqs_sends_one_message_per_pending_target_and_kind() {
    // GIVEN an empty queue
    let q = Queue::new(&[]).await;
    let queue = q.adapter();

    // WHEN three distinct gaps (and a repeat of one) are sent
    let gaps = [gap("octo/a", GapKind::Pulls), gap("octo/a", GapKind::Teams), gap("octo/b", GapKind::Pulls)];
    let new = queue.send(&[gaps[0].clone(), gaps[1].clone(), gaps[2].clone(), gaps[0].clone()]).await.unwrap();

    // THEN three messages are on the queue, each a gap message with its own marker owner
    assert_eq!(new, 3);
    let mut messages = q.receive_all().await;
    messages.sort_by(|a, b| (&a.gap.target, a.gap.kind).cmp(&(&b.gap.target, b.gap.kind)));
    assert_eq!(messages.iter().map(|m| m.gap.clone()).collect::<Vec<_>>(), gaps.to_vec());
    assert_ne!(messages[0].pending_owner, messages[1].pending_owner);

    // WHEN the same (target, kind) is sent again while its message is pending
    let again = queue.send(&[gap("octo/a", GapKind::Pulls)]).await.unwrap();
    // THEN nothing new is queued
    assert_eq!(again, 0);
    assert!(q.receive_all().await.is_empty());

    // WHEN the dispatcher takes the message and releases its marker
    pending::release(q.store.as_ref(), &messages[0].marker()).await.unwrap();
    // THEN the next gap of that (target, kind) is queued
    assert_eq!(queue.send(&[gap("octo/a", GapKind::Pulls)]).await.unwrap(), 1);
    assert_eq!(q.receive_all().await.len(), 1);
    // AND the other kinds of that target are still pending
    assert_eq!(queue.send(&[gap("octo/a", GapKind::Teams)]).await.unwrap(), 0);
}

#[tokio::test]
async fn sqs_a_lost_message_blocks_its_gap_only_for_the_marker_ttl() {
    // GIVEN a gap sent whose message is never taken
    let q = Queue::new(&[]).await;
    let queue = q.adapter().with_pending_ttl(TimeDelta::hours(1));
    assert_eq!(queue.send(&[gap("octo/a", GapKind::Pulls)]).await.unwrap(), 1);
    // WHEN the same gap is found 59 minutes later, then 61 minutes later
    q.clock.set(at(59 * 60));
    let before = queue.send(&[gap("octo/a", GapKind::Pulls)]).await.unwrap();
    q.clock.set(at(61 * 60));
    let after = queue.send(&[gap("octo/a", GapKind::Pulls)]).await.unwrap();
    // THEN it is queued again only once the marker expired
    assert_eq!((before, after), (0, 1));
}

#[tokio::test]
async fn sqs_sends_many_gaps_in_batches_of_ten() {
    let q = Queue::new(&[]).await;
    let gaps: Vec<Gap> = (0..25).map(|i| gap(&format!("octo/r{i}"), GapKind::Branches)).collect();
    assert_eq!(q.adapter().send(&gaps).await.unwrap(), 25);
    assert_eq!(q.receive_all().await.len(), 25);
}

#[tokio::test]
async fn sqs_a_batch_that_fails_is_reported_and_its_gaps_stay_unpending() {
    // GIVEN a queue that takes messages of at most 1 KiB, and 10 small gaps
    // (one batch) followed by one whose message is larger (the next batch)
    let q = Queue::new(&[("MaximumMessageSize", "1024")]).await;
    let queue = q.adapter();
    let mut gaps: Vec<Gap> = (0..10).map(|i| gap(&format!("octo/r{i}"), GapKind::Pulls)).collect();
    let mut big = gap("octo/big", GapKind::Pulls);
    big.reason = "x".repeat(2000);
    gaps.push(big.clone());

    // WHEN they are sent
    let err = queue.send(&gaps).await.unwrap_err();

    // THEN the error says 10 were queued and which one was not, and why
    let QueueError::Partial { new, failed } = &err else { panic!("expected a partial failure: {err:?}") };
    assert_eq!(*new, 10);
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].target, big.target);
    assert!(!failed[0].retryable, "{failed:?}");
    assert!(!err.is_retryable());
    assert_eq!(q.receive_all().await.len(), 10);
    // AND the failed gap is not left pending: once it fits, it is queued
    big.reason = "short".into();
    assert_eq!(queue.send(&[big]).await.unwrap(), 1);
}

#[tokio::test]
async fn sqs_a_missing_queue_fails_and_releases_every_marker() {
    // GIVEN a queue URL that does not exist, over a store shared with a real queue
    let q = Queue::new(&[]).await;
    let missing = SqsGapQueue::new(
        q.client.clone(),
        format!("{}-missing", q.url),
        q.store.clone() as Arc<dyn Store>,
        q.clock.clone(),
    );
    // WHEN gaps are sent to it
    let err = missing.send(&[gap("octo/a", GapKind::Pulls), gap("octo/b", GapKind::Pulls)]).await.unwrap_err();
    // THEN the send fails (a configuration error: not retryable)
    assert!(matches!(err, QueueError::Rejected(_)), "{err:?}");
    // AND no marker is left: the real queue takes both gaps
    assert_eq!(q.adapter().send(&[gap("octo/a", GapKind::Pulls), gap("octo/b", GapKind::Pulls)]).await.unwrap(), 2);
}

#[test]
fn sqs_a_malformed_body_names_the_problem() {
    let err = GapMessage::parse("{\"gap\": {\"target\": 1}}").unwrap_err();
    assert!(err.to_string().contains("not a gap message"));
    assert_eq!(gap("o/r", GapKind::Teams).pending_key(), "pending-gap:repo:o/r:teams");
}

// ---- ECS ------------------------------------------------------------------

fn job() -> ResyncJob {
    ResyncJob {
        id: "resync-20261122T100000.000Z-repo:octo/hello-world".into(),
        target: Target::Repo(RepoName::parse("octo/hello-world").unwrap()),
        kinds: vec![GapKind::Pulls, GapKind::Reviews],
        watermark: None,
    }
}

#[tokio::test]
async fn ecs_launch_starts_a_fargate_task_that_is_handed_the_job_id() {
    // GIVEN a cluster, a Fargate task definition and a network
    let cfg = aws().await;
    let (client, settings) = ecs_fargate(&cfg, "resync").await.unwrap();
    let launcher = EcsLauncher::new(client.clone(), settings.clone());

    // WHEN a job is launched
    let job = job();
    launcher.launch(&job).await.unwrap();

    // THEN one task was started by that job, on Fargate, in the subnet, with the job id in its environment
    let listed = client.list_tasks().cluster(&settings.cluster).started_by(started_by(&job.id)).send().await.unwrap();
    assert_eq!(listed.task_arns().len(), 1);
    let described = client
        .describe_tasks()
        .cluster(&settings.cluster)
        .set_tasks(Some(listed.task_arns().to_vec()))
        .include(aws_sdk_ecs::types::TaskField::Tags)
        .send()
        .await
        .unwrap();
    let task = &described.tasks()[0];
    assert_eq!(task.launch_type(), Some(&aws_sdk_ecs::types::LaunchType::Fargate));
    assert_eq!(task.started_by(), Some(started_by(&job.id).as_str()));
    let overrides = task.overrides().unwrap().container_overrides();
    assert_eq!(overrides.len(), 1);
    assert_eq!(overrides[0].name(), Some("resync"));
    let env: Vec<(&str, &str)> =
        overrides[0].environment().iter().map(|kv| (kv.name().unwrap(), kv.value().unwrap())).collect();
    assert_eq!(env, vec![(JOB_ID_ENV, job.id.as_str())]);
    let details = task.attachments()[0].details();
    let subnet = details.iter().find(|d| d.name() == Some("subnetId")).and_then(|d| d.value());
    assert_eq!(subnet, Some(settings.subnets[0].as_str()));
    assert!(
        task.tags().iter().any(|t| t.key() == Some(JOB_ID_TAG) && t.value() == Some(job.id.as_str())),
        "{:?}",
        task.tags()
    );
}

#[tokio::test]
async fn ecs_an_unknown_task_definition_is_not_retryable() {
    // GIVEN settings naming a task definition that was never registered
    let cfg = aws().await;
    let (client, mut settings) = ecs_fargate(&cfg, "resync").await.unwrap();
    settings.task_definition = unique("no-such-definition");
    // WHEN a job is launched
    let err = EcsLauncher::new(client, settings).launch(&job()).await.unwrap_err();
    // THEN it fails for good, saying which job
    assert!(!err.is_retryable(), "{err:?}");
    assert!(format!("{err:?}").contains(&job().id), "{err:?}");
}

// ---- SSM ------------------------------------------------------------------

async fn put_secret(client: &aws_sdk_ssm::Client, name: &str, value: &str) {
    client
        .put_parameter()
        .name(name)
        .value(value)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .overwrite(true)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn ssm_secret_is_cached_for_its_ttl_then_reread() {
    // GIVEN a SecureString holding two webhook secrets, read through a 5-minute cache
    let sdk = aws().await;
    let client = aws_sdk_ssm::Client::new(&sdk);
    let name = format!("/{}/webhook-secret", unique("octoscope"));
    put_secret(&client, &name, "new-secret,old-secret").await;
    let clock = Arc::new(ManualClock::new(at(0)));
    let secret =
        SecretParameter::new(SsmClient::new(&sdk), &name).with_ttl(TimeDelta::minutes(5)).with_clock(clock.clone());

    // WHEN it is read
    let first = secret.get().await.unwrap();
    // THEN it is the decrypted value, usable as the webhook's secrets, and never printed
    assert_eq!(first.expose(), "new-secret,old-secret");
    assert!(WebhookSecrets::parse(first.expose()).is_ok());
    assert!(!format!("{first:?} {secret:?}").contains("new-secret"));

    // WHEN the secret is rotated in SSM
    put_secret(&client, &name, "newer-secret,new-secret").await;
    // THEN within the TTL the cached value is still used
    clock.set(at(4 * 60));
    assert_eq!(secret.get().await.unwrap().expose(), "new-secret,old-secret");
    // AND after the TTL the rotated one is read
    clock.set(at(5 * 60 + 1));
    assert_eq!(secret.get().await.unwrap().expose(), "newer-secret,new-secret");
}

#[tokio::test]
async fn ssm_a_missing_parameter_is_a_clear_permanent_error() {
    let name = format!("/{}/missing", unique("octoscope"));
    let err = SecretParameter::new(SsmClient::new(&aws().await), &name).get().await.unwrap_err();
    assert!(matches!(err, SecretError::NotFound { .. }), "{err:?}");
    assert!(!err.is_retryable());
    assert!(err.to_string().contains(&name), "{err}");
}

#[tokio::test]
async fn ssm_throttling_and_5xx_are_retried_then_a_retryable_error() {
    use octoscope_testkit::faults::{Fault, FaultProxy, Rule};
    // GIVEN a parameter on moto, read through a proxy that injects faults into GetParameter
    let moto = MotoServer::shared();
    let sdk = aws().await;
    let name = format!("/{}/api-tokens", unique("octoscope"));
    put_secret(&aws_sdk_ssm::Client::new(&sdk), &name, "tok-one,tok-two").await;
    let proxy = FaultProxy::start(&moto.endpoint).await.unwrap();
    let through = octoscope_testkit::faults::sdk_config(&proxy.url, std::time::Duration::from_secs(5)).await;
    let read = || SecretParameter::new(SsmClient::new(&through), &name);

    // WHEN SSM throttles once and answers 500 once
    proxy.add(Rule::on("GetParameter", Fault::Throttling));
    proxy.add(Rule::on("GetParameter", Fault::Status(500)));
    // THEN the third attempt reads the value
    assert_eq!(read().get().await.unwrap().expose(), "tok-one,tok-two");
    assert_eq!(proxy.count("GetParameter"), 3);

    // WHEN SSM answers 503 to every attempt
    proxy.forget();
    proxy.add(Rule::on("GetParameter", Fault::Status(503)).always());
    let err = read().get().await.unwrap_err();
    // THEN after three attempts it is a retryable error naming the parameter, not the value
    assert_eq!(proxy.count("GetParameter"), 3);
    assert!(err.is_retryable(), "{err:?}");
    let text = format!("{err:#?} {}", octoscope::error::error_chain(&err));
    assert!(text.contains(&name) && !text.contains("tok-one"), "{text}");

    // WHEN the connection is dropped before any answer, every time
    proxy.clear();
    proxy.forget();
    proxy.add(Rule::on("GetParameter", Fault::DropBefore).always());
    // THEN that is retryable too
    assert!(read().get().await.unwrap_err().is_retryable());
    assert_eq!(proxy.count("GetParameter"), 3);
}
