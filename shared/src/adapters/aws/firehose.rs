//! The raw archive's write side on AWS: each delivery a record put to an
//! Amazon Data Firehose stream, which batches records into S3 objects
//! (`adapters::aws::s3_batched` reads them back).
//!
//! `put` returns only when Firehose has accepted every record of the delivery
//! (`PutRecord` answered with a record id): Firehose then holds it durably
//! (replicated across availability zones) until it is written to S3, retrying
//! the delivery to S3 for up to 24 hours. So an accepted record is archived,
//! and the webhook acknowledges only after that. A delivery is one record
//! (`PutRecord`) unless its compressed body is over Firehose's 1,000 KiB
//! record limit; then its parts go in order in as few `PutRecordBatch` calls
//! as the limits allow (4 parts of ~1 MB per call). A failed part fails the
//! `put`, and GitHub's redelivery archives the whole delivery again.

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_firehose::Client;
use aws_sdk_firehose::error::ProvideErrorMetadata as _;
use aws_sdk_firehose::primitives::Blob;
use aws_sdk_firehose::types::Record;

use super::archive_record;
use crate::domain::RawDelivery;
use crate::ports::{ArchiveCursor, ArchiveError, RawArchive};

/// Error codes that mean the stream itself is missing or refusing us (a
/// deploy or permission mistake, its KMS key disabled, an expired
/// credential), not that this delivery is wrong: once fixed, the same
/// delivery succeeds, so the webhook answers 5xx and GitHub redelivers.
const OUTAGE_CODES: &[&str] = &[
    "ResourceNotFoundException",
    "AccessDeniedException",
    "InvalidKMSResourceException",
    "InvalidSourceException",
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "ExpiredTokenException",
    "ServiceUnavailableException",
];

/// The raw archive through a Firehose delivery stream.
#[derive(Clone)]
pub struct FirehoseArchive {
    client: Client,
    stream: String,
    reader: Option<Arc<dyn RawArchive>>,
}

impl std::fmt::Debug for FirehoseArchive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FirehoseArchive").field("stream", &self.stream).finish_non_exhaustive()
    }
}

impl FirehoseArchive {
    /// `stream`: the delivery stream's name.
    pub fn new(client: Client, stream: impl Into<String>) -> Self {
        Self { client, stream: stream.into(), reader: None }
    }

    /// Where `scan` reads what the stream delivered (the S3 side, e.g.
    /// `BatchedS3Archive`). Without one, the archive is write-only (the
    /// webhook's case) and `scan` fails saying so.
    pub fn with_reader(mut self, reader: Arc<dyn RawArchive>) -> Self {
        self.reader = Some(reader);
        self
    }

    pub fn stream(&self) -> &str {
        &self.stream
    }

    fn doing(&self, d: &RawDelivery, what: &str) -> String {
        format!("putting delivery {}{what} to Firehose stream {}", d.key.delivery_id, self.stream)
    }
}

/// PutRecordBatch's limits: 500 records and 4 MiB per call.
const BATCH_RECORDS: usize = 500;
const BATCH_BYTES: usize = 4 * 1024 * 1024;

/// Consecutive runs of `lines` within one PutRecordBatch call's limits.
fn batches(lines: &[Vec<u8>]) -> Vec<&[Vec<u8>]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, line) in lines.iter().enumerate() {
        if i > start && (i - start == BATCH_RECORDS || bytes + line.len() > BATCH_BYTES) {
            out.push(&lines[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += line.len();
    }
    if start < lines.len() {
        out.push(&lines[start..]);
    }
    out
}

fn record(line: Vec<u8>) -> Result<Record, ArchiveError> {
    Record::builder()
        .data(Blob::new(line))
        .build()
        .map_err(|e| ArchiveError::Failed(anyhow::Error::new(e).context("building a Firehose record")))
}

#[async_trait]
impl RawArchive for FirehoseArchive {
    async fn put(&self, d: &RawDelivery) -> Result<(), ArchiveError> {
        let lines = archive_record::encode(d).map_err(ArchiveError::Failed)?;
        if let [line] = &lines[..] {
            // The usual case: one delivery, one record.
            return self
                .client
                .put_record()
                .delivery_stream_name(&self.stream)
                .record(record(line.clone())?)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| classify(e, &self.doing(d, "")));
        }
        // A split delivery: its parts in batches, in order, so that they land
        // together in one object (or in consecutive ones at a buffer's edge).
        let parts = lines.len();
        let mut done = 0;
        for batch in batches(&lines) {
            let records = batch.iter().map(|l| record(l.clone())).collect::<Result<Vec<_>, _>>()?;
            let n = records.len();
            let what = format!(" (parts {}-{} of {parts})", done + 1, done + n);
            let out = self
                .client
                .put_record_batch()
                .delivery_stream_name(&self.stream)
                .set_records(Some(records))
                .send()
                .await
                .map_err(|e| classify(e, &self.doing(d, &what)))?;
            if out.failed_put_count() > 0 {
                // Per-record failures are Firehose's ServiceUnavailable or
                // InternalFailure: worth a redelivery. Parts accepted before
                // are left over, and readers skip an incomplete delivery.
                let codes: Vec<&str> = out.request_responses().iter().filter_map(|r| r.error_code()).collect();
                return Err(ArchiveError::Unavailable(anyhow::anyhow!(
                    "{}: {} record(s) refused: {codes:?}",
                    self.doing(d, &what),
                    out.failed_put_count()
                )));
            }
            done += n;
        }
        Ok(())
    }

    async fn scan(
        &self,
        after: Option<&ArchiveCursor>,
        limit: usize,
    ) -> Result<Vec<(ArchiveCursor, RawDelivery)>, ArchiveError> {
        match &self.reader {
            Some(reader) => reader.scan(after, limit).await,
            None => Err(ArchiveError::Failed(anyhow::anyhow!(
                "Firehose stream {} is write-only here: read the archive from its S3 bucket",
                self.stream
            ))),
        }
    }
}

/// A Firehose call's error: retryable when the SDK says so (throttling, 5xx,
/// timeouts) or when the stream itself is missing or refusing us.
fn classify<E, R>(err: aws_smithy_runtime_api::client::result::SdkError<E, R>, doing: &str) -> ArchiveError
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: super::HttpStatus + std::fmt::Debug + Send + Sync + 'static,
{
    let outage = err.code().is_some_and(|c| OUTAGE_CODES.contains(&c));
    let retryable = outage || super::is_retryable(&err);
    let err = anyhow::Error::new(err).context(doing.to_owned());
    if retryable { ArchiveError::Unavailable(err) } else { ArchiveError::Failed(err) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_batched_in_order_within_put_record_batch_limits() {
        let line = vec![b'x'; 1_000_000];
        let lines = vec![line; 9];
        let sizes: Vec<usize> = batches(&lines).iter().map(|b| b.len()).collect();
        assert_eq!(sizes, vec![4, 4, 1]);
        let many = vec![vec![b'x'; 10]; 1001];
        assert_eq!(batches(&many).iter().map(|b| b.len()).collect::<Vec<_>>(), vec![500, 500, 1]);
        assert!(batches(&[]).is_empty());
    }
}
