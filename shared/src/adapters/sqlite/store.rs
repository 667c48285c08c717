use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use async_trait::async_trait;
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};
use rusqlite_migration::{M, Migrations};

use super::writer::{Writer, WriterError};
use super::{configure, parse_ts, parse_ts_opt, store_error, ts, ts_opt};
use crate::domain::*;
use crate::domain::{CheckRun, GapKind, JobRecord, JobState, Target};
use crate::ports::*;
use crate::ports::{OrgSnapshot, RepoSnapshot};
use crate::read::*;

/// How long a claimed-but-unfinished delivery blocks a redelivery. After a
/// crash, GitHub's redelivery (same delivery id) is processed once this passed.
const CLAIM_LEASE: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(include_str!("schema_v1.sql")),
        M::up(include_str!("schema_v2.sql")),
        M::up(include_str!("schema_v3.sql")),
    ])
}

/// Bring the schema to the latest version. Each migration is one transaction;
/// when another process (`serve` and `check` started together) migrates the
/// same file at the same moment, the loser's transaction fails and a retry
/// finds the schema current.
fn migrate(conn: &mut Connection) -> Result<(), rusqlite_migration::Error> {
    let mut attempt = 0;
    loop {
        match migrations().to_latest(conn) {
            Err(_) if attempt < 5 => {
                attempt += 1;
                std::thread::sleep(std::time::Duration::from_millis(50 * attempt));
            }
            other => return other,
        }
    }
}

/// The store on SQLite: one writer thread with group commit (SQLite has one
/// writer at a time anyway) and a pool of readers, which WAL lets run beside it.
#[derive(Clone)]
pub struct SqliteStore {
    writer: Arc<Writer>,
    readers: r2d2::Pool<SqliteConnectionManager>,
}

impl SqliteStore {
    /// Open (creating and migrating as needed) the store at `path`.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let mut conn = Connection::open(path).with_context(|| format!("opening {}", path.display()))?;
        // The store can be rebuilt from the archive (`octoscope replay`), so it
        // trades the last moments before a power cut for speed; the archive does not.
        configure(&conn, "NORMAL").context("configuring the store database")?;
        migrate(&mut conn).context("migrating the store schema")?;
        let manager = SqliteConnectionManager::file(path)
            .with_flags(rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX)
            .with_init(|c| c.busy_timeout(std::time::Duration::from_secs(5)));
        let readers = r2d2::Pool::builder().max_size(8).build(manager).context("opening store readers")?;
        let writer = Writer::start(conn, "octoscope-store").context("starting the store writer")?;
        Ok(Self { writer: Arc::new(writer), readers })
    }

    /// Run `f` atomically on the writer thread.
    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.writer.write(f).await.map_err(|e| match e {
            WriterError::Stopped => StoreError::Unavailable(e.into()),
            WriterError::Sqlite(inner) => match Arc::try_unwrap(inner) {
                Ok(sqlite) => store_error(sqlite),
                Err(shared) => StoreError::Unavailable(WriterError::Sqlite(shared).into()),
            },
        })
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let pool = self.readers.clone();
        tokio::task::spawn_blocking(move || {
            let conn = pool.get().map_err(|e| StoreError::Unavailable(e.into()))?;
            f(&conn)
        })
        .await
        .map_err(|e| StoreError::Internal(e.into()))?
    }
}

fn json_list(v: &Option<Vec<String>>) -> Option<String> {
    v.as_ref().map(|l| serde_json::to_string(l).expect("strings serialise"))
}

fn parse_list(s: Option<String>) -> Vec<String> {
    s.and_then(|s| serde_json::from_str(&s).ok()).unwrap_or_default()
}

