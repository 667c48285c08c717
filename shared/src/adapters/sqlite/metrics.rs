//! The store's metric reads on SQLite: plain rows for the metrics service
//! (`services::metrics`), filtered and windowed in SQL so that only the rows a
//! metric needs leave the database. Indexes for them are in `schema_v3.sql`.

use async_trait::async_trait;
use chrono::NaiveDate;
use rusqlite::types::{Type, Value, ValueRef};
use rusqlite::{Connection, Row};

use super::moves;
use super::store::{Sql, SqliteStore};
use super::{parse_ts, store_error, ts};
use crate::domain::{RepoName, Timestamp};
use crate::ports::{MetricRows, MetricsFilter, StoreError, TeamRef};
use crate::read::*;

/// The metrics' filters, on any query.
impl Sql {
    /// `AND column IN (present members of team)`.
    fn team(&mut self, column: &str, team: &TeamRef) -> &mut Self {
        let members = "SELECT login FROM team_members WHERE present = 1 AND team_slug = ?";
        match &team.org {
            Some(org) => self
                .push(&format!(" AND {column} IN ({members} AND org = ?)"), [Self::text(&team.slug), Self::text(org)]),
            None => self.push(&format!(" AND {column} IN ({members})"), [Self::text(&team.slug)]),
        }
    }

    /// The filters every metric shares: repository, author (or actor), team.
    fn who(&mut self, f: &MetricsFilter, repo: &str, person: &str) -> &mut Self {
        if let Some(r) = &f.repo {
            self.push(&format!(" AND {repo} = ?"), [Self::text(r.as_str())]);
        }
        if let Some(a) = &f.author {
            self.push(&format!(" AND {person} = ?"), [Self::text(a)]);
        }
        if let Some(t) = &f.team {
            self.team(person, t);
        }
        self
    }
}

/// Metric reads and searches touch thousands of rows: let this reader map the database
/// file (pages are read from the OS cache without a system call each) and keep
/// a larger page cache than SQLite's 2 MB default. Per connection; idempotent.
fn tune(conn: &Connection) -> Result<(), StoreError> {
    conn.pragma_update(None, "mmap_size", 1_i64 << 30).map_err(store_error)?;
    conn.pragma_update(None, "cache_size", -16_384).map_err(store_error)
}

impl SqliteStore {
    /// A read touching thousands of rows (a metric, a search), on a reader tuned for it.
    pub(super) async fn scan_read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.read(move |conn| {
            tune(conn)?;
            f(conn)
        })
        .await
    }
}

/// A pull request's metric row, up to `WHERE`.
pub(super) const PULL_COLUMNS: &str = "SELECT repo, number, author, state, created_at, merged_at, additions, deletions,
        first_review_at, changes_requested FROM pull_requests WHERE";

/// A run's metric row, up to `WHERE`.
pub(super) const RUN_COLUMNS: &str =
    "SELECT repo, name, head_branch, actor, status, conclusion, created_at, run_started_at, updated_at
         FROM workflow_runs WHERE";

/// A job's metric row, up to `WHERE`.
pub(super) const JOB_COLUMNS: &str =
    "SELECT j.repo, j.workflow_name, j.head_branch, w.actor, j.status, j.conclusion, j.labels, j.os,
           j.created_at, j.started_at, j.completed_at
         FROM workflow_jobs j LEFT JOIN workflow_runs w ON w.id = j.run_id WHERE";

