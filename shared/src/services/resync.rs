//! The resync: repair one target from the GitHub API, through the same
//! last-writer-wins store rules as webhooks, so a webhook and a resync racing
//! can never regress state. It holds a lock on its target, checkpoints its
//! cursor after every page (a killed job resumes), and records its progress.

use std::collections::HashSet;
use std::sync::Arc;

use anyhow::Context as _;

use crate::domain::*;
use crate::error::GitHubError;
pub use crate::error::ResyncError;
use crate::ports::{
    ChangeSink, Clock, CompletenessStore, GitHubSource, JobStore, Locks, SnapshotRequest, Store, counting_requests,
};

/// How long a resync's lock lasts without renewal (it renews after every page).
pub const LOCK_TTL: chrono::TimeDelta = chrono::TimeDelta::minutes(15);
/// Workflow runs whose jobs are counted per GitHub request.
const JOB_COUNT_BATCH: usize = 100;

/// Progress, after each page.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    pub pages: u64,
    pub pulls: u64,
    /// Pull requests the repository has in all (for an ETA), when known.
    pub total_pulls: Option<u64>,
    pub written: u64,
    /// Items left out (null nodes, partial errors): their gaps stay open.
    pub skipped: u64,
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
        let record = JobRecord::queued(job, now).running(now);
        let _ = self.store.jobs.save_job(&record).await;
        let mut p = Progress::default();
        let mut skipped = Vec::new();
        let (result, by_installation) = counting_requests(async {
            match &job.target {
                Target::Repo(repo) => self.repo(job, repo, &lock, &mut p, &mut skipped, &mut progress).await,
                Target::Org(org) => self.org(org, &job.kinds, &mut p, &mut skipped).await,
            }
        })
        .await;
        // This job's own requests, not those of other jobs (or a check) running meanwhile.
        let requests = by_installation.total();
        p.skipped = skipped.len() as u64;
        if !skipped.is_empty() {
            tracing::warn!(job = job.id, skipped = ?skipped, "items left out; their gaps stay open for the next check");
        }
        let record = record.progress(p.written, requests).by_installation(by_installation).skipping(&skipped);
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
        skipped: &mut Vec<String>,
        progress: &mut (impl FnMut(&Progress) + Send),
    ) -> anyhow::Result<()> {
        let kinds: HashSet<GapKind> = job.kinds.iter().copied().collect();
        let wants = |k: GapKind| kinds.contains(&k);
        let since = job.watermark;
        // A repository renamed or transferred moves first; its other kinds are repaired under its new name.
        let moved = if wants(GapKind::Repos) { self.follow(repo, p).await? } else { None };
        let repo = moved.as_ref().unwrap_or(repo);
        if wants(GapKind::Pulls) || wants(GapKind::Reviews) {
            let mut cursor = self.store.jobs.checkpoint(&job.id).await?;
            loop {
                let page = self.github.pull_requests(repo, cursor.as_deref()).await.context("reading pull requests")?;
                let oldest = page.pulls.last().map(|(pr, _)| pr.updated_at);
                p.total_pulls = page.total.or(p.total_pulls);
                skipped.extend(page.skipped.iter().map(|s| format!("{}: {}", s.what, s.why)));
                let mut changes = Vec::with_capacity(page.pulls.len() * 2);
                for (pr, reviews) in page.pulls {
                    changes.push(Change::pull_request(pr));
                    changes.extend(reviews.into_iter().map(Change::Review));
                    p.pulls += 1;
                }
                p.written += u64::from(self.store.changes.apply_changes(&changes).await?.applied);
                p.pages += 1;
                let below_watermark = matches!((since, oldest), (Some(w), Some(o)) if o < w);
                let next = if below_watermark { None } else { page.next_cursor };
                self.store.jobs.save_checkpoint(&job.id, next.as_deref(), self.clock.now()).await?;
                self.renew(lock, job, repo).await?;
                progress(p);
                match next {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
        }
        self.branches(repo, p).await?;
        // Runs, deployments and commits each need a permission of their own
        // (Actions, Deployments, Contents): one the credentials lack leaves
        // that kind out, said in the job's record, and the others go on.
        if wants(GapKind::WorkflowRuns) || wants(GapKind::WorkflowJobs) {
            self.renew(lock, job, repo).await?;
            unless_refused("workflow runs and jobs", self.runs(repo, since, p).await, skipped)?;
        }
        if wants(GapKind::Deployments) {
            self.renew(lock, job, repo).await?;
            unless_refused("deployments", self.deployments(repo, since, p).await, skipped)?;
        }
        if wants(GapKind::Commits) {
            self.renew(lock, job, repo).await?;
            unless_refused("commits", self.commits(repo, since, p).await, skipped)?;
        }
        progress(p);
        Ok(())
    }

    /// The repository's name on GitHub now: when GitHub answers `repo` under
    /// another name, the store moves it there (its old name stays an alias).
    async fn follow(&self, repo: &RepoName, p: &mut Progress) -> anyhow::Result<Option<RepoName>> {
        let request = SnapshotRequest::new(repo.clone(), None);
        let snapshot =
            self.github.repo_snapshots(std::slice::from_ref(&request)).await.context("reading the repository")?;
        let Some(theirs) = snapshot.into_iter().next() else { return Ok(None) };
        let Some(to) = theirs.moved_to else { return Ok(None) };
        let moved = Change::RepositoryMoved { id: theirs.id, from: repo.clone(), to: to.clone(), at: self.clock.now() };
        p.written += u64::from(self.store.changes.apply_changes(&[moved]).await?.applied);
        tracing::info!(from = %repo, %to, "repository moved to its new name");
        Ok(Some(to))
    }

    /// Keep the target's lock (it expires after [`LOCK_TTL`] without renewal).
    async fn renew(&self, lock: &str, job: &ResyncJob, repo: &RepoName) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.store.locks.try_lock(lock, &job.id, self.clock.now(), LOCK_TTL).await?,
            "lost the lock on {repo} to another job"
        );
        Ok(())
    }

    /// Branch heads: a full read replaces what the store has.
    async fn branches(&self, repo: &RepoName, p: &mut Progress) -> anyhow::Result<()> {
        let now = self.clock.now();
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
        p.written += u64::from(self.store.changes.apply_changes(&changes).await?.applied);
        Ok(())
    }

    /// Workflow runs created since the watermark, newest first, then the jobs
    /// of every run whose job counts differ from the store's (counted in
    /// batches of [`JOB_COUNT_BATCH`], so unchanged runs cost no job reads).
    async fn runs(&self, repo: &RepoName, since: Option<Timestamp>, p: &mut Progress) -> anyhow::Result<()> {
        let listed = self.github.workflow_runs(repo, since).await.context("reading workflow runs")?;
        let runs: Vec<Change> = listed.iter().map(|l| Change::WorkflowRun(l.run.clone())).collect();
        p.written += u64::from(self.store.changes.apply_changes(&runs).await?.applied);
        for chunk in listed.chunks(JOB_COUNT_BATCH) {
            let node_ids: Vec<String> = chunk.iter().filter_map(|l| l.node_id.clone()).collect();
            let counts = if node_ids.is_empty() {
                Vec::new()
            } else {
                self.github.job_counts(repo.owner(), &node_ids).await.context("counting workflow jobs")?
            };
            let ids: Vec<i64> = chunk.iter().map(|l| l.run.id).collect();
            let ours = self.store.summaries.stored_runs(repo, since, &ids, None).await?;
            let stored = |id: i64| ours.runs.iter().find(|r| r.id == id).map_or((0, 0), |r| (r.jobs, r.jobs_completed));
            // A run GitHub gave no node id (or no count) for: read its jobs unless the store has them all completed.
            let uncounted = chunk.iter().filter(|l| !counts.iter().any(|c| c.run_id == l.run.id)).filter(|l| {
                let (jobs, done) = stored(l.run.id);
                jobs == 0 || done < jobs
            });
            let differ = counts.iter().filter(|c| stored(c.run_id) != (c.jobs, c.completed)).map(|c| c.run_id);
            let mut changes = Vec::new();
            for run_id in differ.chain(uncounted.map(|l| l.run.id)) {
                let jobs = self.github.workflow_jobs(repo, run_id).await.context("reading workflow jobs")?;
                changes.extend(jobs.into_iter().map(Change::WorkflowJob));
            }
            p.written += u64::from(self.store.changes.apply_changes(&changes).await?.applied);
        }
        Ok(())
    }

    /// Deployments created since the watermark, with their statuses.
    async fn deployments(&self, repo: &RepoName, since: Option<Timestamp>, p: &mut Progress) -> anyhow::Result<()> {
        let found = self.github.deployments(repo, since).await.context("reading deployments")?;
        let mut changes = Vec::new();
        for d in found {
            changes.push(Change::Deployment(d.deployment));
            changes.extend(d.statuses.into_iter().map(Change::DeploymentStatus));
        }
        p.written += u64::from(self.store.changes.apply_changes(&changes).await?.applied);
        Ok(())
    }

    /// Commits of the default branch since the watermark, recorded on it.
    async fn commits(&self, repo: &RepoName, since: Option<Timestamp>, p: &mut Progress) -> anyhow::Result<()> {
        let request = SnapshotRequest::new(repo.clone(), since);
        let snapshot =
            self.github.repo_snapshots(std::slice::from_ref(&request)).await.context("reading the repository")?;
        let Some(branch) = snapshot.into_iter().find_map(|s| s.default_branch) else {
            return Ok(());
        };
        let commits = self.github.branch_commits(repo, &branch, since).await.context("reading commits")?;
        let mut changes = vec![Change::Repository(Repository {
            default_branch: Some(branch.clone()),
            ..Repository::named(repo.clone())
        })];
        changes.extend(commits.into_iter().map(|commit| Change::Commit {
            commit,
            branch: Some(branch.clone()),
            pushed_at: None,
        }));
        p.written += u64::from(self.store.changes.apply_changes(&changes).await?.applied);
        Ok(())
    }

    /// An organisation: its teams, its repositories, or both.
    async fn org(
        &self,
        org: &str,
        kinds: &[GapKind],
        p: &mut Progress,
        skipped: &mut Vec<String>,
    ) -> anyhow::Result<()> {
        if kinds.contains(&GapKind::Teams) {
            // Teams need Members: without it the repositories are still read.
            unless_refused("teams", self.teams(org, p).await, skipped)?;
        }
        if kinds.contains(&GapKind::Repos) {
            self.org_repos(org, p).await?;
        }
        Ok(())
    }

    /// Repositories of the organisation the store does not know yet are
    /// recorded, so that they are tracked (the check compares their contents).
    async fn org_repos(&self, org: &str, p: &mut Progress) -> anyhow::Result<()> {
        let theirs = self.github.org_repos(org).await.context("reading repositories")?;
        let tracked = self.store.summaries.tracked().await?;
        let known: HashSet<String> = tracked.repos.iter().map(|r| r.as_str().to_ascii_lowercase()).collect();
        let changes: Vec<Change> = theirs
            .into_iter()
            .filter(|r| !known.contains(&r.as_str().to_ascii_lowercase()))
            .map(|full_name| Change::Repository(Repository::named(full_name)))
            .collect();
        p.pages += 1;
        p.written += u64::from(self.store.changes.apply_changes(&changes).await?.applied);
        Ok(())
    }

    /// Teams and their members: replaced whole from a full read.
    async fn teams(&self, org: &str, p: &mut Progress) -> anyhow::Result<()> {
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

/// `result` of reading one kind, with GitHub's refusal of it (a 403 for a
/// permission the credentials were not granted, e.g. an app without
/// Deployments) turned into a note in `skipped`: that kind's gaps stay open,
/// the rest of the job goes on. Any other failure stays the job's error.
fn unless_refused(kind: &str, result: anyhow::Result<()>, skipped: &mut Vec<String>) -> anyhow::Result<()> {
    let Err(e) = result else { return Ok(()) };
    match e.chain().find_map(|c| c.downcast_ref::<GitHubError>()) {
        Some(refused @ GitHubError::Forbidden(_)) => {
            tracing::warn!(kind, error = %refused, "not read: GitHub refuses it to these credentials");
            skipped.push(format!("{kind}: not read: {refused}"));
            Ok(())
        }
        _ => Err(e),
    }
}
