//! Services: the product's behaviour, over ports only.

pub mod ingest;
pub mod replay;

pub use ingest::{IngestError, IngestService, Ingested, WebhookRequest};
