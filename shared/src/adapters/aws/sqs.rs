//! The gap queue on SQS (a standard queue): one JSON message per gap, at most
//! one pending message per (target, kind).
//!
//! SQS cannot answer "is a message like this one waiting?", so the queue
//! follows the pending-marker protocol ([`PendingMarker`], [`PendingMarkers`]):
//! before sending a gap it holds the gap's marker; a marker already held
//! means a message is pending, and the gap is not sent. The marker's owner
//! travels in the message ([`GapMessage::pending_owner`]) so that the
//! dispatcher, once it has taken the message, releases exactly that marker. A
//! gap that could not be sent has its marker released at once.

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::operation::send_message_batch::SendMessageBatchOutput;
use aws_sdk_sqs::types::{BatchResultErrorEntry, SendMessageBatchRequestEntry};
use serde::{Deserialize, Serialize};

use crate::domain::{Gap, PendingMarker, QueuedGap};
use crate::ports::{Clock, GapFailure, GapQueue, Locks, QueueError};
use crate::services::pending::PendingMarkers;

/// SQS's limits: entries per `SendMessageBatch`, and bytes per batch (the
/// sum of its bodies; a single message has the same limit).
const MAX_BATCH_ENTRIES: usize = 10;
const MAX_BATCH_BYTES: usize = 256 * 1024;
/// A gap's `reason` is for people; longer ones are cut here so that a message
/// always fits (targets are at most a few hundred bytes).
const MAX_REASON_BYTES: usize = 16 * 1024;

/// The body of a gap message: `{"gap": {...}, "pending_owner": "<hex>"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GapMessage {
    pub gap: Gap,
    /// The owner of the gap's pending marker, to release when the message is taken.
    pub pending_owner: String,
}

