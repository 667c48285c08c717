//! One-machine adapters: the [`Store`](crate::ports::Store) on SQLite (WAL) and
//! the [`RawArchive`](crate::ports::RawArchive) as zstd-compressed rows in a
//! second SQLite file, both under the data directory.

mod apply;
mod archive;
mod completeness;
mod fts_rank;
mod jobs;
mod ledger;
mod metrics;
mod moves;
mod notify;
mod read;
mod rollups;
mod search;
mod search_check;
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
    if !path.exists() {
        create_whole(path).with_context(|| format!("creating {}", path.display()))?;
    }
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

/// Create a new database file so that it appears at `path` already holding
/// SQLite's header (in WAL mode): it is built under a temporary name beside
/// `path` and linked into place only if nothing is there yet. An empty file at
/// `path` is then never a database being created (which another process, such
/// as a `backfill` started beside `serve`, would refuse as damaged) but only
/// ever a damaged one. Losing the race to another process is not an error.
fn create_whole(path: &Path) -> anyhow::Result<()> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("octoscope.db");
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let tmp = path.with_file_name(format!(".{name}.{}.{nanos}.new", std::process::id()));
    let built = Connection::open(&tmp)
        .and_then(|conn| conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0)))
        .with_context(|| format!("writing {}", tmp.display()));
    let linked = built.and_then(|_| match std::fs::hard_link(&tmp, path) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
            Err(anyhow::Error::new(e).context(format!("linking {} into place", tmp.display())))
        }
        _ => Ok(()),
    });
    let _ = std::fs::remove_file(&tmp);
    linked
}

pub(crate) fn configure(conn: &Connection, synchronous: &str) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", synchronous)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processes_creating_the_same_database_at_once_all_open_it_and_an_empty_file_is_still_refused() {
        // GIVEN a data directory with no database yet
        for round in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("octoscope.db");
            // WHEN eight openers race to create it (as `serve` and `backfill` started together do)
            let opened: Vec<_> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..8).map(|_| s.spawn(|| open_sound(&path, DataFile::Store))).collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            // THEN every one opens it: none sees a half-created, empty file
            for result in opened {
                if let Err(e) = result {
                    panic!("round {round}: {e:#}");
                }
            }
            // AND nothing is left beside it but SQLite's own files
            let mut names: Vec<_> =
                std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
            names.retain(|n| !n.starts_with("octoscope.db"));
            assert!(names.is_empty(), "left behind: {names:?}");
        }
        // AND an existing empty file is still damage, never a new database
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("archive.db");
        std::fs::write(&path, b"").unwrap();
        let err = open_sound(&path, DataFile::Archive).unwrap_err();
        assert!(err.downcast_ref::<CorruptDatabase>().is_some(), "{err:#}");
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0, "left as it was");
    }
}
