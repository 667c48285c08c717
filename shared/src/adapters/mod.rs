//! Adapters: one real implementation of each port per mode.

pub mod clock;
pub mod local;
#[cfg(feature = "github")]
pub mod github;
#[cfg(feature = "sqlite")]
pub mod sqlite;
