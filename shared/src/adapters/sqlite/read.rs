//! [`ReadModel`] on SQLite: the lists and details the read API serves.

use async_trait::async_trait;
use rusqlite::types::Value;
use rusqlite::{OptionalExtension, Row, params};

use super::moves;
use super::store::{Sql, SqliteStore, limit_arg, query};
use super::{parse_ts, parse_ts_opt, store_error, ts};
use crate::domain::*;
use crate::ports::*;
use crate::read::*;

fn parse_list(s: Option<String>) -> Vec<String> {
    s.and_then(|s| serde_json::from_str(&s).ok()).unwrap_or_default()
}

const PULL_COLUMNS: &str = "repo, number, id, title, state, draft, author, created_at, updated_at, closed_at, merged_at,
    additions, deletions, changed_files, commits, labels, requested_reviewers, requested_teams, base_ref, head_ref, head_sha";

fn pull_from_row(r: &Row) -> rusqlite::Result<PullRequest> {
    Ok(PullRequest {
        repo: r.get(0)?,
        number: r.get(1)?,
        id: r.get(2)?,
        title: r.get(3)?,
        state: r.get(4)?,
        draft: r.get(5)?,
        author: r.get(6)?,
        created_at: parse_ts(&r.get::<_, String>(7)?)?,
        updated_at: parse_ts(&r.get::<_, String>(8)?)?,
        closed_at: parse_ts_opt(r.get(9)?)?,
        merged_at: parse_ts_opt(r.get(10)?)?,
        additions: r.get(11)?,
        deletions: r.get(12)?,
        changed_files: r.get(13)?,
        commits: r.get(14)?,
        labels: parse_list(r.get(15)?),
        requested_reviewers: parse_list(r.get(16)?),
        requested_teams: parse_list(r.get(17)?),
        base_ref: r.get(18)?,
        head_ref: r.get(19)?,
        head_sha: r.get(20)?,
        // Lists do not read bodies (up to 64 KiB each); `get_pull` does.
        body: None,
    })
}

#[async_trait]
impl ReadModel for SqliteStore {
    async fn list_repos(&self, page: &PageRequest) -> Result<Page<RepoView>, StoreError> {
        let page = page.clone();
        self.read(move |conn| {
            let mut sql = Sql::new(
                "SELECT full_name, default_branch, private, archived, last_activity_at FROM repos WHERE deleted = 0",
            );
            if let Some(c) = &page.cursor {
                let (at, name): (String, String) = decode_cursor(c)?;
                sql.push(
                    " AND (COALESCE(last_activity_at, '') < ? OR (COALESCE(last_activity_at, '') = ? AND full_name > ?))",
                    [Value::Text(at.clone()), Value::Text(at), Value::Text(name)],
                );
            }
            sql.push(" ORDER BY COALESCE(last_activity_at, '') DESC, full_name ASC LIMIT ?", [limit_arg(&page)]);
            let rows = sql.rows(conn, |r| {
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
                    "SELECT repo, name, head_sha, deleted, version FROM branches
                     WHERE repo = ?1 AND deleted = 0 ORDER BY name",
                    vec![Value::Text(repo.full_name.to_string())],
                    |r| {
                        Ok(Branch {
                            repo: r.get(0)?,
                            name: r.get(1)?,
                            head_sha: r.get(2)?,
                            deleted: r.get(3)?,
                            version: parse_ts(&r.get::<_, String>(4)?)?,
                        })
                    },
                )?;
                items.push(repo);
            }
            Ok(Page { items, next_cursor: page.next_cursor })
        })
        .await
    }

    async fn list_pulls(&self, filter: &PullFilter, page: &PageRequest) -> Result<Page<PullRequest>, StoreError> {
        let (filter, page) = (filter.clone(), page.clone());
        self.read(move |conn| {
            let mut sql = Sql::new(&format!("SELECT {PULL_COLUMNS} FROM pull_requests WHERE 1 = 1"));
            if let Some(repo) = &filter.repo {
                sql.push(" AND repo = ?", [Sql::text(moves::resolve(conn, repo)?.as_str())]);
            }
            if let Some(state) = filter.state {
                sql.push(" AND state = ?", [Sql::text(state.as_str())]);
            }
            if let Some(author) = &filter.author {
                sql.push(" AND author = ?", [Sql::text(author)]);
            }
            if let Some(c) = &page.cursor {
                let (at, repo, number): (String, String, i64) = decode_cursor(c)?;
                sql.push(
                    " AND (created_at, repo, number) < (?, ?, ?)",
                    [Value::Text(at), Value::Text(repo), Value::Integer(number)],
                );
            }
            sql.push(" ORDER BY created_at DESC, repo DESC, number DESC LIMIT ?", [limit_arg(&page)]);
            let rows = sql.rows(conn, pull_from_row)?;
            Ok(page_from(rows, page.limit, |p| (ts(&p.created_at), p.repo.clone(), p.number)))
        })
        .await
    }

