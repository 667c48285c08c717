//! The raw archive: every accepted delivery's body, kept before it is
//! normalised, so that `replay` can rebuild the store.

use async_trait::async_trait;

use crate::domain::RawDelivery;
use crate::error::ArchiveError;

/// A position in a [`RawArchive`], opaque to its callers: each archive makes
/// its own (a sequence number on one machine, an object key on S3) and only
/// ever reads back the ones it made.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ArchiveCursor(String);

impl ArchiveCursor {
    pub fn new(position: impl Into<String>) -> Self {
        Self(position.into())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The raw body of every accepted delivery, kept before normalisation so that
/// `replay` can rebuild the store.
#[async_trait]
pub trait RawArchive: Send + Sync {
    /// Durably keep `delivery` (idempotent per delivery key).
    async fn put(&self, delivery: &RawDelivery) -> Result<(), ArchiveError>;
    /// Deliveries in archive order, at most `limit`, after the position
    /// `after` (None: from the start); each with its own position, to pass
    /// back as `after`. An empty answer: nothing more.
    async fn scan(
        &self,
        after: Option<&ArchiveCursor>,
        limit: usize,
    ) -> Result<Vec<(ArchiveCursor, RawDelivery)>, ArchiveError>;
}