/// A message body that is not a [`GapMessage`].
#[derive(Debug, thiserror::Error)]
#[error("the message is not a gap message (expected JSON {{\"gap\": {{...}}, \"pending_owner\": \"...\"}})")]
pub struct MalformedGapMessage(#[source] serde_json::Error);

impl GapMessage {
    pub fn parse(body: &str) -> Result<Self, MalformedGapMessage> {
        serde_json::from_str(body).map_err(MalformedGapMessage)
    }

    pub fn to_body(&self) -> String {
        serde_json::to_string(self).expect("a gap message serialises")
    }

    /// The message for `gap`, whose marker is held.
    fn new(gap: &Gap, marker: PendingMarker) -> Self {
        Self { gap: trimmed(gap), pending_owner: marker.owner }
    }

    /// The lock key of this message's pending marker.
    pub fn pending_key(&self) -> String {
        self.gap.pending_key()
    }

    /// The pending marker this message holds.
    pub fn marker(&self) -> PendingMarker {
        PendingMarker::of(&self.gap, self.pending_owner.clone())
    }

    /// The gap as the dispatcher takes it.
    pub fn queued(&self) -> QueuedGap {
        QueuedGap { gap: self.gap.clone(), pending: Some(self.marker()) }
    }
}

/// Gaps as messages on an SQS queue.
pub struct SqsGapQueue {
    client: Client,
    queue_url: String,
    markers: PendingMarkers,
    clock: Arc<dyn Clock>,
}

impl SqsGapQueue {
    pub fn new(client: Client, queue_url: impl Into<String>, locks: Arc<dyn Locks>, clock: Arc<dyn Clock>) -> Self {
        Self { client, queue_url: queue_url.into(), markers: PendingMarkers::new(locks), clock }
    }

    /// How long a pending marker holds when its message is never taken.
    pub fn with_pending_ttl(self, ttl: chrono::TimeDelta) -> Self {
        Self { markers: self.markers.with_ttl(ttl), ..self }
    }

    /// Release the markers of messages that were not sent (best effort).
    async fn release_all(&self, messages: &[GapMessage]) {
        let markers: Vec<PendingMarker> = messages.iter().map(GapMessage::marker).collect();
        self.markers.release_all(&markers).await;
    }

    async fn send_batch(&self, batch: &[GapMessage]) -> Result<SendMessageBatchOutput, QueueError> {
        let entries = batch
            .iter()
            .enumerate()
            .map(|(i, m)| {
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(m.to_body())
                    .build()
                    .map_err(|e| QueueError::Rejected(e.into()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.client.send_message_batch().queue_url(&self.queue_url).set_entries(Some(entries)).send().await.map_err(
            |e| {
                let retryable = super::is_retryable(&e);
                let e = anyhow::Error::new(e).context(format!("SendMessageBatch to {}", self.queue_url));
                if retryable { QueueError::Unavailable(e) } else { QueueError::Rejected(e) }
            },
        )
    }
}

#[async_trait]
impl GapQueue for SqsGapQueue {
    async fn send(&self, gaps: &[Gap]) -> Result<usize, QueueError> {
        // 1. Take the pending marker of each (target, kind) not already pending.
        let now = self.clock.now();
        let mut seen = HashSet::new();
        let mut taken: Vec<GapMessage> = Vec::new();
        for gap in gaps {
            if !seen.insert((&gap.target, gap.kind)) {
                continue;
            }
            match self.markers.hold(gap, now).await {
                Ok(Some(marker)) => taken.push(GapMessage::new(gap, marker)),
                Ok(None) => {} // a message for it is pending
                Err(e) => {
                    self.release_all(&taken).await;
                    let retryable = e.is_retryable();
                    let e = anyhow::Error::new(e).context("taking a pending gap marker");
                    return Err(if retryable { QueueError::Unavailable(e) } else { QueueError::Rejected(e) });
                }
            }
        }

        // 2. Send them in batches; release the marker of every gap not sent.
        let batches = batches(&taken);
        let mut new = 0;
        let mut failed = Vec::new();
        for (n, batch) in batches.iter().enumerate() {
            match self.send_batch(batch).await {
                Ok(out) => {
                    new += out.successful().len();
                    let (refused, failures) = entry_failures(batch, out.failed());
                    self.release_all(&refused).await;
                    failed.extend(failures);
                }
                Err(e) => {
                    let unsent: Vec<GapMessage> = batches[n..].iter().flatten().cloned().collect();
                    self.release_all(&unsent).await;
                    if new == 0 && failed.is_empty() {
                        return Err(e);
                    }
                    tracing::warn!(error = ?e, unsent = unsent.len(), "a gap batch could not be sent");
                    let (code, retryable) = match &e {
                        QueueError::Unavailable(_) => ("Unavailable", true),
                        _ => ("Rejected", false),
                    };
                    let message = crate::error::error_chain(&e);
                    failed.extend(unsent.into_iter().map(|m| GapFailure {
                        target: m.gap.target,
                        kind: m.gap.kind,
                        code: code.to_owned(),
                        message: message.clone(),
                        retryable,
                    }));
                    break;
                }
            }
        }
        if failed.is_empty() { Ok(new) } else { Err(QueueError::Partial { new, failed }) }
    }
}

/// The messages of a batch SQS refused one by one, and why.
fn entry_failures(batch: &[GapMessage], failed: &[BatchResultErrorEntry]) -> (Vec<GapMessage>, Vec<GapFailure>) {
    failed
        .iter()
        .filter_map(|f| {
            let m = f.id().parse::<usize>().ok().and_then(|i| batch.get(i))?;
            let failure = GapFailure {
                target: m.gap.target.clone(),
                kind: m.gap.kind,
                code: f.code().to_owned(),
                message: f.message().unwrap_or_default().to_owned(),
                // SenderFault: the request is wrong and will stay wrong.
                retryable: !f.sender_fault(),
            };
            Some((m.clone(), failure))
        })
        .unzip()
}

/// SendMessageBatch calls: at most 10 messages and 256 KiB each.
fn batches(messages: &[GapMessage]) -> Vec<Vec<GapMessage>> {
    let mut out: Vec<Vec<GapMessage>> = Vec::new();
    let mut bytes = 0;
    for m in messages {
        let size = m.to_body().len();
        match out.last_mut() {
            Some(last) if last.len() < MAX_BATCH_ENTRIES && bytes + size <= MAX_BATCH_BYTES => {
                last.push(m.clone());
                bytes += size;
            }
            _ => {
                out.push(vec![m.clone()]);
                bytes = size;
            }
        }
    }
    out
}

/// The gap with its reason cut to [`MAX_REASON_BYTES`] (at a character
/// boundary), and without the characters SQS refuses in a message (JSON
/// escapes control characters, but not U+FFFE, U+FFFF).
fn trimmed(gap: &Gap) -> Gap {
    let mut gap = gap.clone();
    if gap.reason.contains(['\u{FFFE}', '\u{FFFF}']) {
        gap.reason = gap.reason.replace(['\u{FFFE}', '\u{FFFF}'], "\u{FFFD}");
    }
    if gap.reason.len() > MAX_REASON_BYTES {
        let mut end = MAX_REASON_BYTES;
        while !gap.reason.is_char_boundary(end) {
            end -= 1;
        }
        gap.reason.truncate(end);
        gap.reason.push('…');
    }
    gap
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{GapKind, RepoName, Target};

    fn gap(repo: &str, kind: GapKind, reason: &str) -> Gap {
        Gap { target: Target::Repo(RepoName::parse(repo).unwrap()), kind, watermark: None, reason: reason.to_owned() }
    }

    #[test]
    fn a_message_round_trips_and_names_its_marker() {
        let m = GapMessage { gap: gap("octo/hello", GapKind::WorkflowRuns, "x"), pending_owner: "ab12".into() };
        let back = GapMessage::parse(&m.to_body()).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.pending_key(), "pending-gap:repo:octo/hello:workflow_runs");
    }

    #[test]
    fn a_malformed_body_is_a_clear_error() {
        let err = GapMessage::parse(r#"{"gap": 3}"#).unwrap_err();
        assert!(err.to_string().contains("not a gap message"), "{err}");
        assert!(std::error::Error::source(&err).is_some());
    }

    #[test]
    fn batches_hold_at_most_ten_messages_and_256_kib() {
        let small: Vec<_> = (0..23)
            .map(|i| GapMessage { gap: gap(&format!("o/r{i}"), GapKind::Pulls, "r"), pending_owner: "o".into() })
            .collect();
        let sizes: Vec<_> = batches(&small).iter().map(Vec::len).collect();
        assert_eq!(sizes, [10, 10, 3]);

        let big: Vec<_> = (0..20)
            .map(|i| GapMessage {
                gap: trimmed(&gap(&format!("o/r{i}"), GapKind::Pulls, &"é".repeat(20_000))),
                pending_owner: "o".into(),
            })
            .collect();
        assert!(big[0].to_body().len() > MAX_REASON_BYTES && big[0].to_body().len() < MAX_REASON_BYTES + 200);
        for b in batches(&big) {
            assert!(b.iter().map(|m| m.to_body().len()).sum::<usize>() <= MAX_BATCH_BYTES);
        }
        assert_eq!(batches(&big).iter().map(Vec::len).sum::<usize>(), 20);
    }

    #[test]
    fn entries_sqs_refused_are_failures_with_their_reason() {
        let batch: Vec<_> = ["o/a", "o/b", "o/c"]
            .iter()
            .map(|r| GapMessage { gap: gap(r, GapKind::Pulls, "x"), pending_owner: format!("owner-{r}") })
            .collect();
        let failed = [
            BatchResultErrorEntry::builder()
                .id("1")
                .code("InvalidParameterValue")
                .message("too long")
                .sender_fault(true)
                .build()
                .unwrap(),
            BatchResultErrorEntry::builder().id("2").code("InternalError").sender_fault(false).build().unwrap(),
        ];
        let (refused, failures) = entry_failures(&batch, &failed);
        assert_eq!(refused, batch[1..].to_vec());
        assert_eq!(failures[0].code, "InvalidParameterValue");
        assert_eq!(failures[0].message, "too long");
        assert!(!failures[0].retryable);
        assert!(failures[1].retryable);
        assert_eq!(failures[1].target, batch[2].gap.target);
    }

    #[test]
    fn characters_sqs_refuses_are_replaced() {
        assert_eq!(trimmed(&gap("o/r", GapKind::Pulls, "a\u{FFFF}b")).reason, "a\u{FFFD}b");
    }
}
