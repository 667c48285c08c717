//! The notification chain on AWS, end to end on moto: a rule in the table
//! (through the RuleStore port); a signed `pull_request` merge POSTed
//! through the webhook function's Router, which decides the notification
//! into the table (the `NOTE#` item: the outbox); the table's stream read
//! from moto's DynamoDB Streams and handed to ledger-stream's handler, which
//! forwards the new notification to the SQS queue; the queue received and
//! handed to the notifier's handler, as the event source mapping does
//! (messages not listed as failed are deleted) — to a receiver that verifies
//! each request with the independent `standardwebhooks` package.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use aws_sdk_dynamodb::types::AttributeValue::S;
use aws_sdk_sqs::types::QueueAttributeName;
use axum::Router;
use octoscope::adapters::aws::dynamodb::{DynamoStore, create_table};
use octoscope::adapters::clock::SystemClock;
use octoscope::adapters::notify_http::sender;
use octoscope::config::NotifyConfig;
use octoscope::config::aws::WebhookConfig;
use octoscope::domain::*;
use octoscope::ports::{NotificationLog, RuleStore};
use octoscope_ledger_stream::{NotificationQueue, handle_with, message_body};
use octoscope_notifier::{Notifier, handle};
use octoscope_testkit::moto::{MotoServer, StreamReader, archive_stream, secure_parameter, unique};
use octoscope_testkit::receiver::Receiver;
use serde_json::{Value, json};
use tower::ServiceExt as _;

const SECRET: &str = "a-webhook-secret-for-the-chain-tests";
const REPO: &str = "Codertocat/Hello-World";

struct Queues {
    sqs: aws_sdk_sqs::Client,
    url: String,
    dlq: String,
}

struct Chain {
    table: String,
    app: Router,
    store: Arc<DynamoStore>,
    stream: StreamReader,
    queues: Queues,
    notifier: Notifier,
}

/// The queue and its dead-letter queue (`maxReceiveCount` = `max_receives`),
/// as Terraform makes them; `visibility`: the queue's visibility timeout.
async fn queues(sdk: &SdkConfig, max_receives: u32, visibility: u32) -> Queues {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let dlq = sqs.create_queue().queue_name(unique("notifications-dlq")).send().await.unwrap();
    let dlq = dlq.queue_url().unwrap().to_owned();
    let attrs = sqs.get_queue_attributes().queue_url(&dlq).attribute_names(QueueAttributeName::QueueArn).send().await;
    let arn = attrs.unwrap().attributes().unwrap()[&QueueAttributeName::QueueArn].clone();
    let redrive = json!({ "deadLetterTargetArn": arn, "maxReceiveCount": max_receives }).to_string();
    let url = sqs
        .create_queue()
        .queue_name(unique("notifications"))
        .attributes(QueueAttributeName::RedrivePolicy, redrive)
        .attributes(QueueAttributeName::VisibilityTimeout, visibility.to_string())
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_owned();
    Queues { sqs, url, dlq }
}

/// The webhook function, ledger-stream and the notifier over fresh
/// resources; the notifier tries `attempts` times over `horizon` (shorter
/// than `OCTOSCOPE_NOTIFY_HORIZON_SECONDS` admits: the tests wait it out).
async fn chain(attempts: u32, horizon: Duration, visibility: u32) -> Chain {
    let sdk = MotoServer::shared().sdk_config().await;
    let table = unique("octoscope");
    create_table(&aws_sdk_dynamodb::Client::new(&sdk), &table).await.unwrap();
    let bucket = unique("octoscope-archive");
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&sdk).force_path_style(true).build());
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let env: HashMap<&str, String> = HashMap::from([
        ("OCTOSCOPE_TABLE", table.clone()),
        ("OCTOSCOPE_ARCHIVE_STREAM", archive_stream(&sdk, &bucket, "batched/").await.unwrap()),
        ("GITHUB_WEBHOOK_SECRET_PARAM", secure_parameter(&sdk, "webhook-secret", SECRET).await.unwrap()),
    ]);
    let config = WebhookConfig::load(|k| env.get(k).cloned()).unwrap();
    let app = octoscope_webhook::app(&config, octoscope_webhook::Clients::new(&sdk)).await.unwrap();
    let store = Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), &table));
    let stream = StreamReader::of_table(&MotoServer::shared().endpoint, &table).await.unwrap();
    let queues = queues(&sdk, attempts, visibility).await;
    let notify = NotifyConfig { allow_private: true, attempts, horizon, ..NotifyConfig::default() };
    let sender = sender(store.clone(), store.clone(), &notify, None).unwrap();
    let notifier = Notifier::new(store.clone(), sender, queues.sqs.clone(), &queues.url, Arc::new(SystemClock));
    Chain { table, app, store, stream, queues, notifier }
}

