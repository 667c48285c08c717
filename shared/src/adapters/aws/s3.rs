//! The raw archive on S3: one zstd-compressed object per delivery, keyed so
//! that S3's own key order is archive order.
//!
//! Key: `<prefix>raw/<YYYY-MM-DD>/<HHMMSS.ffffff>Z/<hook id>/<delivery id>.json.zst`,
//! the time being the delivery's `received_at` in UTC. Keys of a fixed width
//! sort as time sorts, so `ListObjectsV2` (which lists in key order) with
//! `StartAfter = <last key seen>` pages through the archive in order, and the
//! last key is the scan cursor. The day level is where a later compaction
//! (not built; see docs/aws-adapters.md) would merge a day's objects.
//!
//! `put` is one `PutObject` with `If-None-Match: *`: the object is written
//! once, never overwritten; a second put of the same delivery (same key) gets
//! 412 and is a success (already durable). The webhook acknowledges only after
//! `put` returns, so nothing is batched in memory.

use anyhow::Context as _;
use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::error::ProvideErrorMetadata as _;
use aws_sdk_s3::primitives::ByteStream;

use crate::domain::*;
use crate::ports::{ArchiveCursor, ArchiveError, RawArchive};

/// zstd level: the local archive's too (fast, ~8-10x on webhook JSON).
const ZSTD_LEVEL: i32 = 3;
/// How many objects `scan` fetches at once.
const GET_CONCURRENCY: usize = 16;

const META_EVENT: &str = "event";
const META_RECEIVED_AT: &str = "received-at";
const META_CONTENT_TYPE: &str = "content-type";

/// Error codes that mean the archive itself is missing or refusing us (a
/// deploy or permission mistake, an expired credential), not that this
/// delivery is wrong: once it is fixed the same delivery succeeds, so the
/// webhook answers 5xx and GitHub (or the integrity check) redelivers.
const OUTAGE_CODES: &[&str] = &[
    "NoSuchBucket",
    "AccessDenied",
    "AllAccessDisabled",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "TokenRefreshRequired",
    "AccountProblem",
    "ConditionalRequestConflict",
];

/// The raw archive in an S3 bucket.
#[derive(Debug, Clone)]
pub struct S3Archive {
    client: Client,
    bucket: String,
    /// Ends with `/` unless empty.
    prefix: String,
    list_page_size: i32,
}

impl S3Archive {
    /// `prefix`: where in the bucket (e.g. `archive/`; empty for the root).
    pub fn new(client: Client, bucket: impl Into<String>, prefix: impl Into<String>) -> Self {
        let mut prefix = prefix.into();
        if !prefix.is_empty() && !prefix.ends_with('/') {
            prefix.push('/');
        }
        Self { client, bucket: bucket.into(), prefix, list_page_size: 1000 }
    }

    /// Keys per `ListObjectsV2` call (1-1000; S3's maximum is the default).
    pub fn with_list_page_size(mut self, size: i32) -> Self {
        self.list_page_size = size.clamp(1, 1000);
        self
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The object key of a delivery (deterministic: the same delivery, the same key).
    pub fn object_key(&self, d: &RawDelivery) -> String {
        format!(
            "{}raw/{}/{}Z/{}/{}.json.zst",
            self.prefix,
            d.received_at.format("%Y-%m-%d"),
            d.received_at.format("%H%M%S%.6f"),
            d.key.hook_id,
            d.key.delivery_id
        )
    }

    fn raw_prefix(&self) -> String {
        format!("{}raw/", self.prefix)
    }

    async fn get(&self, key: String) -> Result<RawDelivery, ArchiveError> {
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&key)
            .send()
            .await
            .map_err(|e| classify(e, &format!("reading s3://{}/{key}", self.bucket)))?;
        let meta = out.metadata().cloned().unwrap_or_default();
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| ArchiveError::Unavailable(anyhow::Error::new(e).context(format!("reading {key}"))))?
            .into_bytes();
        decode(&key, &meta, &bytes).map_err(ArchiveError::Failed)
    }
}

#[async_trait]
impl RawArchive for S3Archive {
    async fn put(&self, d: &RawDelivery) -> Result<(), ArchiveError> {
        let key = self.object_key(d);
        let body = zstd::bulk::compress(&d.body, ZSTD_LEVEL)
            .with_context(|| format!("compressing delivery {}", d.key.delivery_id))
            .map_err(ArchiveError::Failed)?;
        let mut req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .if_none_match("*")
            .content_type("application/zstd")
            .metadata(META_EVENT, d.event.as_str())
            .metadata(META_RECEIVED_AT, d.received_at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
            .body(ByteStream::from(body));
        if let Some(ct) = d.content_type.as_deref().filter(|ct| ct.is_ascii()) {
            req = req.metadata(META_CONTENT_TYPE, ct);
        }
        match req.send().await {
            Ok(_) => Ok(()),
            // Already archived: the object is written once and never changed.
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 412) => Ok(()),
            Err(e) => Err(classify(e, &format!("writing s3://{}/{key}", self.bucket))),
        }
    }

