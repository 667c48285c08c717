//! Metrics: pull request flow, CI, DORA and data health, computed from the
//! [`MetricRollups`] port's weekly cells for a window's whole weeks and the
//! [`MetricRows`] port's plain rows for the rest, so every store adapter serves
//! the same numbers. Every definition is in `shared/docs/metrics.md`;
//! percentiles are nearest-rank (within the stated bound where cells hold buckets).

mod ci;
mod dora;
mod pulls;

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::sync::Arc;

use chrono::{Datelike, NaiveDate, TimeDelta};

use crate::domain::{JobState, Target};
use crate::domain::{RepoName, Timestamp};
use crate::ports::{
    CellScopes, CompletenessStore, JobStore, MetricRollups, MetricRows, MetricsFilter, PageRequest, Store, StoreError,
};
use crate::read::rollup::{CellKey, Grain, Scope, Sketch, week_of};
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

impl Distribution {
    /// From a sketch: exact while it holds values, within its bound once bucketed.
    pub fn of_sketch(s: &Sketch) -> Self {
        let [p50, p90, p95] = s.percentiles([50, 90, 95]);
        Self { count: s.count(), p50, p90, p95 }
    }
}

/// How a series is bucketed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    /// ISO weeks (Monday 00:00 UTC).
    Week,
    /// UTC days.
    Day,
}

impl Interval {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "week" => Some(Self::Week),
            "day" => Some(Self::Day),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Week => "week",
            Self::Day => "day",
        }
    }

    /// The first day of the bucket holding `t`.
    fn start(self, t: Timestamp) -> NaiveDate {
        match self {
            Self::Week => week_of(t),
            Self::Day => t.date_naive(),
        }
    }

    fn days(self) -> i64 {
        match self {
            Self::Week => 7,
            Self::Day => 1,
        }
    }
}

/// What a metric answer carries besides its totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Extras {
    /// The figures per bucket.
    pub interval: Option<Interval>,
    /// The figures over the window of the same length just before.
    pub previous: bool,
}

fn midnight(d: NaiveDate) -> Timestamp {
    d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc()
}

/// Every bucket overlapping the window: its first day and the part of the window it covers.
fn buckets(w: &Window, interval: Interval) -> Vec<(NaiveDate, Window)> {
    let mut out = Vec::new();
    let mut day = interval.start(w.since);
    while midnight(day) < w.until {
        let next = day + TimeDelta::days(interval.days());
        out.push((day, Window { since: w.since.max(midnight(day)), until: w.until.min(midnight(next)) }));
        day = next;
    }
    out
}

/// The ISO weeks lying wholly inside the window (Mondays), if any.
/// The whole UTC days inside `w`, if any.
fn whole_days(w: &Window) -> Option<Range<NaiveDate>> {
    let first = w.since.date_naive();
    let first = if midnight(first) < w.since { first + TimeDelta::days(1) } else { first };
    let last = w.until.date_naive();
    (first < last).then_some(first..last)
}

fn whole_weeks(w: &Window) -> Option<Range<NaiveDate>> {
    let first = week_of(w.since);
    let first = if midnight(first) < w.since { first + TimeDelta::days(7) } else { first };
    let last = week_of(w.until);
    (first < last).then_some(first..last)
}

/// The window of the same length just before.
fn previous(w: &Window) -> Window {
    Window { since: w.since - (w.until - w.since), until: w.since }
}

fn with_window(f: &MetricsFilter, w: &Window) -> MetricsFilter {
    MetricsFilter { since: w.since, until: w.until, ..f.clone() }
}

/// Per group key, per bucket (its first day), a cell.
type Acc<C> = BTreeMap<Option<String>, BTreeMap<NaiveDate, C>>;

/// Which cells can serve a metric: rollups cover one dimension at a time
/// (repository, or people: author / team); anything else reads rows.
enum Plan {
    Rows,
    Cells(CellScopes),
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

/// Every ISO week overlapping the window, with its count (zero if none).
fn weekly(w: &Window, counts: &BTreeMap<NaiveDate, u64>) -> Vec<WeekCount> {
    let counts: BTreeMap<NaiveDate, u64> = counts.iter().fold(BTreeMap::new(), |mut m, (d, n)| {
        *m.entry(*d - TimeDelta::days(d.weekday().num_days_from_monday() as i64)).or_default() += n;
        m
    });
    let mut out = Vec::new();
    let mut monday = week_of(w.since);
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

    /// Present members of the filter's team (with a team filter).
    fn members(&self) -> Vec<Option<String>> {
        self.0.keys().cloned().map(Some).collect()
    }

    fn of(&self, login: Option<&str>) -> Vec<Option<String>> {
        match login.and_then(|l| self.0.get(l)) {
            Some(teams) => teams.iter().cloned().map(Some).collect(),
            None => vec![None],
        }
    }
}

/// The metrics service: reads rollup cells through [`MetricRollups`] and rows
/// through [`MetricRows`], and computes; data health also reads checks
/// ([`CompletenessStore`]) and resync jobs ([`JobStore`]).
#[derive(Clone)]
pub struct MetricsService {
    rows: Arc<dyn MetricRows>,
    rollups: Arc<dyn MetricRollups>,
    checks: Arc<dyn CompletenessStore>,
    jobs: Arc<dyn JobStore>,
}

const DAY: i64 = 86_400;

impl MetricsService {
    /// Everything from one store.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self::from_ports(store.clone(), store.clone(), store.clone(), store)
    }

    pub fn from_ports(
        rows: Arc<dyn MetricRows>,
        rollups: Arc<dyn MetricRollups>,
        checks: Arc<dyn CompletenessStore>,
        jobs: Arc<dyn JobStore>,
    ) -> Self {
        Self { rows, rollups, checks, jobs }
    }