/// Pull requests in three disjoint parts, each one covering-index range scan
/// (`schema_v3.sql`): merged in the window; created in it and not merged in it;
/// open and created before it. Review facts are columns the store keeps current on every write. The
/// filters' columns carry a unary `+` so the planner keeps the window's index
/// (bounded by the window) rather than scanning a repository's or author's history.
pub(super) fn pulls(conn: &Connection, f: &MetricsFilter) -> Result<Vec<PullMetricRow>, StoreError> {
    let (since, until) = (Value::Text(ts(&f.since)), Value::Text(ts(&f.until)));
    const COLUMNS: &str = PULL_COLUMNS;
    let mut sql = Sql::new(COLUMNS);
    sql.push(" merged_at >= ? AND merged_at < ?", [since.clone(), until.clone()]);
    sql.who(f, "+repo", "+author");
    sql.push(&format!(" UNION ALL {COLUMNS}"), []);
    sql.push(
        " created_at >= ? AND created_at < ? AND (merged_at IS NULL OR merged_at < ? OR merged_at >= ?)",
        [since.clone(), until.clone(), since.clone(), until],
    );
    sql.who(f, "+repo", "+author");
    sql.push(&format!(" UNION ALL {COLUMNS}"), []);
    sql.push(" state = 'open' AND created_at < ?", [since]);
    sql.who(f, "+repo", "+author");
    sql.rows(conn, pull_row)
}

/// A row of [`PULL_COLUMNS`].
pub(super) fn pull_row(r: &Row) -> rusqlite::Result<PullMetricRow> {
    Ok(PullMetricRow {
        repo: r.get(0)?,
        number: r.get(1)?,
        author: r.get(2)?,
        state: r.get(3)?,
        created_at: at(r, 4)?,
        merged_at: at_opt(r, 5)?,
        additions: r.get(6)?,
        deletions: r.get(7)?,
        first_review_at: at_opt(r, 8)?,
        changes_requested: r.get(9)?,
    })
}

/// `(repo, merged_at)` of pull requests merged in the window: one covering-index range scan.
pub(super) fn merges(conn: &Connection, f: &MetricsFilter) -> Result<Vec<(RepoName, Timestamp)>, StoreError> {
    let mut sql = Sql::new("SELECT repo, merged_at FROM pull_requests WHERE");
    sql.push(" merged_at >= ? AND merged_at < ?", [Value::Text(ts(&f.since)), Value::Text(ts(&f.until))]);
    sql.who(f, "+repo", "+author");
    sql.rows(conn, |r| Ok((r.get(0)?, at(r, 1)?)))
}

/// Workflow and branch filters, on runs and jobs alike.
fn ci_filters(sql: &mut Sql, f: &MetricsFilter, workflow: &str, branch: &str) {
    if let Some(w) = &f.workflow {
        sql.push(&format!(" AND {workflow} = ?"), [Sql::text(w)]);
    }
    if let Some(b) = &f.branch {
        sql.push(&format!(" AND {branch} = ?"), [Sql::text(b)]);
    }
}

/// The first six columns of a run's or a job's row: repository, workflow,
/// branch, actor, status, conclusion.
fn ci_facts(r: &Row) -> rusqlite::Result<CiFacts> {
    Ok(CiFacts {
        repo: r.get(0)?,
        workflow: r.get(1)?,
        branch: r.get(2)?,
        actor: r.get(3)?,
        status: r.get(4)?,
        conclusion: r.get(5)?,
    })
}

pub(super) fn runs(conn: &Connection, f: &MetricsFilter) -> Result<Vec<RunMetricRow>, StoreError> {
    let mut sql = Sql::new(RUN_COLUMNS);
    sql.push(" created_at >= ? AND created_at < ?", [Value::Text(ts(&f.since)), Value::Text(ts(&f.until))]);
    sql.who(f, "repo", "actor");
    ci_filters(&mut sql, f, "name", "head_branch");
    sql.rows(conn, run_row)
}

pub(super) fn run_row(r: &Row) -> rusqlite::Result<RunMetricRow> {
    Ok(RunMetricRow { ci: ci_facts(r)?, created_at: at(r, 6)?, run_started_at: at_opt(r, 7)?, updated_at: at(r, 8)? })
}

/// A job's time in a window `[?, ?)`: its `created_at`, or without one
/// (GitHub's payloads before jobs carried it) its `started_at`. Two ranges of
/// `workflow_jobs_created` (v3; the second its NULL `created_at` entries),
/// each read by its own query.
pub(super) const JOB_WINDOWS: [&str; 2] =
    [" j.created_at >= ? AND j.created_at < ?", " j.created_at IS NULL AND j.started_at >= ? AND j.started_at < ?"];

