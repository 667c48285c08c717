//! Where gaps go and how resync jobs start: an in-process queue and task on
//! one machine, SQS and ECS on AWS.

use async_trait::async_trait;

use crate::domain::{Gap, ResyncJob};
use crate::error::{LaunchError, QueueError};

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