/// Apply one change under the LWW rules; true if it changed the store.
fn apply(tx: &Connection, change: &Change) -> rusqlite::Result<bool> {
    let n = match change {
        Change::Repository(r) => tx.prepare_cached(
            "INSERT INTO repos (full_name, id, default_branch, private, archived, deleted, version, last_activity_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (full_name) DO UPDATE SET
               id = COALESCE(excluded.id, repos.id),
               default_branch = CASE WHEN repos.version IS NULL OR excluded.version >= repos.version
                                THEN COALESCE(excluded.default_branch, repos.default_branch) ELSE repos.default_branch END,
               private = CASE WHEN repos.version IS NULL OR excluded.version >= repos.version
                         THEN COALESCE(excluded.private, repos.private) ELSE repos.private END,
               archived = CASE WHEN repos.version IS NULL OR excluded.version >= repos.version
                          THEN COALESCE(excluded.archived, repos.archived) ELSE repos.archived END,
               deleted = CASE WHEN repos.version IS NULL OR excluded.version >= repos.version
                         THEN excluded.deleted ELSE repos.deleted END,
               version = CASE WHEN repos.version IS NULL OR excluded.version >= repos.version
                         THEN COALESCE(excluded.version, repos.version) ELSE repos.version END,
               last_activity_at = CASE WHEN repos.last_activity_at IS NULL OR excluded.last_activity_at > repos.last_activity_at
                                  THEN excluded.last_activity_at ELSE repos.last_activity_at END",
        )?
        .execute(params![
            r.full_name.as_str(),
            r.id,
            r.default_branch,
            r.private,
            r.archived,
            r.deleted,
            ts_opt(&r.version),
            ts_opt(&r.activity_at)
        ])?,
        Change::Branch(b) => tx.prepare_cached(
            "INSERT INTO branches (repo, name, head_sha, deleted, version) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (repo, name) DO UPDATE SET
               head_sha = CASE WHEN excluded.deleted THEN NULL ELSE COALESCE(excluded.head_sha, branches.head_sha) END,
               deleted = excluded.deleted, version = excluded.version
             WHERE excluded.version >= branches.version",
        )?
        .execute(params![b.repo.as_str(), b.name, b.head_sha, b.deleted, ts(&b.version)])?,
        Change::PullRequest(p) => tx.prepare_cached(
            "INSERT INTO pull_requests (repo, number, id, title, state, draft, author, created_at, updated_at, closed_at,
               merged_at, additions, deletions, changed_files, commits, labels, requested_reviewers, requested_teams,
               base_ref, head_ref, head_sha, rank)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22)
             ON CONFLICT (repo, number) DO UPDATE SET
               id = COALESCE(excluded.id, pull_requests.id), title = excluded.title, state = excluded.state,
               draft = excluded.draft, author = COALESCE(excluded.author, pull_requests.author),
               created_at = excluded.created_at, updated_at = excluded.updated_at,
               closed_at = excluded.closed_at, merged_at = excluded.merged_at,
               additions = COALESCE(excluded.additions, pull_requests.additions),
               deletions = COALESCE(excluded.deletions, pull_requests.deletions),
               changed_files = COALESCE(excluded.changed_files, pull_requests.changed_files),
               commits = COALESCE(excluded.commits, pull_requests.commits),
               labels = COALESCE(excluded.labels, pull_requests.labels),
               requested_reviewers = COALESCE(excluded.requested_reviewers, pull_requests.requested_reviewers),
               requested_teams = COALESCE(excluded.requested_teams, pull_requests.requested_teams),
               base_ref = COALESCE(excluded.base_ref, pull_requests.base_ref),
               head_ref = COALESCE(excluded.head_ref, pull_requests.head_ref),
               head_sha = COALESCE(excluded.head_sha, pull_requests.head_sha),
               rank = excluded.rank
             WHERE excluded.updated_at > pull_requests.updated_at
                OR (excluded.updated_at = pull_requests.updated_at AND excluded.rank >= pull_requests.rank)",
        )?
        .execute(params![
            p.repo.as_str(),
            p.number,
            p.id,
            p.title,
            p.state.as_str(),
            p.draft,
            p.author,
            ts(&p.created_at),
            ts(&p.updated_at),
            ts_opt(&p.closed_at),
            ts_opt(&p.merged_at),
            p.additions,
            p.deletions,
            p.changed_files,
            p.commits,
            json_list(&p.labels),
            json_list(&p.requested_reviewers),
            json_list(&p.requested_teams),
            p.base_ref,
            p.head_ref,
            p.head_sha,
            p.state.rank()
        ])?,
        Change::Review(r) => tx.prepare_cached(
            "INSERT INTO reviews (id, repo, pr_number, author, state, submitted_at, commit_id, rank)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (id) DO UPDATE SET
               repo = excluded.repo, pr_number = excluded.pr_number, author = COALESCE(excluded.author, reviews.author),
               state = excluded.state, submitted_at = COALESCE(excluded.submitted_at, reviews.submitted_at),
               commit_id = COALESCE(excluded.commit_id, reviews.commit_id), rank = excluded.rank
             WHERE reviews.submitted_at IS NULL OR excluded.submitted_at > reviews.submitted_at
                OR (excluded.submitted_at = reviews.submitted_at AND excluded.rank >= reviews.rank)",
        )?
        .execute(params![
            r.id,
            r.repo.as_str(),
            r.pr_number,
            r.author,
            r.state.as_str(),
            ts_opt(&r.submitted_at),
            r.commit_id,
            r.state.rank()
        ])?,
        Change::ReviewComment(c) => tx.prepare_cached(
            "INSERT INTO review_comments (id, repo, pr_number, review_id, author, created_at, updated_at, deleted)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (id) DO UPDATE SET
               review_id = COALESCE(excluded.review_id, review_comments.review_id), author = excluded.author,
               updated_at = excluded.updated_at, deleted = excluded.deleted
             WHERE excluded.updated_at >= review_comments.updated_at",
        )?
        .execute(params![
            c.id,
            c.repo.as_str(),
            c.pr_number,
            c.review_id,
            c.author,
            ts(&c.created_at),
            ts(&c.updated_at),
            c.deleted
        ])?,
        Change::Team(t) => tx.prepare_cached(
            "INSERT INTO teams (org, slug, id, name, description, privacy, parent_slug, deleted, version)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT (org, slug) DO UPDATE SET
               id = COALESCE(excluded.id, teams.id), name = excluded.name, description = excluded.description,
               privacy = excluded.privacy, parent_slug = excluded.parent_slug, deleted = excluded.deleted,
               version = excluded.version
             WHERE excluded.version >= teams.version",
        )?
        .execute(params![
            t.org,
            t.slug,
            t.id,
            t.name,
            t.description,
            t.privacy,
            t.parent_slug,
            t.deleted,
            ts(&t.version)
        ])?,
        Change::TeamMember { org, team_slug, member: m } => tx.prepare_cached(
            "INSERT INTO team_members (org, team_slug, login, present, version) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (org, team_slug, login) DO UPDATE SET present = excluded.present, version = excluded.version
             WHERE excluded.version >= team_members.version",
        )?
        .execute(params![org, team_slug, m.login, m.present, ts(&m.version)])?,
        Change::OrgMember { org, member: m } => tx.prepare_cached(
            "INSERT INTO org_members (org, login, role, present, version) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (org, login) DO UPDATE SET
               role = COALESCE(excluded.role, org_members.role), present = excluded.present, version = excluded.version
             WHERE excluded.version >= org_members.version",
        )?
        .execute(params![org, m.login, m.role, m.present, ts(&m.version)])?,
        Change::Collaborator { repo, member: m } => tx.prepare_cached(
            "INSERT INTO collaborators (repo, login, role, present, version) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (repo, login) DO UPDATE SET
               role = COALESCE(excluded.role, collaborators.role), present = excluded.present, version = excluded.version
             WHERE excluded.version >= collaborators.version",
        )?
        .execute(params![repo.as_str(), m.login, m.role, m.present, ts(&m.version)])?,
        Change::Commit { commit: c, branch, pushed_at } => {
            let mut n = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO commits (repo, sha, message, author_name, author_login, committed_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?
                .execute(params![
                    c.repo.as_str(),
                    c.sha,
                    c.message,
                    c.author_name,
                    c.author_login,
                    ts_opt(&c.committed_at)
                ])?;
            if let Some(branch) = branch {
                n += tx
                    .prepare_cached(
                        "INSERT OR IGNORE INTO branch_commits (repo, branch, sha, pushed_at) VALUES (?1, ?2, ?3, ?4)",
                    )?
                    .execute(params![c.repo.as_str(), branch, c.sha, ts_opt(pushed_at)])?;
            }
            n
        }
        Change::WorkflowRun(r) => tx.prepare_cached(
            "INSERT INTO workflow_runs (id, repo, name, workflow_id, head_branch, head_sha, event, status, conclusion,
               run_number, run_attempt, actor, created_at, run_started_at, updated_at, rank)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)
             ON CONFLICT (id) DO UPDATE SET
               name = excluded.name, workflow_id = excluded.workflow_id, head_branch = excluded.head_branch,
               head_sha = excluded.head_sha, event = excluded.event, status = excluded.status,
               conclusion = excluded.conclusion, run_number = excluded.run_number, run_attempt = excluded.run_attempt,
               actor = COALESCE(excluded.actor, workflow_runs.actor), created_at = excluded.created_at,
               run_started_at = COALESCE(excluded.run_started_at, workflow_runs.run_started_at),
               updated_at = excluded.updated_at, rank = excluded.rank
             WHERE excluded.updated_at > workflow_runs.updated_at
                OR (excluded.updated_at = workflow_runs.updated_at AND excluded.rank >= workflow_runs.rank)",
        )?
        .execute(params![
            r.id,
            r.repo.as_str(),
            r.name,
            r.workflow_id,
            r.head_branch,
            r.head_sha,
            r.event,
            r.status.as_str(),
            r.conclusion,
            r.run_number,
            r.run_attempt,
            r.actor,
            ts(&r.created_at),
            ts_opt(&r.run_started_at),
            ts(&r.updated_at),
            r.status.rank()
        ])?,
        Change::WorkflowJob(j) => tx.prepare_cached(
            "INSERT INTO workflow_jobs (id, repo, run_id, name, workflow_name, head_branch, status, conclusion, labels,
               runner_name, runner_group, os, created_at, started_at, completed_at, version, rank)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)
             ON CONFLICT (id) DO UPDATE SET
               name = excluded.name, workflow_name = COALESCE(excluded.workflow_name, workflow_jobs.workflow_name),
               head_branch = COALESCE(excluded.head_branch, workflow_jobs.head_branch), status = excluded.status,
               conclusion = excluded.conclusion, labels = excluded.labels,
               runner_name = COALESCE(excluded.runner_name, workflow_jobs.runner_name),
               runner_group = COALESCE(excluded.runner_group, workflow_jobs.runner_group),
               os = COALESCE(excluded.os, workflow_jobs.os),
               created_at = COALESCE(excluded.created_at, workflow_jobs.created_at),
               started_at = COALESCE(excluded.started_at, workflow_jobs.started_at),
               completed_at = COALESCE(excluded.completed_at, workflow_jobs.completed_at),
               version = excluded.version, rank = excluded.rank
             WHERE workflow_jobs.version IS NULL OR excluded.version > workflow_jobs.version
                OR (excluded.version = workflow_jobs.version AND excluded.rank >= workflow_jobs.rank)",
        )?
        .execute(params![
            j.id,
            j.repo.as_str(),
            j.run_id,
            j.name,
            j.workflow_name,
            j.head_branch,
            j.status.as_str(),
            j.conclusion,
            serde_json::to_string(&j.labels).expect("strings serialise"),
            j.runner_name,
            j.runner_group,
            j.os,
            ts_opt(&j.created_at),
            ts_opt(&j.started_at),
            ts_opt(&j.completed_at),
            ts_opt(&j.version()),
            j.status.rank()
        ])?,
        Change::Deployment(d) => tx.prepare_cached(
            "INSERT INTO deployments (id, repo, sha, ref, environment, task, creator, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT (id) DO UPDATE SET
               sha = excluded.sha, ref = excluded.ref, environment = excluded.environment, task = excluded.task,
               creator = COALESCE(excluded.creator, deployments.creator), updated_at = excluded.updated_at
             WHERE excluded.updated_at >= deployments.updated_at",
        )?
        .execute(params![
            d.id,
            d.repo.as_str(),
            d.sha,
            d.git_ref,
            d.environment,
            d.task,
            d.creator,
            ts(&d.created_at),
            ts(&d.updated_at)
        ])?,
        Change::DeploymentStatus(s) => tx.prepare_cached(
            "INSERT INTO deployment_statuses (id, deployment_id, repo, state, environment, creator, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (id) DO UPDATE SET
               state = excluded.state, environment = excluded.environment, updated_at = excluded.updated_at
             WHERE excluded.updated_at >= deployment_statuses.updated_at",
        )?
        .execute(params![
            s.id,
            s.deployment_id,
            s.repo.as_str(),
            s.state,
            s.environment,
            s.creator,
            ts(&s.created_at),
            ts(&s.updated_at)
        ])?,
    };
    Ok(n > 0)
}

