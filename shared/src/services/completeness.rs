//! The completeness loop on one machine: the integrity check queues gaps, the
//! dispatcher starts one resync job per target in this process, and the loop
//! waits for them; `serve` runs it on a schedule. (On AWS the same services
//! run as functions: the check on EventBridge's schedule, the dispatcher on
//! SQS batches, the jobs as ECS tasks.)

use std::sync::Arc;
use std::time::Duration;

use crate::domain::CheckRun;
use crate::error::error_chain;
use crate::ports::{GapInbox, RunningJobs};
use crate::services::dispatch::{DispatchError, DispatchService, Dispatched};
use crate::services::integrity::IntegrityService;
use crate::services::notify::decide::Decider;
use crate::services::resync::ResyncError;

/// Why a job of a repair did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum JobFailed {
    #[error(transparent)]
    NotStarted(#[from] DispatchError),
    #[error(transparent)]
    Resync(#[from] ResyncError),
}

/// What one repair did.
#[derive(Debug, Default)]
pub struct Repair {
    /// Jobs dispatched (targets another job was resyncing are not counted).
    pub jobs: usize,
    /// Targets another job was resyncing.
    pub busy: usize,
    /// (job id, why) of each job that failed.
    pub failed: Vec<(String, JobFailed)>,
}

pub struct CompletenessLoop {
    integrity: IntegrityService,
    dispatcher: DispatchService,
    inbox: Arc<dyn GapInbox>,
    running: Arc<dyn RunningJobs>,
    notify: Option<Arc<Decider>>,
}

impl CompletenessLoop {
    pub fn new(
        integrity: IntegrityService,
        dispatcher: DispatchService,
        inbox: Arc<dyn GapInbox>,
        running: Arc<dyn RunningJobs>,
    ) -> Self {
        Self { integrity, dispatcher, inbox, running, notify: None }
    }

    /// Announce what checks find (`integrity.gaps_found`) and resync jobs
    /// that fail (`resync.failed`) through `decider`'s rules.
    pub fn with_notifications(mut self, decider: Arc<Decider>) -> Self {
        self.notify = Some(decider);
        self
    }

    /// Decide the notifications of a check and its repair (no-op without rules).
    pub async fn announce(&self, run: &CheckRun, repair: &Repair) {
        let Some(decider) = &self.notify else { return };
        let failed: Vec<(String, String)> = repair.failed.iter().map(|(id, e)| (id.clone(), error_chain(e))).collect();
        if let Err(e) = decider.integrity_findings(run, &failed).await {
            tracing::warn!(error = %error_chain(&e), "could not decide the check's notifications");
        }
    }

    /// One integrity check (see [`IntegrityService::check`]).
    pub async fn check(&self, dry_run: bool) -> anyhow::Result<CheckRun> {
        self.integrity.check(dry_run).await
    }

    /// Dispatch what is queued and wait for the jobs.
    pub async fn repair(&self) -> Repair {
        let mut repair = Repair::default();
        for t in self.dispatcher.dispatch(&self.inbox.take_all()).await {
            match t.outcome {
                Dispatched::Launched => repair.jobs += 1,
                Dispatched::Busy => repair.busy += 1,
                Dispatched::Failed(e) => {
                    repair.jobs += 1;
                    repair.failed.push((t.job.id, e.into()));
                }
            }
        }
        repair.failed.extend(self.running.wait_idle().await.into_iter().map(|(id, e)| (id, e.into())));
        repair
    }

    /// Check and repair every `every`, for ever: gaps are repaired as soon as they are queued.
    pub async fn run_on_schedule(self, every: Duration) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let run = match self.check(false).await {
                Ok(run) => {
                    tracing::info!(gaps = run.gaps.len(), requests = run.requests, "integrity check done");
                    Some(run)
                }
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "integrity check failed; retrying next time");
                    None
                }
            };
            let repair = self.repair().await;
            if let Some(run) = &run {
                self.announce(run, &repair).await;
            }
            for (job, e) in &repair.failed {
                tracing::warn!(job, error = %error_chain(e), "resync job failed");
            }
            if repair.jobs > 0 {
                tracing::info!(
                    jobs = repair.jobs,
                    busy = repair.busy,
                    failed = repair.failed.len(),
                    "resync jobs done"
                );
            }
        }
    }
}
