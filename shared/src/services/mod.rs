//! Services: the product's behaviour, over ports only.

pub mod demo;
pub mod dispatch;
pub mod ingest;
pub mod integrity;
pub mod metrics;
pub mod replay;
pub mod resync;

pub use ingest::{IngestError, IngestService, Ingested, WebhookRequest};