/// Recompute one pull request's review facts (schema v3): the earliest
/// non-pending review by someone other than the author, and the reviews whose
/// current state is changes requested. Run after every write of a review or
/// of its pull request, whichever arrives first.
const REFRESH_REVIEW_FACTS: &str = "UPDATE pull_requests SET
    first_review_at = (SELECT MIN(r.submitted_at) FROM reviews r
                       WHERE r.repo = pull_requests.repo AND r.pr_number = pull_requests.number
                         AND r.submitted_at IS NOT NULL AND r.state != 'pending'
                         AND (pull_requests.author IS NULL OR r.author IS NULL OR r.author != pull_requests.author)),
    changes_requested = (SELECT COUNT(*) FROM reviews r
                         WHERE r.repo = pull_requests.repo AND r.pr_number = pull_requests.number
                           AND r.state = 'changes_requested')
  WHERE repo = ?1 AND number = ?2";

fn apply_all(tx: &Connection, changes: &[Change]) -> rusqlite::Result<ApplyReport> {
    let mut report = ApplyReport::default();
    for c in changes {
        if apply(tx, c)? {
            report.applied += 1;
            let pull = match c {
                Change::Review(r) => Some((&r.repo, r.pr_number)),
                Change::PullRequest(p) => Some((&p.repo, p.number)),
                _ => None,
            };
            if let Some((repo, number)) = pull {
                tx.prepare_cached(REFRESH_REVIEW_FACTS)?.execute(params![repo.as_str(), number])?;
            }
        } else {
            report.skipped += 1;
        }
    }
    Ok(report)
}

