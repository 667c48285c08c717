//! [`MetricRollups`] on SQLite: week cells in `rollup_pulls` and `rollup_ci`
//! (`schema_v7.sql`), day cells in `rollup_pulls_day` and `rollup_ci_day`
//! (`schema_v10.sql`), merge cells in `rollup_merges` (`schema_v11.sql`, weeks
//! only). Triggers mark the weeks a row change touches; before
//! each write transaction commits, [`refresh`] recomputes every cell of each
//! marked week, and of its seven days, from the week's rows (read once) with
//! the pure [`pull_cells_by`] / [`ci_cells_by`] / [`merge_cells`], so the cells equal a
//! recomputation whatever order events, duplicates, resyncs and replays came in.

use async_trait::async_trait;
use chrono::{NaiveDate, TimeDelta};
use rusqlite::types::Value;
use rusqlite::{Connection, params};

use super::metrics::{JOB_COLUMNS, JOB_WINDOWS, PULL_COLUMNS, RUN_COLUMNS, job_row, pull_row, run_row};
use super::store::{Sql, SqliteStore};
use super::{moves, ts};
use crate::ports::{CellScopes, MetricRollups, StoreError};
use crate::read::rollup::{
    CellKey, CiCell, Grain, MergeCell, PullCell, Scope, ci_cells_by, merge_cells, pull_cells_by,
};

fn midnight(d: NaiveDate) -> String {
    ts(&d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc())
}

/// Which rollup table a mark or a read is about.
#[derive(Clone, Copy)]
enum Family {
    Pulls,
    Ci,
    /// Merge cells (week grain only; kept with the pull request cells).
    Merges,
}

impl Family {
    /// The table of its cells of `grain`, and the column naming their bucket.
    fn table(self, grain: Grain) -> (&'static str, &'static str) {
        match (self, grain) {
            (Self::Pulls, Grain::Week) => ("rollup_pulls", "week"),
            (Self::Ci, Grain::Week) => ("rollup_ci", "week"),
            (Self::Pulls, Grain::Day) => ("rollup_pulls_day", "day"),
            (Self::Ci, Grain::Day) => ("rollup_ci_day", "day"),
            (Self::Merges, _) => ("rollup_merges", "week"),
        }
    }
}

/// Replace the cells of `week` in `table` (bucket column `column`: the week
/// itself, or its seven days) by `cells`.
fn replace_cells(
    conn: &Connection,
    (table, column): (&str, &str),
    week: NaiveDate,
    cells: impl Iterator<Item = (CellKey, Vec<u8>)>,
) -> rusqlite::Result<()> {
    let next = week + TimeDelta::days(7);
    conn.prepare_cached(&format!("DELETE FROM {table} WHERE {column} >= ?1 AND {column} < ?2"))?
        .execute([week.to_string(), next.to_string()])?;
    let mut insert =
        conn.prepare_cached(&format!("INSERT INTO {table} (scope, {column}, cell) VALUES (?1, ?2, ?3)"))?;
    for ((scope, start), bytes) in cells {
        insert.execute(params![scope.key(), start.to_string(), bytes])?;
    }
    Ok(())
}

