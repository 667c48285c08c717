//! Where gaps go and how resync jobs start: an in-process queue and task on
//! one machine, SQS and ECS on AWS; and, on one machine, where the
//! completeness loop takes queued gaps back and waits for its jobs.

use async_trait::async_trait;

use crate::domain::{Gap, QueuedGap, ResyncJob};
use crate::error::{LaunchError, QueueError, ResyncError};

/// Where the integrity check sends gaps. At most one pending message per
/// (target, kind): a gap already waiting is not queued again.
#[async_trait]
pub trait GapQueue: Send + Sync {
    /// Queue `gaps`; returns how many were new.
    async fn send(&self, gaps: &[Gap]) -> Result<usize, QueueError>;
}

/// Starts a resync job: in-process on one machine, an ECS task on AWS.
#[async_trait]
pub trait JobLauncher: Send + Sync {
    async fn launch(&self, job: &ResyncJob) -> Result<(), LaunchError>;
}

/// Where the one-machine loop takes the gaps the check queued.
pub trait GapInbox: Send + Sync {
    /// Every waiting gap (they stop being pending).
    fn take_all(&self) -> Vec<QueuedGap>;
}

/// Resync jobs running in this process.
#[async_trait]
pub trait RunningJobs: Send + Sync {
    /// Wait for every launched job; the ones that failed.
    async fn wait_idle(&self) -> Vec<(String, ResyncError)>;
}