    async fn scan(
        &self,
        after: Option<&ArchiveCursor>,
        limit: usize,
    ) -> Result<Vec<(ArchiveCursor, RawDelivery)>, ArchiveError> {
        let prefix = self.raw_prefix();
        let mut start_after = match after {
            Some(c) if c.as_str().starts_with(&prefix) => Some(c.as_str().to_owned()),
            Some(c) => {
                return Err(ArchiveError::Failed(anyhow::anyhow!(
                    "archive cursor {:?} is not one this archive returned",
                    c.as_str()
                )));
            }
            None => None,
        };
        // 1. The next `limit` keys, in key order, over as many list pages as needed.
        let mut keys = Vec::new();
        while keys.len() < limit {
            let want = (limit - keys.len()).min(self.list_page_size as usize) as i32;
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(&prefix)
                .set_start_after(start_after.clone())
                .max_keys(want)
                .send()
                .await
                .map_err(|e| classify(e, &format!("listing s3://{}/{prefix}", self.bucket)))?;
            let before = keys.len();
            keys.extend(page.contents().iter().filter_map(|o| o.key().map(str::to_owned)));
            if keys.len() == before {
                break;
            }
            start_after = keys.last().cloned();
            if !page.is_truncated().unwrap_or(false) {
                break;
            }
        }
        keys.truncate(limit);
        // 2. Fetch them, a few at a time, answering in key order.
        let mut out = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(GET_CONCURRENCY) {
            let mut set = tokio::task::JoinSet::new();
            for (i, key) in chunk.iter().enumerate() {
                let (this, key) = (self.clone(), key.clone());
                set.spawn(async move { (i, key.clone(), this.get(key).await) });
            }
            let mut fetched: Vec<(usize, String, RawDelivery)> = Vec::with_capacity(chunk.len());
            while let Some(done) = set.join_next().await {
                let (i, key, result) = done.map_err(|e| ArchiveError::Failed(e.into()))?;
                fetched.push((i, key, result?));
            }
            fetched.sort_by_key(|(i, ..)| *i);
            out.extend(fetched.into_iter().map(|(_, key, d)| (ArchiveCursor::new(key), d)));
        }
        Ok(out)
    }
}

/// An S3 call's error: retryable when the SDK says so (throttling, 5xx,
/// timeouts) or when the archive itself is missing or refusing us.
pub(super) fn classify<E, R>(err: aws_smithy_runtime_api::client::result::SdkError<E, R>, doing: &str) -> ArchiveError
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: super::HttpStatus + std::fmt::Debug + Send + Sync + 'static,
{
    let outage = err.code().is_some_and(|c| OUTAGE_CODES.contains(&c));
    let retryable = outage || super::is_retryable(&err);
    let err = anyhow::Error::new(err).context(doing.to_owned());
    if retryable { ArchiveError::Unavailable(err) } else { ArchiveError::Failed(err) }
}

/// An object back into a delivery: the key names the delivery, the metadata
/// its event, exact arrival time and content type.
fn decode(key: &str, meta: &std::collections::HashMap<String, String>, bytes: &[u8]) -> anyhow::Result<RawDelivery> {
    let name = key.rsplit('/').next().unwrap_or_default();
    let hook = key.rsplit('/').nth(1).unwrap_or_default();
    let delivery = name.strip_suffix(".json.zst").with_context(|| format!("archive object {key} is not a delivery"))?;
    let event = meta.get(META_EVENT).with_context(|| format!("archive object {key} has no event"))?;
    let received_at = meta.get(META_RECEIVED_AT).with_context(|| format!("archive object {key} has no received-at"))?;
    let body = zstd::stream::decode_all(bytes).with_context(|| format!("decompressing archive object {key}"))?;
    Ok(RawDelivery {
        key: DeliveryKey { hook_id: HookId::parse(hook)?, delivery_id: DeliveryId::parse(delivery)? },
        event: EventName::parse(event)?,
        received_at: chrono::DateTime::parse_from_rfc3339(received_at)
            .with_context(|| format!("archive object {key}: received-at {received_at:?}"))?
            .with_timezone(&chrono::Utc),
        content_type: meta.get(META_CONTENT_TYPE).cloned(),
        body,
    })
}
