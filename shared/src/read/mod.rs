//! The read side: what the API answers with (views) and the rows and
//! figures of the metrics.

pub mod metrics;
pub mod views;

pub use metrics::*;
pub use views::*;