/// Jobs in the window ([`JOB_WINDOWS`]).
pub(super) fn jobs(conn: &Connection, f: &MetricsFilter) -> Result<Vec<JobMetricRow>, StoreError> {
    let window = [Value::Text(ts(&f.since)), Value::Text(ts(&f.until))];
    let mut out = Vec::new();
    for time in JOB_WINDOWS {
        let mut sql = Sql::new(JOB_COLUMNS);
        sql.push(time, window.clone());
        sql.who(f, "j.repo", "w.actor");
        ci_filters(&mut sql, f, "j.workflow_name", "j.head_branch");
        out.extend(sql.rows(conn, job_row)?);
    }
    Ok(out)
}

pub(super) fn job_row(r: &Row) -> rusqlite::Result<JobMetricRow> {
    Ok(JobMetricRow {
        ci: ci_facts(r)?,
        labels: serde_json::from_str(&r.get::<_, String>(6)?).unwrap_or_default(),
        os: r.get(7)?,
        created_at: at_opt(r, 8)?,
        started_at: at_opt(r, 9)?,
        completed_at: at_opt(r, 10)?,
    })
}

pub(super) fn deployments(conn: &Connection, f: &MetricsFilter) -> Result<Vec<DeploymentMetricRow>, StoreError> {
    let mut sql = Sql::new(
        "SELECT d.id, d.repo, d.environment, d.created_at,
           (SELECT s.state FROM deployment_statuses s
             WHERE s.deployment_id = d.id AND s.state IN ('success', 'failure', 'error')
             ORDER BY s.created_at DESC, s.id DESC LIMIT 1)
         FROM deployments d WHERE",
    );
    sql.push(" d.created_at >= ?", [Value::Text(ts(&f.since))]);
    if let Some(r) = &f.repo {
        sql.push(" AND d.repo = ?", [Sql::text(r.as_str())]);
    }
    if let Some(e) = &f.environment {
        sql.push(" AND d.environment = ?", [Sql::text(e)]);
    }
    sql.push(" ORDER BY d.created_at, d.id", []);
    sql.rows(conn, |r| {
        Ok(DeploymentMetricRow {
            id: r.get(0)?,
            repo: r.get(1)?,
            environment: r.get(2)?,
            created_at: at(r, 3)?,
            outcome: r.get(4)?,
        })
    })
}

pub(super) fn team_memberships(conn: &Connection, org: Option<&str>) -> Result<Vec<TeamMembershipRow>, StoreError> {
    let mut sql = Sql::new(
        "SELECT m.org, m.team_slug, m.login FROM team_members m
         WHERE m.present = 1
           AND NOT EXISTS (SELECT 1 FROM teams t WHERE t.org = m.org AND t.slug = m.team_slug AND t.deleted = 1)",
    );
    if let Some(org) = org {
        sql.push(" AND m.org = ?", [Sql::text(org)]);
    }
    sql.push(" ORDER BY m.org, m.team_slug, m.login", []);
    sql.rows(conn, |r| Ok(TeamMembershipRow { org: r.get(0)?, team_slug: r.get(1)?, login: r.get(2)? }))
}

pub(super) fn last_deliveries(conn: &Connection) -> Result<Vec<RepoDeliveryRow>, StoreError> {
    // Deliveries keep the name they arrived with; a moved repository's count under its current name.
    Sql::new(concat!(
        "SELECT COALESCE(a.canonical, d.repo) AS name, MAX(d.received_at) FROM deliveries d
         LEFT JOIN repo_aliases a ON a.alias = d.repo AND ",
        super::moves::alias_answers!(),
        " WHERE d.repo IS NOT NULL GROUP BY name ORDER BY name"
    ))
    .rows(conn, |r| Ok(RepoDeliveryRow { repo: r.get(0)?, last_received_at: at(r, 1)? }))
}