const ENTITY_TABLES: &[&str] = &[
    "repos",
    "branches",
    "pull_requests",
    "reviews",
    "review_comments",
    "teams",
    "team_members",
    "org_members",
    "collaborators",
    "commits",
    "branch_commits",
    "workflow_runs",
    "workflow_jobs",
    "deployments",
    "deployment_statuses",
];

const PULL_COLUMNS: &str = "repo, number, title, state, draft, author, created_at, updated_at, closed_at, merged_at,
    additions, deletions, changed_files, commits, labels, requested_reviewers, requested_teams, base_ref, head_ref";

fn pull_from_row(r: &Row) -> rusqlite::Result<PullView> {
    Ok(PullView {
        repo: r.get(0)?,
        number: r.get(1)?,
        title: r.get(2)?,
        state: r.get(3)?,
        draft: r.get(4)?,
        author: r.get(5)?,
        created_at: parse_ts(&r.get::<_, String>(6)?)?,
        updated_at: parse_ts(&r.get::<_, String>(7)?)?,
        closed_at: parse_ts_opt(r.get(8)?)?,
        merged_at: parse_ts_opt(r.get(9)?)?,
        additions: r.get(10)?,
        deletions: r.get(11)?,
        changed_files: r.get(12)?,
        commits: r.get(13)?,
        labels: parse_list(r.get(14)?),
        requested_reviewers: parse_list(r.get(15)?),
        requested_teams: parse_list(r.get(16)?),
        base_ref: r.get(17)?,
        head_ref: r.get(18)?,
    })
}

/// Run a query with dynamic parameters and map its rows.
fn query<T>(
    conn: &Connection,
    sql: &str,
    args: Vec<Value>,
    map: impl FnMut(&Row) -> rusqlite::Result<T>,
) -> Result<Vec<T>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(store_error)?;
    let rows = stmt.query_map(params_from_iter(args), map).map_err(store_error)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(store_error)
}

fn limit_arg(page: &PageRequest) -> Value {
    Value::Integer(page.limit as i64 + 1)
}

#[async_trait]
impl DeliveryLedger for SqliteStore {
    async fn claim_delivery(&self, claim: &DeliveryClaim) -> Result<Claim, StoreError> {
        let c = claim.clone();
        let cutoff = ts(&(claim.received_at - CLAIM_LEASE));
        self.write(move |conn| {
            let inserted = conn
                .prepare_cached(
                    "INSERT INTO deliveries (hook_id, delivery_id, event, action, repo, org, received_at, status, body_bytes)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending', ?8)
                     ON CONFLICT (hook_id, delivery_id) DO UPDATE SET received_at = excluded.received_at
                     WHERE deliveries.status = 'pending' AND deliveries.received_at < ?9",
                )?
                .execute(params![
                    c.key.hook_id.as_str(),
                    c.key.delivery_id.as_str(),
                    c.event.as_str(),
                    c.action,
                    c.repo.as_ref().map(RepoName::as_str),
                    c.org,
                    ts(&c.received_at),
                    c.body_bytes,
                    cutoff
                ])?;
            if inserted > 0 {
                return Ok(Claim::Claimed);
            }
            let status: String = conn
                .prepare_cached("SELECT status FROM deliveries WHERE hook_id = ?1 AND delivery_id = ?2")?
                .query_row(params![c.key.hook_id.as_str(), c.key.delivery_id.as_str()], |r| r.get(0))?;
            Ok(Claim::Duplicate(DeliveryStatus::parse(&status).unwrap_or(DeliveryStatus::Pending)))
        })
        .await
    }

    async fn release_delivery(&self, key: &DeliveryKey) -> Result<(), StoreError> {
        let key = key.clone();
        self.write(move |conn| {
            conn.prepare_cached(
                "DELETE FROM deliveries WHERE hook_id = ?1 AND delivery_id = ?2 AND status = 'pending'",
            )?
            .execute(params![key.hook_id.as_str(), key.delivery_id.as_str()])
            .map(drop)
        })
        .await
    }

    async fn complete_delivery(
        &self,
        key: &DeliveryKey,
        changes: &[Change],
        outcome: &DeliveryOutcome,
    ) -> Result<ApplyReport, StoreError> {
        let (key, changes, outcome) = (key.clone(), changes.to_vec(), outcome.clone());
        self.write(move |tx| {
            let report = apply_all(tx, &changes)?;
            tx.prepare_cached(
                "UPDATE deliveries SET status = ?3, reason = ?4, changes = ?5 WHERE hook_id = ?1 AND delivery_id = ?2",
            )?
            .execute(params![
                key.hook_id.as_str(),
                key.delivery_id.as_str(),
                outcome.status.as_str(),
                outcome.reason,
                report.applied
            ])?;
            Ok(report)
        })
        .await
    }
}

#[async_trait]
impl ChangeSink for SqliteStore {
    async fn apply_changes(&self, changes: &[Change]) -> Result<ApplyReport, StoreError> {
        let changes = changes.to_vec();
        self.write(move |tx| apply_all(tx, &changes)).await
    }

    async fn reset_entities(&self) -> Result<(), StoreError> {
        self.write(|tx| {
            for table in ENTITY_TABLES {
                tx.execute(&format!("DELETE FROM {table}"), [])?;
            }
            Ok(())
        })
        .await
    }
}

