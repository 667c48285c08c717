//! The ledger-stream function: the table's DynamoDB stream, new and old
//! images, in batches: the metric rollup cells of the pull requests, runs and
//! jobs changed ([`DynamoStore::refresh_rollups`]), then, through
//! [`DynamoStore::apply_stream`], the delivery listing pages and delivery
//! counts of the ledger items the webhook function wrote marked (every other
//! change is skipped). The webhook's path then
//! writes one ledger item per delivery and nothing that only serves listings
//! or counts; those lag by the batching window (`shared/docs/dynamodb.md`).
//!
//! A batch is derived whole or not at all: on a failure the answer names the
//! batch's first record (`batchItemFailures`, with `ReportBatchItemFailures`
//! on the event source mapping), so the batch is tried again (bisected, then
//! sent to the on-failure destination after the mapping's retries).

use std::collections::HashMap;

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use octoscope::adapters::aws::dynamodb::{DynamoStore, ItemChange};
use octoscope::error::error_chain;

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

/// A batch's rollup cells first (recomputed from rows, so a retried batch
/// writes nothing new), then its listing pages and counts (whose counter
/// `ADD` is the one write a retry would repeat).
async fn derive(store: &DynamoStore, changes: &[ItemChange]) -> Result<(), octoscope::ports::StoreError> {
    let rollups = store.refresh_rollups(changes.iter().map(|c| (c.old.as_ref(), c.new.as_ref()))).await?;
    if rollups.recomputed > 0 {
        tracing::info!(
            recomputed = rollups.recomputed,
            written = rollups.written,
            deleted = rollups.deleted,
            "rollup cells refreshed"
        );
    }
    store.apply_stream(changes).await
}

/// The Lambda handler: the whole batch derived, or its first record reported.
pub async fn handle(store: &DynamoStore, event: Event) -> DynamoDbEventResponse {
    let changes: Vec<ItemChange> = event.records.iter().map(change).collect();
    let mut response = DynamoDbEventResponse::default();
    match derive(store, &changes).await {
        Ok(()) => tracing::info!(records = changes.len(), "ledger changes and rollups derived"),
        Err(e) => {
            let retryable = e.is_retryable();
            tracing::error!(records = changes.len(), retryable, error = %error_chain(&e), "ledger changes not derived; the batch is tried again");
            let first = event.records.first().and_then(|r| r.change.sequence_number.clone());
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = first;
            response.batch_item_failures.push(failure);
        }
    }
    response
}
