//! [`MetricRows`] on DynamoDB: plain rows for the metrics service, read by
//! time-ordered Queries and filtered here.

use std::collections::HashSet;

use anyhow::Context as _;
use async_trait::async_trait;

use super::codec::*;
use super::ops::{ByKey, Query, Range, Task, by_key, corrupt, placed, run_bounded};
use super::rollups::Family;
use super::{DynamoStore, job_index};
use crate::domain::*;
use crate::ports::*;
use crate::read::rollup::{CiCell, Grain, MergeCell, PullCell};
use crate::read::*;

/// `[since, until)` as a sort-key range over `{time}#…` keys; None when empty
/// (DynamoDB refuses a BETWEEN whose bounds are reversed).
fn window(f: &MetricsFilter) -> Option<Range> {
    (f.since < f.until).then(|| Range::Between(ts(&f.since), ts(&f.until)))
}

/// The repository/author/team filters every metric shares, on one person field.
struct Who<'a> {
    repo: Option<&'a str>,
    person: Option<&'a str>,
    team: Option<HashSet<String>>,
}

impl Who<'_> {
    fn admits(&self, repo: Option<&str>, person: Option<&str>) -> bool {
        self.repo.is_none_or(|r| repo == Some(r))
            && self.person.is_none_or(|a| person == Some(a))
            && self.team.as_ref().is_none_or(|members| person.is_some_and(|p| members.contains(p)))
    }
}

/// What a run's or a job's item says for the CI metrics; `workflow` names the
/// attribute with the workflow's name, `actor` is the run's.
fn ci_facts(i: &Item, workflow: &str, actor: Option<String>) -> anyhow::Result<CiFacts> {
    Ok(CiFacts {
        repo: i.req_typed("repo")?,
        workflow: i.str(workflow),
        branch: i.str("head_branch"),
        actor,
        status: i.req_typed("status")?,
        conclusion: i.str("conclusion"),
    })
}

/// The workflow and branch filters, on a run's or a job's item (`workflow`
/// names the attribute with the workflow's name).
fn ci_admits(f: &MetricsFilter, i: &Item, workflow: &str) -> bool {
    f.workflow.as_ref().is_none_or(|w| i.str(workflow).as_ref() == Some(w))
        && f.branch.as_ref().is_none_or(|b| i.str("head_branch").as_ref() == Some(b))
}

/// The run rows of `items` (run items) that `f` admits.
fn run_rows<'a>(
    f: &MetricsFilter,
    who: &Who<'_>,
    items: impl IntoIterator<Item = &'a Item>,
) -> Result<Vec<RunMetricRow>, StoreError> {
    items
        .into_iter()
        .filter(|i| who.admits(i.str("repo").as_deref(), i.str("actor").as_deref()))
        .filter(|i| ci_admits(f, i, "name"))
        .map(run_row)
        .collect::<anyhow::Result<Vec<_>>>()
        .map_err(corrupt)
}

fn run_row(i: &Item) -> anyhow::Result<RunMetricRow> {
    Ok(RunMetricRow {
        ci: ci_facts(i, "name", i.str("actor"))?,
        created_at: i.req_time("created_at")?,
        run_started_at: i.time("run_started_at")?,
        updated_at: i.req_time("updated_at")?,
    })
}

fn job_row(i: &Item, actor: Option<String>) -> anyhow::Result<JobMetricRow> {
    Ok(JobMetricRow {
        ci: ci_facts(i, "workflow_name", actor)?,
        labels: i.strings("labels"),
        os: i.str("os"),
        created_at: i.time("created_at")?,
        started_at: i.time("started_at")?,
        completed_at: i.time("completed_at")?,
    })
}

/// The job rows of the jobs created in `f`'s window among `parts` (run
/// partitions: the jobs, and the runs for their actors) that `f` admits, in
/// time order.
fn job_rows(f: &MetricsFilter, who: &Who<'_>, parts: &ByKey) -> Result<Vec<JobMetricRow>, StoreError> {
    let actor = |job: &Item| {
        let run = job.num::<i64>("run_id")?;
        parts.get(&(key::run(run), key::ONE.to_owned()))?.str("actor")
    };
    job_index::jobs_within(parts, &f.since, &f.until)
        .into_iter()
        .map(|i| (i, actor(i)))
        .filter(|(i, actor)| who.admits(i.str("repo").as_deref(), actor.as_deref()))
        .filter(|(i, _)| ci_admits(f, i, "workflow_name"))
        .map(|(i, actor)| job_row(i, actor))
        .collect::<anyhow::Result<Vec<_>>>()
        .map_err(corrupt)
}

/// Partition Queries in flight at once.
const PARTITIONS_AT_ONCE: usize = 16;

