//! The ledger-stream function: the table's DynamoDB stream, new and old
//! images, in batches: the metric rollup cells of the pull requests, runs and
//! jobs changed, marked for the next settle ([`DynamoStore::mark_rollups`]),
//! where each repository's
//! unfinished runs begin ([`DynamoStore::apply_unfinished`]), the time index
//! entries of the jobs created apart from their run
//! ([`DynamoStore::index_apart_jobs`]), then, through
//! [`DynamoStore::apply_stream`], the delivery listing pages and delivery
//! counts of the ledger items the webhook function wrote marked (every other
//! change is skipped). The webhook's path then
//! writes one ledger item per delivery and nothing that only serves listings
//! or counts; those lag by the batching window (`shared/docs/dynamodb.md`).
//!
//! Before deriving, each newly created notification (a `NOTE#` item
//! inserted: decided by the webhook function, the integrity check, the batch
//! job or a rule's test through the API) is forwarded to the notification
//! queue ([`NotificationQueue`], `OCTOSCOPE_NOTIFY_QUEUE_URL`), its message
//! `{"id": "ntf_…"}`, for the notifier. The table is the outbox; the stream
//! is how a kept decision reaches the queue (shared/docs/notifications.md,
//! "On AWS").
//!
//! A batch is forwarded and derived whole or not at all: on a failure the
//! answer names the batch's first record (`batchItemFailures`, with
//! `ReportBatchItemFailures` on the event source mapping), so the batch is
//! tried again (bisected, then sent to the on-failure destination after the
//! mapping's retries). Forwarding comes first: a batch retried because its
//! derivation failed sends its notifications again, which the notifier
//! takes once (it sends a notification only while it is pending), whereas
//! the derivation's counter `ADD` is not repeated for a forwarding failure.
//!
//! On its schedule (EventBridge Scheduler, every few minutes) the function
//! settles the marks ([`settle`]): the marked cells recomputed from their
//! days' rows, so a busy day's rows are read once a settle, not once a
//! stream batch (shared/docs/metrics.md, "Rollups").

use std::collections::HashMap;

use anyhow::Context as _;
use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use octoscope::adapters::aws::dynamodb::{DynamoStore, ItemChange, RollupsSettled};

/// Entries per `SendMessageBatch` (SQS's limit).
const MAX_BATCH_ENTRIES: usize = 10;

/// The change one stream record reports. DynamoDB's TTL deletions are
/// records of the service principal `dynamodb.amazonaws.com`.
pub fn change(record: &EventRecord) -> ItemChange {
    let image = |i: &serde_dynamo::Item| (!i.is_empty()).then(|| HashMap::from(i.clone()));
    let expired = record
        .user_identity
        .as_ref()
        .is_some_and(|u| u.type_ == "Service" && u.principal_id == "dynamodb.amazonaws.com");
    ItemChange { old: image(&record.change.old_image), new: image(&record.change.new_image), expired }
}

/// A batch's rollup mark first (the cells it changes, recomputed by the
/// next settle: a retried batch marks them again, which settles to the
/// same cells), its repositories' unfinished runs and jobs (set and
/// removed as the images say: the same again on a retry), the index entries
/// of its jobs created apart from their run (the same again), then its listing
/// pages and counts (whose counter `ADD` is the one write a retry would
/// repeat).
async fn derive(store: &DynamoStore, changes: &[ItemChange]) -> Result<(), octoscope::ports::StoreError> {
    let marked =
        store.mark_rollups(changes.iter().map(|c| (c.old.as_ref(), c.new.as_ref())), chrono::Utc::now()).await?;
    if marked > 0 {
        tracing::info!(marked, "rollup cells marked for the next settle");
    }
    store.apply_unfinished(changes).await?;
    let indexed = store.index_apart_jobs(changes).await?;
    if indexed > 0 {
        tracing::info!(indexed, "jobs created apart from their run indexed by time");
    }
    store.apply_stream(changes).await
}

