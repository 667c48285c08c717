//! The ledger-stream handler on moto: ledger items written by a store built
//! for the webhook (marked) are listed and counted only once the table's
//! stream has been fed to the handler (read with GetShardIterator/GetRecords
//! and handed over as a Lambda `DynamoDbEvent`); an unmarked writer's
//! changes are derived at once and skipped by the handler.

use aws_lambda_events::event::dynamodb::Event;
use chrono::{TimeZone, Utc};
use octoscope::adapters::aws::dynamodb::{DynamoStore, create_table};
use octoscope::domain::*;
use octoscope::ports::*;
use octoscope_ledger_stream::{NotificationQueue, handle, handle_with, invoke, message_body};
use octoscope_testkit::entities;
use octoscope_testkit::moto::{MotoServer, StreamReader, unique};

async fn table() -> (aws_sdk_dynamodb::Client, String) {
    let sdk = MotoServer::shared().sdk_config().await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let table = unique("octoscope");
    create_table(&client, &table).await.unwrap();
    (client, table)
}

fn claim(delivery: &str, repo: &str, at: i64) -> DeliveryClaim {
    DeliveryClaim {
        key: DeliveryKey { hook_id: HookId::parse("7").unwrap(), delivery_id: DeliveryId::parse(delivery).unwrap() },
        event: EventName::parse("push").unwrap(),
        action: None,
        repo: Some(RepoName::parse(repo).unwrap()),
        org: Some("acme".into()),
        received_at: Utc.timestamp_opt(1_780_000_000 + at, 0).unwrap(),
        body_bytes: 10,
    }
}

fn outcome(status: DeliveryStatus) -> DeliveryOutcome {
    DeliveryOutcome { status, reason: None, changes: 0 }
}

async fn listed(store: &DynamoStore, repo: Option<&str>) -> Vec<String> {
    let filter = DeliveryFilter { repo: repo.map(|r| RepoName::parse(r).unwrap()), ..Default::default() };
    let page = store.list_deliveries(&filter, &PageRequest::first(100)).await.unwrap();
    page.items.iter().map(|d| d.delivery_id.to_string()).collect()
}

