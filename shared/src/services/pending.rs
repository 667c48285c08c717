//! The pending-marker protocol of the gap queue (see [`PendingMarker`]): the
//! queue holds a gap's marker before sending it, and whoever takes the gap, or
//! fails to send it, releases it.

use std::sync::Arc;

use crate::domain::{Gap, PendingMarker, Timestamp};
use crate::error::{StoreError, error_chain};
use crate::ports::Locks;

/// The default life of a pending marker.
pub const DEFAULT_PENDING_TTL: chrono::TimeDelta = chrono::TimeDelta::hours(1);

/// Holds and releases pending markers in the store's locks.
#[derive(Clone)]
pub struct PendingMarkers {
    locks: Arc<dyn Locks>,
    ttl: chrono::TimeDelta,
}

impl PendingMarkers {
    pub fn new(locks: Arc<dyn Locks>) -> Self {
        Self { locks, ttl: DEFAULT_PENDING_TTL }
    }

    /// How long a marker holds when its gap is never taken.
    pub fn with_ttl(self, ttl: chrono::TimeDelta) -> Self {
        Self { ttl, ..self }
    }

    /// Hold `gap`'s marker under a fresh owner; None when another is held
    /// (a gap of that target and kind is waiting already).
    pub async fn hold(&self, gap: &Gap, now: Timestamp) -> Result<Option<PendingMarker>, StoreError> {
        let marker = PendingMarker::of(gap, new_owner());
        Ok(self.locks.try_lock(&marker.key, &marker.owner, now, self.ttl).await?.then_some(marker))
    }

    /// Release every marker, best effort: one that stays held expires by itself.
    pub async fn release_all(&self, markers: &[PendingMarker]) {
        release_all(self.locks.as_ref(), markers).await;
    }
}

/// Release `marker`. Releasing a marker that expired or was taken over does nothing.
pub async fn release(locks: &dyn Locks, marker: &PendingMarker) -> Result<(), StoreError> {
    locks.release_lock(&marker.key, &marker.owner).await
}

/// Release every marker, best effort (see [`PendingMarkers::release_all`]).
pub async fn release_all(locks: &dyn Locks, markers: &[PendingMarker]) {
    for m in markers {
        if let Err(e) = release(locks, m).await {
            tracing::warn!(key = m.key, error = %error_chain(&e), "could not release a pending gap marker; it expires by itself");
        }
    }
}

/// A marker owner no other use takes: 128 random bits, hex.
fn new_owner() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // No OS randomness: still unique enough per process.
        bytes = fastrand::u128(..).to_le_bytes();
    }
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_are_unique() {
        assert_ne!(new_owner(), new_owner());
        assert_eq!(new_owner().len(), 32);
    }
}
