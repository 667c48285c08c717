//! The notifier function: new notifications from the notification queue
//! (SQS, forwarded by ledger-stream from the table's stream), each sent to
//! its rule's target once per delivery of its message
//! ([`Sender::send_one`]), answered per message (`batchItemFailures`, with
//! `ReportBatchItemFailures` on the event source mapping).
//!
//! A message is `{"id": "ntf_…"}`; the notification itself is the table's
//! `NOTE#` item, so a message delivered twice (SQS is at least once, and a
//! retried stream batch forwards again) sends nothing more once the
//! notification is no longer pending. What follows one message:
//!
//! | what happened | the message |
//! |---|---|
//! | delivered, or already delivered | acknowledged |
//! | failed for good (the sender gave up, or the target refused it), target disabled (410), or already failed | visible again at once and listed as failed, so that it reaches the dead-letter queue after its last receive: the DLQ holds what was never delivered |
//! | no such notification | acknowledged |
//! | not a notification message | logged and acknowledged (never a retry loop) |
//! | retry at T | its visibility set to T − now (at most 12 h, SQS's limit) and listed as failed: SQS delivers it again after the backoff |
//! | pending but not yet due (a second message for it, while the first waits out a backoff) | the same: it waits until the notification's next attempt |
//! | a store error | listed as failed: delivered again after the queue's visibility timeout |
//!
//! The queue's dead-letter queue (`maxReceiveCount` = the attempts) takes
//! the message of every notification that failed for good (the sender's
//! last attempt is on the message's last receive; a failure a retry cannot
//! change comes back at once until its receives are spent) and of one never
//! settled (a crash or a timeout every time: that notification stays
//! pending in the table, its attempts logged).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use octoscope::domain::{AfterAttempt, NotificationId, NotificationStatus, Timestamp};
use octoscope::error::error_chain;
use octoscope::ports::{Clock, NotificationLog};
use octoscope::services::notify::send::{Sender, Sent};

/// The longest visibility timeout SQS allows (12 hours): a later retry is
/// delivered after this and waits again (see [`Settled::Waiting`]).
pub const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 3600);

/// A notification message's body.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
struct Message {
    id: String,
}

/// The notification id a message names.
pub fn parse_message(body: &str) -> anyhow::Result<NotificationId> {
    let m: Message = serde_json::from_str(body).context("expected JSON {\"id\": \"ntf_…\"}")?;
    Ok(NotificationId::parse(&m.id)?)
}

/// What became of one message.
#[derive(Debug, Clone, PartialEq)]
pub enum Settled {
    /// Delivered (2xx).
    Delivered,
    /// Failed for good (the attempts used up, or an answer a retry cannot change).
    Failed(String),
    /// Failed, and the rule's target disabled (410 Gone).
    Disabled(String),
    /// The notification is no longer pending: nothing sent.
    Skipped(NotificationStatus),
    /// No such notification.
    Missing(NotificationId),
    /// Not a notification message.
    Malformed(String),
    /// Attempted, to be tried again at this time: the message waits out the backoff.
    Retry(Timestamp),
    /// Pending, but not due before this time: the message waits until then.
    Waiting(Timestamp),
    /// The store failed (or the message cannot be acknowledged): SQS delivers it again.
    Error(String),
}

impl Settled {
    /// Whether the message is left to SQS to deliver again (`batchItemFailures`).
    pub fn redelivered(&self) -> bool {
        matches!(
            self,
            Self::Retry(_)
                | Self::Waiting(_)
                | Self::Error(_)
                | Self::Failed(_)
                | Self::Disabled(_)
                | Self::Skipped(NotificationStatus::Failed)
        )
    }
}

/// The notifier: the notification log, the sender, and the queue (for a
/// message's visibility).
#[derive(Clone)]
pub struct Notifier {
    log: Arc<dyn NotificationLog>,
    sender: Sender,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    clock: Arc<dyn Clock>,
}

impl Notifier {
    pub fn new(
        log: Arc<dyn NotificationLog>,
        sender: Sender,
        sqs: aws_sdk_sqs::Client,
        queue_url: impl Into<String>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self { log, sender, sqs, queue_url: queue_url.into(), clock }
    }

    /// One message, settled.
    pub async fn settle(&self, message: &SqsMessage) -> Settled {
        let body = message.body.as_deref().unwrap_or_default();
        let id = match parse_message(body) {
            Ok(id) => id,
            Err(e) => return Settled::Malformed(format!("{e:#}")),
        };
        let note = match self.log.get_notification(&id).await {
            Ok(Some(n)) => n,
            Ok(None) => return Settled::Missing(id),
            Err(e) => return Settled::Error(error_chain(&e)),
        };
        if note.status != NotificationStatus::Pending {
            return self.settled(message, Settled::Skipped(note.status)).await;
        }
        // A second message for a notification waiting out a backoff (the
        // stream's batch forwarded again, or SQS delivered twice) does not
        // send it early: it waits too.
        let now = self.clock.now();
        if let Some(at) = note.next_attempt_at.filter(|at| *at > now + chrono::TimeDelta::seconds(1)) {
            return self.wait(message, at, Settled::Waiting(at)).await;
        }
        match self.sender.send_one(&note).await {
            Err(e) => Settled::Error(error_chain(&e)),
            Ok(Sent::Skipped(status)) => self.settled(message, Settled::Skipped(status)).await,
            Ok(Sent::Attempted { next, .. }) => match next {
                AfterAttempt::Delivered => Settled::Delivered,
                AfterAttempt::Failed(why) => self.settled(message, Settled::Failed(why)).await,
                AfterAttempt::DisableTarget(why) => self.settled(message, Settled::Disabled(why)).await,
                AfterAttempt::Retry(at) => self.wait(message, at, Settled::Retry(at)).await,
            },
        }
    }

