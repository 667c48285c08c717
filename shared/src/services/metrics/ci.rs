//! CI: workflow runs and jobs.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use super::*;
use crate::read::rollup::{CiCell, CiCounts};

fn figures(cell: &CiCell, per_job: bool) -> CiFigures {
    let stats = |c: &CiCounts| (c.count, c.completed, c.failed, rate(c.failed, c.completed));
    let (count, completed, failed, failure_rate) = stats(&cell.runs);
    let runs = RunStats {
        count,
        completed,
        failed,
        failure_rate,
        duration_seconds: Distribution::of_sketch(&cell.run_duration),
    };
    let (count, completed, failed, failure_rate) = stats(&cell.jobs);
    CiFigures {
        runs: (!per_job).then_some(runs),
        jobs: JobStats {
            count,
            completed,
            failed,
            failure_rate,
            queue_seconds: Distribution::of_sketch(&cell.queue),
            duration_seconds: Distribution::of_sketch(&cell.job_duration),
        },
    }
}

fn total(buckets: &BTreeMap<NaiveDate, CiCell>) -> CiCell {
    buckets.values().fold(CiCell::default(), |mut t, c| {
        t.merge(c);
        t
    })
}

impl MetricsService {
    /// CI: workflow runs and jobs created in the window.
    pub async fn ci(&self, filter: &MetricsFilter, group_by: Option<GroupBy>) -> Result<CiMetrics, StoreError> {
        self.ci_with(filter, group_by, Extras::default()).await
    }

    /// CI with a series and the previous period.
    pub async fn ci_with(
        &self,
        filter: &MetricsFilter,
        group_by: Option<GroupBy>,
        extras: Extras,
    ) -> Result<CiMetrics, StoreError> {
        let w = Window { since: filter.since, until: filter.until };
        let teams = match group_by {
            Some(GroupBy::Team) => Some(Teams::load(self.rows.as_ref(), filter).await?),
            _ => None,
        };
        let per_job = matches!(group_by, Some(GroupBy::Runner | GroupBy::Os));
        let interval = extras.interval.unwrap_or(Interval::Week);
        let mut acc = self.ci_buckets(filter, group_by, teams.as_ref(), interval).await?;
        let prev_w = previous(&w);
        let prev = match extras.previous {
            true => {
                Some(self.ci_buckets(&with_window(filter, &prev_w), group_by, teams.as_ref(), Interval::Week).await?)
            }
            false => None,
        };
        if group_by.is_none() {
            acc.entry(None).or_default();
        }
        let groups = acc
            .into_iter()
            .map(|(key, buckets)| {
                let t = figures(&total(&buckets), per_job);
                let series = extras.interval.map(|i| {
                    super::buckets(&w, i)
                        .into_iter()
                        .map(|(start, window)| CiBucket {
                            bucket: Bucket { start: start.to_string(), window },
                            figures: figures(buckets.get(&start).unwrap_or(&CiCell::default()), per_job),
                        })
                        .collect()
                });
                let previous = prev.as_ref().map(|p| figures(&p.get(&key).map(total).unwrap_or_default(), per_job));
                CiGroup { key, runs: t.runs, jobs: t.jobs, series, previous }
            })
            .collect();
        Ok(CiMetrics {
            window: w,
            group_by: group_by.map(|g| g.as_str().to_owned()),
            groups,
            interval: extras.interval.map(|i| i.as_str().to_owned()),
            previous_window: extras.previous.then_some(prev_w),
        })
    }

    /// Per group and bucket, the CI cell of the window: whole weeks from
    /// rollups where they serve (weekly buckets), everything else from rows.
    async fn ci_buckets(
        &self,
        filter: &MetricsFilter,
        group_by: Option<GroupBy>,
        teams: Option<&Teams>,
        interval: Interval,
    ) -> Result<Acc<CiCell>, StoreError> {
        let mut acc: Acc<CiCell> = BTreeMap::new();
        let rollups = self.rollups.clone();
        let row_windows = self
            .weeks_from_cells(filter, group_by, teams, interval, &mut acc, CiCell::merge, |grain, scopes, span| {
                let rollups = rollups.clone();
                async move {
                    match grain {
                        Grain::Week => rollups.ci_cells(&scopes, span).await,
                        Grain::Day => rollups.ci_day_cells(&scopes, span).await,
                    }
                }
            })
            .await?;
        let per_job = matches!(group_by, Some(GroupBy::Runner | GroupBy::Os));
        let keys = |ci: &CiFacts| match group_by {
            Some(GroupBy::Repo) => vec![Some(ci.repo.to_string())],
            Some(GroupBy::Author) => vec![ci.actor.clone()],
            Some(GroupBy::Team) => teams.expect("teams loaded").of(ci.actor.as_deref()),
            Some(GroupBy::Workflow) => vec![ci.workflow.clone()],
            Some(GroupBy::Branch) => vec![ci.branch.clone()],
            _ => vec![None],
        };
        for rw in row_windows.into_iter().filter(|rw| rw.since < rw.until) {
            let f = with_window(filter, &rw);
            if !per_job {
                for run in &self.rows.metric_runs(&f).await? {
                    for key in keys(&run.ci) {
                        acc.entry(key).or_default().entry(interval.start(run.created_at)).or_default().add_run(run);
                    }
                }
            }
            for job in &self.rows.metric_jobs(&f).await? {
                let Some(created) = job.created_at.or(job.started_at) else { continue };
                let job_keys = match group_by {
                    Some(GroupBy::Runner) if job.labels.is_empty() => vec![None],
                    Some(GroupBy::Runner) => job.labels.iter().cloned().map(Some).collect(),
                    Some(GroupBy::Os) => vec![job.os.clone()],
                    _ => keys(&job.ci),
                };
                for key in job_keys {
                    acc.entry(key).or_default().entry(interval.start(created)).or_default().add_job(job);
                }
            }
        }
        Ok(acc)
    }
}
