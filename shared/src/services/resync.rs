//! The resync: repair one target from the GitHub API, through the same
//! last-writer-wins store rules as webhooks, so a webhook and a resync racing
//! can never regress state. It holds a lock on its target, checkpoints its
//! cursor after every page (a killed job resumes), and records its progress.

use std::collections::HashSet;
use std::sync::Arc;

use anyhow::Context as _;

use crate::domain::*;
pub use crate::error::ResyncError;
use crate::ports::{ChangeSink, Clock, CompletenessStore, GitHubSource, JobStore, Locks, SnapshotRequest, Store};

/// How long a resync's lock lasts without renewal (it renews after every page).
pub const LOCK_TTL: chrono::TimeDelta = chrono::TimeDelta::minutes(15);
/// Workflow runs refreshed when no watermark bounds the repair.
const RUNS_LOOKBACK: chrono::TimeDelta = chrono::TimeDelta::days(7);

/// Progress, after each page.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    pub pages: u64,
    pub pulls: u64,
    /// Pull requests the repository has in all (for an ETA), when known.
    pub total_pulls: Option<u64>,
    pub written: u64,
}

/// The store ports the resync uses.
#[derive(Clone)]
pub struct ResyncStores {
    /// Where repaired entities go, under the webhooks' rules.
    pub changes: Arc<dyn ChangeSink>,
    /// The job's record and checkpoint.
    pub jobs: Arc<dyn JobStore>,
    /// The target's lock.
    pub locks: Arc<dyn Locks>,
    /// What the store holds of a target (branches, team rosters), to replace it whole.
    pub summaries: Arc<dyn CompletenessStore>,
}

impl ResyncStores {
    /// Every port from one store, as wiring holds it.
    pub fn of(store: Arc<dyn Store>) -> Self {
        Self { changes: store.clone(), jobs: store.clone(), locks: store.clone(), summaries: store }
    }
}

pub struct ResyncService {
    store: ResyncStores,
    github: Arc<dyn GitHubSource>,
    clock: Arc<dyn Clock>,
}

impl ResyncService {
    pub fn new(store: ResyncStores, github: Arc<dyn GitHubSource>, clock: Arc<dyn Clock>) -> Self {
        Self { store, github, clock }
    }

    /// Run `job` to the end (or to its first error), resuming from its checkpoint.
    pub async fn run(
        &self,
        job: &ResyncJob,
        mut progress: impl FnMut(&Progress) + Send,
    ) -> Result<Progress, ResyncError> {
        let lock = job.target.to_string();
        let failed = |source: anyhow::Error| ResyncError::Failed { target: job.target.clone(), source };
        let now = self.clock.now();
        if !self.store.locks.try_lock(&lock, &job.id, now, LOCK_TTL).await.map_err(|e| failed(e.into()))? {
            // Say so in the job's record: the gap stays, and the next check queues it again.
            let refused =
                JobRecord::queued(job, now).failed(now, format!("{} is being resynced by another job", job.target));
            let _ = self.store.jobs.save_job(&refused).await;
            return Err(ResyncError::Locked(job.target.clone()));
        }
        let requests_before = self.github.budget().requests;
        let record = JobRecord::queued(job, now).running(now);
        let _ = self.store.jobs.save_job(&record).await;
        let mut p = Progress::default();
        let result = match &job.target {
            Target::Repo(repo) => self.repo(job, repo, &lock, &mut p, &mut progress).await,
            Target::Org(org) => self.org(org, &mut p).await,
        };
        let record = record.progress(p.written, self.github.budget().requests.saturating_sub(requests_before));
        let end = self.clock.now();
        let record = match &result {
            Ok(()) => record.succeeded(end),
            Err(e) => record.failed(end, crate::error::error_chain(e.as_ref())),
        };
        if let Err(e) = self.store.jobs.save_job(&record).await {
            tracing::warn!(error = ?e, job = job.id, "could not record the job's end");
        }
        if let Err(e) = self.store.locks.release_lock(&lock, &job.id).await {
            tracing::warn!(error = ?e, job = job.id, "could not release the lock; it expires by itself");
        }
        progress(&p);
        result.map(|()| p).map_err(failed)
    }