#[async_trait]
impl ReadModel for SqliteStore {
    async fn list_repos(&self, page: &PageRequest) -> Result<Page<RepoView>, StoreError> {
        let page = page.clone();
        self.read(move |conn| {
            let mut args = Vec::new();
            let mut sql = String::from(
                "SELECT full_name, default_branch, private, archived, last_activity_at FROM repos WHERE deleted = 0",
            );
            if let Some(c) = &page.cursor {
                let (at, name): (String, String) = decode_cursor(c)?;
                sql.push_str(
                    " AND (COALESCE(last_activity_at, '') < ?1 OR (COALESCE(last_activity_at, '') = ?1 AND full_name > ?2))",
                );
                args.extend([Value::Text(at), Value::Text(name)]);
            }
            sql.push_str(&format!(" ORDER BY COALESCE(last_activity_at, '') DESC, full_name ASC LIMIT ?{}", args.len() + 1));
            args.push(limit_arg(&page));
            let rows = query(conn, &sql, args, |r| {
                Ok((
                    RepoView {
                        full_name: r.get(0)?,
                        default_branch: r.get(1)?,
                        private: r.get(2)?,
                        archived: r.get(3)?,
                        branches: Vec::new(),
                        last_activity_at: parse_ts_opt(r.get(4)?)?,
                    },
                    r.get::<_, Option<String>>(4)?.unwrap_or_default(),
                ))
            })?;
            let mut page = page_from(rows, page.limit, |(v, at)| (at.clone(), v.full_name.clone()));
            let mut items = Vec::with_capacity(page.items.len());
            for (mut repo, _) in page.items.drain(..) {
                repo.branches = query(
                    conn,
                    "SELECT name, head_sha FROM branches WHERE repo = ?1 AND deleted = 0 ORDER BY name",
                    vec![Value::Text(repo.full_name.clone())],
                    |r| Ok(BranchView { name: r.get(0)?, head_sha: r.get(1)? }),
                )?;
                items.push(repo);
            }
            Ok(Page { items, next_cursor: page.next_cursor })
        })
        .await
    }

    async fn list_pulls(&self, filter: &PullFilter, page: &PageRequest) -> Result<Page<PullView>, StoreError> {
        let (filter, page) = (filter.clone(), page.clone());
        self.read(move |conn| {
            let mut args = Vec::new();
            let mut sql = format!("SELECT {PULL_COLUMNS} FROM pull_requests WHERE 1 = 1");
            let mut arg = |sql: &mut String, clause: &str, v: Value| {
                args.push(v);
                sql.push_str(&clause.replace('?', &format!("?{}", args.len())));
            };
            if let Some(repo) = &filter.repo {
                arg(&mut sql, " AND repo = ?", Value::Text(repo.to_string()));
            }
            if let Some(state) = filter.state {
                arg(&mut sql, " AND state = ?", Value::Text(state.as_str().into()));
            }
            if let Some(author) = &filter.author {
                arg(&mut sql, " AND author = ?", Value::Text(author.clone()));
            }
            if let Some(c) = &page.cursor {
                let (at, repo, number): (String, String, i64) = decode_cursor(c)?;
                arg(&mut sql, " AND (updated_at, repo, number) < (?", Value::Text(at));
                arg(&mut sql, ", ?", Value::Text(repo));
                arg(&mut sql, ", ?)", Value::Integer(number));
            }
            arg(&mut sql, " ORDER BY updated_at DESC, repo DESC, number DESC LIMIT ?", limit_arg(&page));
            let rows = query(conn, &sql, args, pull_from_row)?;
            Ok(page_from(rows, page.limit, |p| (ts(&p.updated_at), p.repo.clone(), p.number)))
        })
        .await
    }

    async fn get_pull(&self, repo: &RepoName, number: u64) -> Result<Option<PullDetail>, StoreError> {
        let repo = repo.to_string();
        self.read(move |conn| {
            let pull = conn
                .prepare_cached(&format!("SELECT {PULL_COLUMNS} FROM pull_requests WHERE repo = ?1 AND number = ?2"))
                .and_then(|mut s| s.query_row(params![repo, number], pull_from_row).optional())
                .map_err(store_error)?;
            let Some(pull) = pull else { return Ok(None) };
            let reviews = query(
                conn,
                "SELECT id, author, state, submitted_at FROM reviews WHERE repo = ?1 AND pr_number = ?2
                 ORDER BY COALESCE(submitted_at, ''), id",
                vec![Value::Text(repo), Value::Integer(number as i64)],
                |r| {
                    Ok(ReviewView {
                        id: r.get(0)?,
                        author: r.get(1)?,
                        state: r.get(2)?,
                        submitted_at: parse_ts_opt(r.get(3)?)?,
                    })
                },
            )?;
            Ok(Some(PullDetail { pull, reviews }))
        })
        .await
    }

    async fn list_teams(&self, org: Option<&str>, page: &PageRequest) -> Result<Page<TeamView>, StoreError> {
        let (org, page) = (org.map(str::to_owned), page.clone());
        self.read(move |conn| {
            let mut args = Vec::new();
            let mut sql =
                String::from("SELECT org, slug, name, description, privacy, parent_slug FROM teams WHERE deleted = 0");
            if let Some(org) = org {
                args.push(Value::Text(org));
                sql.push_str(" AND org = ?1");
            }
            if let Some(c) = &page.cursor {
                let (org, slug): (String, String) = decode_cursor(c)?;
                sql.push_str(&format!(" AND (org, slug) > (?{}, ?{})", args.len() + 1, args.len() + 2));
                args.extend([Value::Text(org), Value::Text(slug)]);
            }
            sql.push_str(&format!(" ORDER BY org, slug LIMIT ?{}", args.len() + 1));
            args.push(limit_arg(&page));
            let rows = query(conn, &sql, args, |r| {
                Ok(TeamView {
                    org: r.get(0)?,
                    slug: r.get(1)?,
                    name: r.get(2)?,
                    description: r.get(3)?,
                    privacy: r.get(4)?,
                    parent: r.get(5)?,
                    members: Vec::new(),
                })
            })?;
            let mut page = page_from(rows, page.limit, |t| (t.org.clone(), t.slug.clone()));
            for team in &mut page.items {
                team.members = query(
                    conn,
                    "SELECT login FROM team_members WHERE org = ?1 AND team_slug = ?2 AND present = 1 ORDER BY login",
                    vec![Value::Text(team.org.clone()), Value::Text(team.slug.clone())],
                    |r| r.get(0),
                )?;
            }
            Ok(page)
        })
        .await
    }

