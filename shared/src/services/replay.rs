//! `replay`: rebuild the normalised store from the raw archive.

use std::sync::Arc;

use anyhow::Context as _;

use crate::ports::{ChangeSink, DeliveryLedger, RawArchive};
use crate::webhook::{self, json_payload};

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReplayReport {
    pub deliveries: u64,
    pub stored: u64,
    pub ignored: u64,
    pub failed: u64,
    pub applied: u64,
}

/// Drop every entity, then normalise every archived delivery again, in
/// arrival order, recording each delivery's new outcome in the ledger. The
/// LWW rules make the result independent of that order anyway. `store`: any
/// store (an `Arc<dyn Store>` will do); replay clears entities and completes deliveries.
pub async fn replay<S: ChangeSink + DeliveryLedger + ?Sized>(
    store: Arc<S>,
    archive: Arc<dyn RawArchive>,
    mut progress: impl FnMut(&ReplayReport),
) -> anyhow::Result<ReplayReport> {
    store.reset_entities().await.context("clearing the store")?;
    let mut report = ReplayReport::default();
    let mut after = None;
    loop {
        let batch = archive.scan(after.as_ref(), 500).await.context("reading the archive")?;
        if batch.is_empty() {
            break;
        }
        for (position, raw) in batch {
            after = Some(position);
            report.deliveries += 1;
            let normalized = match json_payload(raw.content_type.as_deref(), &raw.body) {
                Ok(payload) => webhook::normalize(raw.event.as_str(), &payload, raw.received_at),
                Err(_) => webhook::normalize(raw.event.as_str(), b"", raw.received_at),
            };
            let (changes, outcome, _) = super::ingest::outcome(raw.event.as_str(), normalized);
            match outcome.status {
                crate::domain::DeliveryStatus::Stored => report.stored += 1,
                crate::domain::DeliveryStatus::Ignored => report.ignored += 1,
                _ => report.failed += 1,
            }
            let applied = store
                .complete_delivery(&raw.key, &changes, &outcome)
                .await
                .with_context(|| format!("storing archived delivery {}", raw.key.delivery_id))?;
            report.applied += u64::from(applied.applied);
        }
        progress(&report);
    }
    Ok(report)
}
