//! The text form domain values are stored in (a state, a name, a header
//! token): how a store adapter reads a column or attribute back into the
//! typed value it was written from, one rule per type for every adapter.

use crate::domain::{DeliveryId, DeliveryStatus, EventName, HookId, PrState, RepoName, ReviewState, RunStatus};

/// A domain value stored as its text form; None for text it was never written as.
pub trait StoredText: Sized {
    fn from_stored(s: &str) -> Option<Self>;
}

impl StoredText for RepoName {
    fn from_stored(s: &str) -> Option<Self> {
        RepoName::parse(s).ok()
    }
}

impl StoredText for PrState {
    fn from_stored(s: &str) -> Option<Self> {
        PrState::parse(s)
    }
}

impl StoredText for ReviewState {
    fn from_stored(s: &str) -> Option<Self> {
        ReviewState::parse(s)
    }
}

impl StoredText for RunStatus {
    fn from_stored(s: &str) -> Option<Self> {
        Some(RunStatus::parse(s))
    }
}

impl StoredText for DeliveryStatus {
    fn from_stored(s: &str) -> Option<Self> {
        DeliveryStatus::parse(s)
    }
}

impl StoredText for HookId {
    fn from_stored(s: &str) -> Option<Self> {
        HookId::parse(s).ok()
    }
}

impl StoredText for DeliveryId {
    fn from_stored(s: &str) -> Option<Self> {
        DeliveryId::parse(s).ok()
    }
}

impl StoredText for EventName {
    fn from_stored(s: &str) -> Option<Self> {
        EventName::parse(s).ok()
    }
}