    async fn list_commits(
        &self,
        repo: &RepoName,
        branch: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<CommitView>, StoreError> {
        let (repo, branch, page) = (repo.to_string(), branch.map(str::to_owned), page.clone());
        self.read(move |conn| {
            let mut args = vec![Value::Text(repo)];
            let mut sql = String::from(
                "SELECT c.repo, c.sha, c.message, c.author_login, c.author_name, c.committed_at FROM commits c",
            );
            if let Some(branch) = branch {
                sql.push_str(" JOIN branch_commits b ON b.repo = c.repo AND b.sha = c.sha AND b.branch = ?2");
                args.push(Value::Text(branch));
            }
            sql.push_str(" WHERE c.repo = ?1");
            if let Some(cur) = &page.cursor {
                let (at, sha): (String, String) = decode_cursor(cur)?;
                sql.push_str(&format!(
                    " AND (COALESCE(c.committed_at, ''), c.sha) < (?{}, ?{})",
                    args.len() + 1,
                    args.len() + 2
                ));
                args.extend([Value::Text(at), Value::Text(sha)]);
            }
            sql.push_str(&format!(" ORDER BY COALESCE(c.committed_at, '') DESC, c.sha DESC LIMIT ?{}", args.len() + 1));
            args.push(limit_arg(&page));
            let rows = query(conn, &sql, args, |r| {
                Ok(CommitView {
                    repo: r.get(0)?,
                    sha: r.get(1)?,
                    message: r.get(2)?,
                    author_login: r.get(3)?,
                    author_name: r.get(4)?,
                    committed_at: parse_ts_opt(r.get(5)?)?,
                })
            })?;
            Ok(page_from(rows, page.limit, |c| (c.committed_at.as_ref().map(ts).unwrap_or_default(), c.sha.clone())))
        })
        .await
    }

    async fn list_workflow_runs(
        &self,
        repo: Option<&RepoName>,
        page: &PageRequest,
    ) -> Result<Page<WorkflowRunView>, StoreError> {
        let (repo, page) = (repo.map(RepoName::to_string), page.clone());
        self.read(move |conn| {
            let mut args = Vec::new();
            let mut sql = String::from(
                "SELECT repo, id, name, workflow_id, head_branch, head_sha, event, status, conclusion, run_number,
                   run_attempt, actor, created_at, run_started_at, updated_at FROM workflow_runs WHERE 1 = 1",
            );
            if let Some(repo) = repo {
                args.push(Value::Text(repo));
                sql.push_str(" AND repo = ?1");
            }
            if let Some(cur) = &page.cursor {
                let (at, id): (String, i64) = decode_cursor(cur)?;
                sql.push_str(&format!(" AND (created_at, id) < (?{}, ?{})", args.len() + 1, args.len() + 2));
                args.extend([Value::Text(at), Value::Integer(id)]);
            }
            sql.push_str(&format!(" ORDER BY created_at DESC, id DESC LIMIT ?{}", args.len() + 1));
            args.push(limit_arg(&page));
            let rows = query(conn, &sql, args, |r| {
                Ok(WorkflowRunView {
                    repo: r.get(0)?,
                    id: r.get(1)?,
                    name: r.get(2)?,
                    workflow_id: r.get(3)?,
                    head_branch: r.get(4)?,
                    head_sha: r.get(5)?,
                    event: r.get(6)?,
                    status: r.get(7)?,
                    conclusion: r.get(8)?,
                    run_number: r.get(9)?,
                    run_attempt: r.get(10)?,
                    actor: r.get(11)?,
                    created_at: parse_ts(&r.get::<_, String>(12)?)?,
                    run_started_at: parse_ts_opt(r.get(13)?)?,
                    updated_at: parse_ts(&r.get::<_, String>(14)?)?,
                    queue_seconds: None,
                    duration_seconds: None,
                }
                .with_timings())
            })?;
            Ok(page_from(rows, page.limit, |r| (ts(&r.created_at), r.id)))
        })
        .await
    }

    async fn list_deliveries(
        &self,
        filter: &DeliveryFilter,
        page: &PageRequest,
    ) -> Result<Page<DeliveryView>, StoreError> {
        let (filter, page) = (filter.clone(), page.clone());
        self.read(move |conn| {
            let mut args = Vec::new();
            let mut sql = String::from(
                "SELECT seq, hook_id, delivery_id, event, action, repo, org, received_at, status, reason, changes,
                   body_bytes FROM deliveries WHERE 1 = 1",
            );
            let mut arg = |sql: &mut String, clause: &str, v: Value| {
                args.push(v);
                sql.push_str(&clause.replace('?', &format!("?{}", args.len())));
            };
            if let Some(s) = filter.status {
                arg(&mut sql, " AND status = ?", Value::Text(s.as_str().into()));
            }
            if let Some(e) = &filter.event {
                arg(&mut sql, " AND event = ?", Value::Text(e.to_string()));
            }
            if let Some(r) = &filter.repo {
                arg(&mut sql, " AND repo = ?", Value::Text(r.to_string()));
            }
            if let Some(cur) = &page.cursor {
                let seq: i64 = decode_cursor(cur)?;
                arg(&mut sql, " AND seq < ?", Value::Integer(seq));
            }
            arg(&mut sql, " ORDER BY seq DESC LIMIT ?", limit_arg(&page));
            let rows = query(conn, &sql, args, |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    DeliveryView {
                        hook_id: r.get(1)?,
                        delivery_id: r.get(2)?,
                        event: r.get(3)?,
                        action: r.get(4)?,
                        repo: r.get(5)?,
                        org: r.get(6)?,
                        received_at: parse_ts(&r.get::<_, String>(7)?)?,
                        status: r.get(8)?,
                        reason: r.get(9)?,
                        changes: r.get(10)?,
                        body_bytes: r.get(11)?,
                    },
                ))
            })?;
            let page = page_from(rows, page.limit, |(seq, _)| *seq);
            Ok(Page { items: page.items.into_iter().map(|(_, d)| d).collect(), next_cursor: page.next_cursor })
        })
        .await
    }

    async fn stats(&self) -> Result<StoreStats, StoreError> {
        self.read(|conn| {
            let mut stats = StoreStats::default();
            for (status, n) in query(conn, "SELECT status, COUNT(*) FROM deliveries GROUP BY status", vec![], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, u64>(1)?))
            })? {
                stats.deliveries.insert(status, n);
            }
            for (event, n) in query(
                conn,
                "SELECT event, COUNT(*) FROM deliveries WHERE status = 'ignored' GROUP BY event",
                vec![],
                |r| Ok((r.get::<_, String>(0)?, r.get::<_, u64>(1)?)),
            )? {
                stats.ignored_events.insert(event, n);
            }
            let count =
                |sql: &str| -> Result<u64, StoreError> { conn.query_row(sql, [], |r| r.get(0)).map_err(store_error) };
            stats.repositories = count("SELECT COUNT(*) FROM repos WHERE deleted = 0")?;
            stats.pull_requests = count("SELECT COUNT(*) FROM pull_requests")?;
            stats.teams = count("SELECT COUNT(*) FROM teams WHERE deleted = 0")?;
            stats.workflow_runs = count("SELECT COUNT(*) FROM workflow_runs")?;
            let last: Option<String> =
                conn.query_row("SELECT MAX(received_at) FROM deliveries", [], |r| r.get(0)).map_err(store_error)?;
            stats.last_delivery_at = parse_ts_opt(last).map_err(store_error)?;
            Ok(stats)
        })
        .await
    }
}

