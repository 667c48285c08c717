//! Adapters: one real implementation of each port per mode.

#[cfg(feature = "aws")]
pub mod aws;
pub mod clock;
#[cfg(feature = "github")]
pub mod github;
pub mod local;
#[cfg(feature = "sqlite")]
pub mod sqlite;