    /// A settled message that is to reach the dead-letter queue (never
    /// delivered) is made visible again at once; any other is acknowledged.
    async fn settled(&self, message: &SqsMessage, settled: Settled) -> Settled {
        if settled.redelivered() { self.wait(message, self.clock.now(), settled).await } else { settled }
    }

    /// Make `message` visible again at `at` (at most [`MAX_VISIBILITY`] from now).
    async fn wait(&self, message: &SqsMessage, at: Timestamp, settled: Settled) -> Settled {
        let seconds = visibility_seconds(self.clock.now(), at);
        let Some(handle) = message.receipt_handle.as_deref() else {
            tracing::warn!(message_id = ?message.message_id, "a message without a receipt handle: it returns after the queue's visibility timeout");
            return settled;
        };
        let changed = self
            .sqs
            .change_message_visibility()
            .queue_url(&self.queue_url)
            .receipt_handle(handle)
            .visibility_timeout(seconds)
            .send()
            .await;
        if let Err(e) = changed {
            // Still listed as failed: it returns after the queue's visibility
            // timeout, and waits again then if it is early.
            tracing::warn!(message_id = ?message.message_id, error = %error_chain(&e), "could not set the message's visibility");
        }
        settled
    }
}

/// Seconds from `now` until `at`, rounded up, within 0 and 12 hours.
pub fn visibility_seconds(now: Timestamp, at: Timestamp) -> i32 {
    let ms = (at - now).num_milliseconds().max(0);
    let max = i64::try_from(MAX_VISIBILITY.as_secs()).unwrap_or(i64::MAX);
    i32::try_from(((ms + 999) / 1000).min(max)).unwrap_or(i32::MAX)
}

/// What became of each message of a batch, in order: (message id, settled).
pub async fn process(n: &Notifier, event: SqsEvent) -> Vec<(Option<String>, Settled)> {
    // Concurrently: a batch of ten slow targets is sent within one timeout.
    let mut tasks = tokio::task::JoinSet::new();
    for (i, record) in event.records.into_iter().enumerate() {
        let n = n.clone();
        tasks.spawn(async move { (i, record.message_id.clone(), n.settle(&record).await) });
    }
    let mut out = Vec::new();
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(r) => out.push(r),
            Err(e) => tracing::error!(error = %e, "a message's task failed; SQS delivers it again"),
        }
    }
    out.sort_by_key(|(i, _, _)| *i);
    out.into_iter().map(|(_, id, s)| (id, s)).collect()
}

/// The Lambda handler: never fails the whole batch; lists the messages to
/// deliver again.
pub async fn handle(n: &Notifier, event: SqsEvent) -> SqsBatchResponse {
    let ids: Vec<Option<String>> = event.records.iter().map(|r| r.message_id.clone()).collect();
    let settled = process(n, event).await;
    let mut response = SqsBatchResponse::default();
    for id in ids.iter().flatten() {
        // A message whose task panicked has no outcome: delivered again.
        if !settled.iter().any(|(i, _)| i.as_ref() == Some(id)) {
            response.add_failure(id.clone());
        }
    }
    for (id, s) in &settled {
        let message_id = id.as_deref().unwrap_or("(none)");
        match s {
            Settled::Malformed(why) => {
                tracing::error!(message_id, error = %why, "not a notification message; acknowledged")
            }
            Settled::Missing(note) => {
                tracing::warn!(message_id, notification = %note, "no such notification; acknowledged")
            }
            Settled::Error(why) => tracing::error!(message_id, error = %why, "not settled; SQS delivers it again"),
            Settled::Waiting(at) => tracing::info!(message_id, %at, "not due yet; the message waits"),
            _ => {}
        }
        if s.redelivered() {
            match id {
                Some(id) => response.add_failure(id.clone()),
                None => tracing::error!("an SQS record without a message id; it cannot be reported"),
            }
        }
    }
    let retry = response.batch_item_failures.len();
    tracing::info!(messages = ids.len(), retry, "batch settled");
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_a_notification() {
        let id = "ntf_0123456789abcdef0123456789";
        assert_eq!(parse_message(&format!("{{\"id\": \"{id}\"}}")).unwrap().as_str(), id);
        for bad in ["", "{}", "[]", "{\"id\": 7}", "{\"id\": \"ntf_x\"}", "ntf_0123456789abcdef0123456789"] {
            assert!(parse_message(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_visibility_is_the_time_left_rounded_up_within_twelve_hours() {
        let now = chrono::Utc::now();
        assert_eq!(visibility_seconds(now, now - chrono::TimeDelta::seconds(5)), 0);
        assert_eq!(visibility_seconds(now, now), 0);
        assert_eq!(visibility_seconds(now, now + chrono::TimeDelta::milliseconds(1)), 1);
        assert_eq!(visibility_seconds(now, now + chrono::TimeDelta::milliseconds(61_500)), 62);
        assert_eq!(visibility_seconds(now, now + chrono::TimeDelta::days(3)), 43_200);
        assert!(Settled::Retry(now).redelivered() && Settled::Error(String::new()).redelivered());
        assert!(Settled::Failed(String::new()).redelivered() && !Settled::Malformed(String::new()).redelivered());
        assert!(Settled::Skipped(NotificationStatus::Failed).redelivered());
        assert!(!Settled::Skipped(NotificationStatus::Delivered).redelivered() && !Settled::Delivered.redelivered());
    }
}
