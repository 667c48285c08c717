//! One-machine adapters: the [`Store`](crate::ports::Store) on SQLite (WAL) and
//! the [`RawArchive`](crate::ports::RawArchive) as zstd-compressed rows in a
//! second SQLite file, both under the data directory.

mod apply;
mod archive;
mod completeness;
mod jobs;
mod ledger;
mod metrics;
mod moves;
mod read;
mod rollups;
mod store;
mod summaries;
mod writer;

pub use archive::SqliteArchive;
pub use store::SqliteStore;

use chrono::{DateTime, Utc};
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ValueRef};
use rusqlite::{Connection, ErrorCode};

use crate::domain::{
    DeliveryId, DeliveryStatus, EventName, HookId, PrState, RepoName, ReviewState, RunStatus, Timestamp,
};
use crate::ports::StoreError;
use crate::read::StoredText;

/// Stored time format: fixed width, so text order is time order.
pub(crate) fn ts(t: &Timestamp) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

pub(crate) fn ts_opt(t: &Option<Timestamp>) -> Option<String> {
    t.as_ref().map(ts)
}

pub(crate) fn parse_ts(s: &str) -> rusqlite::Result<Timestamp> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e)))
}

pub(crate) fn parse_ts_opt(s: Option<String>) -> rusqlite::Result<Option<Timestamp>> {
    s.as_deref().map(parse_ts).transpose()
}

/// Typed columns: a stored text reads back as the domain value it was written
/// from; text that does not parse is a conversion failure.
macro_rules! text_columns {
    ($($t:ty),* $(,)?) => {$(
        impl FromSql for $t {
            fn column_result(v: ValueRef<'_>) -> FromSqlResult<Self> {
                let s = v.as_str()?;
                <$t as StoredText>::from_stored(s)
                    .ok_or_else(|| FromSqlError::Other(format!("stored {} {s:?} does not parse", stringify!($t)).into()))
            }
        }
    )*};
}

text_columns!(RepoName, PrState, ReviewState, RunStatus, DeliveryStatus, HookId, DeliveryId, EventName);

/// Busy or locked databases may succeed on a retry; everything else will not.
pub(crate) fn store_error(e: rusqlite::Error) -> StoreError {
    let retryable = matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked | ErrorCode::DiskFull | ErrorCode::SystemIoFailure)
    );
    if retryable { StoreError::Unavailable(e.into()) } else { StoreError::Internal(e.into()) }
}

pub(crate) fn configure(conn: &Connection, synchronous: &str) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", synchronous)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}