/// The notification queue (SQS): one message per new notification.
#[derive(Debug, Clone)]
pub struct NotificationQueue {
    client: aws_sdk_sqs::Client,
    url: String,
}

impl NotificationQueue {
    pub fn new(client: aws_sdk_sqs::Client, url: impl Into<String>) -> Self {
        Self { client, url: url.into() }
    }

    /// Send one message per id, `{"id": "ntf_…"}`, in batches of up to ten.
    /// An entry SQS refuses fails the whole call (the stream batch is tried
    /// again, and every id sent again: the notifier takes each once).
    pub async fn send(&self, ids: &[String]) -> anyhow::Result<()> {
        for chunk in ids.chunks(MAX_BATCH_ENTRIES) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, id)| {
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(message_body(id))
                        .build()
                        .context("a SendMessageBatch entry")
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let out = self
                .client
                .send_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .with_context(|| format!("SendMessageBatch to {}", self.url))?;
            if let Some(first) = out.failed().first() {
                anyhow::bail!(
                    "SendMessageBatch to {}: {} of {} messages refused (first: {} {})",
                    self.url,
                    out.failed().len(),
                    chunk.len(),
                    first.code(),
                    first.message().unwrap_or_default()
                );
            }
        }
        Ok(())
    }
}

/// A notification message's body: `{"id": "ntf_…"}`.
pub fn message_body(id: &str) -> String {
    serde_json::json!({ "id": id }).to_string()
}

fn text<'a>(item: &'a HashMap<String, AttributeValue>, name: &str) -> Option<&'a str> {
    item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str)
}

/// The ids of the notifications a batch creates: each `NOTE#{id}` / `_`
/// item inserted (its attempts, `AT#…` in the same partition, and later
/// changes of it are not new notifications), once each, in stream order.
pub fn new_notifications(changes: &[ItemChange]) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for c in changes {
        let (None, Some(new)) = (&c.old, &c.new) else { continue };
        let Some(id) = text(new, "pk").and_then(|pk| pk.strip_prefix("NOTE#")) else { continue };
        if text(new, "sk") == Some("_") && !id.is_empty() && !ids.iter().any(|i| i == id) {
            ids.push(id.to_owned());
        }
    }
    ids
}

/// Forward the batch's new notifications (when there is a queue), then derive.
async fn process(
    store: &DynamoStore,
    queue: Option<&NotificationQueue>,
    changes: &[ItemChange],
) -> anyhow::Result<usize> {
    let mut forwarded = 0;
    if let Some(queue) = queue {
        let ids = new_notifications(changes);
        if !ids.is_empty() {
            queue.send(&ids).await.context("forwarding new notifications")?;
            forwarded = ids.len();
            tracing::info!(forwarded, "new notifications forwarded to the queue");
        }
    }
    derive(store, changes).await.map_err(|e| {
        let retryable = e.is_retryable();
        anyhow::Error::new(e).context(format!("ledger changes not derived (retryable: {retryable})"))
    })?;
    Ok(forwarded)
}

/// The scheduled settle at `at`: the rollup cells the stream's batches
/// marked (at least a minute before) recomputed from their rows, one settle
/// at a time; `owner` names this invocation in the lock, held for `hold` at
/// most (the invocation's time left). A settle that finds the lock held
/// does nothing: the marks wait for the next.
pub async fn settle(
    store: &DynamoStore,
    owner: &str,
    at: chrono::DateTime<chrono::Utc>,
    hold: chrono::TimeDelta,
) -> anyhow::Result<Option<RollupsSettled>> {
    let settled = store.settle_rollups(owner, at, hold).await.map_err(|e| {
        let retryable = e.is_retryable();
        let e = anyhow::Error::new(e).context(format!("rollups not settled (retryable: {retryable})"));
        tracing::error!(error = format!("{e:#}"), "the settle failed; Lambda invokes it again");
        e
    })?;
    match &settled {
        Some(s) if s.marks > 0 => tracing::info!(
            marks = s.marks,
            recomputed = s.refreshed.recomputed,
            written = s.refreshed.written,
            deleted = s.refreshed.deleted,
            "rollup cells settled"
        ),
        Some(_) => {}
        None => tracing::info!("another settle holds the lock; the marks wait for the next"),
    }
    Ok(settled)
}