impl DynamoStore {
    /// Run partitions (`RUN#{id}`: the run's item and its jobs'), each read
    /// whole by one strongly consistent Query: its jobs cost one read unit
    /// per 4 KB read together instead of one each (BatchGetItem), and the
    /// run, whose actor is a job's person, comes with them.
    async fn run_partitions(&self, pks: impl IntoIterator<Item = String>) -> Result<ByKey, StoreError> {
        let pks: std::collections::BTreeSet<String> = pks.into_iter().collect();
        let reads = pks
            .into_iter()
            .map(|pk| {
                Box::pin(async move { self.query_all(&Query::table(pk, Range::All)).await })
                    as Task<'_, Result<Vec<Item>, StoreError>>
            })
            .collect();
        let mut out = ByKey::new();
        for items in run_bounded(reads, PARTITIONS_AT_ONCE).await {
            out.extend(by_key(items?));
        }
        Ok(out)
    }

    /// The run partitions that hold the jobs created in `f`'s window
    /// (`job_index.rs`): those of the runs created around it (the runs'
    /// index entries, keys only, over the wider window; `runs` gets those
    /// of the runs created in the window itself) and of the jobs' index
    /// entries in the window.
    async fn job_partitions(&self, f: &MetricsFilter, runs: Option<&mut Vec<Item>>) -> Result<ByKey, StoreError> {
        let Some(w) = window(f) else { return Ok(ByKey::new()) };
        let (since, until) = job_index::runs_around(&f.since, &f.until);
        let around = Range::Between(ts(&since), ts(&until));
        let near = self.query_all(&Query::sharded("gsi1", key::RUNS, around).keys()).await?;
        let jobs = self.query_all(&Query::sharded("gsi1", key::WORKFLOW_JOBS, w).keys()).await?;
        let parts = self.run_partitions(near.iter().chain(&jobs).filter_map(|e| e.str("pk"))).await?;
        if let Some(runs) = runs {
            let (from, to) = (ts(&f.since), ts(&f.until));
            let within = |e: &Item| e.str("gsi1sk").is_some_and(|sk| sk >= from && sk < to);
            runs.extend(near.into_iter().filter(within));
        }
        Ok(parts)
    }

    /// [`MetricRows::metric_runs`] and [`MetricRows::metric_jobs`] at once,
    /// as the rollup upkeep reads them: the index entries of both, then each
    /// run partition they name read once (a run and its jobs in one Query),
    /// so a run created in the window and its jobs cost about one read unit
    /// together instead of one per item and one more for the job's actor.
    pub(super) async fn ci_rows(
        &self,
        f: &MetricsFilter,
    ) -> Result<(Vec<RunMetricRow>, Vec<JobMetricRow>), StoreError> {
        let f = &self.current_names(f).await?;
        let who = self.who(f).await?;
        let mut runs = Vec::new();
        let parts = self.job_partitions(f, Some(&mut runs)).await?;
        Ok((run_rows(f, &who, placed("gsi1", &runs, &parts))?, job_rows(f, &who, &parts)?))
    }

