//! Pull request flow.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use super::*;
use crate::domain::PrState;
use crate::read::rollup::PullCell;

fn figures(cell: &PullCell) -> PullFlowFigures {
    PullFlowFigures {
        merged: cell.merged,
        opened: cell.opened,
        cycle_time_seconds: Distribution::of_sketch(&cell.cycle),
        time_to_first_review_seconds: Distribution::of_sketch(&cell.first_review),
        unreviewed: cell.unreviewed,
        review_rounds: Distribution::of_sketch(&cell.rounds),
        size_lines: Distribution::of_sketch(&cell.size),
    }
}

fn total(buckets: &BTreeMap<NaiveDate, PullCell>) -> PullCell {
    buckets.values().fold(PullCell::default(), |mut t, c| {
        t.merge(c);
        t
    })
}

fn row_keys(row: &PullMetricRow, group_by: Option<GroupBy>, teams: Option<&Teams>) -> Vec<Option<String>> {
    match group_by {
        Some(GroupBy::Repo) => vec![Some(row.repo.to_string())],
        Some(GroupBy::Author) => vec![row.author.clone()],
        Some(GroupBy::Team) => teams.expect("teams loaded").of(row.author.as_deref()),
        _ => vec![None],
    }
}

impl MetricsService {
    /// Pull request flow. `now` bounds the age of open pull requests: their age
    /// is measured at the earlier of `until` and `now`.
    pub async fn pulls(
        &self,
        filter: &MetricsFilter,
        group_by: Option<GroupBy>,
        now: Timestamp,
    ) -> Result<PullFlowMetrics, StoreError> {
        self.pulls_with(filter, group_by, now, Extras::default(), 0).await
    }

    /// Pull request flow with a series, the previous period and the
    /// slowest-first-review and stale lists (`top` of each; 0: none).
    pub async fn pulls_with(
        &self,
        filter: &MetricsFilter,
        group_by: Option<GroupBy>,
        now: Timestamp,
        extras: Extras,
        top: usize,
    ) -> Result<PullFlowMetrics, StoreError> {
        let w = Window { since: filter.since, until: filter.until };
        let teams = match group_by {
            Some(GroupBy::Team) => Some(Teams::load(self.rows.as_ref(), filter).await?),
            _ => None,
        };
        let interval = extras.interval.unwrap_or(Interval::Week);
        let mut acc = self.pull_buckets(filter, group_by, teams.as_ref(), interval).await?;
        let prev_w = previous(&w);
        let prev = match extras.previous {
            true => {
                Some(self.pull_buckets(&with_window(filter, &prev_w), group_by, teams.as_ref(), Interval::Week).await?)
            }
            false => None,
        };
        // Open now and created before `until`: what the store holds for an empty window at `until`.
        let open_rows =
            self.rows.metric_pulls(&with_window(filter, &Window { since: w.until, until: w.until })).await?;
        let age_at = w.until.min(now);
        let mut open: BTreeMap<Option<String>, OpenByAge> = BTreeMap::new();
        for row in open_rows.iter().filter(|r| r.state == PrState::Open && r.created_at < w.until) {
            for key in row_keys(row, group_by, teams.as_ref()) {
                let o = open.entry(key.clone()).or_default();
                acc.entry(key).or_default();
                o.total += 1;
                match seconds(row.created_at, age_at) {
                    a if a < DAY => o.lt_1d += 1,
                    a if a < 3 * DAY => o.d1_to_3 += 1,
                    a if a < 7 * DAY => o.d3_to_7 += 1,
                    a if a < 30 * DAY => o.d7_to_30 += 1,
                    _ => o.gt_30d += 1,
                }
            }
        }
        if group_by.is_none() {
            acc.entry(None).or_default();
        }
        let groups = acc
            .into_iter()
            .map(|(key, buckets)| {
                let t = figures(&total(&buckets));
                let weeks = buckets.iter().map(|(d, c)| (*d, c.merged)).collect();
                let series = extras.interval.map(|i| {
                    super::buckets(&w, i)
                        .into_iter()
                        .map(|(start, window)| PullFlowBucket {
                            bucket: Bucket { start: start.to_string(), window },
                            figures: buckets.get(&start).map(figures).unwrap_or_default(),
                        })
                        .collect()
                });
                let previous = prev.as_ref().map(|p| p.get(&key).map(|b| figures(&total(b))).unwrap_or_default());
                PullFlowGroup {
                    merged: t.merged,
                    throughput: weekly(&w, &weeks),
                    cycle_time_seconds: t.cycle_time_seconds,
                    time_to_first_review_seconds: t.time_to_first_review_seconds,
                    unreviewed: t.unreviewed,
                    review_rounds: t.review_rounds,
                    size_lines: t.size_lines,
                    open_by_age: open.remove(&key).unwrap_or_default(),
                    key,
                    series,
                    previous,
                }
            })
            .collect();
        let (slowest_first_reviews, stale) = match top {
            0 => (None, None),
            n => {
                let rows = self.rows.metric_pulls(filter).await?;
                (Some(slowest_first_reviews(&rows, &w, now, n)), Some(stale(&open_rows, &w, age_at, n)))
            }
        };
        Ok(PullFlowMetrics {
            window: w,
            group_by: group_by.map(|g| g.as_str().to_owned()),
            groups,
            interval: extras.interval.map(|i| i.as_str().to_owned()),
            previous_window: extras.previous.then_some(prev_w),
            slowest_first_reviews,
            stale,
        })
    }

