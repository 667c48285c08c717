//! Adapters: one real implementation of each port per mode.

pub mod clock;
#[cfg(feature = "sqlite")]
pub mod sqlite;
#[cfg(feature = "github")]
pub mod github;
