//! Metrics: pull request flow, CI, DORA and data health, computed over the
//! [`MetricRows`] port's plain rows, so every store adapter serves the same numbers.
//! Every definition is in `shared/docs/metrics.md`; percentiles are nearest-rank.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{Datelike, NaiveDate, TimeDelta};

use crate::domain::{JobState, PrState, Target};
use crate::domain::{RepoName, Timestamp};
use crate::ports::{CompletenessStore, JobStore, MetricRows, MetricsFilter, PageRequest, Store, StoreError};
use crate::read::*;

/// How a metric's results are split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    Repo,
    Team,
    Author,
    Workflow,
    Branch,
    /// Each runner label of a job (a job counts once under each of its labels).
    Runner,
    Os,
}

impl GroupBy {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "repo" => Self::Repo,
            "team" => Self::Team,
            "author" => Self::Author,
            "workflow" => Self::Workflow,
            "branch" => Self::Branch,
            "runner" => Self::Runner,
            "os" => Self::Os,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Repo => "repo",
            Self::Team => "team",
            Self::Author => "author",
            Self::Workflow => "workflow",
            Self::Branch => "branch",
            Self::Runner => "runner",
            Self::Os => "os",
        }
    }
}

/// Which groupings each metric family takes.
pub const PULL_GROUPS: &[GroupBy] = &[GroupBy::Repo, GroupBy::Team, GroupBy::Author];
pub const CI_GROUPS: &[GroupBy] =
    &[GroupBy::Repo, GroupBy::Team, GroupBy::Author, GroupBy::Workflow, GroupBy::Branch, GroupBy::Runner, GroupBy::Os];
pub const DORA_GROUPS: &[GroupBy] = &[GroupBy::Repo];

/// The nearest-rank percentile of sorted values: the value at rank
/// ⌈p/100 × n⌉ (1-based, at least 1); None for no values.
pub fn percentile(sorted: &[i64], p: u32) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let n = sorted.len();
    let rank = (p as usize * n).div_ceil(100).max(1).min(n);
    Some(sorted[rank - 1])
}

impl Distribution {
    pub fn of(mut values: Vec<i64>) -> Self {
        values.sort_unstable();
        Self {
            count: values.len() as u64,
            p50: percentile(&values, 50),
            p90: percentile(&values, 90),
            p95: percentile(&values, 95),
        }
    }
}

fn in_window(t: Timestamp, w: &Window) -> bool {
    t >= w.since && t < w.until
}

fn seconds(from: Timestamp, to: Timestamp) -> i64 {
    (to - from).num_seconds().max(0)
}