    /// [`MetricRows::metric_pulls`]; `open_too`: with the pull requests
    /// still open that were created before the window (the open-state
    /// index's entries below `since`: its sort key begins with `created_at`,
    /// and an entry is kept only where its item still is). The rollup upkeep
    /// leaves them out: a cell counts only openings and merges in its own days.
    pub(super) async fn pull_rows(&self, f: &MetricsFilter, open_too: bool) -> Result<Vec<PullMetricRow>, StoreError> {
        let f = &self.current_names(f).await?;
        let who = self.who(f).await?;
        let (since, until) = (ts(&f.since), ts(&f.until));
        // Index entries first (keys only), then each pull request read once
        // (one merged and created in the window is in both indexes).
        let (mut merged, mut created, mut open) = (Vec::new(), Vec::new(), Vec::new());
        if let Some(window) = window(f) {
            merged = self.query_all(&Query::sharded("gsi3", key::PULLS_MERGED, window.clone()).keys()).await?;
            created = self.query_all(&Query::sharded("gsi2", key::PULLS_CREATED, window).keys()).await?;
        }
        if open_too {
            let before = Range::Below(since.clone());
            open = self.query_all(&Query::sharded("gsi1", key::pulls_by_state("open"), before).keys()).await?;
        }
        // (BatchGetItem asks for a key named twice once.)
        let keys = merged.iter().chain(&created).chain(&open).filter_map(|e| Some(key_of(e.str("pk")?, e.str("sk")?)));
        let items = by_key(self.batch_get(keys.collect()).await?);
        let in_window = |at: Option<String>| at.is_some_and(|a| a >= since && a < until);
        let rows = placed("gsi3", &merged, &items)
            .into_iter()
            .chain(placed("gsi2", &created, &items).into_iter().filter(|i| !in_window(i.str("merged_at"))))
            .chain(placed("gsi1", &open, &items))
            .filter(|i| who.admits(i.str("repo").as_deref(), i.str("author").as_deref()));
        rows.map(|i| {
            Ok(PullMetricRow {
                repo: i.req_typed("repo")?,
                number: i.num("number").context("pull request number")?,
                author: i.str("author"),
                state: i.req_typed("state")?,
                created_at: i.req_time("created_at")?,
                merged_at: i.time("merged_at")?,
                additions: i.num("additions"),
                deletions: i.num("deletions"),
                first_review_at: i.time("first_review_at")?,
                changes_requested: i.num("changes_requested").unwrap_or(0),
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()
        .map_err(corrupt)
    }

    /// Present members of a team (of every tracked organisation for a bare slug).
    async fn team_logins(&self, team: &TeamRef) -> Result<HashSet<String>, StoreError> {
        let orgs = match &team.org {
            Some(o) => vec![o.clone()],
            None => self.tracked_orgs().await?,
        };
        let mut logins = HashSet::new();
        for org in orgs {
            let q = Query::table(key::org(&org), Range::Prefix(key::team_member_prefix(&team.slug)));
            for m in self.query_all(&q).await? {
                if m.flag("present") == Some(true)
                    && let Some(l) = m.str("login")
                {
                    logins.insert(l);
                }
            }
        }
        Ok(logins)
    }

    async fn tracked_orgs(&self) -> Result<Vec<String>, StoreError> {
        let items = self.query_all(&Query::table(key::TRACKED, Range::Prefix("ORG#".into()))).await?;
        Ok(items.iter().filter_map(|i| i.str("org")).collect())
    }

    /// A repository filter naming an old name answers for the repository's current one.
    async fn current_names(&self, f: &MetricsFilter) -> Result<MetricsFilter, StoreError> {
        let mut f = f.clone();
        f.repo = self.canonical_opt(f.repo.as_ref()).await?;
        Ok(f)
    }

    async fn who<'a>(&self, f: &'a MetricsFilter) -> Result<Who<'a>, StoreError> {
        let team = match &f.team {
            Some(t) => Some(self.team_logins(t).await?),
            None => None,
        };
        Ok(Who { repo: f.repo.as_ref().map(RepoName::as_str), person: f.author.as_deref(), team })
    }
}

#[async_trait]
impl MetricRows for DynamoStore {
    async fn metric_pulls(&self, f: &MetricsFilter) -> Result<Vec<PullMetricRow>, StoreError> {
        self.pull_rows(f, true).await
    }

    async fn metric_runs(&self, f: &MetricsFilter) -> Result<Vec<RunMetricRow>, StoreError> {
        let f = &self.current_names(f).await?;
        let who = self.who(f).await?;
        let Some(window) = window(f) else { return Ok(Vec::new()) };
        let items = self.query_all(&Query::sharded("gsi1", key::RUNS, window)).await?;
        run_rows(f, &who, &items)
    }

    /// The partitions of the runs the window's jobs belong to (the jobs
    /// and, for each job's person, its run: `job_partitions`).
    async fn metric_jobs(&self, f: &MetricsFilter) -> Result<Vec<JobMetricRow>, StoreError> {
        let f = &self.current_names(f).await?;
        let who = self.who(f).await?;
        let parts = self.job_partitions(f, None).await?;
        job_rows(f, &who, &parts)
    }

    async fn metric_deployments(&self, f: &MetricsFilter) -> Result<Vec<DeploymentMetricRow>, StoreError> {
        let f = &self.current_names(f).await?;
        let q = Query::sharded("gsi1", key::DEPLOYMENTS, Range::AtLeast(ts(&f.since)));
        let items = self.query_all(&q).await?;
        items
            .iter()
            .filter(|i| f.repo.as_ref().is_none_or(|r| i.str("repo").as_deref() == Some(r.as_str())))
            .filter(|i| f.environment.as_ref().is_none_or(|e| i.str("environment").as_ref() == Some(e)))
            .map(|i| {
                Ok(DeploymentMetricRow {
                    id: i.num("id").context("deployment id")?,
                    repo: i.req_typed("repo")?,
                    environment: i.str("environment"),
                    created_at: i.req_time("created_at")?,
                    outcome: i.str("outcome"),
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()
            .map_err(corrupt)
    }

    async fn team_memberships(&self, org: Option<&str>) -> Result<Vec<TeamMembershipRow>, StoreError> {
        let orgs = match org {
            Some(o) => vec![o.to_owned()],
            None => self.tracked_orgs().await?,
        };
        let mut rows = Vec::new();
        for org in orgs {
            let items = self.query_all(&Query::table(key::org(&org), Range::All)).await?;
            let deleted: HashSet<String> = items
                .iter()
                .filter(|i| i.str("entity").as_deref() == Some("team") && i.flag("deleted") == Some(true))
                .filter_map(|i| i.str("slug"))
                .collect();
            for i in items.iter().filter(|i| i.str("entity").as_deref() == Some("team_member")) {
                if i.flag("present") == Some(true)
                    && let (Some(slug), Some(login)) = (i.str("team_slug"), i.str("login"))
                    && !deleted.contains(&slug)
                {
                    rows.push(TeamMembershipRow { org: org.clone(), team_slug: slug, login });
                }
            }
        }
        Ok(rows)
    }

    /// Deliveries keep the names they arrived with: an old name's newest
    /// delivery counts for the repository's current name.
    async fn last_deliveries(&self) -> Result<Vec<RepoDeliveryRow>, StoreError> {
        let items = self.query_all(&Query::table(key::TRACKED, Range::Prefix("REPO#".into()))).await?;
        let mut rows = Vec::new();
        for i in &items {
            let Some(repo) = i.str("repo") else { continue };
            // The newest listing page of the name (its sort key begins with the newest arrival);
            // without one, the ledger index entries of deliveries recorded before the pages.
            let from_ledger = match self.newest_listed(&repo).await? {
                Some(at) => Some(at),
                None => {
                    let q = Query::index("gsi2", key::deliveries_of_repo(&repo), Range::All).backward().keys();
                    let newest = self.first(&q).await?.and_then(|e| e.str("gsi2sk"));
                    newest.and_then(|k| k.split('#').next().and_then(|at| parse_ts(at).ok()))
                }
            };
            // Registry items written before kept the time themselves.
            let kept = i.time("last_received_at").map_err(corrupt)?;
            if let Some(at) = from_ledger.max(kept) {
                rows.push((repo, at));
            }
        }
        let names: Vec<RepoName> = rows.iter().filter_map(|(r, _)| RepoName::parse(r).ok()).collect();
        let current = self.canonical_names(&names).await?;
        let mut newest: std::collections::BTreeMap<String, Timestamp> = std::collections::BTreeMap::new();
        for (repo, at) in rows {
            let name =
                RepoName::parse(&repo).ok().and_then(|r| current.get(&r).map(RepoName::to_string)).unwrap_or(repo);
            let slot = newest.entry(name).or_insert(at);
            *slot = (*slot).max(at);
        }
        Ok(newest.into_iter().map(|(repo, last_received_at)| RepoDeliveryRow { repo, last_received_at }).collect())
    }
}

/// DynamoDB: the stored rollup cells (`rollups.rs`), kept by
/// [`DynamoStore::mark_rollups`] and [`DynamoStore::settle_rollups`]
/// (shared/docs/metrics.md, "Rollups").
#[async_trait]
impl MetricRollups for DynamoStore {
    async fn pull_cells(
        &self,
        scopes: &CellScopes,
        weeks: std::ops::Range<chrono::NaiveDate>,
    ) -> Result<Vec<(rollup::CellKey, rollup::PullCell)>, StoreError> {
        self.stored_weeks(Family::Pulls, scopes, &weeks).await
    }

    async fn ci_cells(
        &self,
        scopes: &CellScopes,
        weeks: std::ops::Range<chrono::NaiveDate>,
    ) -> Result<Vec<(rollup::CellKey, rollup::CiCell)>, StoreError> {
        self.stored_weeks(Family::Ci, scopes, &weeks).await
    }

    async fn pull_day_cells(
        &self,
        scopes: &CellScopes,
        days: std::ops::Range<chrono::NaiveDate>,
    ) -> Result<Vec<(rollup::CellKey, rollup::PullCell)>, StoreError> {
        self.stored_decoded(Family::Pulls, Grain::Day, scopes, &days, PullCell::decode).await
    }

    async fn ci_day_cells(
        &self,
        scopes: &CellScopes,
        days: std::ops::Range<chrono::NaiveDate>,
    ) -> Result<Vec<(rollup::CellKey, rollup::CiCell)>, StoreError> {
        self.stored_decoded(Family::Ci, Grain::Day, scopes, &days, CiCell::decode).await
    }

    async fn merge_cells(
        &self,
        scopes: &CellScopes,
        weeks: std::ops::Range<chrono::NaiveDate>,
    ) -> Result<Vec<(rollup::CellKey, MergeCell)>, StoreError> {
        self.stored_decoded(Family::Merges, Grain::Week, scopes, &weeks, MergeCell::decode).await
    }

    async fn rebuild_rollups(&self) -> Result<(), StoreError> {
        self.rebuild_cells().await
    }
}
