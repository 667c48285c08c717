//! The store's side of the integrity comparison on SQLite, in GitHub's terms:
//! one repository's snapshot, and the workflow runs the check compares. Each
//! read is an index range (schema v1, v4; see `shared/docs/schema.md`).

use anyhow::Context as _;
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params};

use super::moves;
use super::store::query;
use super::{parse_ts, parse_ts_opt, store_error, ts};
use crate::domain::*;
use crate::ports::*;

/// `since` as a bound, or none.
fn since_clause(column: &str, since: &Option<Timestamp>, args: &mut Vec<Value>) -> String {
    match since {
        Some(at) => {
            args.push(Value::Text(ts(at)));
            format!(" AND {column} >= ?{}", args.len())
        }
        None => String::new(),
    }
}

fn count(conn: &Connection, sql: &str, args: Vec<Value>) -> Result<u64, StoreError> {
    let n: Vec<u64> = query(conn, sql, args, |r| r.get(0))?;
    Ok(n.first().copied().unwrap_or(0))
}

/// What the store holds of one repository, as [`GitHubChecks::repo_snapshots`] says it of GitHub.
/// An old name of a moved repository answers for the repository, under the name asked.
pub(super) fn repo_snapshot(conn: &Connection, asked: &SnapshotRequest) -> Result<RepoSnapshot, StoreError> {
    let req = &SnapshotRequest::new(moves::resolve(conn, &asked.repo)?, asked.since);
    let repo = &req.repo;
    let name = Value::Text(repo.to_string());
    let counts: Vec<(String, u64)> = query(
        conn,
        "SELECT state, COUNT(*) FROM pull_requests WHERE repo = ?1 GROUP BY state",
        vec![name.clone()],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let by_state = |s: &str| counts.iter().find(|(k, _)| k == s).map_or(0, |(_, n)| *n);
    let newest: Option<String> = conn
        .query_row("SELECT MAX(updated_at) FROM pull_requests WHERE repo = ?1", [repo.as_str()], |r| r.get(0))
        .map_err(store_error)?;
    let (recent_pulls, recent_pulls_truncated) = recent_pulls(conn, req)?;
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
    let default_branch_commits = match &default_branch {
        Some(branch) => {
            let mut args = vec![name.clone(), Value::Text(branch.clone())];
            let bound = since_clause("committed_at", &req.since, &mut args);
            Some(count(
                conn,
                &format!("SELECT COUNT(*) FROM branch_commits WHERE repo = ?1 AND branch = ?2{bound}"),
                args,
            )?)
        }
        None => None,
    };
    let deployments = count(conn, "SELECT COUNT(*) FROM deployments WHERE repo = ?1", vec![name.clone()])?;
    let recent_deployments = query(
        conn,
        "SELECT d.id, (SELECT s.state FROM deployment_statuses s WHERE s.deployment_id = d.id
                       ORDER BY s.created_at DESC, s.id DESC LIMIT 1)
         FROM deployments d WHERE d.repo = ?1 ORDER BY d.created_at DESC, d.id DESC LIMIT ?2",
        vec![name, Value::Integer(RECENT_DEPLOYMENTS as i64)],
        |r| Ok(DeploymentMark { id: r.get(0)?, latest_state: r.get(1)? }),
    )?;
    Ok(RepoSnapshot {
        open: by_state("open"),
        closed: by_state("closed"),
        merged: by_state("merged"),
        newest_pr_updated_at: parse_ts_opt(newest).map_err(store_error)?,
        recent_pulls,
        recent_pulls_truncated,
        branches,
        branches_truncated: false,
        default_branch,
        default_branch_commits,
        deployments,
        recent_deployments,
        ..RepoSnapshot::empty(asked.repo.clone())
    })
}