    async fn repo(
        &self,
        job: &ResyncJob,
        repo: &RepoName,
        lock: &str,
        p: &mut Progress,
        progress: &mut (impl FnMut(&Progress) + Send),
    ) -> anyhow::Result<()> {
        let kinds: HashSet<GapKind> = job.kinds.iter().copied().collect();
        if kinds.contains(&GapKind::Pulls) || kinds.contains(&GapKind::Reviews) {
            let mut cursor = self.store.jobs.checkpoint(&job.id).await?;
            loop {
                let page = self.github.pull_requests(repo, cursor.as_deref()).await.context("reading pull requests")?;
                let oldest = page.pulls.last().map(|(pr, _)| pr.updated_at);
                p.total_pulls = page.total.or(p.total_pulls);
                let mut changes = Vec::with_capacity(page.pulls.len() * 2);
                for (pr, reviews) in page.pulls {
                    changes.push(Change::PullRequest(Box::new(pr)));
                    changes.extend(reviews.into_iter().map(Change::Review));
                    p.pulls += 1;
                }
                p.written += u64::from(self.store.changes.apply_changes(&changes).await?.applied);
                p.pages += 1;
                let below_watermark = matches!((job.watermark, oldest), (Some(w), Some(o)) if o < w);
                let next = if below_watermark { None } else { page.next_cursor };
                let now = self.clock.now();
                self.store.jobs.save_checkpoint(&job.id, next.as_deref(), now).await?;
                anyhow::ensure!(
                    self.store.locks.try_lock(lock, &job.id, now, LOCK_TTL).await?,
                    "lost the lock on {repo} to another job"
                );
                progress(p);
                match next {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
        }
        let now = self.clock.now();
        // Branch heads: a full read replaces what the store has.
        let branches = self.github.branches(repo).await.context("reading branches")?;
        let names: HashSet<String> = branches.iter().map(|b| b.name.clone()).collect();
        let ours = self.store.summaries.repo_summaries(&[SnapshotRequest::new(repo.clone(), None)]).await?;
        let mut changes: Vec<Change> =
            branches.into_iter().map(|b| Change::Branch(Branch { version: now, ..b })).collect();
        for (name, _) in ours.iter().flat_map(|o| o.branches.iter()) {
            if !names.contains(name) {
                changes.push(Change::Branch(Branch {
                    repo: repo.clone(),
                    name: name.clone(),
                    head_sha: None,
                    deleted: true,
                    version: now,
                }));
            }
        }
        if kinds.contains(&GapKind::Pulls) || kinds.contains(&GapKind::WorkflowRuns) {
            let since = job.watermark.unwrap_or(now - RUNS_LOOKBACK);
            let runs = self.github.workflow_runs(repo, Some(since)).await.context("reading workflow runs")?;
            changes.extend(runs.into_iter().map(|r| Change::WorkflowRun(r.run)));
        }
        p.written += u64::from(self.store.changes.apply_changes(&changes).await?.applied);
        Ok(())
    }

    /// Teams and their members: replaced whole from a full read.
    async fn org(&self, org: &str, p: &mut Progress) -> anyhow::Result<()> {
        let rosters = self.github.teams(org).await.context("reading teams")?;
        let now = self.clock.now();
        let ours = self.store.summaries.team_rosters(org).await?;
        let mut changes = Vec::new();
        let slugs: HashSet<&str> = rosters.iter().map(|r| r.team.slug.as_str()).collect();
        for roster in &rosters {
            changes.push(Change::Team(Team { version: now, deleted: false, ..roster.team.clone() }));
            let members: HashSet<&str> = roster.members.iter().map(String::as_str).collect();
            let member = |login: &str, present| Change::TeamMember {
                org: org.to_owned(),
                team_slug: roster.team.slug.clone(),
                member: Membership { login: login.to_owned(), role: None, present, version: now },
            };
            changes.extend(roster.members.iter().map(|m| member(m, true)));
            if let Some((_, stored)) = ours.iter().find(|(slug, _)| *slug == roster.team.slug) {
                changes.extend(stored.iter().filter(|m| !members.contains(m.as_str())).map(|m| member(m, false)));
            }
        }
        for (slug, _) in ours.iter().filter(|(slug, _)| !slugs.contains(slug.as_str())) {
            changes.push(Change::Team(Team {
                org: org.to_owned(),
                slug: slug.clone(),
                id: None,
                name: slug.clone(),
                description: None,
                privacy: None,
                parent_slug: None,
                deleted: true,
                version: now,
            }));
        }
        p.pages += 1;
        p.written += u64::from(self.store.changes.apply_changes(&changes).await?.applied);
        Ok(())
    }
}
