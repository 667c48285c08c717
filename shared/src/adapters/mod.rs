//! Adapters: one real implementation of each port per mode.

pub mod clock;
#[cfg(feature = "sqlite")]
pub mod sqlite;
