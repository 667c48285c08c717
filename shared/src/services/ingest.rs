//! The webhook ingest path: verify → claim in the ledger → archive → normalise
//! → store, with exactly-once effect per (hook, delivery).

use std::sync::Arc;

use crate::domain::*;
use crate::error::{ArchiveError, SecretUnavailable, StoreError, error_chain};
use crate::ports::{Claim, Clock, DeliveryLedger, RawArchive, Recorded, WebhookSecretSource};
use crate::webhook::{self, NormalizeError, SignatureError, WebhookSecrets, json_payload};

/// How long a copy of a delivery whose claim is pending waits for it to
/// finish before it is refused as in flight (GitHub waits 10 s for an answer).
const IN_FLIGHT_WAIT: std::time::Duration = std::time::Duration::from_secs(5);
const IN_FLIGHT_POLL: std::time::Duration = std::time::Duration::from_millis(100);

/// A webhook request as it arrived: raw header values and the raw body.
#[derive(Debug, Clone, Copy)]
pub struct WebhookRequest<'a> {
    pub event: Option<&'a str>,
    pub delivery: Option<&'a str>,
    pub hook_id: Option<&'a str>,
    pub signature: Option<&'a [u8]>,
    pub content_type: Option<&'a str>,
    pub body: &'a [u8],
}

/// What became of an accepted delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ingested {
    /// Normalised and stored: `applied` writes changed the store, `skipped`
    /// were older than what it held.
    Stored { applied: u32, skipped: u32 },
    /// Seen before: no second effect.
    Duplicate(DeliveryStatus),
    /// An event type Octoscope does not keep: archived and counted.
    Ignored { reason: String },
    /// Archived, but not understood; `replay` retries it after an upgrade.
    Failed { reason: String },
}

