//! The time.

use crate::domain::Timestamp;

/// The time, as a port, so tests can hold it still.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}