/// Pull requests updated at or after `since`, newest first (tie: higher
/// number first), at most [`RECENT_PULLS`], each with every review the store
/// holds of it; and whether more matched.
fn recent_pulls(conn: &Connection, req: &SnapshotRequest) -> Result<(Vec<PullMark>, bool), StoreError> {
    let mut args = vec![Value::Text(req.repo.to_string())];
    let bound = since_clause("p.updated_at", &req.since, &mut args);
    args.push(Value::Integer(RECENT_PULLS as i64 + 1));
    let sql = format!(
        "SELECT p.number, p.updated_at,
           (SELECT COUNT(*) FROM reviews r WHERE r.repo = p.repo AND r.pr_number = p.number)
         FROM pull_requests p WHERE p.repo = ?1{bound}
         ORDER BY p.updated_at DESC, p.number DESC LIMIT ?{}",
        args.len()
    );
    let mut marks = query(conn, &sql, args, |r| {
        Ok(PullMark { number: r.get(0)?, updated_at: parse_ts(&r.get::<_, String>(1)?)?, reviews: r.get(2)? })
    })?;
    let truncated = marks.len() > RECENT_PULLS;
    marks.truncate(RECENT_PULLS);
    Ok((marks, truncated))
}

/// `repo`'s runs created at or after `since`, the runs `ids` with their job
/// counts (in the order asked, each once), and, when asked, where unfinished
/// runs created at or after `unfinished_from` begin.
pub(super) fn stored_runs(
    conn: &Connection,
    repo: &RepoName,
    since: &Option<Timestamp>,
    ids: &[i64],
    unfinished_from: Option<Timestamp>,
) -> Result<StoredRuns, StoreError> {
    let repo = &moves::resolve(conn, repo)?;
    let name = Value::Text(repo.to_string());
    let mut args = vec![name.clone()];
    let bound = since_clause("created_at", since, &mut args);
    let total = count(conn, &format!("SELECT COUNT(*) FROM workflow_runs WHERE repo = ?1{bound}"), args)?;
    let mut run = conn
        .prepare_cached(
            "SELECT r.id, r.status, r.conclusion, r.updated_at,
               (SELECT COUNT(*) FROM workflow_jobs j WHERE j.run_id = r.id),
               (SELECT COUNT(*) FROM workflow_jobs j WHERE j.run_id = r.id AND j.status = 'completed')
             FROM workflow_runs r WHERE r.id = ?1 AND r.repo = ?2",
        )
        .map_err(store_error)?;
    let mut runs = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for id in ids.iter().filter(|id| seen.insert(**id)) {
        let found = run
            .query_row(params![id, repo.as_str()], |r| {
                Ok(StoredRun {
                    id: r.get(0)?,
                    status: r.get(1)?,
                    conclusion: r.get(2)?,
                    updated_at: parse_ts(&r.get::<_, String>(3)?)?,
                    jobs: r.get(4)?,
                    jobs_completed: r.get(5)?,
                })
            })
            .optional()
            .map_err(store_error)?;
        runs.extend(found);
    }
    let Some(from) = unfinished_from else { return Ok(StoredRuns { total, runs, oldest_unfinished: None }) };
    // Both halves read partial indexes of unfinished rows only (schema v4).
    let oldest: Option<String> = conn
        .query_row(
            "SELECT MIN(at) FROM (
               SELECT MIN(created_at) AS at FROM workflow_runs
               WHERE repo = ?1 AND status != 'completed' AND created_at >= ?2
               UNION ALL
               SELECT MIN(r.created_at) FROM workflow_jobs j JOIN workflow_runs r ON r.id = j.run_id
               WHERE j.repo = ?1 AND j.status != 'completed' AND r.repo = ?1 AND r.created_at >= ?2)",
            params![repo.as_str(), ts(&from)],
            |r| r.get(0),
        )
        .map_err(store_error)?;
    let oldest_unfinished =
        parse_ts_opt(oldest).context("reading where unfinished runs begin").map_err(StoreError::Internal)?;
    Ok(StoredRuns { total, runs, oldest_unfinished })
}
