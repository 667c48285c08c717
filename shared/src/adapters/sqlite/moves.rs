//! Repositories that moved (renamed or transferred), on SQLite: the alias
//! table (schema v5), the canonical name every write and read resolves to,
//! and moving a repository's history to its new name in one transaction.

use rusqlite::{Connection, OptionalExtension, params};

use super::apply::{apply, branch_upsert, collaborator_upsert, pull_upsert, review_facts};
use super::{parse_ts, parse_ts_opt, store_error, ts};
use crate::adapters::repo_moves::{Alias, answers_for, plan_move};
use crate::domain::{Change, RepoName, Repository, Timestamp};
use crate::ports::StoreError;

/// The alias record of `name`, if it is an old name of a repository.
fn alias(conn: &Connection, name: &RepoName) -> rusqlite::Result<Option<Alias>> {
    conn.prepare_cached("SELECT canonical, moved_at, id FROM repo_aliases WHERE alias = ?1")?
        .query_row([name.as_str()], |r| Ok((r.get::<_, RepoName>(0)?, r.get::<_, String>(1)?, r.get(2)?)))
        .optional()?
        .map(|(canonical, at, id)| Ok(Alias { canonical, at: parse_ts(&at)?, id }))
        .transpose()
}

/// GitHub's id of the repository stored under `name`, if one is and its id is known.
fn holder_of(conn: &Connection, name: &RepoName) -> rusqlite::Result<Option<i64>> {
    Ok(conn
        .prepare_cached("SELECT id FROM repos WHERE full_name = ?1")?
        .query_row([name.as_str()], |r| r.get::<_, Option<i64>>(0))
        .optional()?
        .flatten())
}

/// A condition on `repo_aliases a` joined by name: the alias answers for that
/// name (no other repository, by id, is stored under it; [`answers_for`]).
macro_rules! alias_answers {
    () => {
        "NOT EXISTS (SELECT 1 FROM repos held WHERE held.full_name = a.alias AND held.id != a.id)"
    };
}
pub(super) use alias_answers;

/// The name a change of the repository with GitHub id `id` (None: not known)
/// naming `name` is stored under: its current name if `name` is an old one of
/// that repository (aliases always point at a canonical name: one lookup).
/// Without an id, the repository stored under `name`, if any, is the one asked for.
pub(super) fn canonical(conn: &Connection, name: &RepoName, id: Option<i64>) -> rusqlite::Result<RepoName> {
    let Some(a) = alias(conn, name)? else { return Ok(name.clone()) };
    let holder = match (a.id, id) {
        (Some(_), None) => holder_of(conn, name)?,
        _ => id,
    };
    Ok(if answers_for(a.id, holder) { a.canonical } else { name.clone() })
}

/// [`canonical`] for a read: the repository stored under the name, or the
/// one that moved away from it.
pub(super) fn resolve(conn: &Connection, name: &RepoName) -> Result<RepoName, StoreError> {
    canonical(conn, name, None).map_err(store_error)
}

/// Apply `from -> to` (see `adapters/repo_moves.rs` for the rules); true if
/// it changed the store.
pub(super) fn apply_move(
    tx: &Connection,
    id: Option<i64>,
    from: &RepoName,
    to: &RepoName,
    at: Timestamp,
) -> rusqlite::Result<bool> {
    let (from_alias, to_alias) = (alias(tx, from)?, alias(tx, to)?);
    let Some(plan) = plan_move(from, to, at, id, from_alias.as_ref(), to_alias.as_ref(), holder_of(tx, from)?) else {
        return Ok(false);
    };
    let target = plan.target.as_str();
    let mut n = 0;
    if plan.unalias_to {
        n += tx.prepare_cached("DELETE FROM repo_aliases WHERE alias = ?1")?.execute([to.as_str()])?;
    }
    if plan.write_alias {
        n += tx
            .prepare_cached(
                "INSERT INTO repo_aliases (alias, canonical, moved_at, id) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (alias) DO UPDATE SET canonical = excluded.canonical, moved_at = excluded.moved_at,
                   id = COALESCE(excluded.id, repo_aliases.id)",
            )?
            .execute(params![from.as_str(), target, ts(&at), id])?;
    }
    if plan.move_data {
        // Names that became aliases of `from` follow it: a chain resolves in one step.
        n += tx
            .prepare_cached("UPDATE repo_aliases SET canonical = ?1 WHERE canonical = ?2")?
            .execute([target, from.as_str()])?;
        n += move_history(tx, from, &plan.target)?;
    }
    if let Some(id) = id {
        n += tx
            .prepare_cached("UPDATE repos SET id = ?1 WHERE full_name = ?2 AND (id IS NULL OR id != ?1)")?
            .execute(params![id, target])?;
    }
    Ok(n > 0)
}