    /// Per group and bucket, the pull request cell of the window: whole weeks
    /// from rollups where they serve (weekly buckets), everything else from rows.
    async fn pull_buckets(
        &self,
        filter: &MetricsFilter,
        group_by: Option<GroupBy>,
        teams: Option<&Teams>,
        interval: Interval,
    ) -> Result<Acc<PullCell>, StoreError> {
        let mut acc: Acc<PullCell> = BTreeMap::new();
        let rollups = self.rollups.clone();
        let row_windows = self
            .weeks_from_cells(filter, group_by, teams, interval, &mut acc, PullCell::merge, |grain, scopes, span| {
                let rollups = rollups.clone();
                async move {
                    match grain {
                        Grain::Week => rollups.pull_cells(&scopes, span).await,
                        Grain::Day => rollups.pull_day_cells(&scopes, span).await,
                    }
                }
            })
            .await?;
        for rw in row_windows.into_iter().filter(|rw| rw.since < rw.until) {
            for row in &self.rows.metric_pulls(&with_window(filter, &rw)).await? {
                let merged = row.merged_at.filter(|m| in_window(*m, &rw));
                let opened = in_window(row.created_at, &rw);
                if merged.is_none() && !opened {
                    continue;
                }
                for key in row_keys(row, group_by, teams) {
                    let b = acc.entry(key).or_default();
                    if let Some(m) = merged {
                        b.entry(interval.start(m)).or_default().add_merge(row, m);
                    }
                    if opened {
                        b.entry(interval.start(row.created_at)).or_default().add_opening(row);
                    }
                }
            }
        }
        Ok(acc)
    }
}

fn wait(row: &PullMetricRow, seconds: i64, waiting: bool) -> PullWait {
    PullWait {
        repo: row.repo.to_string(),
        number: row.number,
        author: row.author.clone(),
        created_at: row.created_at,
        first_review_at: row.first_review_at,
        seconds,
        waiting,
    }
}

/// Pull requests created in the window, by their wait for a first review by
/// someone else: reviewed (`first review − created_at`) or open and still
/// waiting (`now − created_at`); longest first, then oldest.
fn slowest_first_reviews(rows: &[PullMetricRow], w: &Window, now: Timestamp, n: usize) -> Vec<PullWait> {
    let mut out: Vec<PullWait> = rows
        .iter()
        .filter(|r| in_window(r.created_at, w))
        .filter_map(|r| match r.first_review_at {
            Some(at) => Some(wait(r, seconds(r.created_at, at), false)),
            None if r.state == PrState::Open => Some(wait(r, seconds(r.created_at, now), true)),
            None => None,
        })
        .collect();
    out.sort_by(|a, b| b.seconds.cmp(&a.seconds).then(a.created_at.cmp(&b.created_at)));
    out.truncate(n);
    out
}

/// Pull requests open now and created before `until`, oldest first.
fn stale(open: &[PullMetricRow], w: &Window, age_at: Timestamp, n: usize) -> Vec<PullWait> {
    let mut out: Vec<PullWait> = open
        .iter()
        .filter(|r| r.state == PrState::Open && r.created_at < w.until)
        .map(|r| wait(r, seconds(r.created_at, age_at), r.first_review_at.is_none()))
        .collect();
    out.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.repo.cmp(&b.repo)).then(a.number.cmp(&b.number)));
    out.truncate(n);
    out
}
