//! The dispatcher function: a batch of gap messages from SQS → one resync job
//! per target (coalesced), each under its target's lock, started as an ECS
//! Fargate task.
//!
//! Per message, never per batch: the answer lists the messages to try again
//! (`batchItemFailures`, with `ReportBatchItemFailures` on the event source
//! mapping). A malformed message is logged with its id and listed every
//! time, so the queue's `maxReceiveCount` moves it to the dead-letter queue
//! instead of retrying it forever; a retryable failure (the store or ECS
//! unavailable) lists the messages of that target only, and SQS redelivers
//! them after the visibility timeout.

use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use octoscope::adapters::aws::sqs::{GapMessage, release_pending};
use octoscope::domain::{JobRecord, JobState, ResyncJob, Target};
use octoscope::error::error_chain;
use octoscope::ports::{Clock, JobLauncher, Store};
use octoscope::services::dispatch::coalesce;
use octoscope::services::resync::LOCK_TTL;

/// What the handler works with (built once, at init).
pub struct Dispatcher {
    pub store: Arc<dyn Store>,
    pub launcher: Arc<dyn JobLauncher>,
    pub clock: Arc<dyn Clock>,
}

/// What became of each message (for logs and tests).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Jobs started.
    pub launched: Vec<String>,
    /// Targets already being resynced by another job: their messages are taken.
    pub busy: Vec<Target>,
    /// Message ids that were not JSON gap messages.
    pub malformed: Vec<String>,
    /// Message ids left to SQS to deliver again.
    pub retry: Vec<String>,
    /// Why each job that was not started was not (job id: error chain).
    pub errors: Vec<String>,
}

impl Outcome {
    pub fn response(&self) -> SqsBatchResponse {
        let mut r = SqsBatchResponse::default();
        for id in self.malformed.iter().chain(&self.retry) {
            r.add_failure(id.clone());
        }
        r
    }
}

/// The Lambda handler: never fails the whole batch.
pub async fn handle(d: &Dispatcher, event: SqsEvent) -> SqsBatchResponse {
    let outcome = dispatch(d, event).await;
    tracing::info!(
        launched = outcome.launched.len(),
        busy = outcome.busy.len(),
        malformed = outcome.malformed.len(),
        retry = outcome.retry.len(),
        "batch dispatched"
    );
    outcome.response()
}

pub async fn dispatch(d: &Dispatcher, event: SqsEvent) -> Outcome {
    let mut out = Outcome::default();
    let mut messages: Vec<(String, GapMessage)> = Vec::new();
    for record in event.records {
        let Some(id) = record.message_id else {
            // Nothing to report it by: SQS will deliver it again, and in the end dead-letter it.
            tracing::error!("an SQS record without a message id; it cannot be reported");
            continue;
        };
        match GapMessage::parse(record.body.as_deref().unwrap_or_default()) {
            Ok(m) => messages.push((id, m)),
            Err(e) => {
                tracing::error!(message_id = id, error = %error_chain(&e), "malformed gap message; left for the dead-letter queue");
                out.malformed.push(id);
            }
        }
    }
    let gaps: Vec<_> = messages.iter().map(|(_, m)| m.gap.clone()).collect();
    for job in coalesce(&gaps, d.clock.as_ref()) {
        let of_job: Vec<&(String, GapMessage)> = messages.iter().filter(|(_, m)| m.gap.target == job.target).collect();
        match start(d, &job).await {
            Ok(Started::Launched) => out.launched.push(job.id.clone()),
            Ok(Started::Busy) => out.busy.push(job.target.clone()),
            Err(e) => {
                let error = format!("{e:#}");
                tracing::warn!(job = job.id, error, "could not start the job; its messages are retried");
                out.retry.extend(of_job.iter().map(|(id, _)| id.clone()));
                out.errors.push(format!("{}: {error}", job.id));
                continue;
            }
        }
        // Taken: the next gap of the same (target, kind) may be queued again.
        for (id, m) in of_job {
            if let Err(e) = release_pending(d.store.as_ref(), m).await {
                tracing::warn!(message_id = id, error = %error_chain(&e), "could not release a pending marker; it expires by itself");
            }
        }
    }
    out
}

enum Started {
    Launched,
    /// Another job holds the target's lock.
    Busy,
}

/// Take the target's lock for the job (the batch job renews it under the same
/// owner, the job id), record the job, start its task.
async fn start(d: &Dispatcher, job: &ResyncJob) -> anyhow::Result<Started> {
    let lock = job.target.to_string();
    let now = d.clock.now();
    if !d.store.try_lock(&lock, &job.id, now, LOCK_TTL).await? {
        tracing::info!(target = %job.target, "a resync of this target is running; the next check queues what is left");
        return Ok(Started::Busy);
    }
    let mut record = JobRecord::queued(job, now);
    let launched = match d.store.save_job(&record).await {
        Ok(()) => d.launcher.launch(job).await.map_err(|e| {
            let retryable = e.is_retryable();
            anyhow::Error::new(e).context(if retryable { "launch (retryable)" } else { "launch (not retryable)" })
        }),
        Err(e) => Err(anyhow::Error::new(e).context("recording the job")),
    };
    if let Err(e) = launched {
        record.state = JobState::Failed;
        record.finished_at = Some(d.clock.now());
        record.error = Some(format!("{e:#}"));
        if let Err(e) = d.store.save_job(&record).await {
            tracing::warn!(job = job.id, error = %error_chain(&e), "could not record the failed launch");
        }
        if let Err(e) = d.store.release_lock(&lock, &job.id).await {
            tracing::warn!(job = job.id, error = %error_chain(&e), "could not release the lock; it expires by itself");
        }
        return Err(e);
    }
    Ok(Started::Launched)
}
