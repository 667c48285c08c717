//! [`ChangeSink`] on SQLite, and the last-writer-wins write path every entity
//! write (deliveries included) goes through.

use async_trait::async_trait;
use rusqlite::{Connection, params};

use super::moves;
use super::store::SqliteStore;
use super::{ts, ts_opt};
use crate::adapters::repo_moves::{repo_ids, repo_of, under};
use crate::domain::*;
use crate::ports::*;

fn json_list(v: Option<&[String]>) -> Option<String> {
    v.map(|l| serde_json::to_string(l).expect("strings serialise"))
}

/// The last-writer-wins rules of the rows keyed by repository, shared by
/// their writes and by moving a repository's rows to its new name
/// (`moves.rs`), so that a merge keeps the newer of two rows exactly as a
/// write would.
macro_rules! branch_upsert {
    () => {
        " ON CONFLICT (repo, name) DO UPDATE SET
               head_sha = CASE WHEN excluded.deleted THEN NULL ELSE COALESCE(excluded.head_sha, branches.head_sha) END,
               deleted = excluded.deleted, version = excluded.version
             WHERE excluded.version >= branches.version"
    };
}
macro_rules! pull_upsert {
    () => {
        " ON CONFLICT (repo, number) DO UPDATE SET
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
               body = COALESCE(excluded.body, pull_requests.body),
               rank = excluded.rank
             WHERE excluded.updated_at > pull_requests.updated_at
                OR (excluded.updated_at = pull_requests.updated_at AND excluded.rank >= pull_requests.rank)"
    };
}
macro_rules! collaborator_upsert {
    () => {
        " ON CONFLICT (repo, login) DO UPDATE SET
               role = COALESCE(excluded.role, collaborators.role), present = excluded.present, version = excluded.version
             WHERE excluded.version >= collaborators.version"
    };
}
pub(super) use {branch_upsert, collaborator_upsert, pull_upsert};

/// Apply one change under the LWW rules; true if it changed the store. A
/// change naming a repository is expected under its canonical name ([`apply_all`]).
pub(super) fn apply(tx: &Connection, change: &Change) -> rusqlite::Result<bool> {
    let n = match change {
        Change::RepositoryMoved { id, from, to, at } => return moves::apply_move(tx, *id, from, to, *at),
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
            concat!(
            "INSERT INTO branches (repo, name, head_sha, deleted, version) VALUES (?1, ?2, ?3, ?4, ?5)",
            branch_upsert!()
        ),
        )?
        .execute(params![b.repo.as_str(), b.name, b.head_sha, b.deleted, ts(&b.version)])?,
        Change::PullRequest { pull: p, known } => {
            let [labels, reviewers, teams] = known.of(p).map(json_list);
            tx.prepare_cached(
            concat!(
            "INSERT INTO pull_requests (repo, number, id, title, state, draft, author, created_at, updated_at, closed_at,
               merged_at, additions, deletions, changed_files, commits, labels, requested_reviewers, requested_teams,
               base_ref, head_ref, head_sha, rank, body)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22,
               ?23)",
            pull_upsert!()
        ),
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
            labels,
            reviewers,
            teams,
            p.base_ref,
            p.head_ref,
            p.head_sha,
            p.state.rank(),
            p.body
        ])?
        }
        Change::Review(r) => tx.prepare_cached(
            "INSERT INTO reviews (id, repo, pr_number, author, state, submitted_at, commit_id, rank, body)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT (id) DO UPDATE SET
               repo = excluded.repo, pr_number = excluded.pr_number, author = COALESCE(excluded.author, reviews.author),
               state = excluded.state, submitted_at = COALESCE(excluded.submitted_at, reviews.submitted_at),
               commit_id = COALESCE(excluded.commit_id, reviews.commit_id), rank = excluded.rank,
               body = COALESCE(excluded.body, reviews.body)
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
            r.state.rank(),
            r.body
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
            concat!(
            "INSERT INTO collaborators (repo, login, role, present, version) VALUES (?1, ?2, ?3, ?4, ?5)",
            collaborator_upsert!()
        ),
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
                        "INSERT OR IGNORE INTO branch_commits (repo, branch, sha, pushed_at, committed_at)
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                    )?
                    .execute(params![c.repo.as_str(), branch, c.sha, ts_opt(pushed_at), ts_opt(&c.committed_at)])?;
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
macro_rules! review_facts {
    () => {
        "UPDATE pull_requests SET
    first_review_at = (SELECT MIN(r.submitted_at) FROM reviews r
                       WHERE r.repo = pull_requests.repo AND r.pr_number = pull_requests.number
                         AND r.submitted_at IS NOT NULL AND r.state != 'pending'
                         AND (pull_requests.author IS NULL OR r.author IS NULL OR r.author != pull_requests.author)),
    changes_requested = (SELECT COUNT(*) FROM reviews r
                         WHERE r.repo = pull_requests.repo AND r.pr_number = pull_requests.number
                           AND r.state = 'changes_requested')"
    };
}
pub(super) use review_facts;
const REFRESH_REVIEW_FACTS: &str = concat!(review_facts!(), " WHERE repo = ?1 AND number = ?2");

pub(super) fn apply_all(tx: &Connection, changes: &[Change]) -> rusqlite::Result<ApplyReport> {
    let mut report = ApplyReport::default();
    let ids = repo_ids(changes);
    for c in changes {
        // A change naming an old name of a repository lands on its current one.
        let canonical = match repo_of(c) {
            Some(r) => Some(moves::canonical(tx, r, ids.get(r).copied())?).filter(|name| name != r),
            None => None,
        };
        let moved;
        let c = match canonical {
            Some(name) => {
                moved = under(c, &name);
                &moved
            }
            None => c,
        };
        if apply(tx, c)? {
            report.applied += 1;
            let pull = match c {
                Change::Review(r) => Some((&r.repo, r.pr_number)),
                Change::PullRequest { pull: p, .. } => Some((&p.repo, p.number)),
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
