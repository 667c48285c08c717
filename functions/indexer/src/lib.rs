//! The indexer function: the table's DynamoDB stream (new and old images) →
//! the search index on Amazon OpenSearch Service (shared/docs/search.md).
//! Each record's images are read back as the changes that wrote them
//! ([`searchable_change`]); items without a search document are skipped; the
//! batch goes to the index by its net effect per document
//! ([`IndexerService::apply`]), each document under external versioning, so
//! a replayed or reordered record never regresses one.
//!
//! Failures, through the stream's batch item failures
//! (`ReportBatchItemFailures` on the event source mapping):
//! - a record whose image does not decode (a poisoned record): the records
//!   before it are indexed and it is reported, so the mapping retries from it,
//!   bisects, and finally sends it to the on-failure destination; the records
//!   after it are indexed once it is set aside;
//! - the index or the table failing: the batch's first record is reported
//!   and the whole batch is tried again (idempotent).

use std::collections::HashMap;

use anyhow::Context as _;
use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use octoscope::adapters::aws::dynamodb::searchable_change;
use octoscope::error::error_chain;
use octoscope::services::indexer::{IndexerService, RowChange};

/// One record's row change: its old and new images, each read back as the
/// change that wrote it (None where absent or without a search document).
pub fn row_change(record: &EventRecord) -> anyhow::Result<RowChange> {
    let read = |image: &serde_dynamo::Item, which: &str| -> anyhow::Result<_> {
        if image.is_empty() {
            return Ok(None);
        }
        searchable_change(&HashMap::from(image.clone())).with_context(|| format!("the record's {which} image"))
    };
    Ok(RowChange { old: read(&record.change.old_image, "old")?, new: read(&record.change.new_image, "new")? })
}

fn failure(record: &EventRecord) -> DynamoDbBatchItemFailure {
    let mut f = DynamoDbBatchItemFailure::default();
    f.item_identifier = record.change.sequence_number.clone();
    f
}

/// The Lambda handler: the batch indexed up to its first poisoned record (if
/// any, reported), or its first record reported when indexing failed.
pub async fn handle(service: &IndexerService, event: Event) -> DynamoDbEventResponse {
    let mut response = DynamoDbEventResponse::default();
    let mut rows = Vec::with_capacity(event.records.len());
    let mut poisoned = None;
    for record in &event.records {
        match row_change(record) {
            Ok(row) => rows.push(row),
            Err(e) => {
                tracing::error!(
                    sequence_number = record.change.sequence_number.as_deref().unwrap_or_default(),
                    error = %error_chain(e.as_ref()),
                    "a stream record does not read as a stored entity; it is reported (retried, then set aside)"
                );
                poisoned = Some(record);
                break;
            }
        }
    }
    match service.apply(&rows).await {
        Ok(done) => {
            tracing::info!(
                records = rows.len(),
                upserted = done.upserted,
                deleted = done.deleted,
                "search index updated"
            );
            if let Some(record) = poisoned {
                response.batch_item_failures.push(failure(record));
            }
        }
        Err(e) => {
            tracing::error!(
                records = event.records.len(),
                retryable = e.is_retryable(),
                error = %error_chain(&e),
                "search index not updated; the batch is tried again"
            );
            if let Some(first) = event.records.first() {
                response.batch_item_failures.push(failure(first));
            }
        }
    }
    response
}
