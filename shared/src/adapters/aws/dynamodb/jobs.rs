//! [`JobStore`] and [`Locks`] on DynamoDB: resync jobs, their checkpoints, and
//! expiring locks.

use anyhow::Context as _;
use async_trait::async_trait;

use super::DynamoStore;
use super::codec::*;
use super::ops::{Query, Range, corrupt};
use super::store::{MAX_TEXT, Take, cursor, epoch, views};
use crate::domain::*;
use crate::ports::*;

/// Each skipped item's text is cut to this many bytes (the item stays small).
const MAX_SKIPPED_TEXT: usize = 1024;

fn job_record(i: &Item) -> anyhow::Result<JobRecord> {
    let target: Target = serde_json::from_str(&i.req_str("target")?).context("stored job target")?;
    let kinds: Vec<GapKind> = serde_json::from_str(&i.req_str("kinds")?).context("stored job kinds")?;
    Ok(JobRecord {
        id: i.req_str("id")?,
        target,
        kinds,
        watermark: i.time("watermark")?,
        state: JobState::parse(&i.req_str("state")?).unwrap_or(JobState::Failed),
        created_at: i.req_time("created_at")?,
        started_at: i.time("started_at")?,
        finished_at: i.time("finished_at")?,
        written: i.num("written").unwrap_or(0),
        requests: i.num("requests").unwrap_or(0),
        requests_by_installation: counts_of(i, "requests_by_installation"),
        skipped: i.strings("skipped"),
        error: i.str("error"),
    })
}

#[async_trait]
impl JobStore for DynamoStore {
    async fn save_job(&self, job: &JobRecord) -> Result<(), StoreError> {
        let target =
            serde_json::to_string(&job.target).context("serialising a target").map_err(StoreError::Internal)?;
        let kinds = serde_json::to_string(&job.kinds).context("serialising kinds").map_err(StoreError::Internal)?;
        let mut u = Update::default();
        u.init("id", s(&job.id)).init("target", s(target)).init("kinds", s(kinds));
        if let Some(w) = &job.watermark {
            u.init("watermark", t(w));
        }
        u.init("created_at", t(&job.created_at)).init("gsi1pk", s(key::RESYNC_JOBS));
        u.init("gsi1sk", s(format!("{}#{}", ts(&job.created_at), job.id)));
        u.set("state", s(job.state.as_str())).set_or_remove("started_at", job.started_at.as_ref().map(t));
        u.set_or_remove("finished_at", job.finished_at.as_ref().map(t));
        u.set("written", n(job.written)).set("requests", n(job.requests));
        u.set_or_remove("requests_by_installation", counts(&job.requests_by_installation));
        u.set_or_remove("error", job.error.as_deref().map(|e| s(bounded(e, MAX_TEXT))));
        let skipped: Vec<String> =
            job.skipped.iter().take(JobRecord::MAX_SKIPPED).map(|x| bounded(x, MAX_SKIPPED_TEXT)).collect();
        u.set_or_remove("skipped", (!skipped.is_empty()).then(|| list(&skipped)));
        self.update(key_of(key::resync_job(&job.id), key::ONE), u).await.map(drop)
    }

    async fn list_jobs(&self, page: &PageRequest) -> Result<Page<JobRecord>, StoreError> {
        let range = cursor(page)?.map_or(Range::All, Range::Below);
        let q = Query::index("gsi1", key::RESYNC_JOBS, range).backward();
        let (items, next_cursor) = self.page_of(q, page.limit, |_| Take::Yes).await?;
        Ok(Page { items: views(&items, job_record)?, next_cursor })
    }

    async fn get_job(&self, id: &str) -> Result<Option<JobRecord>, StoreError> {
        match self.get(key_of(key::resync_job(id), key::ONE)).await? {
            Some(i) => job_record(&i).map(Some).map_err(corrupt),
            None => Ok(None),
        }
    }

    async fn checkpoint(&self, job_id: &str) -> Result<Option<String>, StoreError> {
        Ok(self.get(key_of(key::checkpoint(job_id), key::ONE)).await?.and_then(|i| i.str("cursor")))
    }

    async fn save_checkpoint(&self, job_id: &str, cursor: Option<&str>, at: Timestamp) -> Result<(), StoreError> {
        let k = key_of(key::checkpoint(job_id), key::ONE);
        match cursor {
            Some(c) => {
                let mut u = Update::default();
                u.set("cursor", s(c)).set("updated_at", t(&at));
                self.update(k, u).await.map(drop)
            }
            None => self.delete(k, None).await.map(drop),
        }
    }
}

#[async_trait]
impl Locks for DynamoStore {
    async fn try_lock(
        &self,
        key: &str,
        owner: &str,
        now: Timestamp,
        ttl: chrono::TimeDelta,
    ) -> Result<bool, StoreError> {
        let until = now + ttl;
        let mut u = Update::default();
        u.set("owner", s(owner)).set("until", t(&until));
        // Expired locks are also dropped by TTL (lazily); `until` is what counts.
        u.set(super::TTL_ATTRIBUTE, epoch(&(until + chrono::TimeDelta::days(1))));
        let (pk, o, ov, at, nv) = (u.name("pk"), u.name("owner"), u.value(s(owner)), u.name("until"), u.value(t(&now)));
        u.condition(format!("attribute_not_exists({pk}) OR {o} = {ov} OR {at} < {nv}"));
        self.update(key_of(key::lock(key), key::ONE), u).await
    }

    async fn release_lock(&self, key: &str, owner: &str) -> Result<(), StoreError> {
        let mut c = Update::default();
        let (o, v) = (c.name("owner"), c.value(s(owner)));
        c.condition(format!("{o} = {v}"));
        self.delete(key_of(key::lock(key), key::ONE), Some(c)).await.map(drop)
    }
}
