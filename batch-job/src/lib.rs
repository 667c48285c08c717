//! The batch job: one resync job, named by the dispatcher (`OCTOSCOPE_JOB_ID`),
//! run to its end against the store, from the GitHub API (the same
//! [`ResyncService`] that `octoscope check` runs in-process).
//!
//! The job's record says where it is (`running`, then `succeeded` or
//! `failed` with the error); the resync holds the target's lock (taken by the
//! dispatcher under the same owner, the job id) and releases it at the end,
//! whatever the end; its cursor is checkpointed after every page, so a task
//! that is stopped and run again resumes where it got to.
//!
//! With a [`Decider`] ([`run_deciding`], as the binary runs it), the
//! resync's writes go through [`DecidingSink`]: a transition found late (a
//! merge, a branch move whose webhook was lost) is decided `late` into the
//! table's `NOTE#` items before it is written, as `octoscope check` does
//! (shared/docs/notifications.md).

use std::sync::Arc;

use octoscope::domain::{JobRecord, JobState, ResyncJob};
use octoscope::error::error_chain;
use octoscope::ports::GitHubSource;
use octoscope::ports::SearchableEntities;
use octoscope::ports::{Clock, JobStore, Store, StoreError};
use octoscope::services::indexer::{IndexerService, IndexingError};
use octoscope::services::notify::decide::{Decider, DecidingSink};
use octoscope::services::resync::{Progress, ResyncError, ResyncService, ResyncStores};

/// Exit codes of the binary.
pub mod exit {
    /// The job ran to its end (or had already).
    pub const OK: i32 = 0;
    /// The job failed and running it again as it is will not help.
    pub const FAILED: i32 = 1;
    /// Bad input: the configuration, or a job id the store does not hold.
    pub const BAD_INPUT: i32 = 2;
    /// A failure that may go away (GitHub or AWS unavailable, the target
    /// locked by another job): the next check queues the gap again.
    pub const RETRYABLE: i32 = 75;
}

/// The job id that upgrades the table's items written under an earlier key
/// layout (`DynamoStore::upgrade`) instead of running a resync: started by
/// hand once after a deploy that needs it (`shared/docs/dynamodb.md`).
pub const UPGRADE_JOB: &str = "upgrade";

/// Rebuild the search index from the store (`OCTOSCOPE_JOB_ID=reindex`,
/// started by hand: after search is turned on for a table that already holds
/// data, or to repair an index), resuming from its checkpoint; the exit code.
pub async fn reindex(
    service: &IndexerService,
    source: &dyn SearchableEntities,
    jobs: &dyn JobStore,
    clock: &dyn Clock,
) -> i32 {
    let result = service.reindex(source, jobs, clock).await;
    match &result {
        Ok(done) => tracing::info!(?done, "the search index is rebuilt from the table"),
        Err(e) => tracing::error!(
            retryable = e.is_retryable(),
            error = error_chain(e),
            "the reindex stopped; run it again to resume"
        ),
    }
    reindex_exit(&result)
}

/// The exit code of a reindex that ended with `result`.
pub fn reindex_exit<T>(result: &Result<T, IndexingError>) -> i32 {
    match result {
        Ok(_) => exit::OK,
        Err(e) if e.is_retryable() => exit::RETRYABLE,
        Err(_) => exit::FAILED,
    }
}

/// The exit code of an upgrade that ended with `result`.
pub fn upgrade_exit<T>(result: &Result<T, StoreError>) -> i32 {
    match result {
        Ok(_) => exit::OK,
        Err(e) if e.is_retryable() => exit::RETRYABLE,
        Err(_) => exit::FAILED,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("job {0} is not in the store")]
    NotFound(String),
    #[error("reading job {id}")]
    Store {
        id: String,
        #[source]
        source: StoreError,
    },
    #[error(transparent)]
    Resync(#[from] ResyncError),
}

impl JobError {
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::NotFound(_) => false,
            Self::Store { source, .. } => source.is_retryable(),
            Self::Resync(e) => e.is_retryable(),
        }
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            Self::NotFound(_) => exit::BAD_INPUT,
            e if e.is_retryable() => exit::RETRYABLE,
            _ => exit::FAILED,
        }
    }
}

