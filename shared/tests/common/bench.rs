//! What the benches share (included by path): the data directory, the
//! Router over a SQLite store, and the nearest-rank percentile.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use octoscope::adapters::clock::SystemClock;
use octoscope::adapters::sqlite::{SqliteArchive, SqliteStore};
use octoscope::api::{self, AppState};
use octoscope::config::ApiTokens;
use octoscope::ports::RawArchive;
use octoscope::ports::store::Store;
use octoscope::services::IngestService;
use octoscope::webhook::WebhookSecrets;

/// A bench's store and archive: in `OCTOSCOPE_BENCH_DIR` when set (kept, and
/// reused when already there, to inspect with sqlite3), else in `tmp`; and
/// whether the store was already there.
pub fn open(tmp: &tempfile::TempDir) -> (Arc<SqliteStore>, Arc<SqliteArchive>, bool) {
    let dir = std::env::var_os("OCTOSCOPE_BENCH_DIR").map(std::path::PathBuf::from);
    let dir = dir.as_deref().unwrap_or(tmp.path());
    let reuse = dir.join("octoscope.db").exists();
    let store = Arc::new(SqliteStore::open(&dir.join("octoscope.db")).unwrap());
    let archive = Arc::new(SqliteArchive::open(&dir.join("archive.db")).unwrap());
    (store, archive, reuse)
}

/// The whole Router over the store (search included), without tokens.
pub fn router(store: Arc<SqliteStore>, archive: Arc<SqliteArchive>) -> axum::Router {
    let ingest = IngestService::new(
        store.clone() as Arc<dyn Store>,
        archive as Arc<dyn RawArchive>,
        Arc::new(SystemClock),
        WebhookSecrets::parse("bench-secret").unwrap(),
    );
    api::router(AppState {
        ingest: Arc::new(ingest),
        search: Some(store.clone()),
        store,
        tokens: ApiTokens::default(),
        max_body_bytes: 1 << 20,
        notify: None,
    })
}

/// The nearest-rank `p`th percentile of sorted durations.
pub fn percentile(sorted: &[Duration], p: usize) -> Duration {
    sorted[((p * sorted.len()).div_ceil(100)).max(1) - 1]
}
