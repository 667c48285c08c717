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
mod search;
mod store;
mod summaries;
mod writer;

pub use archive::SqliteArchive;
pub use store::SqliteStore;

use std::path::{Path, PathBuf};

use anyhow::Context as _;

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

/// Busy or locked databases, a full disk and I/O failures may succeed on a
/// retry; everything else will not.
pub(crate) fn store_error(e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(ErrorCode::DiskFull) => StoreError::Unavailable(disk_full(e)),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked | ErrorCode::SystemIoFailure) => {
            StoreError::Unavailable(e.into())
        }
        _ => StoreError::Internal(e.into()),
    }
}

/// A full disk, said so plainly: nothing is acknowledged until space returns.
pub(crate) fn disk_full(e: impl Into<anyhow::Error>) -> anyhow::Error {
    e.into().context("the disk holding the data directory is full: free space there (writes resume by themselves)")
}

/// Which of the data directory's files a [`CorruptDatabase`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataFile {
    /// `octoscope.db`: the normalised store and the delivery ledger.
    Store,
    /// `archive.db`: every accepted delivery's raw body.
    Archive,
}

/// A database file that exists but is not a sound SQLite database (truncated,
/// overwritten, damaged): it is refused, never reset or recreated.
#[derive(Debug, thiserror::Error)]
#[error("{} is corrupt or truncated: {reason}", path.display())]
pub struct CorruptDatabase {
    pub path: PathBuf,
    pub file: DataFile,
    pub reason: String,
}

/// Open the database at `path` (created when missing), refusing a damaged
/// file before anything is written to it: an existing empty file (SQLite would
/// take it for a new database) or one that fails SQLite's structural check
/// (`PRAGMA quick_check`: every page, in time linear in the size).
pub(crate) fn open_sound(path: &Path, file: DataFile) -> anyhow::Result<Connection> {
    let corrupt = |reason: String| CorruptDatabase { path: path.to_owned(), file, reason };
    if std::fs::metadata(path).is_ok_and(|m| m.len() == 0) {
        return Err(corrupt("the file is empty (0 bytes)".to_owned()).into());
    }
    let conn = Connection::open(path).with_context(|| format!("opening {}", path.display()))?;
    // Another process recovering the write-ahead log holds a lock for a moment.
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let mut problems = Vec::new();
    let checked = conn.prepare("PRAGMA quick_check(5)").and_then(|mut stmt| {
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        for row in rows {
            problems.push(row?);
        }
        Ok(())
    });
    match checked {
        Err(e) if matches!(e.sqlite_error_code(), Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt)) => {
            Err(corrupt(e.to_string()).into())
        }
        // Locked, unreadable, an I/O failure: not a verdict on the file.
        Err(e) => Err(anyhow::Error::new(e).context(format!("checking {}", path.display()))),
        Ok(()) if problems.iter().all(|p| p == "ok") => Ok(conn),
        Ok(()) => Err(corrupt(problems.join("; ")).into()),
    }
}

pub(crate) fn configure(conn: &Connection, synchronous: &str) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", synchronous)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}