/// A stored time. The store's own fixed-width form, `YYYY-MM-DDTHH:MM:SS.mmmZ`,
/// is read directly (metric reads parse tens of thousands per request);
/// anything else goes through the RFC 3339 parser.
fn parse_time(s: &str) -> rusqlite::Result<Timestamp> {
    let b = s.as_bytes();
    let fixed =
        b.len() == 24 && (b[4], b[7], b[10], b[13], b[16], b[19], b[23]) == (b'-', b'-', b'T', b':', b':', b'.', b'Z');
    if fixed {
        let n = |from: usize, to: usize| {
            b[from..to].iter().try_fold(0u32, |acc, &c| c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0')))
        };
        if let (Some(y), Some(mo), Some(d), Some(h), Some(mi), Some(sec), Some(ms)) =
            (n(0, 4), n(5, 7), n(8, 10), n(11, 13), n(14, 16), n(17, 19), n(20, 23))
            && let Some(t) = NaiveDate::from_ymd_opt(y as i32, mo, d).and_then(|d| d.and_hms_milli_opt(h, mi, sec, ms))
        {
            return Ok(t.and_utc());
        }
    }
    parse_ts(s)
}

fn at_opt(r: &Row, i: usize) -> rusqlite::Result<Option<Timestamp>> {
    match r.get_ref(i)? {
        ValueRef::Null => Ok(None),
        v => {
            let s = v.as_str().map_err(|e| rusqlite::Error::FromSqlConversionFailure(i, Type::Text, Box::new(e)))?;
            parse_time(s).map(Some)
        }
    }
}

fn at(r: &Row, i: usize) -> rusqlite::Result<Timestamp> {
    at_opt(r, i)?.ok_or(rusqlite::Error::InvalidColumnType(i, "time".into(), Type::Null))
}

/// A repository filter naming an old name answers for the repository's current one.
fn canonical_filter(conn: &Connection, mut f: MetricsFilter) -> Result<MetricsFilter, StoreError> {
    if let Some(r) = &f.repo {
        f.repo = Some(moves::resolve(conn, r)?);
    }
    Ok(f)
}

#[async_trait]
impl MetricRows for SqliteStore {
    async fn metric_pulls(&self, f: &MetricsFilter) -> Result<Vec<PullMetricRow>, StoreError> {
        let f = f.clone();
        self.scan_read(move |c| pulls(c, &canonical_filter(c, f)?)).await
    }

    async fn metric_runs(&self, f: &MetricsFilter) -> Result<Vec<RunMetricRow>, StoreError> {
        let f = f.clone();
        self.scan_read(move |c| runs(c, &canonical_filter(c, f)?)).await
    }

    async fn metric_jobs(&self, f: &MetricsFilter) -> Result<Vec<JobMetricRow>, StoreError> {
        let f = f.clone();
        self.scan_read(move |c| jobs(c, &canonical_filter(c, f)?)).await
    }

    async fn metric_deployments(&self, f: &MetricsFilter) -> Result<Vec<DeploymentMetricRow>, StoreError> {
        let f = f.clone();
        self.scan_read(move |c| deployments(c, &canonical_filter(c, f)?)).await
    }

    async fn metric_merges(&self, f: &MetricsFilter) -> Result<Vec<(RepoName, Timestamp)>, StoreError> {
        let f = f.clone();
        self.scan_read(move |c| merges(c, &canonical_filter(c, f)?)).await
    }

    async fn team_memberships(&self, org: Option<&str>) -> Result<Vec<TeamMembershipRow>, StoreError> {
        let org = org.map(str::to_owned);
        self.scan_read(move |c| team_memberships(c, org.as_deref())).await
    }

    async fn last_deliveries(&self) -> Result<Vec<RepoDeliveryRow>, StoreError> {
        self.scan_read(last_deliveries).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_times_parse_like_rfc3339() {
        for s in ["2026-03-02T09:00:00.000Z", "2024-02-29T23:59:59.999Z", "1999-12-31T00:00:00.001Z"] {
            assert_eq!(parse_time(s).unwrap(), parse_ts(s).unwrap(), "{s}");
        }
        // Other forms still parse; nonsense does not.
        assert_eq!(parse_time("2026-03-02T10:00:00+01:00").unwrap(), parse_ts("2026-03-02T09:00:00.000Z").unwrap());
        assert!(parse_time("2026-02-30T09:00:00.000Z").is_err());
        assert!(parse_time("not a time at all, 24 ch").is_err());
    }
}