/// How the job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done(Progress),
    /// The record says it succeeded already (a task started twice): nothing to do.
    AlreadyDone,
}

/// Run job `job_id`: load it, resync its target, record the end (nothing decided).
pub async fn run(
    store: Arc<dyn Store>,
    github: Arc<dyn GitHubSource>,
    clock: Arc<dyn Clock>,
    job_id: &str,
) -> Result<Outcome, JobError> {
    run_deciding(store, github, clock, job_id, None).await
}

/// [`run`], the resync's changes decided by `decider` (`late`) before they are applied.
pub async fn run_deciding(
    store: Arc<dyn Store>,
    github: Arc<dyn GitHubSource>,
    clock: Arc<dyn Clock>,
    job_id: &str,
    decider: Option<Arc<Decider>>,
) -> Result<Outcome, JobError> {
    let record = load(store.as_ref(), job_id).await?;
    if record.state == JobState::Succeeded {
        tracing::info!(job = job_id, "the job has succeeded already");
        return Ok(Outcome::AlreadyDone);
    }
    let job = ResyncJob { id: record.id, target: record.target, kinds: record.kinds, watermark: record.watermark };
    tracing::info!(job = job.id, target = %job.target, kinds = ?job.kinds, watermark = ?job.watermark, "resync starting");
    let mut stores = ResyncStores::of(store.clone());
    if let Some(decider) = decider {
        stores.changes = Arc::new(DecidingSink::new(stores.changes, decider));
    }
    let resync = ResyncService::new(stores, github, clock.clone());
    let result = resync
        .run(&job, |p| {
            tracing::info!(pages = p.pages, pulls = p.pulls, total = ?p.total_pulls, written = p.written, "progress")
        })
        .await;
    let progress = match result {
        Ok(p) => p,
        Err(e) => {
            settle(store.as_ref(), clock.as_ref(), &job.id, &e).await;
            return Err(e.into());
        }
    };
    tracing::info!(job = job.id, pages = progress.pages, written = progress.written, "resync done");
    Ok(Outcome::Done(progress))
}

async fn load(store: &dyn JobStore, job_id: &str) -> Result<JobRecord, JobError> {
    store
        .get_job(job_id)
        .await
        .map_err(|source| JobError::Store { id: job_id.to_owned(), source })?
        .ok_or_else(|| JobError::NotFound(job_id.to_owned()))
}

/// After a failed run: the record says `failed` and the lock this job holds
/// is free, also when the resync could not say so itself (the store failed
/// as it took the lock, a write whose answer was lost may have taken it).
/// Releasing is conditioned on the owner, the job: another job's lock stays.
async fn settle(store: &dyn Store, clock: &dyn Clock, job_id: &str, error: &ResyncError) {
    if let Ok(record) = load(store, job_id).await
        && matches!(record.state, JobState::Queued | JobState::Running)
    {
        let failed = record.failed(clock.now(), error_chain(error));
        if let Err(e) = store.save_job(&failed).await {
            tracing::warn!(job = job_id, error = %error_chain(&e), "cannot record the failure");
        }
    }
    let target = match error {
        ResyncError::Locked(t) | ResyncError::Failed { target: t, .. } => t,
    };
    if let Err(e) = store.release_lock(&target.to_string(), job_id).await {
        tracing::warn!(job = job_id, error = %error_chain(&e), "cannot release the lock; it expires by itself");
    }
}

/// The job could not even start (its GitHub credential unreadable, GitHub
/// unreachable): record it as failed and release the target's lock that the
/// dispatcher took for it, so the next gap is not blocked until the lock expires.
pub async fn fail_before_start(store: &dyn Store, clock: &dyn Clock, job_id: &str, error: &anyhow::Error) {
    let record = match load(store, job_id).await {
        Ok(r) => r.failed(clock.now(), format!("{error:#}")),
        Err(e) => {
            tracing::warn!(job = job_id, error = %error_chain(&e), "cannot record the failure");
            return;
        }
    };
    if let Err(e) = store.save_job(&record).await {
        tracing::warn!(job = job_id, error = %error_chain(&e), "cannot record the failure");
    }
    if let Err(e) = store.release_lock(&record.target.to_string(), job_id).await {
        tracing::warn!(job = job_id, error = %error_chain(&e), "cannot release the lock; it expires by itself");
    }
}
