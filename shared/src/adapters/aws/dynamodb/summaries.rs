//! The store's side of the integrity comparison on DynamoDB, in GitHub's
//! terms: one repository's snapshot, and the workflow runs the check
//! compares. Every read stays in the repository's partition or in one index
//! partition of it, over a key range (costs in `shared/docs/dynamodb.md`).

use std::collections::{HashMap, HashSet};

use anyhow::Context as _;

use super::DynamoStore;
use super::codec::*;
use super::ops::{Query, Range, Task, corrupt, run_bounded};
use crate::domain::*;
use crate::ports::*;

/// Runs whose jobs are counted at once.
const CONCURRENCY: usize = 16;

/// A sort-key bound `>= since` for keys that begin with a time, or none.
fn since_range(since: &Option<Timestamp>) -> Range {
    since.as_ref().map_or(Range::All, |at| Range::AtLeast(ts(at)))
}

fn entity(i: &Item) -> Option<String> {
    i.str("entity")
}

impl DynamoStore {
    /// What the store holds of one repository, as `GitHubChecks::repo_snapshots`
    /// says it of GitHub. Reads: the repository item, its branches, its pull
    /// requests with their reviews (one collection), the default branch's
    /// commits since `since` and the repository's deployments (index ranges).
    /// An old name of a moved repository answers for the repository, under the name asked.
    pub(super) async fn repo_snapshot(&self, asked: &SnapshotRequest) -> Result<RepoSnapshot, StoreError> {
        let req = &SnapshotRequest::new(self.canonical(&asked.repo).await?, asked.since);
        let repo = &req.repo;
        let pk = key::repo(repo);
        let mut snap = RepoSnapshot::empty(asked.repo.clone());
        if let Some(i) = self.get(key_of(&pk, key::REPO_SK)).await? {
            snap.default_branch = i.str("default_branch");
        }
        for i in self.query_all(&Query::table(&pk, Range::Prefix(key::branch_sk("")))).await? {
            if i.flag("deleted") != Some(true) {
                snap.branches.push((i.str("name").unwrap_or_default(), i.str("head_sha").unwrap_or_default()));
            }
        }
        self.pulls_of(req, &pk, &mut snap).await?;
        if let Some(branch) = &snap.default_branch {
            let q = Query::index("gsi1", key::branch_commits(repo, branch), since_range(&req.since));
            snap.default_branch_commits = Some(self.count_in(&q).await?);
        }
        let deployments = Query::index("gsi2", key::deployments_of(repo), Range::All);
        snap.deployments = self.count_in(&deployments).await?;
        let mut recent = Vec::new();
        self.query_each(&deployments.backward().page(RECENT_DEPLOYMENTS), |i| {
            recent.push(i);
            recent.len() < RECENT_DEPLOYMENTS
        })
        .await?;
        snap.recent_deployments = recent
            .iter()
            .map(|i| {
                let id = i.num("id").context("a deployment without an id")?;
                Ok(DeploymentMark { id, latest_state: i.str("latest_state") })
            })
            .collect::<anyhow::Result<_>>()
            .map_err(corrupt)?;
        Ok(snap)
    }

    /// Counts per state, the newest update, and the pull requests updated at
    /// or after `since` (newest first, tie: higher number first, at most
    /// [`RECENT_PULLS`]) with every review the store holds of each: one
    /// Query of the `PR#` collection.
    async fn pulls_of(&self, req: &SnapshotRequest, pk: &str, snap: &mut RepoSnapshot) -> Result<(), StoreError> {
        let items = self.query_all(&Query::table(pk, Range::Prefix(key::PULLS_PREFIX.to_owned()))).await?;
        let mut reviews: HashMap<u64, u64> = HashMap::new();
        let mut pulls: Vec<(Timestamp, u64)> = Vec::new();
        for i in &items {
            match entity(i).as_deref() {
                Some("pull_request") => {
                    match i.str("state").as_deref() {
                        Some("open") => snap.open += 1,
                        Some("closed") => snap.closed += 1,
                        Some("merged") => snap.merged += 1,
                        _ => {}
                    }
                    let at = i.req_time("updated_at").map_err(corrupt)?;
                    let number = i.num("number").context("a pull request without a number").map_err(corrupt)?;
                    snap.newest_pr_updated_at = snap.newest_pr_updated_at.max(Some(at));
                    if req.since.is_none_or(|since| at >= since) {
                        pulls.push((at, number));
                    }
                }
                Some("review") => {
                    let number = i.num("pr_number").context("a review without a pull request").map_err(corrupt)?;
                    *reviews.entry(number).or_default() += 1;
                }
                _ => {}
            }
        }
        pulls.sort_unstable_by(|a, b| b.cmp(a));
        snap.recent_pulls_truncated = pulls.len() > RECENT_PULLS;
        snap.recent_pulls = pulls
            .into_iter()
            .take(RECENT_PULLS)
            .map(|(updated_at, number)| PullMark {
                number,
                updated_at,
                reviews: reviews.get(&number).copied().unwrap_or(0),
            })
            .collect();
        Ok(())
    }