fn rate(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// The Monday starting the ISO week of `t`.
fn week_start(t: Timestamp) -> NaiveDate {
    let d = t.date_naive();
    d - TimeDelta::days(d.weekday().num_days_from_monday() as i64)
}

/// Every ISO week overlapping the window, with its count (zero if none).
fn weekly(w: &Window, counts: &BTreeMap<NaiveDate, u64>) -> Vec<WeekCount> {
    let mut out = Vec::new();
    let mut monday = week_start(w.since);
    while monday.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc() < w.until {
        let iso = monday.iso_week();
        out.push(WeekCount {
            week: format!("{}-W{:02}", iso.year(), iso.week()),
            week_start: monday.to_string(),
            count: counts.get(&monday).copied().unwrap_or(0),
        });
        monday += TimeDelta::days(7);
    }
    out
}

/// Who belongs to which teams (`ORG/SLUG`), from present memberships.
struct Teams(HashMap<String, Vec<String>>);

impl Teams {
    async fn load(store: &dyn MetricRows, filter: &MetricsFilter) -> Result<Self, StoreError> {
        let mut map: HashMap<String, Vec<String>> = HashMap::new();
        for m in store.team_memberships(filter.team.as_ref().and_then(|t| t.org.as_deref())).await? {
            // With a team filter, grouping by team shows that team only.
            if filter.team.as_ref().is_some_and(|t| t.slug != m.team_slug) {
                continue;
            }
            map.entry(m.login).or_default().push(format!("{}/{}", m.org, m.team_slug));
        }
        Ok(Self(map))
    }

    fn of(&self, login: Option<&str>) -> Vec<Option<String>> {
        match login.and_then(|l| self.0.get(l)) {
            Some(teams) => teams.iter().cloned().map(Some).collect(),
            None => vec![None],
        }
    }
}

/// The metrics service: reads rows through the [`MetricRows`] port and
/// computes; data health also reads checks ([`CompletenessStore`]) and resync
/// jobs ([`JobStore`]).
#[derive(Clone)]
pub struct MetricsService {
    rows: Arc<dyn MetricRows>,
    checks: Arc<dyn CompletenessStore>,
    jobs: Arc<dyn JobStore>,
}

#[derive(Default)]
struct PullAcc {
    merged: u64,
    weeks: BTreeMap<NaiveDate, u64>,
    cycle: Vec<i64>,
    first_review: Vec<i64>,
    unreviewed: u64,
    rounds: Vec<i64>,
    size: Vec<i64>,
    open: OpenByAge,
}

#[derive(Default)]
struct CiAcc {
    runs: RunStats,
    run_durations: Vec<i64>,
    jobs: JobStats,
    queue: Vec<i64>,
    job_durations: Vec<i64>,
}

#[derive(Default)]
struct DoraAcc {
    deployments: u64,
    successful: u64,
    failed: u64,
    with_outcome: u64,
    weeks: BTreeMap<NaiveDate, u64>,
    lead: Vec<i64>,
    undeployed: u64,
}

const DAY: i64 = 86_400;

impl MetricsService {
    /// Everything from one store.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self::from_ports(store.clone(), store.clone(), store)
    }

    pub fn from_ports(rows: Arc<dyn MetricRows>, checks: Arc<dyn CompletenessStore>, jobs: Arc<dyn JobStore>) -> Self {
        Self { rows, checks, jobs }
    }

    /// Pull request flow. `now` bounds the age of open pull requests: their age
    /// is measured at the earlier of `until` and `now`.
    pub async fn pulls(
        &self,
        filter: &MetricsFilter,
        group_by: Option<GroupBy>,
        now: Timestamp,
    ) -> Result<PullFlowMetrics, StoreError> {
        let w = Window { since: filter.since, until: filter.until };
        let rows = self.rows.metric_pulls(filter).await?;
        let teams = match group_by {
            Some(GroupBy::Team) => Some(Teams::load(self.rows.as_ref(), filter).await?),
            _ => None,
        };
        let age_at = w.until.min(now);
        let mut groups: BTreeMap<Option<String>, PullAcc> = BTreeMap::new();
        if group_by.is_none() {
            groups.insert(None, PullAcc::default());
        }
        for row in &rows {
            let keys = match group_by {
                Some(GroupBy::Repo) => vec![Some(row.repo.to_string())],
                Some(GroupBy::Author) => vec![row.author.clone()],
                Some(GroupBy::Team) => teams.as_ref().expect("teams loaded").of(row.author.as_deref()),
                _ => vec![None],
            };
            for key in keys {
                let acc = groups.entry(key).or_default();
                if let Some(merged_at) = row.merged_at.filter(|m| in_window(*m, &w)) {
                    acc.merged += 1;
                    *acc.weeks.entry(week_start(merged_at)).or_default() += 1;
                    acc.cycle.push(seconds(row.created_at, merged_at));
                    acc.rounds.push(1 + i64::from(row.changes_requested));
                    if let (Some(a), Some(d)) = (row.additions, row.deletions) {
                        acc.size.push(a + d);
                    }
                }
                if in_window(row.created_at, &w) {
                    match row.first_review_at {
                        Some(r) => acc.first_review.push(seconds(row.created_at, r)),
                        None => acc.unreviewed += 1,
                    }
                }
                if row.state == PrState::Open && row.created_at < w.until {
                    let age = seconds(row.created_at, age_at);
                    let o = &mut acc.open;
                    o.total += 1;
                    match age {
                        a if a < DAY => o.lt_1d += 1,
                        a if a < 3 * DAY => o.d1_to_3 += 1,
                        a if a < 7 * DAY => o.d3_to_7 += 1,
                        a if a < 30 * DAY => o.d7_to_30 += 1,
                        _ => o.gt_30d += 1,
                    }
                }
            }
        }
        let groups = groups
            .into_iter()
            .map(|(key, a)| PullFlowGroup {
                key,
                merged: a.merged,
                throughput: weekly(&w, &a.weeks),
                cycle_time_seconds: Distribution::of(a.cycle),
                time_to_first_review_seconds: Distribution::of(a.first_review),
                unreviewed: a.unreviewed,
                review_rounds: Distribution::of(a.rounds),
                size_lines: Distribution::of(a.size),
                open_by_age: a.open,
            })
            .collect();
        Ok(PullFlowMetrics { window: w, group_by: group_by.map(|g| g.as_str().to_owned()), groups })
    }

    /// CI: workflow runs and jobs created in the window.
    pub async fn ci(&self, filter: &MetricsFilter, group_by: Option<GroupBy>) -> Result<CiMetrics, StoreError> {
        let w = Window { since: filter.since, until: filter.until };
        let runs = self.rows.metric_runs(filter).await?;
        let jobs = self.rows.metric_jobs(filter).await?;
        let teams = match group_by {
            Some(GroupBy::Team) => Some(Teams::load(self.rows.as_ref(), filter).await?),
            _ => None,
        };
        let per_job = matches!(group_by, Some(GroupBy::Runner | GroupBy::Os));
        let mut groups: BTreeMap<Option<String>, CiAcc> = BTreeMap::new();
        if group_by.is_none() {
            groups.insert(None, CiAcc::default());
        }
        let keys = |ci: &CiFacts| match group_by {
            Some(GroupBy::Repo) => vec![Some(ci.repo.to_string())],
            Some(GroupBy::Author) => vec![ci.actor.clone()],
            Some(GroupBy::Team) => teams.as_ref().expect("teams loaded").of(ci.actor.as_deref()),
            Some(GroupBy::Workflow) => vec![ci.workflow.clone()],
            Some(GroupBy::Branch) => vec![ci.branch.clone()],
            _ => vec![None],
        };
        if !per_job {
            for run in &runs {
                for key in keys(&run.ci) {
                    let acc = groups.entry(key).or_default();
                    acc.runs.count += 1;
                    if run.ci.completed() {
                        acc.runs.completed += 1;
                        acc.runs.failed += u64::from(run.ci.failed());
                        if let Some(started) = run.run_started_at {
                            acc.run_durations.push(seconds(started, run.updated_at));
                        }
                    }
                }
            }
        }
        for job in &jobs {
            let job_keys = match group_by {
                Some(GroupBy::Runner) if job.labels.is_empty() => vec![None],
                Some(GroupBy::Runner) => job.labels.iter().cloned().map(Some).collect(),
                Some(GroupBy::Os) => vec![job.os.clone()],
                _ => keys(&job.ci),
            };
            for key in job_keys {
                let acc = groups.entry(key).or_default();
                acc.jobs.count += 1;
                if let (Some(created), Some(started)) = (job.created_at, job.started_at) {
                    acc.queue.push(seconds(created, started));
                }
                if job.ci.completed() {
                    acc.jobs.completed += 1;
                    acc.jobs.failed += u64::from(job.ci.failed());
                    if let (Some(started), Some(done)) = (job.started_at, job.completed_at) {
                        acc.job_durations.push(seconds(started, done));
                    }
                }
            }
        }
        let groups = groups
            .into_iter()
            .map(|(key, mut a)| {
                a.runs.failure_rate = rate(a.runs.failed, a.runs.completed);
                a.runs.duration_seconds = Distribution::of(a.run_durations);
                a.jobs.failure_rate = rate(a.jobs.failed, a.jobs.completed);
                a.jobs.queue_seconds = Distribution::of(a.queue);
                a.jobs.duration_seconds = Distribution::of(a.job_durations);
                CiGroup { key, runs: (!per_job).then_some(a.runs), jobs: a.jobs }
            })
            .collect();
        Ok(CiMetrics { window: w, group_by: group_by.map(|g| g.as_str().to_owned()), groups })
    }

    /// DORA: deployment frequency, lead time for changes and change failure
    /// rate, per environment (and repository with `group_by=repo`).
    pub async fn dora(&self, filter: &MetricsFilter, group_by: Option<GroupBy>) -> Result<DoraMetrics, StoreError> {
        let w = Window { since: filter.since, until: filter.until };
        let by_repo = group_by == Some(GroupBy::Repo);
        let deployments = self.rows.metric_deployments(filter).await?;
        let pulls = self.rows.metric_pulls(filter).await?;
        type Key = (Option<String>, Option<String>);
        let key = |repo: &RepoName, env: &Option<String>| -> Key { (by_repo.then(|| repo.to_string()), env.clone()) };
        let mut groups: BTreeMap<Key, DoraAcc> = BTreeMap::new();
        // Successful deployments per (repo, environment), oldest first (the store orders them).
        let mut successes: BTreeMap<(RepoName, Option<String>), Vec<Timestamp>> = BTreeMap::new();
        for d in &deployments {
            let success = d.outcome.as_deref() == Some("success");
            if success {
                successes.entry((d.repo.clone(), d.environment.clone())).or_default().push(d.created_at);
            }
            if !in_window(d.created_at, &w) {
                continue;
            }
            let acc = groups.entry(key(&d.repo, &d.environment)).or_default();
            acc.deployments += 1;
            match d.outcome.as_deref() {
                Some("success") => {
                    acc.successful += 1;
                    acc.with_outcome += 1;
                    *acc.weeks.entry(week_start(d.created_at)).or_default() += 1;
                }
                Some(_) => {
                    acc.failed += 1;
                    acc.with_outcome += 1;
                }
                None => {}
            }
        }
        let mut merged: HashMap<&RepoName, Vec<Timestamp>> = HashMap::new();
        for p in &pulls {
            if let Some(m) = p.merged_at.filter(|m| in_window(*m, &w)) {
                merged.entry(&p.repo).or_default().push(m);
            }
        }
        for ((repo, env), times) in &successes {
            for &merged_at in merged.get(repo).into_iter().flatten() {
                let acc = groups.entry(key(repo, env)).or_default();
                let first = times.partition_point(|t| *t < merged_at);
                match times.get(first) {
                    Some(t) => acc.lead.push(seconds(merged_at, *t)),
                    None => acc.undeployed += 1,
                }
            }
        }
        let weeks_long = (w.until - w.since).num_seconds() as f64 / (7 * DAY) as f64;
        let groups = groups
            .into_iter()
            .map(|((repo, environment), a)| DoraGroup {
                repo,
                environment,
                deployments: a.deployments,
                change_failure_rate: rate(a.failed, a.with_outcome),
                successful: a.successful,
                failed: a.failed,
                with_outcome: a.with_outcome,
                deployment_frequency: weekly(&w, &a.weeks),
                deployments_per_week: if weeks_long > 0.0 { a.successful as f64 / weeks_long } else { 0.0 },
                lead_time_seconds: Distribution::of(a.lead),
                undeployed: a.undeployed,
            })
            .collect();
        Ok(DoraMetrics { window: w, group_by: group_by.map(|g| g.as_str().to_owned()), groups })
    }

    /// Data health per repository: last webhook, last integrity check, the
    /// gaps it found, resync jobs.
    pub async fn health(&self, repo: Option<&RepoName>) -> Result<DataHealth, StoreError> {
        let repos: Vec<RepoName> = match repo {
            Some(r) => vec![r.clone()],
            None => self.checks.tracked().await?.repos,
        };
        let last_webhook: HashMap<String, Timestamp> =
            self.rows.last_deliveries().await?.into_iter().map(|r| (r.repo, r.last_received_at)).collect();
        let last_check = self.checks.list_checks(&PageRequest::first(1)).await?.items.into_iter().next();
        let mut jobs = Vec::new();
        let mut page = PageRequest::first(PageRequest::MAX_LIMIT);
        while jobs.len() < 1_000 {
            let got = self.jobs.list_jobs(&page).await?;
            jobs.extend(got.items);
            match got.next_cursor {
                Some(c) => page.cursor = Some(c),
                None => break,
            }
        }
        let mut out = Vec::with_capacity(repos.len());
        for repo in repos {
            let target = Target::Repo(repo.clone());
            let mut counts = JobCounts::default();
            let mut last_job = None;
            // Jobs come newest first.
            for job in jobs.iter().filter(|j| j.target == target) {
                match job.state {
                    JobState::Queued => counts.queued += 1,
                    JobState::Running => counts.running += 1,
                    JobState::Succeeded => counts.succeeded += 1,
                    JobState::Failed => counts.failed += 1,
                }
                if last_job.is_none() {
                    last_job = Some(job.clone());
                }
            }
            out.push(RepoHealth {
                last_webhook_at: last_webhook.get(repo.as_str()).copied(),
                last_check_at: last_check.as_ref().map(|c| c.finished_at),
                verified_at: self.checks.verified_at(&target).await?,
                open_gaps: last_check
                    .as_ref()
                    .map(|c| c.gaps.iter().filter(|g| g.target == target).cloned().collect())
                    .unwrap_or_default(),
                jobs: counts,
                last_job,
                repo: repo.to_string(),
            });
        }
        Ok(DataHealth { last_check, repos: out })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        // GIVEN 1..=10 WHEN p50, p90, p95 THEN the 5th, 9th and 10th values
        let v: Vec<i64> = (1..=10).collect();
        assert_eq!(percentile(&v, 50), Some(5));
        assert_eq!(percentile(&v, 90), Some(9));
        assert_eq!(percentile(&v, 95), Some(10));
        // GIVEN one value THEN every percentile is it; GIVEN none THEN none
        assert_eq!(percentile(&[7], 50), Some(7));
        assert_eq!(percentile(&[], 50), None);
        // GIVEN 4 values THEN p50 is the 2nd (rank ⌈2⌉), not an interpolation
        assert_eq!(percentile(&[10, 20, 30, 40], 50), Some(20));
    }
}