fn recompute_pulls(conn: &Connection, week: NaiveDate) -> rusqlite::Result<()> {
    let next = week + TimeDelta::days(7);
    let sql = format!(
        "{PULL_COLUMNS} merged_at >= ?1 AND merged_at < ?2
         UNION ALL {PULL_COLUMNS} created_at >= ?1 AND created_at < ?2
           AND (merged_at IS NULL OR merged_at < ?1 OR merged_at >= ?2)"
    );
    let rows = conn
        .prepare_cached(&sql)?
        .query_map([midnight(week), midnight(next)], pull_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let span = week..next;
    for grain in [Grain::Week, Grain::Day] {
        let cells = pull_cells_by(grain, &rows, &span).into_iter().map(|(k, c)| (k, c.encode()));
        replace_cells(conn, Family::Pulls.table(grain), week, cells)?;
    }
    let merges = merge_cells(&rows, &span).into_iter().map(|(k, c)| (k, c.encode()));
    replace_cells(conn, Family::Merges.table(Grain::Week), week, merges)
}

fn recompute_ci(conn: &Connection, week: NaiveDate) -> rusqlite::Result<()> {
    let next = week + TimeDelta::days(7);
    let bounds = [midnight(week), midnight(next)];
    let runs = conn
        .prepare_cached(&format!("{RUN_COLUMNS} created_at >= ?1 AND created_at < ?2"))?
        .query_map(params![bounds[0], bounds[1]], run_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let [by_creation, by_start] = JOB_WINDOWS;
    let jobs = conn
        .prepare_cached(&format!("{JOB_COLUMNS}{by_creation} UNION ALL {JOB_COLUMNS}{by_start}"))?
        .query_map(params![bounds[0], bounds[1], bounds[0], bounds[1]], job_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let span = week..next;
    for grain in [Grain::Week, Grain::Day] {
        let cells = ci_cells_by(grain, &runs, &jobs, &span).into_iter().map(|(k, c)| (k, c.encode()));
        replace_cells(conn, Family::Ci.table(grain), week, cells)?;
    }
    Ok(())
}

/// Recompute the cells of every marked week from its rows and clear the
/// marks: run by the writer at the end of each transaction, before it commits.
pub(super) fn refresh(conn: &Connection) -> rusqlite::Result<()> {
    let marked: Vec<(String, String)> = conn
        .prepare_cached("SELECT family, week FROM rollup_dirty")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    if marked.is_empty() {
        return Ok(());
    }
    for (family, week) in &marked {
        // Marks come from the triggers' date(): YYYY-MM-DD, a Monday.
        let Ok(week) = NaiveDate::parse_from_str(week, "%Y-%m-%d") else { continue };
        match family.as_str() {
            "pulls" => recompute_pulls(conn, week)?,
            "ci" => recompute_ci(conn, week)?,
            _ => {}
        }
    }
    conn.execute("DELETE FROM rollup_dirty", [])?;
    Ok(())
}

/// [`refresh`] in a transaction of its own (when the store opens).
pub(super) fn refresh_now(conn: &mut Connection) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    refresh(&tx)?;
    tx.commit()
}

/// Mark every week holding a row, and drop every cell: the next refresh
/// rebuilds them all from the rows.
fn mark_all(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "DELETE FROM rollup_pulls; DELETE FROM rollup_ci; DELETE FROM rollup_pulls_day; DELETE FROM rollup_ci_day;
         DELETE FROM rollup_merges;
         INSERT OR IGNORE INTO rollup_dirty (family, week)
           SELECT 'pulls', date(created_at, '-6 days', 'weekday 1') FROM pull_requests
           UNION SELECT 'pulls', date(merged_at, '-6 days', 'weekday 1') FROM pull_requests WHERE merged_at IS NOT NULL
           UNION SELECT 'ci', date(created_at, '-6 days', 'weekday 1') FROM workflow_runs
           UNION SELECT 'ci', date(coalesce(created_at, started_at), '-6 days', 'weekday 1') FROM workflow_jobs
             WHERE coalesce(created_at, started_at) IS NOT NULL;",
    )
}

/// The cells of `family` and `grain` for `scopes` in `span`, decoded with
/// `decode` straight from the row (no copy of the bytes).
fn read_cells<C>(
    conn: &Connection,
    family: Family,
    grain: Grain,
    scopes: &CellScopes,
    span: &std::ops::Range<NaiveDate>,
    decode: fn(&[u8]) -> Option<C>,
) -> Result<Vec<(CellKey, C)>, StoreError> {
    let (table, column) = family.table(grain);
    let mut sql = Sql::new(&format!("SELECT scope, {column}, cell FROM {table} WHERE"));
    sql.push(
        &format!(" {column} >= ? AND {column} < ?"),
        [Value::Text(span.start.to_string()), Value::Text(span.end.to_string())],
    );
    match scopes {
        CellScopes::All => sql.push(" AND scope = ?", [Sql::text(&Scope::All.key())]),
        CellScopes::Repo(r) => {
            let current = moves::resolve(conn, r)?;
            sql.push(" AND scope = ?", [Sql::text(&Scope::Repo(current).key())])
        }
        CellScopes::Authors(people) if people.is_empty() => return Ok(Vec::new()),
        CellScopes::Authors(people) => {
            let marks = vec!["?"; people.len()].join(", ");
            sql.push(
                &format!(" AND scope IN ({marks})"),
                people.iter().map(|p| Value::Text(Scope::Author(p.clone()).key())),
            )
        }
        CellScopes::EveryRepo => sql.push(" AND scope >= 'repo:' AND scope < 'repo;'", []),
        CellScopes::EveryAuthor => sql.push(" AND scope >= 'author:' AND scope < 'author;'", []),
    };
    let cells = sql.rows(conn, |r| {
        let text = |i: usize| r.get_ref(i).map(|v| v.as_str().unwrap_or_default());
        let (scope, start) = (text(0)?, text(1)?);
        let bytes = r.get_ref(2)?.as_blob().unwrap_or_default();
        Ok(match (key(scope, start), decode(bytes)) {
            (Some(k), Some(cell)) => Ok((k, cell)),
            _ => Err(corrupt(family.table(grain).0, scope, start)),
        })
    })?;
    cells.into_iter().collect()
}

fn corrupt(table: &str, scope: &str, start: &str) -> StoreError {
    StoreError::Internal(anyhow::anyhow!("the rollup cell ({scope}, {start}) of {table} does not decode"))
}

fn key(scope: &str, week: &str) -> Option<CellKey> {
    Some((Scope::parse(scope)?, NaiveDate::parse_from_str(week, "%Y-%m-%d").ok()?))
}

impl SqliteStore {
    /// The cells of `family` and `grain`, decoded with `decode`.
    async fn cells_of<C: Send + 'static>(
        &self,
        family: Family,
        grain: Grain,
        scopes: &CellScopes,
        span: std::ops::Range<NaiveDate>,
        decode: fn(&[u8]) -> Option<C>,
    ) -> Result<Vec<(CellKey, C)>, StoreError> {
        let scopes = scopes.clone();
        self.scan_read(move |c| read_cells(c, family, grain, &scopes, &span, decode)).await
    }
}

