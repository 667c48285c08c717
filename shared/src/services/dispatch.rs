//! The dispatcher: coalesce queued gaps into one resync job per target, take
//! the target's lock for it, record it and launch it; a job that cannot be
//! started is recorded as failed and its lock released. The same on one
//! machine (in-process jobs) and on AWS (an SQS batch in, ECS tasks out).
//!
//! The lock's owner is the job id: the resync renews it under the same owner
//! and releases it at its end. A taken gap (its job launched, or its target
//! busy) has its pending marker released, so the next gap of its kind may be
//! queued; the gaps of a job that could not be started keep theirs (the queue
//! delivers them again).

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::domain::{Gap, JobRecord, PendingMarker, QueuedGap, ResyncJob, Target};
use crate::error::{LaunchError, StoreError, error_chain};
use crate::ports::{Clock, JobLauncher, JobStore, Locks};
use crate::services::pending;
use crate::services::resync::LOCK_TTL;

/// Coalesce `gaps` by target: one job per target, every kind, the oldest watermark.
pub fn coalesce<'a>(gaps: impl IntoIterator<Item = &'a Gap>, clock: &dyn Clock) -> Vec<ResyncJob> {
    let mut by_target: BTreeMap<&Target, Vec<Gap>> = BTreeMap::new();
    for g in gaps {
        by_target.entry(&g.target).or_default().push(g.clone());
    }
    let stamp = clock.now().format("%Y%m%dT%H%M%S%.3fZ");
    by_target
        .into_iter()
        .filter_map(|(target, gaps)| ResyncJob::coalesce(format!("resync-{stamp}-{target}"), &gaps))
        .collect()
}

/// Why a job was not started.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error("taking the lock of {0}")]
    Lock(Target, #[source] StoreError),
    #[error("recording job {0}")]
    Record(String, #[source] StoreError),
    #[error("launching job {0}")]
    Launch(String, #[source] LaunchError),
}

impl DispatchError {
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Lock(_, e) | Self::Record(_, e) => e.is_retryable(),
            Self::Launch(_, e) => e.is_retryable(),
        }
    }
}

/// What became of one target's job.
#[derive(Debug)]
pub enum Dispatched {
    Launched,
    /// Another job holds the target's lock: its gaps are taken, and the next
    /// check finds again what that job leaves.
    Busy,
    /// Not started (recorded as failed when it could be recorded); its gaps
    /// are left to the queue.
    Failed(DispatchError),
}

/// One target's job and what became of it.
#[derive(Debug)]
pub struct TargetDispatch {
    pub job: ResyncJob,
    pub outcome: Dispatched,
}

pub struct DispatchService {
    jobs: Arc<dyn JobStore>,
    locks: Arc<dyn Locks>,
    launcher: Arc<dyn JobLauncher>,
    clock: Arc<dyn Clock>,
}

impl DispatchService {
    pub fn new(
        jobs: Arc<dyn JobStore>,
        locks: Arc<dyn Locks>,
        launcher: Arc<dyn JobLauncher>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self { jobs, locks, launcher, clock }
    }

    /// One job per target of `gaps`, each started under its target's lock.
    pub async fn dispatch(&self, gaps: &[QueuedGap]) -> Vec<TargetDispatch> {
        let mut out = Vec::new();
        for job in coalesce(gaps.iter().map(|q| &q.gap), self.clock.as_ref()) {
            let outcome = match self.start(&job).await {
                Ok(true) => Dispatched::Launched,
                Ok(false) => Dispatched::Busy,
                Err(e) => {
                    tracing::warn!(job = job.id, retryable = e.is_retryable(), error = %error_chain(&e), "could not start the job");
                    out.push(TargetDispatch { job, outcome: Dispatched::Failed(e) });
                    continue;
                }
            };
            let taken: Vec<PendingMarker> =
                gaps.iter().filter(|q| q.gap.target == job.target).filter_map(|q| q.pending.clone()).collect();
            pending::release_all(self.locks.as_ref(), &taken).await;
            out.push(TargetDispatch { job, outcome });
        }
        out
    }

    /// Lock, record, launch; false when another job holds the lock.
    async fn start(&self, job: &ResyncJob) -> Result<bool, DispatchError> {
        let lock = job.target.to_string();
        let now = self.clock.now();
        if !self
            .locks
            .try_lock(&lock, &job.id, now, LOCK_TTL)
            .await
            .map_err(|e| DispatchError::Lock(job.target.clone(), e))?
        {
            tracing::info!(target = %job.target, "a resync of this target is running; the next check queues what is left");
            return Ok(false);
        }
        let record = JobRecord::queued(job, now);
        let started = match self.jobs.save_job(&record).await {
            Ok(()) => self.launcher.launch(job).await.map_err(|e| DispatchError::Launch(job.id.clone(), e)),
            Err(e) => Err(DispatchError::Record(job.id.clone(), e)),
        };
        let Err(e) = started else { return Ok(true) };
        if let Err(e) = self.jobs.save_job(&record.failed(self.clock.now(), error_chain(&e))).await {
            tracing::warn!(job = job.id, error = %error_chain(&e), "could not record the failed launch");
        }
        if let Err(e) = self.locks.release_lock(&lock, &job.id).await {
            tracing::warn!(job = job.id, error = %error_chain(&e), "could not release the lock; it expires by itself");
        }
        Err(e)
    }
}