/// Rows keyed by (repository, key): merged into the target's rows under the
/// same last-writer-wins rules as a write, then removed from `from`.
const MERGES: &[&str] = &[
    concat!(
        "INSERT INTO branches (repo, name, head_sha, deleted, version)
         SELECT ?1, name, head_sha, deleted, version FROM branches WHERE repo = ?2",
        branch_upsert!()
    ),
    concat!(
        "INSERT INTO pull_requests (repo, number, id, title, state, draft, author, created_at, updated_at, closed_at,
           merged_at, additions, deletions, changed_files, commits, labels, requested_reviewers, requested_teams,
           base_ref, head_ref, head_sha, rank, body)
         SELECT ?1, number, id, title, state, draft, author, created_at, updated_at, closed_at,
           merged_at, additions, deletions, changed_files, commits, labels, requested_reviewers, requested_teams,
           base_ref, head_ref, head_sha, rank, body FROM pull_requests WHERE repo = ?2",
        pull_upsert!()
    ),
    concat!(
        "INSERT INTO collaborators (repo, login, role, present, version)
         SELECT ?1, login, role, present, version FROM collaborators WHERE repo = ?2",
        collaborator_upsert!()
    ),
    // Commits are immutable: the target's copy, if any, is the same commit.
    "INSERT OR IGNORE INTO commits (repo, sha, message, author_name, author_login, committed_at)
     SELECT ?1, sha, message, author_name, author_login, committed_at FROM commits WHERE repo = ?2",
    "INSERT OR IGNORE INTO branch_commits (repo, branch, sha, pushed_at, committed_at)
     SELECT ?1, branch, sha, pushed_at, committed_at FROM branch_commits WHERE repo = ?2",
];

const MERGED_TABLES: &[&str] = &["branches", "pull_requests", "collaborators", "commits", "branch_commits"];

/// Rows keyed by GitHub's id: only their repository changes.
const RENAMED_TABLES: &[&str] =
    &["reviews", "review_comments", "workflow_runs", "workflow_jobs", "deployments", "deployment_statuses"];

/// Move everything stored under `from` to `target`; how many rows changed.
fn move_history(tx: &Connection, from: &RepoName, target: &RepoName) -> rusqlite::Result<usize> {
    let mut n = 0;
    let old = tx
        .prepare_cached(
            "SELECT id, default_branch, private, archived, deleted, version, last_activity_at
             FROM repos WHERE full_name = ?1",
        )?
        .query_row([from.as_str()], |r| {
            Ok(Repository {
                full_name: target.clone(),
                id: r.get(0)?,
                default_branch: r.get(1)?,
                private: r.get(2)?,
                archived: r.get(3)?,
                deleted: r.get(4)?,
                version: parse_ts_opt(r.get(5)?)?,
                activity_at: parse_ts_opt(r.get(6)?)?,
            })
        })
        .optional()?;
    if let Some(repo) = old {
        apply(tx, &Change::Repository(repo))?;
        n += tx.prepare_cached("DELETE FROM repos WHERE full_name = ?1")?.execute([from.as_str()])?;
    }
    for sql in MERGES {
        tx.prepare_cached(sql)?.execute([target.as_str(), from.as_str()])?;
    }
    for table in MERGED_TABLES {
        n += tx.prepare_cached(&format!("DELETE FROM {table} WHERE repo = ?1"))?.execute([from.as_str()])?;
    }
    for table in RENAMED_TABLES {
        n += tx
            .prepare_cached(&format!("UPDATE {table} SET repo = ?1 WHERE repo = ?2"))?
            .execute([target.as_str(), from.as_str()])?;
    }
    if n > 0 {
        // Reviews that moved may now belong to pull requests that were already there.
        tx.prepare_cached(concat!(review_facts!(), " WHERE repo = ?1"))?.execute([target.as_str()])?;
    }
    Ok(n)
}
