//! The dispatcher function: a batch of gap messages from SQS through the
//! dispatch service (one resync job per target, under its target's lock,
//! started as an ECS Fargate task), answered per message, never per batch.
//!
//! The answer lists the messages to try again (`batchItemFailures`, with
//! `ReportBatchItemFailures` on the event source mapping). A malformed message
//! is logged with its id and listed every time, so the queue's
//! `maxReceiveCount` moves it to the dead-letter queue instead of retrying it
//! for ever; the messages of a job that could not be started are listed too,
//! and SQS delivers them again after the visibility timeout.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use octoscope::adapters::aws::sqs::GapMessage;
use octoscope::domain::Target;
use octoscope::error::error_chain;
use octoscope::services::dispatch::{DispatchError, DispatchService, Dispatched};

/// What became of each message (for logs and tests).
#[derive(Debug, Default)]
pub struct Outcome {
    /// Jobs started.
    pub launched: Vec<String>,
    /// Targets already being resynced by another job: their messages are taken.
    pub busy: Vec<Target>,
    /// Message ids that were not JSON gap messages.
    pub malformed: Vec<String>,
    /// Message ids left to SQS to deliver again.
    pub retry: Vec<String>,
    /// Why each job that was not started was not.
    pub errors: Vec<DispatchError>,
}

impl Outcome {
    pub fn response(&self) -> SqsBatchResponse {
        let mut r = SqsBatchResponse::default();
        self.malformed.iter().chain(&self.retry).for_each(|id| r.add_failure(id.clone()));
        r
    }
}

/// The Lambda handler: never fails the whole batch.
pub async fn handle(d: &DispatchService, event: SqsEvent) -> SqsBatchResponse {
    let o = dispatch(d, event).await;
    let (launched, busy, malformed, retry) = (o.launched.len(), o.busy.len(), o.malformed.len(), o.retry.len());
    tracing::info!(launched, busy, malformed, retry, "batch dispatched");
    o.response()
}

pub async fn dispatch(d: &DispatchService, event: SqsEvent) -> Outcome {
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
    let queued: Vec<_> = messages.iter().map(|(_, m)| m.queued()).collect();
    for t in d.dispatch(&queued).await {
        match t.outcome {
            Dispatched::Launched => out.launched.push(t.job.id),
            Dispatched::Busy => out.busy.push(t.job.target),
            Dispatched::Failed(e) => {
                let of_job = messages.iter().filter(|(_, m)| m.gap.target == t.job.target);
                out.retry.extend(of_job.map(|(id, _)| id.clone()));
                out.errors.push(e);
            }
        }
    }
    out
}
