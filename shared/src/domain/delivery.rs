//! A webhook delivery as the ledger and the raw archive see it.

use serde::Serialize;

use super::ids::{DeliveryId, EventName, HookId, RepoName, Timestamp};

/// The ledger key: exactly-once effect is per (hook, delivery).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeliveryKey {
    pub hook_id: HookId,
    pub delivery_id: DeliveryId,
}

/// What became of a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "api", derive(utoipa::ToSchema))]
pub enum DeliveryStatus {
    /// Claimed, not yet finished (a crash here lets a redelivery retry it).
    Pending,
    /// Normalised and written to the store.
    Stored,
    /// Archived and acknowledged, but Octoscope keeps nothing from it (an event type it does not track).
    Ignored,
    /// Archived, but it could not be normalised; `replay` can retry it after an upgrade.
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Stored => "stored",
            Self::Ignored => "ignored",
            Self::Failed => "failed",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Self::Pending,
            "stored" => Self::Stored,
            "ignored" => Self::Ignored,
            "failed" => Self::Failed,
            _ => return None,
        })
    }
}

/// A delivery the ledger is asked to claim, before any effect.
#[derive(Debug, Clone)]
pub struct DeliveryClaim {
    pub key: DeliveryKey,
    pub event: EventName,
    pub action: Option<String>,
    pub repo: Option<RepoName>,
    pub org: Option<String>,
    pub received_at: Timestamp,
    pub body_bytes: u64,
}

/// The final outcome written with a delivery's effects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryOutcome {
    pub status: DeliveryStatus,
    pub reason: Option<String>,
    pub changes: u32,
}

/// A raw delivery as received: what the archive keeps and `replay` reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawDelivery {
    pub key: DeliveryKey,
    pub event: EventName,
    pub received_at: Timestamp,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}
