//! The raw archive's read side on AWS: the objects a Firehose delivery stream
//! wrote to S3, each many records (`archive_record`, one JSON line per
//! delivery), under time-prefixed keys:
//!
//! `<prefix>YYYY/MM/DD/HH/<stream>-<version>-YYYY-MM-DD-HH-MM-SS-<uuid>[.gz]`
//!
//! the time being when Firehose received the records (UTC). Fixed-width
//! time parts make S3's key order time order, so `ListObjectsV2` with
//! `StartAfter` pages through the archive in order. The cursor is
//! `<object key>#<line>` (the position of a delivery's record), or a bare key
//! prefix such as `<prefix>2026/12/02/13/` to start at an hour
//! ([`BatchedS3Archive::cursor_at`]).
//!
//! A delivery split into parts (a compressed body over Firehose's record
//! limit) is returned at its first part; its other parts, put right after it,
//! are looked for in the same object and the next few, and skipped where the
//! scan meets them. Firehose delivers at least once, so a record can be
//! there twice; `replay` is idempotent under the last-writer-wins rules.

use async_trait::async_trait;
use aws_sdk_s3::Client;

use super::archive_record::{self, ArchiveRecord};
use crate::domain::RawDelivery;
use crate::ports::{ArchiveCursor, ArchiveError, RawArchive};

/// How many objects after a first part are searched for the other parts.
const PART_LOOKAHEAD_OBJECTS: i32 = 3;

/// The batched raw archive in an S3 bucket (read side).
#[derive(Debug, Clone)]
pub struct BatchedS3Archive {
    client: Client,
    bucket: String,
    /// Ends with `/` unless empty.
    prefix: String,
    list_page_size: i32,
}

impl BatchedS3Archive {
    /// `prefix`: the stream's S3 prefix (e.g. `batched/`).
    pub fn new(client: Client, bucket: impl Into<String>, prefix: impl Into<String>) -> Self {
        let mut prefix = prefix.into();
        if !prefix.is_empty() && !prefix.ends_with('/') {
            prefix.push('/');
        }
        Self { client, bucket: bucket.into(), prefix, list_page_size: 1000 }
    }

    /// Keys per `ListObjectsV2` call (1-1000).
    pub fn with_list_page_size(mut self, size: i32) -> Self {
        self.list_page_size = size.clamp(1, 1000);
        self
    }

    /// A cursor from which `scan` reads the objects of hour `at` (UTC) and
    /// after: a time range's start. A delivery received at `t` is in the hour
    /// Firehose received it, `t`'s or, near an hour's end, the next.
    pub fn cursor_at(&self, at: chrono::DateTime<chrono::Utc>) -> ArchiveCursor {
        ArchiveCursor::new(format!("{}{}", self.prefix, at.format("%Y/%m/%d/%H/")))
    }

    async fn list(&self, start_after: Option<String>, max: i32) -> Result<(Vec<String>, bool), ArchiveError> {
        let page = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&self.prefix)
            .set_start_after(start_after)
            .max_keys(max)
            .send()
            .await
            .map_err(|e| super::s3::classify(e, &format!("listing s3://{}/{}", self.bucket, self.prefix)))?;
        let keys: Vec<String> = page.contents().iter().filter_map(|o| o.key().map(str::to_owned)).collect();
        let more = page.is_truncated().unwrap_or(false) && !keys.is_empty();
        Ok((keys, more))
    }

    async fn records(&self, key: &str) -> Result<Vec<ArchiveRecord>, ArchiveError> {
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| super::s3::classify(e, &format!("reading s3://{}/{key}", self.bucket)))?;
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| ArchiveError::Unavailable(anyhow::Error::new(e).context(format!("reading {key}"))))?
            .into_bytes();
        archive_record::decode_object(key, &bytes).map_err(ArchiveError::Failed)
    }

    /// The delivery whose first part is `first` (in object `key`, whose
    /// records are `here`): the parts from this object and the next few.
    async fn gather(
        &self,
        key: &str,
        here: &[ArchiveRecord],
        first: &ArchiveRecord,
    ) -> Result<Option<RawDelivery>, ArchiveError> {
        let id = first.identity();
        let mut parts: Vec<ArchiveRecord> = Vec::new();
        let take = |parts: &mut Vec<ArchiveRecord>, records: &[ArchiveRecord]| {
            for r in records.iter().filter(|r| r.identity() == id) {
                if !parts.iter().any(|p| p.part == r.part) {
                    parts.push(r.clone());
                }
            }
        };
        take(&mut parts, here);
        if parts.len() < first.parts as usize {
            let (next, _) = self.list(Some(key.to_owned()), PART_LOOKAHEAD_OBJECTS).await?;
            for k in next {
                take(&mut parts, &self.records(&k).await?);
                if parts.len() >= first.parts as usize {
                    break;
                }
            }
        }
        if parts.len() < first.parts as usize {
            // Only a put that failed part-way leaves this: its delivery was
            // answered 5xx and archived whole by the redelivery.
            tracing::warn!(
                delivery = first.delivery,
                object = key,
                found = parts.len(),
                parts = first.parts,
                "skipping an incomplete archived delivery"
            );
            return Ok(None);
        }
        archive_record::assemble(parts).map(Some).map_err(ArchiveError::Failed)
    }
}

