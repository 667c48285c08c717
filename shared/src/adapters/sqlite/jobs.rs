//! [`JobStore`] and [`Locks`] on SQLite: resync jobs, their checkpoints, and
//! expiring locks.

use async_trait::async_trait;
use rusqlite::types::Value;
use rusqlite::{OptionalExtension, params};

use super::store::{SqliteStore, limit_arg, query};
use super::{parse_ts, parse_ts_opt, store_error, ts, ts_opt};
use crate::domain::*;
use crate::ports::*;

#[async_trait]
impl JobStore for SqliteStore {
    async fn save_job(&self, job: &JobRecord) -> Result<(), StoreError> {
        let job = job.clone();
        self.write(move |conn| {
            conn.prepare_cached(
                "INSERT INTO jobs (id, target, kinds, watermark, state, created_at, started_at, finished_at, written,
                   requests, error, skipped, requests_by_installation)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
                 ON CONFLICT (id) DO UPDATE SET state = excluded.state, started_at = excluded.started_at,
                   finished_at = excluded.finished_at, written = excluded.written, requests = excluded.requests,
                   error = excluded.error, skipped = excluded.skipped,
                   requests_by_installation = excluded.requests_by_installation",
            )?
            .execute(params![
                job.id,
                serde_json::to_string(&job.target).expect("targets serialise"),
                serde_json::to_string(&job.kinds).expect("kinds serialise"),
                ts_opt(&job.watermark),
                job.state.as_str(),
                ts(&job.created_at),
                ts_opt(&job.started_at),
                ts_opt(&job.finished_at),
                job.written,
                job.requests,
                job.error,
                serde_json::to_string(&job.skipped[..job.skipped.len().min(JobRecord::MAX_SKIPPED)])
                    .expect("strings serialise"),
                serde_json::to_string(&job.requests_by_installation).expect("counts serialise")
            ])
            .map(drop)
        })
        .await
    }

    async fn list_jobs(&self, page: &PageRequest) -> Result<Page<JobRecord>, StoreError> {
        let page = page.clone();
        self.read(move |conn| {
            let mut args = Vec::new();
            let mut sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE 1 = 1");
            if let Some(c) = &page.cursor {
                let (at, id): (String, String) = decode_cursor(c)?;
                sql.push_str(" AND (created_at, id) < (?1, ?2)");
                args.extend([Value::Text(at), Value::Text(id)]);
            }
            sql.push_str(&format!(" ORDER BY created_at DESC, id DESC LIMIT ?{}", args.len() + 1));
            args.push(limit_arg(&page));
            let rows = query(conn, &sql, args, job_row)?;
            Ok(page_from(rows, page.limit, |j| (ts(&j.created_at), j.id.clone())))
        })
        .await
    }

    async fn get_job(&self, id: &str) -> Result<Option<JobRecord>, StoreError> {
        let id = id.to_owned();
        self.read(move |conn| {
            let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1");
            Ok(query(conn, &sql, vec![Value::Text(id)], job_row)?.pop())
        })
        .await
    }

    async fn checkpoint(&self, job_id: &str) -> Result<Option<String>, StoreError> {
        let job_id = job_id.to_owned();
        self.read(move |conn| {
            conn.query_row("SELECT cursor FROM checkpoints WHERE job_id = ?1", [job_id], |r| r.get(0))
                .optional()
                .map_err(store_error)
        })
        .await
    }

    async fn save_checkpoint(&self, job_id: &str, cursor: Option<&str>, at: Timestamp) -> Result<(), StoreError> {
        let (job_id, cursor) = (job_id.to_owned(), cursor.map(str::to_owned));
        self.write(move |conn| match cursor {
            Some(c) => conn
                .prepare_cached(
                    "INSERT INTO checkpoints (job_id, cursor, updated_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (job_id) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at",
                )?
                .execute(params![job_id, c, ts(&at)])
                .map(drop),
            None => conn.prepare_cached("DELETE FROM checkpoints WHERE job_id = ?1")?.execute([job_id]).map(drop),
        })
        .await
    }
}

#[async_trait]
impl Locks for SqliteStore {
    async fn try_lock(
        &self,
        key: &str,
        owner: &str,
        now: Timestamp,
        ttl: chrono::TimeDelta,
    ) -> Result<bool, StoreError> {
        let (key, owner, now_s, until) = (key.to_owned(), owner.to_owned(), ts(&now), ts(&(now + ttl)));
        self.write(move |conn| {
            let n = conn
                .prepare_cached(
                    "INSERT INTO locks (key, owner, expires_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (key) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
                     WHERE locks.owner = excluded.owner OR locks.expires_at < ?4",
                )?
                .execute(params![key, owner, until, now_s])?;
            Ok(n > 0)
        })
        .await
    }

    async fn release_lock(&self, key: &str, owner: &str) -> Result<(), StoreError> {
        let (key, owner) = (key.to_owned(), owner.to_owned());
        self.write(move |conn| {
            conn.prepare_cached("DELETE FROM locks WHERE key = ?1 AND owner = ?2")?
                .execute(params![key, owner])
                .map(drop)
        })
        .await
    }
}

const JOB_COLUMNS: &str =
    "id, target, kinds, watermark, state, created_at, started_at, finished_at, written, requests, error, skipped,
     requests_by_installation";

fn job_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<JobRecord> {
    let bad = |i: usize, e: serde_json::Error| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
    };
    let target: Target = serde_json::from_str(&r.get::<_, String>(1)?).map_err(|e| bad(1, e))?;
    let kinds: Vec<GapKind> = serde_json::from_str(&r.get::<_, String>(2)?).map_err(|e| bad(2, e))?;
    let skipped: Vec<String> = serde_json::from_str(&r.get::<_, String>(11)?).map_err(|e| bad(11, e))?;
    let requests_by_installation: InstallationRequests =
        serde_json::from_str(&r.get::<_, String>(12)?).map_err(|e| bad(12, e))?;
    Ok(JobRecord {
        id: r.get(0)?,
        target,
        kinds,
        watermark: parse_ts_opt(r.get(3)?)?,
        state: JobState::parse(&r.get::<_, String>(4)?).unwrap_or(JobState::Failed),
        created_at: parse_ts(&r.get::<_, String>(5)?)?,
        started_at: parse_ts_opt(r.get(6)?)?,
        finished_at: parse_ts_opt(r.get(7)?)?,
        written: r.get(8)?,
        requests: r.get(9)?,
        requests_by_installation,
        skipped,
        error: r.get(10)?,
    })
}
