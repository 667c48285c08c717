//! DORA: deployment frequency, lead time for changes, change failure rate.
//! Deployments from rows (they are few); merges from merge cells, which hold
//! each merge's exact time (lead time pairs each merge with the next
//! successful deployment, which no count or sketch can hold).

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;

use super::*;

#[derive(Default, Clone)]
struct DoraCell {
    deployments: u64,
    successful: u64,
    failed: u64,
    with_outcome: u64,
    lead: Sketch,
    undeployed: u64,
}

impl DoraCell {
    fn merge(&mut self, o: &DoraCell) {
        self.deployments += o.deployments;
        self.successful += o.successful;
        self.failed += o.failed;
        self.with_outcome += o.with_outcome;
        self.lead.merge(&o.lead);
        self.undeployed += o.undeployed;
    }

    fn figures(&self, w: &Window) -> DoraFigures {
        let weeks_long = (w.until - w.since).num_seconds() as f64 / (7 * DAY) as f64;
        DoraFigures {
            deployments: self.deployments,
            successful: self.successful,
            failed: self.failed,
            with_outcome: self.with_outcome,
            change_failure_rate: rate(self.failed, self.with_outcome),
            deployments_per_week: if weeks_long > 0.0 { self.successful as f64 / weeks_long } else { 0.0 },
            lead_time_seconds: Distribution::of_sketch(&self.lead),
            undeployed: self.undeployed,
        }
    }
}

/// (repository when grouped by it, environment).
type Key = (Option<String>, Option<String>);

fn total(buckets: &BTreeMap<NaiveDate, DoraCell>) -> DoraCell {
    buckets.values().fold(DoraCell::default(), |mut t, c| {
        t.merge(c);
        t
    })
}

impl MetricsService {
    /// DORA: deployment frequency, lead time for changes and change failure
    /// rate, per environment (and repository with `group_by=repo`).
    pub async fn dora(&self, filter: &MetricsFilter, group_by: Option<GroupBy>) -> Result<DoraMetrics, StoreError> {
        self.dora_with(filter, group_by, Extras::default()).await
    }

    /// DORA with a series and the previous period.
    pub async fn dora_with(
        &self,
        filter: &MetricsFilter,
        group_by: Option<GroupBy>,
        extras: Extras,
    ) -> Result<DoraMetrics, StoreError> {
        let w = Window { since: filter.since, until: filter.until };
        let interval = extras.interval.unwrap_or(Interval::Week);
        let acc = self.dora_buckets(filter, group_by, interval).await?;
        let prev_w = previous(&w);
        let prev = match extras.previous {
            true => Some(self.dora_buckets(&with_window(filter, &prev_w), group_by, Interval::Week).await?),
            false => None,
        };
        let groups = acc
            .into_iter()
            .map(|((repo, environment), buckets)| {
                let t = total(&buckets).figures(&w);
                let weeks = buckets.iter().map(|(d, c)| (*d, c.successful)).collect();
                let series = extras.interval.map(|i| {
                    super::buckets(&w, i)
                        .into_iter()
                        .map(|(start, window)| DoraBucket {
                            figures: buckets.get(&start).cloned().unwrap_or_default().figures(&window),
                            bucket: Bucket { start: start.to_string(), window },
                        })
                        .collect()
                });
                let previous = prev.as_ref().map(|p| {
                    p.get(&(repo.clone(), environment.clone())).map(total).unwrap_or_default().figures(&prev_w)
                });
                DoraGroup {
                    repo,
                    environment,
                    deployments: t.deployments,
                    change_failure_rate: t.change_failure_rate,
                    successful: t.successful,
                    failed: t.failed,
                    with_outcome: t.with_outcome,
                    deployment_frequency: weekly(&w, &weeks),
                    deployments_per_week: t.deployments_per_week,
                    lead_time_seconds: t.lead_time_seconds,
                    undeployed: t.undeployed,
                    series,
                    previous,
                }
            })
            .collect();
        Ok(DoraMetrics {
            window: w,
            group_by: group_by.map(|g| g.as_str().to_owned()),
            groups,
            interval: extras.interval.map(|i| i.as_str().to_owned()),
            previous_window: extras.previous.then_some(prev_w),
        })
    }

