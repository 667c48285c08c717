//! The raw archive's write side on AWS: each delivery a record put to an
//! Amazon Data Firehose stream, which batches records into S3 objects
//! (`adapters::aws::s3_batched` reads them back).
//!
//! `put` returns only when Firehose has accepted every record of the delivery
//! (`PutRecord` answered with a record id): Firehose then holds it durably
//! (replicated across availability zones) until it is written to S3, retrying
//! the delivery to S3 for up to 24 hours. So an accepted record is archived,
//! and the webhook acknowledges only after that. Records are put one at a time,
//! in part order (a delivery is one record unless its compressed body is over
//! Firehose's 1,000 KiB record limit): a failed part fails the `put`, and
//! GitHub's redelivery archives the whole delivery again.

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
}

#[async_trait]
impl RawArchive for FirehoseArchive {
    async fn put(&self, d: &RawDelivery) -> Result<(), ArchiveError> {
        let lines = archive_record::encode(d).map_err(ArchiveError::Failed)?;
        let parts = lines.len();
        for (i, line) in lines.into_iter().enumerate() {
            let record = Record::builder()
                .data(Blob::new(line))
                .build()
                .map_err(|e| ArchiveError::Failed(anyhow::Error::new(e).context("building a Firehose record")))?;
            self.client.put_record().delivery_stream_name(&self.stream).record(record).send().await.map_err(|e| {
                classify(
                    e,
                    &format!(
                        "putting delivery {} (part {} of {parts}) to Firehose stream {}",
                        d.key.delivery_id,
                        i + 1,
                        self.stream
                    ),
                )
            })?;
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