/// `<key>#<line>` → (key, Some(line)); any other string → (it, None).
fn parse_cursor(c: &str) -> (String, Option<usize>) {
    match c.rsplit_once('#') {
        Some((key, line)) if !line.is_empty() && line.bytes().all(|b| b.is_ascii_digit()) => {
            (key.to_owned(), line.parse().ok())
        }
        _ => (c.to_owned(), None),
    }
}

#[async_trait]
impl RawArchive for BatchedS3Archive {
    /// The write side is the Firehose stream (`FirehoseArchive`).
    async fn put(&self, d: &RawDelivery) -> Result<(), ArchiveError> {
        Err(ArchiveError::Failed(anyhow::anyhow!(
            "delivery {}: the batched archive is written through its Firehose stream",
            d.key.delivery_id
        )))
    }

    async fn scan(
        &self,
        after: Option<&ArchiveCursor>,
        limit: usize,
    ) -> Result<Vec<(ArchiveCursor, RawDelivery)>, ArchiveError> {
        let (mut start_after, mut resume) = match after {
            Some(c) if c.as_str().starts_with(&self.prefix) => {
                let (key, line) = parse_cursor(c.as_str());
                (Some(key.clone()), line.map(|l| (key, l)))
            }
            Some(c) => {
                return Err(ArchiveError::Failed(anyhow::anyhow!(
                    "archive cursor {:?} is not one this archive returned",
                    c.as_str()
                )));
            }
            None => (None, None),
        };
        let mut out = Vec::new();
        loop {
            // The object the cursor is in (from the line after it), then the next page of keys.
            let (keys, more) = match resume.take() {
                Some((key, line)) => (vec![(key, line + 1)], true),
                None => {
                    let (keys, more) = self.list(start_after.clone(), self.list_page_size).await?;
                    (keys.into_iter().map(|k| (k, 0)).collect(), more)
                }
            };
            for (key, from) in &keys {
                let records = self.records(key).await?;
                for (n, r) in records.iter().enumerate().skip(*from) {
                    let delivery = if r.parts <= 1 {
                        Some(archive_record::assemble(vec![r.clone()]).map_err(ArchiveError::Failed)?)
                    } else if r.part == 0 {
                        self.gather(key, &records, r).await?
                    } else {
                        None // returned at its first part
                    };
                    if let Some(d) = delivery {
                        out.push((ArchiveCursor::new(format!("{key}#{n}")), d));
                        if out.len() >= limit {
                            return Ok(out);
                        }
                    }
                }
                start_after = Some(key.clone());
            }
            if !more {
                return Ok(out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_cursor;

    #[test]
    fn a_cursor_is_a_key_and_line_or_a_key_prefix() {
        assert_eq!(parse_cursor("batched/2026/12/02/13/s-1-x#12"), ("batched/2026/12/02/13/s-1-x".into(), Some(12)));
        assert_eq!(parse_cursor("batched/2026/12/02/13/"), ("batched/2026/12/02/13/".into(), None));
        assert_eq!(parse_cursor("batched/a#b"), ("batched/a#b".into(), None));
    }
}