    /// Per (repository, environment) and bucket: deployments by `created_at`,
    /// lead times and undeployed merges by `merged_at`.
    async fn dora_buckets(
        &self,
        filter: &MetricsFilter,
        group_by: Option<GroupBy>,
        interval: Interval,
    ) -> Result<BTreeMap<Key, BTreeMap<NaiveDate, DoraCell>>, StoreError> {
        let w = Window { since: filter.since, until: filter.until };
        let by_repo = group_by == Some(GroupBy::Repo);
        let deployments = self.rows.metric_deployments(filter).await?;
        let merged = self.merges(filter).await?;
        let key = |repo: &RepoName, env: &Option<String>| -> Key { (by_repo.then(|| repo.to_string()), env.clone()) };
        let mut groups: BTreeMap<Key, BTreeMap<NaiveDate, DoraCell>> = BTreeMap::new();
        // Successful deployments per (repo, environment), oldest first (the store orders them).
        let mut successes: BTreeMap<(&RepoName, &Option<String>), Vec<Timestamp>> = BTreeMap::new();
        for d in &deployments {
            let success = d.outcome.as_deref() == Some("success");
            if success {
                successes.entry((&d.repo, &d.environment)).or_default().push(d.created_at);
            }
            if !in_window(d.created_at, &w) {
                continue;
            }
            let cell = groups.entry(key(&d.repo, &d.environment)).or_default().entry(interval.start(d.created_at));
            let cell = cell.or_default();
            cell.deployments += 1;
            match d.outcome.as_deref() {
                Some("success") => {
                    cell.successful += 1;
                    cell.with_outcome += 1;
                }
                Some(_) => {
                    cell.failed += 1;
                    cell.with_outcome += 1;
                }
                None => {}
            }
        }
        for ((repo, env), times) in &successes {
            let Some(merges) = merged.get(*repo) else { continue };
            let group = groups.entry(key(repo, env)).or_default();
            // Both lists are sorted: one pass pairs each merge with the first deployment at or after it.
            let mut next = 0;
            for bucket in merges.chunk_by(|a, b| interval.start(*a) == interval.start(*b)) {
                let cell = group.entry(interval.start(bucket[0])).or_default();
                for &merged_at in bucket {
                    while times.get(next).is_some_and(|t| *t < merged_at) {
                        next += 1;
                    }
                    match times.get(next) {
                        Some(t) => cell.lead.add(seconds(merged_at, *t)),
                        None => cell.undeployed += 1,
                    }
                }
            }
        }
        Ok(groups)
    }

    /// The merge times of the window per repository, oldest first: from the
    /// merge cells of the one scope the filters name (everything, the
    /// repository, or the author / the team's members), each cell's merges
    /// cut to the window's exact bounds; from rows when both a repository and
    /// people are asked for. What lead time for changes pairs with deployments.
    pub async fn merges(&self, filter: &MetricsFilter) -> Result<HashMap<RepoName, Vec<Timestamp>>, StoreError> {
        let mut out: HashMap<RepoName, Vec<Timestamp>> = HashMap::new();
        if filter.since >= filter.until {
            return Ok(out);
        }
        // Workflow and branch filters are about CI: a merge has neither.
        let f = MetricsFilter { workflow: None, branch: None, ..filter.clone() };
        match self.plan(&f, None).await? {
            Plan::Rows => {
                for (repo, at) in self.rows.metric_merges(&f).await? {
                    out.entry(repo).or_default().push(at);
                }
            }
            Plan::Cells(scopes) => {
                let last = f.until - TimeDelta::milliseconds(1);
                let weeks = week_of(f.since)..week_of(last) + TimeDelta::days(7);
                for (_, cell) in self.rollups.merge_cells(&scopes, weeks).await? {
                    // Each of the cell's repositories' list, looked up once per cell.
                    let mut lists: Vec<Vec<Timestamp>> =
                        cell.repos().iter().map(|r| out.remove(r).unwrap_or_default()).collect();
                    for &(at, repo) in cell.times().iter().filter(|(at, _)| *at >= f.since && *at < f.until) {
                        lists[repo as usize].push(at);
                    }
                    for (repo, times) in cell.repos().iter().zip(lists).filter(|(_, t)| !t.is_empty()) {
                        out.insert(repo.clone(), times);
                    }
                }
            }
        }
        for times in out.values_mut() {
            times.sort_unstable();
        }
        Ok(out)
    }
}
