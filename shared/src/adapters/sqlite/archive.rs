use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use async_trait::async_trait;
use rusqlite::{Connection, ErrorCode, params};

use super::writer::{Writer, WriterError};
use super::{DataFile, configure, disk_full, open_sound, parse_ts, ts};
use crate::domain::*;
use crate::ports::{ArchiveCursor, ArchiveError, RawArchive};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS raw_deliveries (
    seq          INTEGER PRIMARY KEY,
    hook_id      TEXT    NOT NULL,
    delivery_id  TEXT    NOT NULL,
    event        TEXT    NOT NULL,
    received_at  TEXT    NOT NULL,
    content_type TEXT,
    encoding     TEXT    NOT NULL,  -- 'zstd': body is the zstd-compressed raw body
    body         BLOB    NOT NULL,
    UNIQUE (hook_id, delivery_id)
);";

/// The raw archive in `archive.db`: every accepted body, zstd-compressed, in
/// arrival order. Writes are fully synchronous (an acknowledged delivery
/// survives a power cut) and group-committed: deliveries that arrive while a
/// commit is in flight share the next one.
pub struct SqliteArchive {
    writer: Writer,
    reader: Arc<Mutex<Connection>>,
}

impl SqliteArchive {
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let conn = open_sound(path, DataFile::Archive)?;
        configure(&conn, "FULL").context("configuring the archive database")?;
        conn.execute_batch(SCHEMA).context("creating the archive schema")?;
        let reader = Connection::open(path).with_context(|| format!("opening {}", path.display()))?;
        reader.busy_timeout(std::time::Duration::from_secs(5))?;
        let writer = Writer::start(conn, "octoscope-archive").context("starting the archive writer")?;
        Ok(Self { writer, reader: Arc::new(Mutex::new(reader)) })
    }
}

/// zstd level 3 with a compression context kept per thread: creating one
/// for each delivery (`zstd::bulk::compress`) zeroes its tables every time,
/// about 3 % of a delivery's CPU on the ingest path (shared/docs/benchmarks.md).
fn compress(body: &[u8]) -> std::io::Result<Vec<u8>> {
    thread_local! {
        static COMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> =
            const { std::cell::RefCell::new(None) };
    }
    COMPRESSOR.with(|c| {
        let mut c = c.borrow_mut();
        let compressor = match &mut *c {
            Some(compressor) => compressor,
            none => none.insert(zstd::bulk::Compressor::new(3)?),
        };
        compressor.compress(body)
    })
}

#[async_trait]
impl RawArchive for SqliteArchive {
    async fn put(&self, delivery: &RawDelivery) -> Result<(), ArchiveError> {
        let compressed = compress(&delivery.body).map_err(|e| ArchiveError::Failed(e.into()))?;
        let d = delivery;
        let row = (
            d.key.hook_id.to_string(),
            d.key.delivery_id.to_string(),
            d.event.to_string(),
            ts(&d.received_at),
            d.content_type.clone(),
        );
        self.writer
            .write(move |conn| {
                let (hook_id, delivery_id, event, received_at, content_type) = row;
                conn.prepare_cached(
                    "INSERT OR IGNORE INTO raw_deliveries (hook_id, delivery_id, event, received_at, content_type, encoding, body)
                     VALUES (?1, ?2, ?3, ?4, ?5, 'zstd', ?6)",
                )?
                .execute(params![hook_id, delivery_id, event, received_at, content_type, compressed])
                .map(drop)
            })
            .await
            .map_err(|e| match &e {
                WriterError::Sqlite(s) if s.sqlite_error_code() == Some(ErrorCode::DiskFull) => {
                    ArchiveError::Unavailable(disk_full(e))
                }
                _ => ArchiveError::Unavailable(e.into()),
            })
    }

    async fn scan(
        &self,
        after: Option<&ArchiveCursor>,
        limit: usize,
    ) -> Result<Vec<(ArchiveCursor, RawDelivery)>, ArchiveError> {
        // The cursor is the row's sequence number.
        let after = match after {
            None => 0,
            Some(c) => c.as_str().parse::<u64>().map_err(|_| {
                ArchiveError::Failed(anyhow::anyhow!(
                    "archive cursor {:?} is not one this archive returned",
                    c.as_str()
                ))
            })?,
        };
        let reader = self.reader.clone();
        tokio::task::spawn_blocking(move || -> Result<Vec<(ArchiveCursor, RawDelivery)>, ArchiveError> {
            let conn = reader.lock().unwrap_or_else(|p| p.into_inner());
            let unavailable = |e: rusqlite::Error| ArchiveError::Unavailable(e.into());
            let mut stmt = conn
                .prepare_cached(
                    "SELECT seq, hook_id, delivery_id, event, received_at, content_type, encoding, body
                     FROM raw_deliveries WHERE seq > ?1 ORDER BY seq LIMIT ?2",
                )
                .map_err(unavailable)?;
            let rows = stmt
                .query_map(params![after, limit as i64], |r| {
                    Ok((
                        r.get::<_, u64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                        r.get::<_, Option<String>>(5)?,
                        r.get::<_, String>(6)?,
                        r.get::<_, Vec<u8>>(7)?,
                    ))
                })
                .map_err(unavailable)?;
            let mut out = Vec::new();
            for row in rows {
                let (seq, hook, delivery, event, received_at, content_type, encoding, body) =
                    row.map_err(unavailable)?;
                let raw = decode_row(seq, hook, delivery, event, received_at, content_type, encoding, body)
                    .map_err(ArchiveError::Failed)?;
                out.push((ArchiveCursor::new(seq.to_string()), raw));
            }
            Ok(out)
        })
        .await
        .map_err(|e| ArchiveError::Failed(e.into()))?
    }
}

/// One archived row back into a delivery (a row that does not decode is corrupt).
#[allow(clippy::too_many_arguments)]
fn decode_row(
    seq: u64,
    hook: String,
    delivery: String,
    event: String,
    received_at: String,
    content_type: Option<String>,
    encoding: String,
    body: Vec<u8>,
) -> anyhow::Result<RawDelivery> {
    anyhow::ensure!(encoding == "zstd", "archive row {seq} has unknown encoding {encoding:?}");
    let body = zstd::stream::decode_all(&body[..]).with_context(|| format!("decompressing archive row {seq}"))?;
    Ok(RawDelivery {
        key: DeliveryKey { hook_id: HookId::parse(&hook)?, delivery_id: DeliveryId::parse(&delivery)? },
        event: EventName::parse(&event)?,
        received_at: parse_ts(&received_at)?,
        content_type,
        body,
    })
}