/// What invoked the function: its table stream's batch, or its schedule
/// (an EventBridge Scheduler event, `detail-type` `Scheduled Event`, at
/// its scheduled `time`; now if it has none).
#[derive(Debug)]
pub enum Invocation {
    Stream(Event),
    Schedule { at: chrono::DateTime<chrono::Utc> },
}

impl Invocation {
    /// The invocation a payload is; an error naming what it is not.
    pub fn parse(payload: serde_json::Value) -> anyhow::Result<Invocation> {
        if payload.get("Records").is_some() {
            return Ok(Invocation::Stream(serde_json::from_value(payload).context("a DynamoDB stream event")?));
        }
        match payload.get("detail-type").and_then(|v| v.as_str()) {
            Some("Scheduled Event") => {
                let at = payload.get("time").and_then(|t| t.as_str()).and_then(|t| t.parse().ok());
                Ok(Invocation::Schedule { at: at.unwrap_or_else(chrono::Utc::now) })
            }
            other => anyhow::bail!(
                "neither a DynamoDB stream batch (no Records) nor a scheduled event (detail-type {other:?})"
            ),
        }
    }
}

/// One invocation (`context`: its request id and deadline): a stream batch
/// handled ([`handle_with`]; its answer names a failed batch), or a settle
/// ([`settle`], holding its lock no longer than the invocation can run; its
/// summary, or an error that fails the invocation).
pub async fn invoke(
    store: &DynamoStore,
    queue: Option<&NotificationQueue>,
    payload: serde_json::Value,
    context: &lambda_runtime::Context,
) -> anyhow::Result<serde_json::Value> {
    match Invocation::parse(payload)? {
        Invocation::Stream(event) => Ok(serde_json::to_value(handle_with(store, queue, event).await)?),
        Invocation::Schedule { at } => {
            let left = chrono::TimeDelta::milliseconds(context.deadline as i64 - chrono::Utc::now().timestamp_millis());
            let settled = settle(store, &context.request_id, at, left.max(chrono::TimeDelta::seconds(10))).await?;
            Ok(serde_json::json!({
                "settled": settled.is_some(),
                "marks": settled.map_or(0, |s| s.marks),
                "dropped": settled.map_or(0, |s| s.dropped),
                "recomputed": settled.map_or(0, |s| s.refreshed.recomputed),
            }))
        }
    }
}

/// The Lambda handler without a notification queue: the whole batch
/// derived, or its first record reported.
pub async fn handle(store: &DynamoStore, event: Event) -> DynamoDbEventResponse {
    handle_with(store, None, event).await
}

/// The Lambda handler: the batch's new notifications forwarded to `queue`
/// and the whole batch derived, or its first record reported.
pub async fn handle_with(
    store: &DynamoStore,
    queue: Option<&NotificationQueue>,
    event: Event,
) -> DynamoDbEventResponse {
    let changes: Vec<ItemChange> = event.records.iter().map(change).collect();
    let mut response = DynamoDbEventResponse::default();
    match process(store, queue, &changes).await {
        Ok(_) => tracing::info!(records = changes.len(), "ledger changes and rollups derived"),
        Err(e) => {
            tracing::error!(records = changes.len(), error = format!("{e:#}"), "the batch failed; it is tried again");
            let first = event.records.first().and_then(|r| r.change.sequence_number.clone());
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = first;
            response.batch_item_failures.push(failure);
        }
    }
    response
}