    async fn get_pull(&self, repo: &RepoName, number: u64) -> Result<Option<PullDetail>, StoreError> {
        let repo = repo.clone();
        self.read(move |conn| {
            let repo = moves::resolve(conn, &repo)?.to_string();
            let pull = conn
                .prepare_cached(&format!(
                    "SELECT {PULL_COLUMNS}, body FROM pull_requests WHERE repo = ?1 AND number = ?2"
                ))
                .and_then(|mut s| {
                    s.query_row(params![repo, number], |r| Ok(PullRequest { body: r.get(21)?, ..pull_from_row(r)? }))
                        .optional()
                })
                .map_err(store_error)?;
            let Some(pull) = pull else { return Ok(None) };
            let reviews = query(
                conn,
                "SELECT repo, pr_number, id, author, state, submitted_at, commit_id, body FROM reviews
                 WHERE repo = ?1 AND pr_number = ?2 ORDER BY COALESCE(submitted_at, ''), id",
                vec![Value::Text(repo), Value::Integer(number as i64)],
                |r| {
                    Ok(Review {
                        repo: r.get(0)?,
                        pr_number: r.get(1)?,
                        id: r.get(2)?,
                        author: r.get(3)?,
                        state: r.get(4)?,
                        submitted_at: parse_ts_opt(r.get(5)?)?,
                        commit_id: r.get(6)?,
                        body: r.get(7)?,
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
            let mut sql =
                Sql::new("SELECT org, slug, name, description, privacy, parent_slug FROM teams WHERE deleted = 0");
            if let Some(org) = org {
                sql.push(" AND org = ?", [Value::Text(org)]);
            }
            if let Some(c) = &page.cursor {
                let (org, slug): (String, String) = decode_cursor(c)?;
                sql.push(" AND (org, slug) > (?, ?)", [Value::Text(org), Value::Text(slug)]);
            }
            sql.push(" ORDER BY org, slug LIMIT ?", [limit_arg(&page)]);
            let rows = sql.rows(conn, |r| {
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
    ) -> Result<Page<Commit>, StoreError> {
        let (repo, branch, page) = (repo.clone(), branch.map(str::to_owned), page.clone());
        self.read(move |conn| {
            let repo = moves::resolve(conn, &repo)?;
            let mut sql = Sql::new(
                "SELECT c.repo, c.sha, c.message, c.author_login, c.author_name, c.committed_at FROM commits c",
            );
            if let Some(branch) = branch {
                sql.push(
                    " JOIN branch_commits b ON b.repo = c.repo AND b.sha = c.sha AND b.branch = ?",
                    [Value::Text(branch)],
                );
            }
            sql.push(" WHERE c.repo = ?", [Sql::text(repo.as_str())]);
            if let Some(cur) = &page.cursor {
                let (at, sha): (String, String) = decode_cursor(cur)?;
                sql.push(" AND (COALESCE(c.committed_at, ''), c.sha) < (?, ?)", [Value::Text(at), Value::Text(sha)]);
            }
            sql.push(" ORDER BY COALESCE(c.committed_at, '') DESC, c.sha DESC LIMIT ?", [limit_arg(&page)]);
            let rows = sql.rows(conn, |r| {
                Ok(Commit {
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
        let (repo, page) = (repo.cloned(), page.clone());
        self.read(move |conn| {
            let repo = repo.map(|r| moves::resolve(conn, &r)).transpose()?.map(|r| r.to_string());
            let mut sql = Sql::new(
                "SELECT repo, id, name, workflow_id, head_branch, head_sha, event, status, conclusion, run_number,
                   run_attempt, actor, created_at, run_started_at, updated_at FROM workflow_runs WHERE 1 = 1",
            );
            if let Some(repo) = repo {
                sql.push(" AND repo = ?", [Value::Text(repo)]);
            }
            if let Some(cur) = &page.cursor {
                let (at, id): (String, i64) = decode_cursor(cur)?;
                sql.push(" AND (created_at, id) < (?, ?)", [Value::Text(at), Value::Integer(id)]);
            }
            sql.push(" ORDER BY created_at DESC, id DESC LIMIT ?", [limit_arg(&page)]);
            let rows = sql.rows(conn, |r| {
                Ok(WorkflowRunView::from(WorkflowRun {
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
                }))
            })?;
            Ok(page_from(rows, page.limit, |r| (ts(&r.run.created_at), r.run.id)))
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
            let mut sql = Sql::new(
                "SELECT seq, hook_id, delivery_id, event, action, repo, org, received_at, status, reason, changes,
                   body_bytes FROM deliveries WHERE 1 = 1",
            );
            if let Some(s) = filter.status {
                sql.push(" AND status = ?", [Sql::text(s.as_str())]);
            }
            if let Some(e) = &filter.event {
                sql.push(" AND event = ?", [Sql::text(e.as_str())]);
            }
            if let Some(r) = &filter.repo {
                sql.push(" AND repo = ?", [Sql::text(r.as_str())]);
            }
            if let Some(cur) = &page.cursor {
                let seq: i64 = decode_cursor(cur)?;
                sql.push(" AND seq < ?", [Value::Integer(seq)]);
            }
            sql.push(" ORDER BY seq DESC LIMIT ?", [limit_arg(&page)]);
            let rows = sql.rows(conn, |r| {
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