#[async_trait]
impl CompletenessStore for SqliteStore {
    async fn tracked(&self) -> Result<Tracked, StoreError> {
        self.read(|conn| {
            let repos: Vec<String> = query(
                conn,
                "SELECT full_name FROM repos WHERE deleted = 0
                 UNION SELECT DISTINCT repo FROM deliveries WHERE repo IS NOT NULL ORDER BY 1",
                vec![],
                |r| r.get(0),
            )?;
            let orgs: Vec<String> = query(
                conn,
                "SELECT org FROM teams UNION SELECT org FROM org_members
                 UNION SELECT DISTINCT org FROM deliveries WHERE org IS NOT NULL ORDER BY 1",
                vec![],
                |r| r.get(0),
            )?;
            let deleted: Vec<String> =
                query(conn, "SELECT full_name FROM repos WHERE deleted = 1", vec![], |r| r.get(0))?;
            Ok(Tracked {
                repos: repos.iter().filter(|r| !deleted.contains(r)).filter_map(|r| RepoName::parse(r).ok()).collect(),
                orgs,
            })
        })
        .await
    }

    async fn repo_summaries(&self, repos: &[RepoName]) -> Result<Vec<RepoSnapshot>, StoreError> {
        let repos = repos.to_vec();
        self.read(move |conn| {
            let mut out = Vec::with_capacity(repos.len());
            for repo in repos {
                let name = Value::Text(repo.to_string());
                let counts: Vec<(String, u64)> = query(
                    conn,
                    "SELECT state, COUNT(*) FROM pull_requests WHERE repo = ?1 GROUP BY state",
                    vec![name.clone()],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?;
                let count = |s: &str| counts.iter().find(|(k, _)| k == s).map_or(0, |(_, n)| *n);
                let newest: Option<String> = conn
                    .query_row("SELECT MAX(updated_at) FROM pull_requests WHERE repo = ?1", [repo.as_str()], |r| {
                        r.get(0)
                    })
                    .map_err(store_error)?;
                let branches = query(
                    conn,
                    "SELECT name, COALESCE(head_sha, '') FROM branches WHERE repo = ?1 AND deleted = 0 ORDER BY name",
                    vec![name.clone()],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?;
                let default_branch: Option<String> = conn
                    .query_row("SELECT default_branch FROM repos WHERE full_name = ?1", [repo.as_str()], |r| r.get(0))
                    .optional()
                    .map_err(store_error)?
                    .flatten();
                out.push(RepoSnapshot {
                    open: count("open"),
                    closed: count("closed"),
                    merged: count("merged"),
                    newest_pr_updated_at: parse_ts_opt(newest).map_err(store_error)?,
                    branches,
                    branches_truncated: false,
                    default_branch,
                    repo,
                });
            }
            Ok(out)
        })
        .await
    }

    async fn org_summaries(&self, orgs: &[String]) -> Result<Vec<OrgSnapshot>, StoreError> {
        let orgs = orgs.to_vec();
        self.read(move |conn| {
            let mut out = Vec::with_capacity(orgs.len());
            for org in orgs {
                let teams = query(
                    conn,
                    "SELECT t.slug, (SELECT COUNT(*) FROM team_members m
                                     WHERE m.org = t.org AND m.team_slug = t.slug AND m.present = 1)
                     FROM teams t WHERE t.org = ?1 AND t.deleted = 0 ORDER BY t.slug",
                    vec![Value::Text(org.clone())],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?;
                out.push(OrgSnapshot { org, teams });
            }
            Ok(out)
        })
        .await
    }

    async fn team_rosters(&self, org: &str) -> Result<Vec<(String, Vec<String>)>, StoreError> {
        let org = org.to_owned();
        self.read(move |conn| {
            let rows: Vec<(String, Option<String>)> = query(
                conn,
                "SELECT t.slug, m.login FROM teams t
                 LEFT JOIN team_members m ON m.org = t.org AND m.team_slug = t.slug AND m.present = 1
                 WHERE t.org = ?1 AND t.deleted = 0 ORDER BY t.slug, m.login",
                vec![Value::Text(org)],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            let mut out: Vec<(String, Vec<String>)> = Vec::new();
            for (slug, login) in rows {
                if out.last().is_none_or(|(s, _)| *s != slug) {
                    out.push((slug, Vec::new()));
                }
                if let (Some(login), Some((_, members))) = (login, out.last_mut()) {
                    members.push(login);
                }
            }
            Ok(out)
        })
        .await
    }

    async fn known_deliveries(&self, keys: &[DeliveryKey]) -> Result<Vec<bool>, StoreError> {
        let keys = keys.to_vec();
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT 1 FROM deliveries WHERE hook_id = ?1 AND delivery_id = ?2 AND status != 'pending'",
                )
                .map_err(store_error)?;
            keys.iter()
                .map(|k| stmt.exists(params![k.hook_id.as_str(), k.delivery_id.as_str()]).map_err(store_error))
                .collect()
        })
        .await
    }

