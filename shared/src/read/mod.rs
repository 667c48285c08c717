//! The read side: what the API answers with (views) and the rows and
//! figures of the metrics, and how stored text reads back as typed values.

pub mod metrics;
pub mod rollup;
pub mod text;
pub mod views;

pub use metrics::*;
pub use text::StoredText;
pub use views::*;