    /// Which cells serve `filter` grouped by `group_by`, if rollups can.
    async fn plan(&self, filter: &MetricsFilter, group_by: Option<GroupBy>) -> Result<Plan, StoreError> {
        let by_repo = filter.repo.is_some() || group_by == Some(GroupBy::Repo);
        let by_person = filter.author.is_some()
            || filter.team.is_some()
            || matches!(group_by, Some(GroupBy::Author | GroupBy::Team));
        let other = filter.workflow.is_some()
            || filter.branch.is_some()
            || matches!(group_by, Some(GroupBy::Workflow | GroupBy::Branch | GroupBy::Runner | GroupBy::Os));
        if other || (by_repo && by_person) {
            return Ok(Plan::Rows);
        }
        if by_repo {
            return Ok(Plan::Cells(filter.repo.clone().map_or(CellScopes::EveryRepo, CellScopes::Repo)));
        }
        if !by_person {
            return Ok(Plan::Cells(CellScopes::All));
        }
        let mut people = match &filter.team {
            Some(_) => Some(Teams::load(self.rows.as_ref(), filter).await?.members()),
            None => None,
        };
        if let Some(a) = &filter.author {
            people = Some(match people {
                Some(p) => p.into_iter().filter(|m| m.as_deref() == Some(a)).collect(),
                None => vec![Some(a.clone())],
            });
        }
        Ok(Plan::Cells(people.map_or(CellScopes::EveryAuthor, CellScopes::Authors)))
    }

    /// The window from rollup cells where cells serve `filter` and
    /// `group_by`: with weekly buckets its whole weeks from week cells, then
    /// (and with daily buckets, throughout) its whole days from day cells;
    /// each cell merged into `acc` under its group keys and bucket. Returns
    /// the windows left to read from rows: the partial days at the bounds (a
    /// bound that is not midnight UTC), or the whole window when cells do not
    /// serve it.
    #[allow(clippy::too_many_arguments)]
    async fn weeks_from_cells<C, Fut>(
        &self,
        filter: &MetricsFilter,
        group_by: Option<GroupBy>,
        teams: Option<&Teams>,
        interval: Interval,
        acc: &mut Acc<C>,
        merge: fn(&mut C, &C),
        cells: impl Fn(Grain, CellScopes, Range<NaiveDate>) -> Fut,
    ) -> Result<Vec<Window>, StoreError>
    where
        C: Default,
        Fut: std::future::Future<Output = Result<Vec<(CellKey, C)>, StoreError>>,
    {
        let w = Window { since: filter.since, until: filter.until };
        let Plan::Cells(scopes) = self.plan(filter, group_by).await? else {
            return Ok(vec![w]);
        };
        let mut add = |got: Vec<(CellKey, C)>| {
            for ((scope, start), cell) in got {
                let bucket = interval.start(midnight(start));
                let mut keys = Self::cell_keys(&scope, group_by, teams);
                // The cell itself goes to its last key (moved into an empty bucket, not copied).
                let Some(last) = keys.pop() else { continue };
                for key in keys {
                    merge(acc.entry(key).or_default().entry(bucket).or_default(), &cell);
                }
                match acc.entry(last).or_default().entry(bucket) {
                    std::collections::btree_map::Entry::Vacant(v) => {
                        v.insert(cell);
                    }
                    std::collections::btree_map::Entry::Occupied(mut o) => merge(o.get_mut(), &cell),
                }
            }
        };
        let mut rest = vec![w];
        if interval == Interval::Week
            && let Some(weeks) = whole_weeks(&w)
        {
            add(cells(Grain::Week, scopes.clone(), weeks.clone()).await?);
            rest = vec![
                Window { since: w.since, until: midnight(weeks.start) },
                Window { since: midnight(weeks.end), until: w.until },
            ];
        }
        let mut rows = Vec::new();
        for part in rest.into_iter().filter(|p| p.since < p.until) {
            let Some(days) = whole_days(&part) else {
                rows.push(part);
                continue;
            };
            add(cells(Grain::Day, scopes.clone(), days.clone()).await?);
            rows.push(Window { since: part.since, until: midnight(days.start) });
            rows.push(Window { since: midnight(days.end), until: part.until });
        }
        Ok(rows)
    }

    /// The group keys a cell of `scope` counts under.
    fn cell_keys(scope: &Scope, group_by: Option<GroupBy>, teams: Option<&Teams>) -> Vec<Option<String>> {
        match (group_by, scope) {
            (Some(GroupBy::Repo), Scope::Repo(r)) => vec![Some(r.to_string())],
            (Some(GroupBy::Author), Scope::Author(a)) => vec![a.clone()],
            (Some(GroupBy::Team), Scope::Author(a)) => teams.expect("teams loaded").of(a.as_deref()),
            _ => vec![None],
        }
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
        let of = |v: &[i64]| Distribution::of_sketch(&Sketch::Exact(v.to_vec()));
        // GIVEN 1..=10 (unsorted) WHEN p50, p90, p95 THEN the 5th, 9th and 10th values
        let d = of(&[3, 1, 2, 4, 5, 10, 9, 8, 7, 6]);
        assert_eq!((d.p50, d.p90, d.p95), (Some(5), Some(9), Some(10)));
        // GIVEN one value THEN every percentile is it; GIVEN none THEN none
        assert_eq!(of(&[7]).p50, Some(7));
        assert_eq!(of(&[]).p50, None);
        // GIVEN 4 values THEN p50 is the 2nd (rank ⌈2⌉), not an interpolation
        assert_eq!(of(&[10, 20, 30, 40]).p50, Some(20));
    }
}
