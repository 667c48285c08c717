//! One-machine adapters of the completeness loop: an in-process gap queue and
//! a launcher that runs resync jobs as tasks of this process.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;

use crate::domain::{Gap, GapKind, QueuedGap, ResyncJob, Target};
use crate::ports::{GapInbox, RunningJobs};
use crate::ports::{GapQueue, JobLauncher, LaunchError, QueueError};
use crate::services::resync::{ResyncError, ResyncService};

/// The waiting gaps, and the (target, kind) of each, for dedupe.
type Waiting = (VecDeque<Gap>, HashSet<(Target, GapKind)>);

/// Gaps waiting for the worker. A (target, kind) already waiting is not
/// queued again; a gap taken stops being pending (there is no marker to release).
#[derive(Default)]
pub struct LocalQueue {
    state: Mutex<Waiting>,
    ready: Notify,
}

impl LocalQueue {
    /// Wait until something is queued.
    pub async fn ready(&self) {
        self.ready.notified().await;
    }

    pub fn len(&self) -> usize {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl GapInbox for LocalQueue {
    fn take_all(&self) -> Vec<QueuedGap> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.1.clear();
        state.0.drain(..).map(|gap| QueuedGap { gap, pending: None }).collect()
    }
}

#[async_trait]
impl GapQueue for LocalQueue {
    async fn send(&self, gaps: &[Gap]) -> Result<usize, QueueError> {
        let mut new = 0;
        {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            for g in gaps {
                if state.1.insert((g.target.clone(), g.kind)) {
                    state.0.push_back(g.clone());
                    new += 1;
                }
            }
        }
        if new > 0 {
            self.ready.notify_one();
        }
        Ok(new)
    }
}

/// Runs resync jobs in this process, a few at a time.
pub struct InProcessLauncher {
    resync: Arc<ResyncService>,
    permits: Arc<Semaphore>,
    running: Mutex<JoinSet<(String, Result<(), ResyncError>)>>,
}

impl InProcessLauncher {
    pub fn new(resync: Arc<ResyncService>, concurrency: usize) -> Self {
        Self { resync, permits: Arc::new(Semaphore::new(concurrency.max(1))), running: Mutex::new(JoinSet::new()) }
    }
}

#[async_trait]
impl RunningJobs for InProcessLauncher {
    /// Wait for every launched job; returns (job id, error) of those that failed.
    async fn wait_idle(&self) -> Vec<(String, ResyncError)> {
        let mut failed = Vec::new();
        loop {
            let next = {
                let mut set = self.running.lock().unwrap_or_else(|p| p.into_inner());
                std::mem::take(&mut *set)
            };
            if next.is_empty() {
                return failed;
            }
            for (id, result) in next.join_all().await {
                if let Err(e) = result {
                    failed.push((id, e));
                }
            }
        }
    }
}

#[async_trait]
impl JobLauncher for InProcessLauncher {
    async fn launch(&self, job: &ResyncJob) -> Result<(), LaunchError> {
        let (resync, permits, job) = (self.resync.clone(), self.permits.clone(), job.clone());
        self.running.lock().unwrap_or_else(|p| p.into_inner()).spawn(async move {
            let _permit = permits.acquire_owned().await;
            let result = resync.run(&job, |_| {}).await;
            if let Err(e) = &result {
                tracing::warn!(job = job.id, error = %crate::error::error_chain(e), "resync failed");
            }
            (job.id.clone(), result.map(drop))
        });
        Ok(())
    }
}