/// A request that is refused, with nothing stored.
#[derive(Debug, thiserror::Error)]
pub enum BadRequest {
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    #[error(transparent)]
    Header(#[from] ParseError),
    #[error(transparent)]
    Body(NormalizeError),
    #[error("{0}")]
    Form(&'static str),
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Signature(#[from] SignatureError),
    #[error(transparent)]
    BadRequest(#[from] BadRequest),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error(transparent)]
    Secret(#[from] SecretUnavailable),
    /// Claimed by a copy that did not finish within [`IN_FLIGHT_WAIT`] (its
    /// process died before the store was written): nothing durable to acknowledge.
    #[error("delivery {0} is claimed but not yet stored (interrupted, or still in flight); try again")]
    InFlight(DeliveryId),
}

impl IngestError {
    /// Whether the same delivery can succeed later (so the sender should see a
    /// failure and redeliver it).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Signature(_) | Self::BadRequest(_) => false,
            Self::Store(e) => e.is_retryable(),
            Self::Archive(e) => e.is_retryable(),
            Self::Secret(_) | Self::InFlight(_) => true,
        }
    }
}

/// The secrets: fixed at start (one machine), or read from a source (AWS).
enum Secrets {
    Fixed(WebhookSecrets),
    Source(Arc<dyn WebhookSecretSource>),
}

pub struct IngestService {
    ledger: Arc<dyn DeliveryLedger>,
    archive: Arc<dyn RawArchive>,
    clock: Arc<dyn Clock>,
    secrets: Secrets,
}

impl IngestService {
    /// `ledger`: any store (an `Arc<dyn Store>` coerces); ingest uses only its ledger.
    pub fn new(
        ledger: Arc<dyn DeliveryLedger>,
        archive: Arc<dyn RawArchive>,
        clock: Arc<dyn Clock>,
        secrets: WebhookSecrets,
    ) -> Self {
        Self { ledger, archive, clock, secrets: Secrets::Fixed(secrets) }
    }

    /// The same, with secrets read from `source` for every delivery (it caches).
    pub fn with_secret_source(
        ledger: Arc<dyn DeliveryLedger>,
        archive: Arc<dyn RawArchive>,
        clock: Arc<dyn Clock>,
        source: Arc<dyn WebhookSecretSource>,
    ) -> Self {
        Self { ledger, archive, clock, secrets: Secrets::Source(source) }
    }

    pub async fn ingest(&self, req: WebhookRequest<'_>) -> Result<Ingested, IngestError> {
        // 1. Verify first: nothing about an unsigned request is looked at.
        match &self.secrets {
            Secrets::Fixed(secrets) => secrets.verify(req.signature, req.body)?,
            Secrets::Source(source) => source.secrets().await?.verify(req.signature, req.body)?,
        }
        let event = EventName::parse(req.event.ok_or(BadRequest::MissingHeader("X-GitHub-Event"))?)
            .map_err(BadRequest::from)?;
        let delivery_id = DeliveryId::parse(req.delivery.ok_or(BadRequest::MissingHeader("X-GitHub-Delivery"))?)
            .map_err(BadRequest::from)?;
        let hook_id = match req.hook_id {
            Some(h) => HookId::parse(h).map_err(BadRequest::from)?,
            None => HookId::unknown(),
        };
        let key = DeliveryKey { hook_id, delivery_id };
        let received_at = self.clock.now();

        // 2. Normalise in memory (pure): a body that is not JSON is refused here.
        let payload = json_payload(req.content_type, req.body).map_err(BadRequest::Form)?;
        let normalized = match webhook::normalize(event.as_str(), &payload, received_at) {
            Ok(n) => Ok(n),
            Err(e) if e.is_syntax() => return Err(BadRequest::Body(e).into()),
            Err(e) => Err(e),
        };
        let (action, repo, org) = match &normalized {
            Ok(n) => (n.action.clone(), n.repo.clone(), n.org.clone()),
            Err(_) => ledger_fields(&payload),
        };

        // 3. Claim (or, for a store that writes its ledger once, look): a duplicate stops here, with no effect.
        let claim = DeliveryClaim {
            key: key.clone(),
            event: event.clone(),
            action,
            repo,
            org,
            received_at,
            body_bytes: req.body.len() as u64,
        };
        // A copy claimed but not finished is awaited: the first copy, still
        // running, finishes in moments and this one answers as it did. A claim
        // that stays pending was left by a process that died: a 2xx now would
        // acknowledge effects that may never be written.
        let mut waited = std::time::Duration::ZERO;
        loop {
            match self.ledger.check_delivery(&claim).await? {
                Claim::Claimed => break,
                Claim::Duplicate(DeliveryStatus::Pending) if waited < IN_FLIGHT_WAIT => {
                    tokio::time::sleep(IN_FLIGHT_POLL).await;
                    waited += IN_FLIGHT_POLL;
                }
                Claim::Duplicate(DeliveryStatus::Pending) => return Err(IngestError::InFlight(key.delivery_id)),
                Claim::Duplicate(status) => return Ok(Ingested::Duplicate(status)),
            }
        }

        // 4. Archive the raw body before any normalised effect.
        let raw = RawDelivery {
            key: key.clone(),
            event: event.clone(),
            received_at,
            content_type: req.content_type.map(str::to_owned),
            body: req.body.to_vec(),
        };
        if let Err(e) = self.archive.put(&raw).await {
            self.release(&key).await;
            return Err(e.into());
        }

        // 5. Store the effects and the outcome together.
        let (changes, outcome, result) = outcome(event.as_str(), normalized);
        match self.ledger.record_delivery(&claim, &changes, &outcome).await {
            Ok(Recorded::Done(report)) => Ok(match result {
                Ingested::Stored { .. } => Ingested::Stored { applied: report.applied, skipped: report.skipped },
                other => other,
            }),
            Ok(Recorded::Duplicate(DeliveryStatus::Pending)) => Err(IngestError::InFlight(key.delivery_id)),
            Ok(Recorded::Duplicate(status)) => Ok(Ingested::Duplicate(status)),
            Err(e) => {
                self.release(&key).await;
                Err(e.into())
            }
        }
    }

    async fn release(&self, key: &DeliveryKey) {
        if let Err(e) = self.ledger.release_delivery(key).await {
            tracing::error!(error = ?e, delivery = %key.delivery_id, "could not release a failed delivery's claim");
        }
    }
}

/// The changes, ledger outcome and answer for a normalisation result.
pub fn outcome(
    event: &str,
    normalized: Result<webhook::Normalized, NormalizeError>,
) -> (Vec<Change>, DeliveryOutcome, Ingested) {
    match normalized {
        Ok(n) if n.tracked => (
            n.changes,
            DeliveryOutcome { status: DeliveryStatus::Stored, reason: None, changes: 0 },
            Ingested::Stored { applied: 0, skipped: 0 },
        ),
        Ok(_) => {
            let reason = format!("event type {event} is not tracked");
            (
                Vec::new(),
                DeliveryOutcome { status: DeliveryStatus::Ignored, reason: Some(reason.clone()), changes: 0 },
                Ingested::Ignored { reason },
            )
        }
        Err(e) => {
            let reason = error_chain(&e);
            tracing::warn!(event, reason, "archived a delivery that did not normalise");
            (
                Vec::new(),
                DeliveryOutcome { status: DeliveryStatus::Failed, reason: Some(reason.clone()), changes: 0 },
                Ingested::Failed { reason },
            )
        }
    }
}

/// The ledger's filing fields of a payload that did not normalise.
fn ledger_fields(payload: &[u8]) -> (Option<String>, Option<RepoName>, Option<String>) {
    match serde_json::from_slice::<webhook::payload::Envelope>(payload) {
        Ok(e) => (
            e.action,
            e.repository.and_then(|r| r.full_name).and_then(|n| RepoName::parse(&n).ok()),
            e.organization.map(|o| o.login),
        ),
        Err(_) => (None, None, None),
    }
}
