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
        let locked = match self.locks.try_lock(&lock, &job.id, now, LOCK_TTL).await {
            Ok(locked) => locked,
            Err(e) => {
                // The write may have landed with its answer lost: give back what this job may hold.
                if let Err(e) = self.locks.release_lock(&lock, &job.id).await {
                    tracing::warn!(job = job.id, error = %error_chain(&e), "could not release the lock; it expires by itself");
                }
                return Err(DispatchError::Lock(job.target.clone(), e));
            }
        };
        if !locked {
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

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;
    use chrono::Utc;

    use super::*;
    use crate::adapters::clock::SystemClock;
    use crate::adapters::sqlite::SqliteStore;
    use crate::domain::{GapKind, JobState, RepoName};
    use crate::ports::{PageRequest, Store};
    use crate::services::pending::PendingMarkers;

    /// Launches nothing; refuses when told to.
    #[derive(Default)]
    struct Launcher {
        refuse: bool,
        launched: Mutex<Vec<String>>,
    }

    #[async_trait]
    impl JobLauncher for Launcher {
        async fn launch(&self, job: &ResyncJob) -> Result<(), LaunchError> {
            if self.refuse {
                return Err(LaunchError::Failed(anyhow::anyhow!("no such task definition")));
            }
            self.launched.lock().unwrap().push(job.id.clone());
            Ok(())
        }
    }

    fn gap(repo: &str, kind: GapKind) -> Gap {
        Gap { target: Target::Repo(RepoName::parse(repo).unwrap()), kind, watermark: None, reason: "x".into() }
    }

    async fn queued(markers: &PendingMarkers, gap: Gap) -> QueuedGap {
        let pending = markers.hold(&gap, Utc::now()).await.unwrap();
        assert!(pending.is_some());
        QueuedGap { gap, pending }
    }

    #[tokio::test]
    async fn one_job_per_target_under_its_lock_and_a_failed_launch_is_recorded_and_unlocked() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("s.db")).unwrap());
        let markers = PendingMarkers::new(store.clone());
        let (a, busy) = (gap("o/a", GapKind::Pulls), gap("o/busy", GapKind::Pulls));
        let gaps = [
            queued(&markers, a.clone()).await,
            queued(&markers, gap("o/a", GapKind::Branches)).await,
            queued(&markers, busy.clone()).await,
        ];
        assert!(store.try_lock("repo:o/busy", "running-job", Utc::now(), LOCK_TTL).await.unwrap());

        // GIVEN a launcher that starts jobs WHEN two targets' gaps are dispatched, one of them busy
        let launcher = Arc::new(Launcher::default());
        let d = DispatchService::new(store.clone(), store.clone(), launcher.clone(), Arc::new(SystemClock));
        let out = d.dispatch(&gaps).await;
        // THEN one job starts for the free target, under its lock, and every gap taken has its marker released
        assert!(
            matches!(out[0].outcome, Dispatched::Launched) && matches!(out[1].outcome, Dispatched::Busy),
            "{out:?}"
        );
        let job = &out[0].job;
        assert_eq!(launcher.launched.lock().unwrap().as_slice(), std::slice::from_ref(&job.id));
        assert!(!store.try_lock("repo:o/a", "other", Utc::now(), LOCK_TTL).await.unwrap());
        assert!(store.try_lock("repo:o/a", &job.id, Utc::now(), LOCK_TTL).await.unwrap(), "the job renews it");
        assert!(markers.hold(&a, Utc::now()).await.unwrap().is_some());
        assert!(markers.hold(&busy, Utc::now()).await.unwrap().is_some());

        // GIVEN a launcher that refuses WHEN a gap is dispatched
        let refusing = Arc::new(Launcher { refuse: true, ..Launcher::default() });
        let d = DispatchService::new(store.clone(), store.clone(), refusing, Arc::new(SystemClock));
        let c = queued(&markers, gap("o/c", GapKind::Pulls)).await;
        let out = d.dispatch(std::slice::from_ref(&c)).await;
        // THEN it failed for good, the job is recorded failed, the lock is free, the marker still held
        let Dispatched::Failed(e) = &out[0].outcome else { panic!("{out:?}") };
        assert!(!e.is_retryable(), "{e:?}");
        let jobs = store.list_jobs(&PageRequest::first(10)).await.unwrap().items;
        let failed = jobs.iter().find(|j| j.id == out[0].job.id).unwrap();
        assert_eq!(failed.state, JobState::Failed);
        assert!(failed.error.as_deref().unwrap().contains("no such task definition"), "{failed:?}");
        assert!(store.try_lock("repo:o/c", "other", Utc::now(), LOCK_TTL).await.unwrap());
        assert!(markers.hold(&c.gap, Utc::now()).await.unwrap().is_none());
    }
}
