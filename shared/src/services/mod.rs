//! Services: the product's behaviour, over ports only.

pub mod backfill;
pub mod compare;
pub mod completeness;
pub mod demo;
pub mod dispatch;
pub mod indexer;
pub mod ingest;
pub mod integrity;
pub mod metrics;
pub mod notify;
pub mod pending;
pub mod replay;
pub mod resync;
pub mod search_check;
pub mod search_docs;

pub use ingest::{IngestError, IngestService, Ingested, WebhookRequest};
