//! AWS mode: the [`Store`](crate::ports::Store) on one DynamoDB table.
//!
//! The table design, every access pattern and the cost per delivery are in
//! `shared/docs/dynamodb.md`; [`create_table`] is the table definition the
//! Terraform module must match. In short: one table (`pk`/`sk`), three
//! generic GSIs (`gsi1`..`gsi3`, `gsiNpk`/`gsiNsk`, projection KEYS_ONLY:
//! reads fetch the base items by key), TTL on `expires_at`. Every entity write is one conditional `UpdateItem` whose
//! condition is the last-writer-wins rule; a `ConditionalCheckFailed` means
//! "older, skipped". No request path scans.

mod apply;
mod codec;
mod completeness;
mod counters;
mod derived;
mod job_index;
mod jobs;
mod ledger;
mod meter;
mod metrics;
mod moves;
mod notify;
mod ops;
mod pages;
mod read;
mod rekey;
mod rollups;
mod search;
mod store;
mod summaries;
mod unfinished;
mod upgrade;
mod versions;
mod write;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

pub use meter::CostMeter;
pub use pages::ItemChange;
pub use rollups::{LoadedCells, RollupsRefreshed, RollupsSettled, SETTLE_AFTER};
pub use search::searchable_change;
pub use upgrade::Upgraded;

use anyhow::Context as _;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, StreamSpecification, StreamViewType, TimeToLiveSpecification,
};

/// How long the ledger keeps a delivery (DynamoDB TTL on `expires_at`):
/// well past GitHub's 3-day redelivery window, and the span `list_deliveries`
/// and the integrity check's redelivery look-back can see.
pub const LEDGER_RETENTION: chrono::TimeDelta = chrono::TimeDelta::days(90);

/// How long a check's per-target "verified" marks are kept (TTL).
pub const VERIFIED_RETENTION: chrono::TimeDelta = chrono::TimeDelta::days(90);

/// How long a claimed-but-unfinished delivery blocks a redelivery (as on SQLite).
pub(crate) const CLAIM_LEASE: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

/// The global secondary indexes, by name; each has `<name>pk` / `<name>sk`.
pub const INDEXES: [&str; 3] = ["gsi1", "gsi2", "gsi3"];

/// What an index holds besides the keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Projected {
    /// The table's and the index's keys only: an entry is written only when
    /// an item enters, leaves or moves in the index, never for other fields.
    KeysOnly,
    /// The keys and these attributes.
    Include(&'static [&'static str]),
}

/// Every index is KEYS_ONLY: what a Query finds is read from the base table
/// by key (BatchGetItem), so no attribute change but a key's writes an index.
pub fn projection(_index: &str) -> Projected {
    Projected::KeysOnly
}

/// The TTL attribute (Number, epoch seconds).
pub const TTL_ATTRIBUTE: &str = "expires_at";

/// The store on one DynamoDB table.
pub struct DynamoStore {
    client: Client,
    table: String,
    /// Registry items (tracked orgs, hooks) this process already wrote: a
    /// warm Lambda writes each once, not once per delivery.
    registered: Mutex<HashSet<String>>,
    /// Counts request units when attached (`make bench-cost`, cost tests).
    meter: Option<Arc<CostMeter>>,
    /// Ledger items are marked for the table's stream, which derives their
    /// listings and counts (`pages.rs`); false: derived at once by this store.
    stream_derived: bool,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> DynamoStore {
        DynamoStore {
            client,
            table: table.into(),
            registered: Mutex::new(HashSet::new()),
            meter: None,
            stream_derived: false,
        }
    }

    /// The same store, counting the request units of every call on `meter`.
    pub fn with_meter(mut self, meter: Arc<CostMeter>) -> DynamoStore {
        self.meter = Some(meter);
        self
    }

    pub fn table(&self) -> &str {
        &self.table
    }
}

/// Create the store's table (tests, local development). Terraform creates the
/// production table with exactly this definition: on-demand billing, `pk`/`sk`
/// strings, GSIs `gsi1`..`gsi3` on `gsiNpk`/`gsiNsk` (strings, [`projection`]),
/// TTL on `expires_at`, and a stream of new and old images (the stream
/// function derives delivery listings and counts from it: `pages.rs`).
pub async fn create_table(client: &Client, name: &str) -> anyhow::Result<()> {
    let key = |name: &str, kind: KeyType| KeySchemaElement::builder().attribute_name(name).key_type(kind).build();
    let string =
        |name: &str| AttributeDefinition::builder().attribute_name(name).attribute_type(ScalarAttributeType::S).build();
    let mut create = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key("pk", KeyType::Hash)?)
        .key_schema(key("sk", KeyType::Range)?)
        .attribute_definitions(string("pk")?)
        .attribute_definitions(string("sk")?)
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewAndOldImages)
                .build()?,
        );
    for index in INDEXES {
        let (pk, sk) = (format!("{index}pk"), format!("{index}sk"));
        create =
            create.attribute_definitions(string(&pk)?).attribute_definitions(string(&sk)?).global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(index)
                    .key_schema(key(&pk, KeyType::Hash)?)
                    .key_schema(key(&sk, KeyType::Range)?)
                    .projection(match projection(index) {
                        Projected::KeysOnly => Projection::builder().projection_type(ProjectionType::KeysOnly).build(),
                        Projected::Include(names) => Projection::builder()
                            .projection_type(ProjectionType::Include)
                            .set_non_key_attributes(Some(names.iter().map(|n| (*n).to_owned()).collect()))
                            .build(),
                    })
                    .build()?,
            );
    }
    create.send().await.with_context(|| format!("creating table {name}"))?;
    client
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(
            TimeToLiveSpecification::builder().enabled(true).attribute_name(TTL_ATTRIBUTE).build()?,
        )
        .send()
        .await
        .with_context(|| format!("enabling TTL on {name}"))?;
    Ok(())
}