/// Every record since the last call, through the handler in batches of `limit`; how many there were.
async fn feed(reader: &mut StreamReader, store: &DynamoStore, limit: usize) -> usize {
    let mut n = 0;
    loop {
        let event: Event = serde_json::from_value(reader.next_batch(limit).await.unwrap()).unwrap();
        if event.records.is_empty() {
            return n;
        }
        n += event.records.len();
        let response = handle(store, event).await;
        assert!(response.batch_item_failures.is_empty(), "{response:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn marked_ledger_writes_are_listed_and_counted_once_the_stream_is_fed_to_the_handler() {
    // GIVEN a store as the webhook builds it, and one as every other writer does
    let (client, table) = table().await;
    let webhook = DynamoStore::new(client.clone(), &table).with_stream_derivation();
    let store = DynamoStore::new(client, &table);
    let mut reader = StreamReader::of_table(&MotoServer::shared().endpoint, &table).await.unwrap();
    // WHEN the webhook records three deliveries (one ignored) and a duplicate of one
    for (id, repo, at, status) in [
        ("d1", "acme/api", 1, DeliveryStatus::Stored),
        ("d2", "acme/web", 2, DeliveryStatus::Stored),
        ("d3", "acme/api", 3, DeliveryStatus::Ignored),
    ] {
        let c = claim(id, repo, at);
        assert_eq!(webhook.check_delivery(&c).await.unwrap(), Claim::Claimed);
        assert!(matches!(webhook.record_delivery(&c, &[], &outcome(status)).await.unwrap(), Recorded::Done(_)));
    }
    let again = claim("d1", "acme/api", 9);
    assert!(matches!(
        webhook.record_delivery(&again, &[], &outcome(DeliveryStatus::Stored)).await.unwrap(),
        Recorded::Duplicate(_)
    ));
    // THEN nothing is listed or counted before the stream is read
    assert!(listed(&store, None).await.is_empty());
    assert_eq!(store.stats().await.unwrap().deliveries.get("stored"), None);
    // AND fed to the handler in batches of two (the stream holds every write: registry items too),
    // the deliveries are listed newest first, by repository too, and counted once
    assert!(feed(&mut reader, &store, 2).await >= 3);
    assert_eq!(listed(&store, None).await, vec!["d3", "d2", "d1"]);
    assert_eq!(listed(&store, Some("acme/api")).await, vec!["d3", "d1"]);
    let stats = store.stats().await.unwrap();
    assert_eq!((stats.deliveries.get("stored"), stats.deliveries.get("ignored")), (Some(&2), Some(&1)), "{stats:?}");
    assert_eq!(stats.ignored_events.get("push"), Some(&1), "{stats:?}");
    assert_eq!(stats.last_delivery_at, Some(claim("d3", "acme/api", 3).received_at));
    let last = store.last_deliveries().await.unwrap();
    assert_eq!(
        last.iter().map(|r| (r.repo.as_str(), r.last_received_at)).collect::<Vec<_>>(),
        vec![
            ("acme/api", claim("d3", "acme/api", 3).received_at),
            ("acme/web", claim("d2", "acme/web", 2).received_at)
        ]
    );

    // WHEN an unmarked writer claims and completes a delivery (derived at once)
    let c = claim("d4", "acme/api", 4);
    assert_eq!(store.claim_delivery(&c).await.unwrap(), Claim::Claimed);
    store.complete_delivery(&c.key, &[], &outcome(DeliveryStatus::Stored)).await.unwrap();
    assert_eq!(listed(&store, Some("acme/api")).await, vec!["d4", "d3", "d1"]);
    assert_eq!(store.stats().await.unwrap().deliveries.get("stored"), Some(&3));
    // THEN the handler, fed those changes, counts and lists nothing twice
    assert!(feed(&mut reader, &store, 100).await >= 2);
    assert_eq!(listed(&store, None).await, vec!["d4", "d3", "d2", "d1"]);
    let stats = store.stats().await.unwrap();
    assert_eq!((stats.deliveries.get("stored"), stats.deliveries.get("pending")), (Some(&3), None), "{stats:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_that_cannot_be_derived_is_reported_by_its_first_record() {
    // GIVEN a batch of the stream, and a store whose table is gone
    let (client, table) = table().await;
    let webhook = DynamoStore::new(client.clone(), &table).with_stream_derivation();
    let c = claim("d1", "acme/api", 1);
    webhook.record_delivery(&c, &[], &outcome(DeliveryStatus::Stored)).await.unwrap();
    let mut reader = StreamReader::of_table(&MotoServer::shared().endpoint, &table).await.unwrap();
    let event: Event = serde_json::from_value(reader.next_batch(100).await.unwrap()).unwrap();
    let first = event.records[0].change.sequence_number.clone();
    assert!(first.is_some());
    let missing = DynamoStore::new(client, "no-such-table");
    // WHEN the handler cannot write its pages
    let response = handle(&missing, event).await;
    // THEN the batch is reported from its first record (tried again, in the end sent to the on-failure destination)
    assert_eq!(response.batch_item_failures.len(), 1);
    assert_eq!(response.batch_item_failures[0].item_identifier, first);
}

async fn activity(store: &DynamoStore) -> Option<chrono::DateTime<Utc>> {
    let repos = store.list_repos(&PageRequest::first(10)).await.unwrap();
    assert_eq!(repos.items.len(), 1, "{:?}", repos.items);
    repos.items[0].last_activity_at
}

#[tokio::test(flavor = "multi_thread")]
async fn a_known_repository_s_activity_moves_once_a_batch_by_the_stream_not_with_each_delivery() {
    // GIVEN a store as the webhook builds it, and a delivery that makes the repository known
    let (client, table) = table().await;
    let webhook = DynamoStore::new(client.clone(), &table).with_stream_derivation();
    let store = DynamoStore::new(client, &table);
    let mut reader = StreamReader::of_table(&MotoServer::shared().endpoint, &table).await.unwrap();
    let at = |s: i64| Utc.timestamp_opt(1_780_000_000 + s, 0).unwrap();
    let repo = RepoName::parse("acme/api").unwrap();
    let active =
        |s: i64| vec![Change::Repository(Repository { activity_at: Some(at(s)), ..Repository::named(repo.clone()) })];
    let stored = outcome(DeliveryStatus::Stored);
    webhook.record_delivery(&claim("d1", "acme/api", 1), &active(100), &stored).await.unwrap();
    assert_eq!(activity(&store).await, Some(at(100)), "a new repository is written with its activity");
    // AND counted once the stream's handler adds the count its ledger item carries
    assert_eq!(store.stats().await.unwrap().repositories, 0);
    feed(&mut reader, &store, 100).await;
    assert_eq!(store.stats().await.unwrap().repositories, 1);
    // WHEN two more deliveries report newer activity, out of order
    webhook.record_delivery(&claim("d2", "acme/api", 2), &active(300), &stored).await.unwrap();
    webhook.record_delivery(&claim("d3", "acme/api", 3), &active(200), &stored).await.unwrap();
    // THEN the webhook's path did not write it; the stream's handler writes the newest
    assert_eq!(activity(&store).await, Some(at(100)));
    feed(&mut reader, &store, 100).await;
    assert_eq!(activity(&store).await, Some(at(300)));
    // AND an older activity fed later changes nothing
    webhook.record_delivery(&claim("d4", "acme/api", 4), &active(250), &stored).await.unwrap();
    feed(&mut reader, &store, 100).await;
    assert_eq!(activity(&store).await, Some(at(300)));
    assert_eq!(store.stats().await.unwrap().repositories, 1, "a known repository is not counted again");
}

async fn stored_version(client: &aws_sdk_dynamodb::Client, table: &str) -> Option<String> {
    Some(repo_state(client, table, "acme/api").await.1).filter(|v| !v.is_empty())
}

async fn branch(store: &DynamoStore) -> Option<String> {
    let repos = store.list_repos(&PageRequest::first(10)).await.unwrap();
    assert_eq!(repos.items.len(), 1, "{:?}", repos.items);
    repos.items[0].default_branch.clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_repository_write_that_only_moves_its_version_is_the_stream_s_and_converges_to_the_newest_delivery() {
    // GIVEN a store as the webhook builds it, and a repository it knows at version 100 on `main`
    let (client, table) = table().await;
    let webhook = DynamoStore::new(client.clone(), &table).with_stream_derivation();
    let store = DynamoStore::new(client.clone(), &table);
    let mut reader = StreamReader::of_table(&MotoServer::shared().endpoint, &table).await.unwrap();
    let at = |s: i64| Utc.timestamp_opt(1_780_000_000 + s, 0).unwrap();
    let repo = RepoName::parse("acme/api").unwrap();
    let meta = |version: i64, branch: &str| {
        vec![Change::Repository(Repository {
            version: Some(at(version)),
            default_branch: Some(branch.into()),
            ..Repository::named(repo.clone())
        })]
    };
    let stored = outcome(DeliveryStatus::Stored);
    webhook.record_delivery(&claim("d1", "acme/api", 1), &meta(100, "main"), &stored).await.unwrap();
    feed(&mut reader, &store, 100).await;
    let v100 = stored_version(&client, &table).await.unwrap();
    // WHEN a delivery reports the same metadata at a newer version
    webhook.record_delivery(&claim("d2", "acme/api", 2), &meta(300, "main"), &stored).await.unwrap();
    // THEN the webhook's path did not write the item
    assert_eq!(stored_version(&client, &table).await.unwrap(), v100);
    // WHEN an older delivery with other metadata arrives late, before the stream is fed
    webhook.record_delivery(&claim("d3", "acme/api", 3), &meta(200, "trunk"), &stored).await.unwrap();
    assert_eq!(branch(&store).await.as_deref(), Some("trunk"), "newer than what the item holds: written");
    // THEN once the stream is fed the item holds the newest delivery's metadata (as SQLite would)
    feed(&mut reader, &store, 100).await;
    assert_eq!(branch(&store).await.as_deref(), Some("main"));
    assert!(stored_version(&client, &table).await.unwrap() > v100);
    // AND an older delivery after that changes nothing, on either path
    webhook.record_delivery(&claim("d4", "acme/api", 4), &meta(250, "dev"), &stored).await.unwrap();
    feed(&mut reader, &store, 100).await;
    assert_eq!(branch(&store).await.as_deref(), Some("main"));
    assert_eq!(store.stats().await.unwrap().repositories, 1, "counted once");
}

fn merged_pull(number: u64, author: &str, merged_day: i64, updated: i64) -> Change {
    // Monday 2030-03-04, 09:00.
    let at = |d: i64, h: i64| Utc.with_ymd_and_hms(2030, 3, 4, 9, 0, 0).unwrap() + chrono::Duration::hours(24 * d + h);
    Change::pull_request(PullRequest {
        repo: RepoName::parse("acme/api").unwrap(),
        number,
        id: Some(number as i64),
        title: format!("change {number}"),
        state: PrState::Merged,
        draft: false,
        author: Some(author.into()),
        created_at: at(0, 0),
        updated_at: at(merged_day, updated),
        closed_at: Some(at(merged_day, 0)),
        merged_at: Some(at(merged_day, 0)),
        additions: Some(10),
        deletions: Some(2),
        changed_files: Some(1),
        commits: Some(1),
        labels: vec![],
        requested_reviewers: vec![],
        requested_teams: vec![],
        base_ref: Some("main".into()),
        head_ref: Some(format!("topic-{number}")),
        head_sha: Some(format!("{number:040x}")),
        body: None,
    })
}

async fn merged_by_week(store: &DynamoStore) -> Vec<(String, u64)> {
    let weeks =
        chrono::NaiveDate::from_ymd_opt(2030, 3, 4).unwrap()..chrono::NaiveDate::from_ymd_opt(2030, 4, 1).unwrap();
    let mut cells: Vec<(String, u64)> = store
        .pull_cells(&CellScopes::All, weeks)
        .await
        .unwrap()
        .into_iter()
        .map(|((_, week), cell)| (week.to_string(), cell.merged))
        .collect();
    cells.sort();
    cells
}

#[tokio::test(flavor = "multi_thread")]
async fn the_handler_keeps_the_metric_rollup_cells_of_the_pull_requests_it_is_fed() {
    // GIVEN a store as the webhook builds it, two merged pull requests, no cells yet
    let (client, table) = table().await;
    let webhook = DynamoStore::new(client.clone(), &table).with_stream_derivation();
    let store = DynamoStore::new(client, &table);
    let mut reader = StreamReader::of_table(&MotoServer::shared().endpoint, &table).await.unwrap();
    webhook.apply_changes(&[merged_pull(1, "ann", 1, 0), merged_pull(2, "bob", 8, 0)]).await.unwrap();
    assert_eq!(merged_by_week(&store).await, vec![], "the webhook's path writes no cell");
    // WHEN the stream's records go through the handler
    feed(&mut reader, &store, 100).await;
    // THEN they are marked, and no cell is written before the schedule settles them
    assert_eq!(merged_by_week(&store).await, vec![], "the stream's batch marks the cells");
    // AND a scheduled settle before the marks are a minute old leaves them
    assert_eq!(scheduled(&store, Utc::now()).await["marks"], 0, "marks younger than a minute wait");
    assert_eq!(merged_by_week(&store).await, vec![]);
    // WHEN the schedule fires two minutes later
    let settled = scheduled(&store, Utc::now() + chrono::Duration::minutes(2)).await;
    assert_eq!((settled["settled"].as_bool(), settled["marks"].as_u64()), (Some(true), Some(1)), "{settled}");
    // THEN each week's cell counts its merge
    let expected = vec![("2030-03-04".to_owned(), 1), ("2030-03-11".to_owned(), 1)];
    assert_eq!(merged_by_week(&store).await, expected);
    // AND the settled mark is gone: the next settle has nothing to do
    assert_eq!(scheduled(&store, Utc::now() + chrono::Duration::minutes(3)).await["marks"], 0);
    // WHEN a later version moves the second merge a week on, and the batch is fed and settled
    webhook.apply_changes(&[merged_pull(2, "bob", 15, 1)]).await.unwrap();
    feed(&mut reader, &store, 100).await;
    scheduled(&store, Utc::now() + chrono::Duration::minutes(2)).await;
    // THEN it left its old week's cell (now empty, deleted) for the new one
    let moved = vec![("2030-03-04".to_owned(), 1), ("2030-03-18".to_owned(), 1)];
    assert_eq!(merged_by_week(&store).await, moved);
    // AND the cells equal a recomputation from the rows
    store.rebuild_rollups().await.unwrap();
    assert_eq!(merged_by_week(&store).await, moved);
}

#[tokio::test(flavor = "multi_thread")]
async fn one_settle_at_a_time_and_the_marks_wait_for_the_next() {
    // GIVEN a merged pull request whose stream batch was marked
    let (client, table) = table().await;
    let webhook = DynamoStore::new(client.clone(), &table).with_stream_derivation();
    let store = DynamoStore::new(client, &table);
    let mut reader = StreamReader::of_table(&MotoServer::shared().endpoint, &table).await.unwrap();
    webhook.apply_changes(&[merged_pull(1, "ann", 1, 0)]).await.unwrap();
    feed(&mut reader, &store, 100).await;
    // AND another settle holding the lock
    let later = Utc::now() + chrono::Duration::minutes(2);
    assert!(store.try_lock("rollups-settle", "another", later, chrono::Duration::minutes(15)).await.unwrap());
    // WHEN the schedule fires
    let answer = scheduled(&store, later).await;
    // THEN it settles nothing, and the cells are not written
    assert_eq!(answer["settled"], false, "{answer}");
    assert_eq!(merged_by_week(&store).await, vec![]);
    // WHEN the other settle ends and the schedule fires again
    store.release_lock("rollups-settle", "another").await.unwrap();
    let answer = scheduled(&store, later).await;
    // THEN the mark that waited is settled
    assert_eq!((answer["settled"].as_bool(), answer["marks"].as_u64()), (Some(true), Some(1)), "{answer}");
    assert_eq!(merged_by_week(&store).await, vec![("2030-03-04".to_owned(), 1)]);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invocation_that_is_neither_a_stream_batch_nor_the_schedule_is_refused() {
    let (client, table) = table().await;
    let store = DynamoStore::new(client, &table);
    for payload in [serde_json::json!({"detail-type": "Object Created"}), serde_json::json!([1, 2])] {
        let e = invoke(&store, None, payload, &context()).await.expect_err("refused");
        assert!(format!("{e:#}").contains("neither a DynamoDB stream batch"), "{e:#}");
    }
}

/// An invocation's context: its request id, a minute left to run.
fn context() -> lambda_runtime::Context {
    let mut c = lambda_runtime::Context::default();
    c.request_id = "request-1".into();
    c.deadline = (Utc::now() + chrono::Duration::minutes(1)).timestamp_millis() as u64;
    c
}

/// The function invoked by its schedule at `at` (EventBridge Scheduler's
/// event, as `terraform/modules/schedule` sends it): its answer.
async fn scheduled(store: &DynamoStore, at: chrono::DateTime<Utc>) -> serde_json::Value {
    let event = serde_json::json!({
        "version": "0", "id": "e1", "detail-type": "Scheduled Event", "source": "aws.scheduler",
        "account": "123456789012", "time": at.to_rfc3339(), "region": "us-east-1",
        "resources": ["arn:aws:scheduler:us-east-1:123456789012:schedule/default/octoscope-rollups"], "detail": {}
    });
    invoke(store, None, event, &context()).await.unwrap()
}

/// `n` pending notifications of one rule, as a decider keeps them.
fn decided(n: usize) -> Vec<Notification> {
    let rule = RuleId::generate();
    (0..n)
        .map(|i| {
            let t = Transition {
                event: RuleEvent::PullRequestMerged,
                key: format!("pull_request.merged:acme/api#{i}"),
                repo: Some(RepoName::parse("acme/api").unwrap()),
                branch: None,
                author: None,
                environment: None,
                occurred_at: Utc::now(),
                late: false,
                data: serde_json::json!({ "number": i }),
            };
            Notification::decide(&rule, &t, Utc::now())
        })
        .collect()
}

/// Every message of the queue (received, then deleted), as bodies.
async fn drain(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<String> {
    let mut bodies = Vec::new();
    loop {
        let out = sqs.receive_message().queue_url(url).max_number_of_messages(10).send().await.unwrap();
        if out.messages().is_empty() {
            return bodies;
        }
        for m in out.messages() {
            bodies.push(m.body().unwrap().to_owned());
            sqs.delete_message().queue_url(url).receipt_handle(m.receipt_handle().unwrap()).send().await.unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn new_notifications_are_forwarded_to_the_queue_once_each_and_a_refused_send_fails_the_batch() {
    // GIVEN a table, a notification queue, and twelve notifications kept (the outbox), one of them twice
    let (client, table) = table().await;
    let sdk = MotoServer::shared().sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let url =
        sqs.create_queue().queue_name(unique("notifications")).send().await.unwrap().queue_url().unwrap().to_owned();
    let queue = NotificationQueue::new(sqs.clone(), &url);
    let store = DynamoStore::new(client, &table);
    let mut reader = StreamReader::of_table(&MotoServer::shared().endpoint, &table).await.unwrap();
    let notes = decided(12);
    assert_eq!(store.enqueue(&notes).await.unwrap(), 12);
    assert_eq!(store.enqueue(&notes[..1]).await.unwrap(), 0);

    // WHEN the stream goes through the handler with the queue
    let event: Event = serde_json::from_value(reader.next_batch(100).await.unwrap()).unwrap();
    let response = handle_with(&store, Some(&queue), event).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");

    // THEN each new notification is one message {"id": …} (two SendMessageBatch calls of ≤ 10)
    let mut got = drain(&sqs, &url).await;
    got.sort();
    let mut want: Vec<String> = notes.iter().map(|n| message_body(n.id.as_str())).collect();
    want.sort();
    assert_eq!(got, want);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&got[0]).unwrap()["id"].as_str().unwrap().len(), 30);

    // WHEN an attempt is recorded (an AT# item, and the NOTE# item changed)
    let attempt = Attempt {
        notification_id: notes[0].id.clone(),
        number: 1,
        at: Utc::now(),
        status_code: Some(200),
        latency_ms: 5,
        excerpt: "ok".into(),
    };
    store.record_attempt(&attempt, &AfterAttempt::Delivered).await.unwrap();
    assert!(feed_with(&mut reader, &store, &queue).await >= 2);
    // THEN nothing is forwarded
    assert!(drain(&sqs, &url).await.is_empty());

    // WHEN new notifications meet a queue that refuses them
    let more = decided(2);
    store.enqueue(&more).await.unwrap();
    let event: Event = serde_json::from_value(reader.next_batch(100).await.unwrap()).unwrap();
    let first = event.records[0].change.sequence_number.clone();
    let gone = NotificationQueue::new(sqs.clone(), format!("{}-missing", url));
    let response = handle_with(&store, Some(&gone), event.clone()).await;
    // THEN the batch fails, reported by its first record
    assert_eq!(response.batch_item_failures.len(), 1);
    assert_eq!(response.batch_item_failures[0].item_identifier, first);
    // AND without a queue (OCTOSCOPE_NOTIFY_QUEUE_URL unset) the same batch forwards nothing and succeeds
    assert!(handle(&store, event).await.batch_item_failures.is_empty());
    assert!(drain(&sqs, &url).await.is_empty());
}

async fn feed_with(reader: &mut StreamReader, store: &DynamoStore, queue: &NotificationQueue) -> usize {
    let mut n = 0;
    loop {
        let event: Event = serde_json::from_value(reader.next_batch(100).await.unwrap()).unwrap();
        if event.records.is_empty() {
            return n;
        }
        n += event.records.len();
        let response = handle_with(store, Some(queue), event).await;
        assert!(response.batch_item_failures.is_empty(), "{response:?}");
    }
}

fn t(min: i64) -> Timestamp {
    Utc.with_ymd_and_hms(2030, 3, 4, 9, 0, 0).unwrap() + chrono::TimeDelta::minutes(min)
}

fn run(repo: &str, id: i64, status: &str, created: i64, updated: i64) -> Change {
    Change::WorkflowRun(entities::workflow_run(repo, id, status, "ana", t(created), t(updated)))
}

fn job(id: i64, run_id: i64, status: &str, created: i64, done: Option<i64>) -> Change {
    Change::WorkflowJob(entities::workflow_job(id, run_id, status, t(created), done.map(t)))
}

/// The webhook's store and a reader of its table (`store`, fed by `reader`), and on another
/// table a store writing at once (the contract suite's), to compare with.
struct Beside {
    client: aws_sdk_dynamodb::Client,
    table: String,
    webhook: DynamoStore,
    store: DynamoStore,
    at_once: DynamoStore,
    reader: StreamReader,
}

async fn beside() -> Beside {
    let (client, table) = table().await;
    let other = unique("octoscope");
    create_table(&client, &other).await.unwrap();
    Beside {
        webhook: DynamoStore::new(client.clone(), &table).with_stream_derivation(),
        store: DynamoStore::new(client.clone(), &table),
        at_once: DynamoStore::new(client.clone(), &other),
        reader: StreamReader::of_table(&MotoServer::shared().endpoint, &table).await.unwrap(),
        client,
        table,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_webhook_s_unfinished_runs_are_found_once_the_stream_is_fed_as_a_store_writing_at_once_finds_them() {
    // GIVEN the webhook's store, whose runs and jobs carry no unfinished index key, and on
    // another table a store writing at once (the contract suite's store)
    let Beside { client, table, webhook, store, at_once, mut reader } = beside().await;
    let oldest = async |s: &DynamoStore, repo: &str, from: i64| {
        let repo = RepoName::parse(repo).unwrap();
        s.stored_runs(&repo, None, &[], Some(t(from))).await.unwrap().oldest_unfinished
    };
    // Both stores' answers, from 0, 5 and 6.
    let answers = async |s: &DynamoStore| {
        [oldest(s, "acme/api", 0).await, oldest(s, "acme/api", 5).await, oldest(s, "acme/api", 6).await]
    };
    // WHEN both write finished runs created at 0 and 2, run 3 in progress (created at 4) with a
    // running job, run 4 completed (created at 5) with a job still running, a running job of a
    // run the store does not have, and another repository's queued run
    let first = [
        run("acme/api", 1, "completed", 0, 1),
        run("acme/api", 2, "completed", 2, 3),
        run("acme/api", 3, "in_progress", 4, 4),
        run("acme/api", 4, "completed", 5, 7),
        job(31, 3, "in_progress", 4, None),
        job(41, 4, "completed", 5, Some(6)),
        job(42, 4, "in_progress", 5, None),
        job(99, 98, "queued", 1, None),
        run("acme/web", 9, "queued", 1, 1),
    ];
    webhook.apply_changes(&first).await.unwrap();
    at_once.apply_changes(&first).await.unwrap();
    // THEN the webhook's table knows of none until the stream is fed to the handler
    assert_eq!(answers(&store).await, [None, None, None]);
    assert!(feed(&mut reader, &store, 100).await >= first.len());
    // AND then answers as the store writing at once: run 3, from 5 run 4, from 6 nothing
    let expected = [Some(t(4)), Some(t(5)), None];
    assert_eq!((answers(&store).await, answers(&at_once).await), (expected, expected));
    assert_eq!(oldest(&store, "acme/web", 0).await, Some(t(1)));
    // WHEN run 3 completes but its job does not, then the job, then run 4's last job
    let steps = [
        (run("acme/api", 3, "completed", 4, 8), [Some(t(4)), Some(t(5)), None]),
        (job(31, 3, "completed", 4, Some(8)), [Some(t(5)), Some(t(5)), None]),
        (job(42, 4, "completed", 5, Some(9)), [None, None, None]),
    ];
    for (change, expected) in steps {
        webhook.apply_changes(std::slice::from_ref(&change)).await.unwrap();
        at_once.apply_changes(std::slice::from_ref(&change)).await.unwrap();
        feed(&mut reader, &store, 100).await;
        // THEN each step answers as the store writing at once does
        assert_eq!((answers(&store).await, answers(&at_once).await), (expected, expected), "{change:?}");
    }
    // AND fed the same records again (a retried batch), nothing changes
    let mut again = StreamReader::of_table(&MotoServer::shared().endpoint, &table).await.unwrap();
    feed(&mut again, &store, 7).await;
    assert_eq!(answers(&store).await, [None, None, None]);
    assert_eq!(oldest(&store, "acme/web", 0).await, Some(t(1)));

    // WHEN a run is queued three weeks later
    let later = 21 * 24 * 60;
    webhook.apply_changes(&[run("acme/api", 5, "queued", later, later)]).await.unwrap();
    feed(&mut reader, &store, 100).await;
    // THEN it is found, and the job of the unknown run (created more than 14 days before) is dropped
    assert_eq!(oldest(&store, "acme/api", 0).await, Some(t(later)));
    let item = client
        .get_item()
        .table_name(&table)
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S("UNFINISHED#acme/api".into()))
        .key("sk", aws_sdk_dynamodb::types::AttributeValue::S("_".into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .unwrap_or_default();
    let mut entries: Vec<&String> = item.keys().filter(|k| k.starts_with("run_") || k.starts_with("job_")).collect();
    entries.sort();
    assert_eq!(entries, ["run_5"]);
}

/// Whether the job `id` of run `run` has a time index entry (gsi1 keys).
async fn indexed(client: &aws_sdk_dynamodb::Client, table: &str, run: i64, id: i64) -> bool {
    use aws_sdk_dynamodb::types::AttributeValue;
    let item = client
        .get_item()
        .table_name(table)
        .key("pk", AttributeValue::S(format!("RUN#{run:020}")))
        .key("sk", AttributeValue::S(format!("WJ#{id:020}")))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .expect("the job's item");
    item.contains_key("gsi1pk")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_webhook_s_jobs_are_found_by_creation_as_a_store_writing_at_once_finds_them() {
    // GIVEN the webhook's store, whose jobs get no time index entry, and on another table a
    // store writing at once (every job in the index)
    let Beside { client, table, webhook, store, at_once, mut reader } = beside().await;
    // WHEN both write run 1 (created at 0) with a job created at 1 and one created 8 hours
    // later (a re-run), run 2 (created at 600) with a job created 5 hours 59 minutes after it,
    // and a job of a run neither store holds
    let (late, apart) = (8 * 60, 600 + 6 * 60 - 1);
    let changes = [
        run("acme/api", 1, "completed", 0, 30),
        job(11, 1, "completed", 1, Some(20)),
        job(12, 1, "completed", late, Some(late + 10)),
        run("acme/api", 2, "completed", 600, 700),
        job(21, 2, "completed", apart, Some(apart + 5)),
        job(99, 98, "queued", 30, None),
    ];
    webhook.apply_changes(&changes).await.unwrap();
    at_once.apply_changes(&changes).await.unwrap();
    let windows = [(-60, 2_000), (0, 5), (late - 1, late + 1), (apart - 1, apart + 1), (20, 40), (0, 600)];
    let jobs = async |s: &DynamoStore, (since, until): (i64, i64)| {
        let rows = s.metric_jobs(&MetricsFilter::window(t(since), t(until))).await.unwrap();
        rows.iter().map(|r| format!("{:?}", r)).collect::<Vec<_>>()
    };
    // THEN before the stream is fed, the jobs near their runs are found, the re-run's not
    // (no run of its window's reach holds it)
    assert_eq!(jobs(&store, (0, 5)).await, jobs(&at_once, (0, 5)).await);
    assert_eq!(jobs(&store, (apart - 1, apart + 1)).await, jobs(&at_once, (apart - 1, apart + 1)).await);
    assert!(jobs(&store, (late - 1, late + 1)).await.is_empty());
    assert!(jobs(&store, (20, 40)).await.is_empty());
    // AND once it is fed, every window reads the same rows in the same order as the store writing at once
    assert!(feed(&mut reader, &store, 100).await >= changes.len());
    for w in windows {
        let expected = jobs(&at_once, w).await;
        assert!(!expected.is_empty(), "{w:?}");
        assert_eq!(jobs(&store, w).await, expected, "{w:?}");
    }
    // AND only the jobs created apart from their run (or of a run not held) got an index entry
    let entries = [
        indexed(&client, &table, 1, 11).await,
        indexed(&client, &table, 1, 12).await,
        indexed(&client, &table, 2, 21).await,
        indexed(&client, &table, 98, 99).await,
    ];
    assert_eq!(entries, [false, true, false, true]);
}

/// The repository item under `name`: (`rev`, `version`, `last_activity_at`).
async fn repo_state(client: &aws_sdk_dynamodb::Client, table: &str, name: &str) -> (i64, String, String) {
    use aws_sdk_dynamodb::types::AttributeValue;
    let item = client
        .get_item()
        .table_name(table)
        .key("pk", AttributeValue::S(format!("REPO#{name}")))
        .key("sk", AttributeValue::S("REPO".into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .expect("the repository's item");
    let text = |a: &str| item.get(a).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
    let rev = item.get("rev").and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok()).unwrap_or(0);
    (rev, text("version"), text("last_activity_at"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_writes_a_repository_s_newest_activity_and_metadata_in_one_write_under_its_current_name() {
    // GIVEN a store as the webhook builds it, and a repository (GitHub id 7) it knows at version 100
    let Beside { client, table, webhook, store, mut reader, .. } = beside().await;
    let at = |s: i64| Utc.timestamp_opt(1_780_000_000 + s, 0).unwrap();
    let delivery = |name: &str, version: i64, active: i64| {
        vec![Change::Repository(Repository {
            id: Some(7),
            version: Some(at(version)),
            activity_at: Some(at(active)),
            default_branch: Some("main".into()),
            ..Repository::named(RepoName::parse(name).unwrap())
        })]
    };
    let stored = outcome(DeliveryStatus::Stored);
    webhook.record_delivery(&claim("d1", "acme/api", 1), &delivery("acme/api", 100, 100), &stored).await.unwrap();
    feed(&mut reader, &store, 100).await;
    let (rev, ..) = repo_state(&client, &table, "acme/api").await;
    // WHEN a batch holds deliveries with a newer version and newer activity
    webhook.record_delivery(&claim("d2", "acme/api", 2), &delivery("acme/api", 300, 300), &stored).await.unwrap();
    webhook.record_delivery(&claim("d3", "acme/api", 3), &delivery("acme/api", 200, 250), &stored).await.unwrap();
    feed(&mut reader, &store, 100).await;
    // THEN the item holds the newest of each, written once (`rev` moves with every write)
    let (after, version, activity) = repo_state(&client, &table, "acme/api").await;
    assert_eq!((after - rev, version.as_str(), activity.as_str()), (1, &*ts(at(300)), &*ts(at(300))));
    // WHEN a batch's metadata is newer than the item's but its activity is not
    webhook.record_delivery(&claim("d4", "acme/api", 4), &delivery("acme/api", 400, 200), &stored).await.unwrap();
    feed(&mut reader, &store, 100).await;
    // THEN the metadata is written and the activity kept
    let (_, version, activity) = repo_state(&client, &table, "acme/api").await;
    assert_eq!((version.as_str(), activity.as_str()), (&*ts(at(400)), &*ts(at(300))));
    // WHEN the repository moves, and a delivery still naming its old name reports newer activity
    store
        .apply_changes(&[Change::RepositoryMoved {
            id: Some(7),
            from: RepoName::parse("acme/api").unwrap(),
            to: RepoName::parse("acme/api2").unwrap(),
            at: at(450),
        }])
        .await
        .unwrap();
    feed(&mut reader, &store, 100).await;
    webhook.record_delivery(&claim("d5", "acme/api", 5), &delivery("acme/api", 400, 500), &stored).await.unwrap();
    feed(&mut reader, &store, 100).await;
    // THEN it lands on the repository's item under its new name
    let (_, _, activity) = repo_state(&client, &table, "acme/api2").await;
    assert_eq!(activity, ts(at(500)));
    assert_eq!(store.stats().await.unwrap().repositories, 1, "counted once");
}

fn ts(t: chrono::DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}