/// A merge rule for the example repository, its target `url`; the rule and its secret.
async fn merge_rule(store: &DynamoStore, url: &str) -> (Rule, String) {
    let now = chrono::Utc::now();
    let rule = Rule {
        id: RuleId::generate(),
        event: RuleEvent::PullRequestMerged,
        filters: RuleFilters { repo: Some(RepoName::parse(REPO).unwrap()), ..RuleFilters::default() },
        target: TargetSpec::Webhook { url: url.to_owned() },
        secrets: TargetSecrets::generate(),
        created_at: now,
        updated_at: now,
        disabled: None,
    };
    store.put_rule(&rule).await.unwrap();
    let secret = rule.secrets.0[0].clone();
    (rule, secret)
}

/// GitHub's example `pull_request` `closed` payload, merged, as pull request `number`.
fn merged_pull(number: u64) -> Vec<u8> {
    let mut p: Value =
        serde_json::from_slice(&octoscope_testkit::fixture("pull_request", "closed.payload.json")).unwrap();
    p["number"] = json!(number);
    p["pull_request"]["number"] = json!(number);
    p["pull_request"]["merged"] = json!(true);
    p["pull_request"]["merged_at"] = json!("2019-05-15T15:20:33Z");
    serde_json::to_vec(&p).unwrap()
}