    /// `repo`'s runs created at or after `since` (a COUNT of its index range),
    /// the runs `ids` it has (BatchGetItem) with their job counts (a Query of
    /// each run's jobs), and, when asked, where unfinished runs created at or
    /// after `unfinished_from` begin.
    pub(super) async fn runs_of(
        &self,
        repo: &RepoName,
        since: &Option<Timestamp>,
        ids: &[i64],
        unfinished_from: Option<Timestamp>,
    ) -> Result<StoredRuns, StoreError> {
        let repo = &self.canonical(repo).await?;
        let total = self.count_in(&Query::index("gsi2", key::runs_of(repo.as_str()), since_range(since))).await?;
        let mut seen = HashSet::new();
        let ids: Vec<i64> = ids.iter().copied().filter(|id| seen.insert(*id)).collect();
        let found: HashMap<i64, Item> = self
            .batch_get(ids.iter().map(|id| key_of(key::run(*id), key::ONE)).collect())
            .await?
            .into_iter()
            .filter(|i| i.str("repo").as_deref() == Some(repo.as_str()))
            .filter_map(|i| Some((i.num("id")?, i)))
            .collect();
        let asked: Vec<&Item> = ids.iter().filter_map(|id| found.get(id)).collect();
        let counts =
            asked.iter().map(|i| Box::pin(self.job_counts(i.num("id").unwrap_or_default())) as Task<'_, _>).collect();
        let mut runs = Vec::with_capacity(asked.len());
        for (i, counts) in asked.into_iter().zip(run_bounded(counts, CONCURRENCY).await) {
            let (jobs, jobs_completed) = counts?;
            runs.push(stored_run(i, jobs, jobs_completed).map_err(corrupt)?);
        }
        let oldest_unfinished = match unfinished_from {
            Some(from) => self.oldest_unfinished(repo, from).await?,
            None => None,
        };
        Ok(StoredRuns { total, runs, oldest_unfinished })
    }

    /// Jobs of one run, and how many of them completed: the `WJ#` items of its partition.
    async fn job_counts(&self, run_id: i64) -> Result<(u64, u64), StoreError> {
        let (mut jobs, mut completed) = (0, 0);
        self.query_each(&Query::table(key::run(run_id), Range::Prefix(key::JOB_PREFIX.into())), |i| {
            jobs += 1;
            completed += u64::from(i.str("status").as_deref() == Some(RunStatus::Completed.as_str()));
            true
        })
        .await?;
        Ok((jobs, completed))
    }

    /// The creation time of the oldest run of `repo` created at or after
    /// `from` that is not completed or has a job that is not: the first item
    /// from `from` on of its sparse index of unfinished runs (sorted by
    /// creation), and the runs (BatchGetItem) of its sparse index of
    /// unfinished jobs created from `from` on; and the same of the runs and
    /// jobs the stream marked (the webhook function's writes, `unfinished.rs`).
    /// A job whose run the store does not have is left out.
    async fn oldest_unfinished(&self, repo: &RepoName, from: Timestamp) -> Result<Option<Timestamp>, StoreError> {
        let runs = Query::index("gsi3", key::unfinished_runs(repo), Range::AtLeast(ts(&from)));
        let marked = self.marked_unfinished(repo, &from).await?;
        let indexed = match self.first(&runs).await? {
            Some(i) => Some(i.req_time("created_at").map_err(corrupt)?),
            None => None,
        };
        let mut oldest = indexed.into_iter().chain(marked.oldest_run).min();
        let mut run_ids = marked.job_runs;
        self.query_each(&Query::index("gsi3", key::unfinished_jobs(repo), Range::All), |i| {
            run_ids.extend(i.num::<i64>("run_id"));
            true
        })
        .await?;
        let keys = run_ids.into_iter().map(|id| key_of(key::run(id), key::ONE)).collect();
        for run in self.batch_get(keys).await? {
            if run.str("repo").as_deref() == Some(repo.as_str()) {
                let at = run.req_time("created_at").map_err(corrupt)?;
                if at >= from {
                    oldest = Some(oldest.map_or(at, |o| o.min(at)));
                }
            }
        }
        Ok(oldest)
    }
}

fn stored_run(i: &Item, jobs: u64, jobs_completed: u64) -> anyhow::Result<StoredRun> {
    Ok(StoredRun {
        id: i.num("id").context("a run without an id")?,
        status: i.req_typed("status")?,
        conclusion: i.str("conclusion"),
        updated_at: i.req_time("updated_at")?,
        jobs,
        jobs_completed,
    })
}