    async fn delivery_hooks(&self) -> Result<Vec<HookSeen>, StoreError> {
        self.read(|conn| {
            let rows: Vec<(String, Option<String>, Option<String>, i64)> = query(
                conn,
                "SELECT hook_id, MAX(org), MAX(repo), SUM(repo IS NULL AND org IS NOT NULL)
                 FROM deliveries WHERE hook_id != '0' GROUP BY hook_id ORDER BY hook_id",
                vec![],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )?;
            Ok(rows
                .into_iter()
                .filter_map(|(hook, org, repo, org_events)| {
                    Some(HookSeen {
                        hook_id: HookId::parse(&hook).ok()?,
                        org,
                        repo: repo.and_then(|r| RepoName::parse(&r).ok()),
                        org_events: org_events > 0,
                    })
                })
                .collect())
        })
        .await
    }

    async fn record_check(&self, run: &CheckRun) -> Result<(), StoreError> {
        let run = run.clone();
        self.write(move |conn| {
            conn.prepare_cached(
                "INSERT OR REPLACE INTO check_runs (id, started_at, finished_at, repos_compared, orgs_compared, gaps,
                   redelivered, requests, dry_run, verified, error)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?
            .execute(params![
                run.id,
                ts(&run.started_at),
                ts(&run.finished_at),
                run.repos_compared,
                run.orgs_compared,
                serde_json::to_string(&run.gaps).expect("gaps serialise"),
                run.redelivered,
                run.requests,
                run.dry_run,
                serde_json::to_string(&run.verified).expect("targets serialise"),
                run.error
            ])
            .map(drop)
        })
        .await
    }

    async fn verified_at(&self, target: &Target) -> Result<Option<Timestamp>, StoreError> {
        let needle = serde_json::to_string(target).expect("targets serialise");
        self.read(move |conn| {
            // Newest first; the JSON text of a target is unique, so a substring test finds it.
            let at: Option<String> = conn
                .query_row(
                    "SELECT started_at FROM check_runs WHERE dry_run = 0 AND instr(verified, ?1) > 0
                     ORDER BY started_at DESC LIMIT 1",
                    [needle],
                    |r| r.get(0),
                )
                .optional()
                .map_err(store_error)?;
            parse_ts_opt(at).map_err(store_error)
        })
        .await
    }

    async fn list_checks(&self, page: &PageRequest) -> Result<Page<CheckRun>, StoreError> {
        let page = page.clone();
        self.read(move |conn| {
            let mut args = Vec::new();
            let mut sql = String::from(
                "SELECT id, started_at, finished_at, repos_compared, orgs_compared, gaps, redelivered, requests,
                   dry_run, error FROM check_runs WHERE 1 = 1",
            );
            if let Some(c) = &page.cursor {
                let (at, id): (String, String) = decode_cursor(c)?;
                sql.push_str(" AND (started_at, id) < (?1, ?2)");
                args.extend([Value::Text(at), Value::Text(id)]);
            }
            sql.push_str(&format!(" ORDER BY started_at DESC, id DESC LIMIT ?{}", args.len() + 1));
            args.push(limit_arg(&page));
            let rows = query(conn, &sql, args, |r| {
                Ok(CheckRun {
                    id: r.get(0)?,
                    started_at: parse_ts(&r.get::<_, String>(1)?)?,
                    finished_at: parse_ts(&r.get::<_, String>(2)?)?,
                    repos_compared: r.get(3)?,
                    orgs_compared: r.get(4)?,
                    gaps: serde_json::from_str(&r.get::<_, String>(5)?).unwrap_or_default(),
                    redelivered: r.get(6)?,
                    requests: r.get(7)?,
                    dry_run: r.get(8)?,
                    verified: Vec::new(),
                    error: r.get(9)?,
                })
            })?;
            Ok(page_from(rows, page.limit, |c| (ts(&c.started_at), c.id.clone())))
        })
        .await
    }
}

#[async_trait]
impl JobStore for SqliteStore {
    async fn save_job(&self, job: &JobRecord) -> Result<(), StoreError> {
        let job = job.clone();
        self.write(move |conn| {
            conn.prepare_cached(
                "INSERT INTO jobs (id, target, kinds, watermark, state, created_at, started_at, finished_at, written,
                   requests, error)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                 ON CONFLICT (id) DO UPDATE SET state = excluded.state, started_at = excluded.started_at,
                   finished_at = excluded.finished_at, written = excluded.written, requests = excluded.requests,
                   error = excluded.error",
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
                job.error
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

#[async_trait]
impl MetricRows for SqliteStore {
    // Metrics: one-line delegations to `metrics.rs`.

    async fn metric_pulls(&self, f: &MetricsFilter) -> Result<Vec<PullMetricRow>, StoreError> {
        let f = f.clone();
        self.read(move |c| super::metrics::pulls(c, &f)).await
    }

    async fn metric_runs(&self, f: &MetricsFilter) -> Result<Vec<RunMetricRow>, StoreError> {
        let f = f.clone();
        self.read(move |c| super::metrics::runs(c, &f)).await
    }

    async fn metric_jobs(&self, f: &MetricsFilter) -> Result<Vec<JobMetricRow>, StoreError> {
        let f = f.clone();
        self.read(move |c| super::metrics::jobs(c, &f)).await
    }

    async fn metric_deployments(&self, f: &MetricsFilter) -> Result<Vec<DeploymentMetricRow>, StoreError> {
        let f = f.clone();
        self.read(move |c| super::metrics::deployments(c, &f)).await
    }

    async fn team_memberships(&self, org: Option<&str>) -> Result<Vec<TeamMembershipRow>, StoreError> {
        let org = org.map(str::to_owned);
        self.read(move |c| super::metrics::team_memberships(c, org.as_deref())).await
    }

    async fn last_deliveries(&self) -> Result<Vec<RepoDeliveryRow>, StoreError> {
        self.read(super::metrics::last_deliveries).await
    }
}

const JOB_COLUMNS: &str =
    "id, target, kinds, watermark, state, created_at, started_at, finished_at, written, requests, error";

fn job_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<JobRecord> {
    let bad = |i: usize, e: serde_json::Error| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
    };
    let target: Target = serde_json::from_str(&r.get::<_, String>(1)?).map_err(|e| bad(1, e))?;
    let kinds: Vec<GapKind> = serde_json::from_str(&r.get::<_, String>(2)?).map_err(|e| bad(2, e))?;
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
        error: r.get(10)?,
    })
}