#[async_trait]
impl MetricRollups for SqliteStore {
    async fn pull_cells(
        &self,
        scopes: &CellScopes,
        weeks: std::ops::Range<NaiveDate>,
    ) -> Result<Vec<(CellKey, PullCell)>, StoreError> {
        self.cells_of(Family::Pulls, Grain::Week, scopes, weeks, PullCell::decode).await
    }

    async fn ci_cells(
        &self,
        scopes: &CellScopes,
        weeks: std::ops::Range<NaiveDate>,
    ) -> Result<Vec<(CellKey, CiCell)>, StoreError> {
        self.cells_of(Family::Ci, Grain::Week, scopes, weeks, CiCell::decode).await
    }

    async fn pull_day_cells(
        &self,
        scopes: &CellScopes,
        days: std::ops::Range<NaiveDate>,
    ) -> Result<Vec<(CellKey, PullCell)>, StoreError> {
        self.cells_of(Family::Pulls, Grain::Day, scopes, days, PullCell::decode).await
    }

    async fn ci_day_cells(
        &self,
        scopes: &CellScopes,
        days: std::ops::Range<NaiveDate>,
    ) -> Result<Vec<(CellKey, CiCell)>, StoreError> {
        self.cells_of(Family::Ci, Grain::Day, scopes, days, CiCell::decode).await
    }

    async fn merge_cells(
        &self,
        scopes: &CellScopes,
        weeks: std::ops::Range<NaiveDate>,
    ) -> Result<Vec<(CellKey, MergeCell)>, StoreError> {
        self.cells_of(Family::Merges, Grain::Week, scopes, weeks, MergeCell::decode).await
    }

    async fn rebuild_rollups(&self) -> Result<(), StoreError> {
        // The writer recomputes the marked weeks before this transaction commits.
        self.write(mark_all).await
    }
}