/// POST a signed delivery to the webhook function's Router; (status, answer).
async fn deliver(app: &Router, body: &[u8], guid: &str) -> (u16, Value) {
    let request = axum::http::Request::builder()
        .method("POST")
        .uri("/webhook")
        .header("content-type", "application/json")
        .header("user-agent", "GitHub-Hookshot/octoscope-tests")
        .header("x-github-event", "pull_request")
        .header("x-github-delivery", guid)
        .header("x-github-hook-id", "1")
        .header("x-hub-signature-256", octoscope_testkit::sign(SECRET, body))
        .body(axum::body::Body::from(body.to_vec()))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// Every change of the table's stream since the last call, through
/// ledger-stream's handler with the queue, in batches of up to 100.
async fn stream_to_queue(c: &mut Chain) {
    let queue = NotificationQueue::new(c.queues.sqs.clone(), &c.queues.url);
    loop {
        let event: Event = serde_json::from_value(c.stream.next_batch(100).await.unwrap()).unwrap();
        if event.records.is_empty() {
            return;
        }
        let response = handle_with(&c.store, Some(&queue), event).await;
        assert!(response.batch_item_failures.is_empty(), "{response:?}");
    }
}

/// Up to ten messages of `url`, waiting up to `wait_s` seconds for the first.
async fn receive(sqs: &aws_sdk_sqs::Client, url: &str, wait_s: i32) -> Vec<aws_sdk_sqs::types::Message> {
    let out =
        sqs.receive_message().queue_url(url).max_number_of_messages(10).wait_time_seconds(wait_s).send().await.unwrap();
    out.messages().to_vec()
}

/// One poll of the queue, as the event source mapping makes it: the
/// messages received handed to the notifier, those not listed as failed
/// deleted. How many messages there were.
async fn poll(c: &Chain, wait_s: i32) -> usize {
    let messages = receive(&c.queues.sqs, &c.queues.url, wait_s).await;
    if messages.is_empty() {
        return 0;
    }
    let mut event = SqsEvent::default();
    for m in &messages {
        let mut record = SqsMessage::default();
        record.message_id = m.message_id().map(str::to_owned);
        record.receipt_handle = m.receipt_handle().map(str::to_owned);
        record.body = m.body().map(str::to_owned);
        event.records.push(record);
    }
    let response = handle(&c.notifier, event).await;
    let failed: Vec<&str> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
    for m in &messages {
        if !failed.contains(&m.message_id().unwrap()) {
            let handle = m.receipt_handle().unwrap();
            c.queues.sqs.delete_message().queue_url(&c.queues.url).receipt_handle(handle).send().await.unwrap();
        }
    }
    messages.len()
}

/// The notifications in the table (the log, newest first).
async fn notes(store: &DynamoStore) -> Vec<Notification> {
    let page = store
        .list_notifications(&NotificationFilter::default(), &octoscope::ports::PageRequest::first(100))
        .await
        .unwrap();
    page.items
}

/// Send a message to `url` as ledger-stream does.
async fn send(sqs: &aws_sdk_sqs::Client, url: &str, body: &str) {
    sqs.send_message().queue_url(url).message_body(body).send().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_merge_is_decided_in_the_webhook_forwarded_by_the_stream_and_sent_once_by_the_notifier() {
    // GIVEN the chain, and a merge rule whose target is a verifying receiver
    let mut c = chain(3, Duration::from_secs(3), 30).await;
    // (the secret is made with the rule: the rule first, then the receiver, then the rule pointed at it)
    let (rule, secret) = merge_rule(&c.store, "http://127.0.0.1:9/placeholder").await;
    let receiver = Receiver::start(&secret, &[]);
    let rule = Rule { target: TargetSpec::Webhook { url: receiver.url() }, ..rule };
    c.store.put_rule(&rule).await.unwrap();

    // WHEN GitHub delivers a merged pull request, the same delivery again, and a redelivery of it (a new guid)
    let body = merged_pull(7);
    let guid = uuid::Uuid::new_v4().to_string();
    let (status, answer) = deliver(&c.app, &body, &guid).await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("stored")), "{answer}");
    // THEN the notification is decided in the webhook function: kept, pending, before anything reads the stream
    let kept = notes(&c.store).await;
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!((kept[0].status, kept[0].rule_id.clone()), (NotificationStatus::Pending, rule.id.clone()));
    let (status, answer) = deliver(&c.app, &body, &guid).await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("duplicate")), "{answer}");
    let (status, answer) = deliver(&c.app, &body, &uuid::Uuid::new_v4().to_string()).await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("stored")), "{answer}");
    assert_eq!(notes(&c.store).await.len(), 1);

    // AND the stream, through ledger-stream, puts one message on the queue
    stream_to_queue(&mut c).await;
    let queued = receive(&c.queues.sqs, &c.queues.url, 1).await;
    assert_eq!(queued.len(), 1, "{queued:?}");
    assert_eq!(queued[0].body(), Some(message_body(kept[0].id.as_str()).as_str()));
    // (made visible again for the notifier's poll)
    let handle = queued[0].receipt_handle().unwrap();
    c.queues
        .sqs
        .change_message_visibility()
        .queue_url(&c.queues.url)
        .receipt_handle(handle)
        .visibility_timeout(0)
        .send()
        .await
        .unwrap();

    // WHEN the notifier takes the queue
    assert_eq!(poll(&c, 1).await, 1);

    // THEN the receiver got exactly one notification, signed, verified independently
    let got = receiver.records();
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0]["verified"], true, "{got:#?}");
    assert_eq!(got[0]["headers"]["webhook-id"], kept[0].id.as_str());
    assert_eq!(got[0]["payload"]["type"], "pull_request.merged");
    assert_eq!(got[0]["payload"]["data"]["number"], 7);
    let note = c.store.get_notification(&kept[0].id).await.unwrap().unwrap();
    assert_eq!((note.status, note.attempts), (NotificationStatus::Delivered, 1));
    // AND the queue is empty: the message was acknowledged
    assert_eq!(receive(&c.queues.sqs, &c.queues.url, 1).await.len(), 0);

    // WHEN the message arrives again (a retried stream batch forwards it again) and the stream is read again
    send(&c.queues.sqs, &c.queues.url, &message_body(kept[0].id.as_str())).await;
    stream_to_queue(&mut c).await;
    assert_eq!(poll(&c, 1).await, 1);
    // THEN nothing more is sent, and the message is acknowledged
    assert_eq!(receiver.records().len(), 1);
    assert_eq!(receive(&c.queues.sqs, &c.queues.url, 1).await.len(), 0);
    assert_eq!(receive(&c.queues.sqs, &c.queues.dlq, 0).await.len(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_target_that_keeps_failing_is_tried_as_often_as_configured_with_the_backoff_as_visibility() {
    // GIVEN the chain with three attempts over ≈ 3 s, and a rule whose target always answers 500
    let mut c = chain(3, Duration::from_secs(3), 30).await;
    let (rule, secret) = merge_rule(&c.store, "http://127.0.0.1:9/placeholder").await;
    let receiver = Receiver::start(&secret, &["--status", "500"]);
    c.store.put_rule(&Rule { target: TargetSpec::Webhook { url: receiver.url() }, ..rule }).await.unwrap();

    // WHEN a merge is delivered, forwarded, and the notifier polls the queue as the event source mapping does
    let (status, _) = deliver(&c.app, &merged_pull(8), &uuid::Uuid::new_v4().to_string()).await;
    assert_eq!(status, 200);
    stream_to_queue(&mut c).await;
    let id = notes(&c.store).await[0].id.clone();
    let start = Instant::now();
    let mut polls = Vec::new();
    loop {
        let n = poll(&c, 1).await;
        if n > 0 {
            polls.push(start.elapsed());
        }
        let note = c.store.get_notification(&id).await.unwrap().unwrap();
        if note.status != NotificationStatus::Pending {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "still pending after 60 s: {note:?} {polls:?}");
    }

    // THEN it was tried exactly three times, each a received message, and given up
    let got = receiver.records();
    assert_eq!(got.len(), 3, "{got:#?}");
    assert!(got.iter().all(|r| r["verified"] == true && r["answered"] == 500), "{got:#?}");
    assert_eq!(polls.len(), 3, "{polls:?}");
    let note = c.store.get_notification(&id).await.unwrap().unwrap();
    assert_eq!((note.status, note.attempts), (NotificationStatus::Failed, 3), "{note:?}");
    assert!(note.last_error.as_deref().unwrap_or_default().starts_with("gave up after 3 attempts"), "{note:?}");
    // AND the message waited out each backoff delay (≈ 1 s, then ≈ 2 s, ±20 %) as its visibility
    let attempts = c.store.attempts(&id).await.unwrap();
    assert_eq!(attempts.len(), 3);
    let gaps: Vec<i64> = attempts.windows(2).map(|w| (w[1].at - w[0].at).num_milliseconds()).collect();
    assert!(gaps[0] >= 800 && gaps[1] >= 1600, "{gaps:?}");
    // (and not the queue's own visibility timeout, 30 s)
    assert!(polls[2] < Duration::from_secs(15), "{polls:?}");
    // AND once given up, its message is dead-lettered (its receives spent), nothing left on the queue
    assert_eq!(receive(&c.queues.sqs, &c.queues.url, 3).await.len(), 0);
    let dead = receive(&c.queues.sqs, &c.queues.dlq, 1).await;
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert!(dead[0].body().unwrap().contains(id.as_str()), "{dead:?}");
    // AND the receiver heard nothing more
    assert_eq!(receiver.records().len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_never_settled_is_dead_lettered_and_a_bad_message_is_dropped() {
    // GIVEN the notifier on a queue whose messages return after 1 s and are dead-lettered after 3 receives
    let c = chain(3, Duration::from_secs(3), 1).await;
    // AND a notification whose item cannot be read (a store error every time)
    let broken = NotificationId::derive(&RuleId::generate(), "pull_request.merged:acme/api#1");
    let client = aws_sdk_dynamodb::Client::new(&MotoServer::shared().sdk_config().await);
    client
        .put_item()
        .table_name(&c.table)
        .item("pk", S(format!("NOTE#{broken}")))
        .item("sk", S("_".into()))
        .item("status", S("pending".into()))
        .send()
        .await
        .unwrap();
    send(&c.queues.sqs, &c.queues.url, &message_body(broken.as_str())).await;
    // AND a message that is not a notification's
    send(&c.queues.sqs, &c.queues.url, "not a notification").await;

    // WHEN the notifier polls until something is dead-lettered
    let start = Instant::now();
    let mut received = 0;
    while count(&c, &c.queues.dlq).await == 0 {
        received += poll(&c, 1).await;
        assert!(start.elapsed() < Duration::from_secs(60), "nothing dead-lettered after 60 s ({received} received)");
    }

    // THEN the bad message was dropped at once, the broken one received three times, then dead-lettered
    assert_eq!(received, 1 + 3);
    assert_eq!(count(&c, &c.queues.url).await, 0);
    let dead = receive(&c.queues.sqs, &c.queues.dlq, 1).await;
    assert_eq!(dead.iter().map(|m| m.body().unwrap()).collect::<Vec<_>>(), vec![message_body(broken.as_str())]);
}

/// Messages on queue `url`, visible or not.
async fn count(c: &Chain, url: &str) -> u64 {
    let attrs = c
        .queues
        .sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .unwrap();
    let a = attrs.attributes().unwrap();
    let n = |k: QueueAttributeName| a.get(&k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    n(QueueAttributeName::ApproximateNumberOfMessages) + n(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
}
