//! The integrity check: compare GitHub with the store, cheaply, and turn every
//! difference into a gap on the queue. It also asks GitHub to redeliver the
//! webhook deliveries that failed.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use anyhow::Context as _;

use super::compare::*;
use crate::domain::*;
use crate::ports::{Clock, CompletenessStore, GapQueue, PageRequest, Tracked, counting_requests};
use crate::ports::{GitHubChecks, GitHubError, GitHubHooks, HookRef, HookTarget, SnapshotRequest};

/// How far back GitHub.com keeps hook deliveries (Enterprise Server: see
/// [`IntegrityService::with_redelivery_window`]).
const REDELIVERY_WINDOW: chrono::TimeDelta = chrono::TimeDelta::days(3);
/// How far before the previous check's start a check looks for failed deliveries.
const REDELIVERY_OVERLAP: chrono::TimeDelta = chrono::TimeDelta::minutes(10);
/// Repositories compared per round (the adapter batches them further).
const REPO_CHUNK: usize = 100;
/// How far back a run the store holds as unfinished widens the runs window.
/// Older ones (a run GitHub lost, or one stuck for weeks) do not widen it,
/// and do not hide the newer ones that do.
const UNFINISHED_HORIZON: chrono::TimeDelta = chrono::TimeDelta::days(7);

pub struct IntegrityService {
    store: Arc<dyn CompletenessStore>,
    github: Arc<dyn GitHubChecks>,
    hooks: Arc<dyn GitHubHooks>,
    queue: Arc<dyn GapQueue>,
    clock: Arc<dyn Clock>,
    /// Tracked by configuration (`OCTOSCOPE_REPOS`, `OCTOSCOPE_ORGS`) besides what the store knows.
    configured: Tracked,
    /// How far back GitHub keeps hook deliveries to redeliver.
    redelivery_window: chrono::TimeDelta,
    /// The search index compared with the store (None: no search index).
    search: Option<super::search_check::SearchCheck>,
}

impl IntegrityService {
    pub fn new(
        store: Arc<dyn CompletenessStore>,
        github: Arc<dyn GitHubChecks>,
        hooks: Arc<dyn GitHubHooks>,
        queue: Arc<dyn GapQueue>,
        clock: Arc<dyn Clock>,
        configured: Tracked,
    ) -> Self {
        Self { store, github, hooks, queue, clock, configured, redelivery_window: REDELIVERY_WINDOW, search: None }
    }

    /// Each check also compares the search index with the store and, unless
    /// a dry run, reindexes the scopes that differ (`CheckRun::search`).
    #[must_use]
    pub fn with_search(self, search: super::search_check::SearchCheck) -> Self {
        Self { search: Some(search), ..self }
    }

    /// GitHub keeps deliveries longer than GitHub.com's 3 days (Enterprise
    /// Server: 7; `GitHubSettings::redelivery_window`).
    #[must_use]
    pub fn with_redelivery_window(self, window: chrono::TimeDelta) -> Self {
        Self { redelivery_window: window, ..self }
    }

    /// What is tracked: configured, plus every repository and organisation the store has heard of.
    pub async fn tracked(&self) -> anyhow::Result<Tracked> {
        let t = self.store.tracked().await.context("reading what is tracked")?;
        Ok(self.with_configured(t))
    }

    fn with_configured(&self, mut t: Tracked) -> Tracked {
        t.repos.extend(self.configured.repos.iter().cloned());
        t.orgs.extend(self.configured.orgs.iter().cloned());
        t.repos.sort();
        t.repos.dedup();
        t.orgs.sort();
        t.orgs.dedup();
        t
    }

    /// One check. With `dry_run`, gaps are found and recorded but nothing is
    /// queued or redelivered.
    pub async fn check(&self, dry_run: bool) -> anyhow::Result<CheckRun> {
        let started_at = self.clock.now();
        let mut run = CheckRun {
            id: format!("check-{}", started_at.format("%Y%m%dT%H%M%S%.3fZ")),
            started_at,
            finished_at: started_at,
            repos_compared: 0,
            orgs_compared: 0,
            gaps: Vec::new(),
            redelivered: 0,
            requests: 0,
            requests_by_installation: InstallationRequests::default(),
            dry_run,
            verified: Vec::new(),
            error: None,
            search: None,
        };
        let (result, by_installation) = counting_requests(self.compare(&mut run)).await;
        // The index against the store: whatever GitHub's side did, and never failing the check.
        if let Some(search) = &self.search {
            let now = self.clock.now();
            let last = match search.has_interval() {
                true => self.last_search_comparison().await.unwrap_or_else(|e| {
                    tracing::warn!(error = %format!("{e:#}"), "comparing the search index: the last comparison unknown");
                    None
                }),
                false => None,
            };
            if search.due(last, now) {
                run.search = Some(search.compare(now, dry_run).await);
            }
        }
        if let Err(e) = &result {
            run.error = Some(crate::error::error_chain(e.as_ref()));
        }
        if !dry_run && result.is_ok() {
            self.queue.send(&run.gaps).await.context("queueing gaps")?;
        }
        run.finished_at = self.clock.now();
        // This check's own requests, not those of resync jobs running meanwhile.
        run.requests = by_installation.total();
        run.requests_by_installation = by_installation;
        self.store.record_check(&run).await.context("recording the check")?;
        result.map(|()| run)
    }

    /// When the newest recorded check that compared the search index did.
    async fn last_search_comparison(&self) -> anyhow::Result<Option<Timestamp>> {
        let recent = self.store.list_checks(&PageRequest::first(100)).await.context("reading recent checks")?;
        Ok(recent.items.iter().find_map(|c| c.search.as_ref()).map(|s| s.compared_at))
    }

    async fn compare(&self, run: &mut CheckRun) -> anyhow::Result<()> {
        let stored = self.store.tracked().await.context("reading what is tracked")?;
        let tracked = self.with_configured(stored.clone());
        if !run.dry_run {
            run.redelivered = self.redeliver_failed(run.started_at).await?;
        }
        // Repositories GitHub answered under another name (renamed, transferred).
        let mut moved: HashSet<RepoName> = HashSet::new();
        // Organisations first: a repository created while webhooks were down
        // is compared in this same check.
        let mut repos = tracked.repos.clone();
        if !tracked.orgs.is_empty() {
            repos.extend(self.compare_orgs(&tracked, run).await?);
        }
        for chunk in repos.chunks(REPO_CHUNK) {
            let mut requests = Vec::with_capacity(chunk.len());
            for repo in chunk {
                let since = self.store.verified_at(&Target::Repo(repo.clone())).await?;
                requests.push(SnapshotRequest::new(repo.clone(), since));
            }
            let theirs = self.github.repo_snapshots(&requests).await.context("reading repositories from GitHub")?;
            let ours = self.store.repo_summaries(&requests).await.context("summarising the store")?;
            run.repos_compared += theirs.len() as u64;
            moved.extend(theirs.iter().filter_map(|t| t.moved_to.clone()));
            let mut found: Vec<(SnapshotRequest, Vec<Difference>, Option<RunComparison>)> = Vec::new();
            for request in &requests {
                // A repository GitHub does not show is left out (the adapter warned).
                let Some(t) = theirs.iter().find(|t| t.repo == request.repo) else { continue };
                if moved.contains(&request.repo) && !tracked.repos.contains(&request.repo) {
                    // The new name of a repository found under its old one: that one's gaps move it.
                    continue;
                }
                let mut differences = compare_repo(t, ours.iter().find(|o| o.repo == request.repo), request.since);
                if let Some(to) = &t.moved_to {
                    if stored.repos.contains(&request.repo) || !stored.repos.contains(to) {
                        differences.push(Difference {
                            kind: GapKind::Repos,
                            since: None,
                            reason: format!("{} is now {to} on GitHub (renamed or transferred)", request.repo),
                        });
                    } else {
                        tracing::warn!(from = %request.repo, %to, "a configured repository is now known by another name; \
                                        update OCTOSCOPE_REPOS");
                    }
                }
                let runs = self.compare_runs(request, run.started_at).await?;
                found.push((request.clone(), differences, runs));
            }
            // Job counts of every listed run of the chunk, in as few requests as
            // GitHub allows: one batch per owner (its installation reads them).
            let mut by_owner: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for (request, _, runs) in &found {
                by_owner
                    .entry(request.repo.owner().to_owned())
                    .or_default()
                    .extend(runs.iter().flat_map(|r| r.node_ids()));
            }
            let mut counts = Vec::new();
            for (owner, node_ids) in by_owner.iter().filter(|(_, ids)| !ids.is_empty()) {
                counts
                    .extend(self.github.job_counts(owner, node_ids).await.context("counting workflow jobs on GitHub")?);
            }
            for (request, mut differences, runs) in found {
                if let Some(runs) = runs {
                    differences.extend(runs.differences());
                    differences.extend(runs.job_differences(&counts));
                }
                let target = Target::Repo(request.repo.clone());
                if differences.is_empty() {
                    run.verified.push(target);
                    continue;
                }
                run.gaps.extend(differences.into_iter().map(|d| Gap {
                    target: target.clone(),
                    kind: d.kind,
                    watermark: d.since,
                    reason: d.reason,
                }));
            }
        }
        Ok(())
    }

    /// Teams and repositories of every tracked organisation; returns the
    /// repositories GitHub lists that the store does not know yet.
    async fn compare_orgs(&self, tracked: &Tracked, run: &mut CheckRun) -> anyhow::Result<Vec<RepoName>> {
        let theirs = match self.github.org_snapshots(&tracked.orgs).await {
            Ok(t) => t,
            Err(GitHubError::NotFound(what)) => {
                tracing::warn!(what, "an organisation was not found on GitHub; teams not compared");
                return Ok(Vec::new());
            }
            Err(e) => return Err(e).context("reading organisations from GitHub"),
        };
        let ours = self.store.org_summaries(&tracked.orgs).await?;
        run.orgs_compared = theirs.len() as u64;
        let mut unknown = Vec::new();
        for t in &theirs {
            let target = Target::Org(t.org.clone());
            let mut gaps = Vec::new();
            if let Some(reason) = compare_org(t, ours.iter().find(|o| o.org == t.org)) {
                gaps.push(Gap { target: target.clone(), kind: GapKind::Teams, watermark: None, reason });
            }
            let (missing, reason) = compare_org_repos(t, &tracked.repos);
            if let Some(reason) = reason {
                gaps.push(Gap { target: target.clone(), kind: GapKind::Repos, watermark: None, reason });
            }
            unknown.extend(missing);
            if gaps.is_empty() {
                run.verified.push(target);
            }
            run.gaps.extend(gaps);
        }
        Ok(unknown)
    }

    /// One repository's workflow runs: GitHub's count and newest page since
    /// the watermark, against the store's. The window reaches back to the
    /// oldest run the store still holds as unfinished (within
    /// [`UNFINISHED_HORIZON`]), so a lost completion is found too. None when
    /// GitHub refuses the runs to these credentials (an app not granted
    /// Actions): they are not compared, the repository's other kinds are.
    async fn compare_runs(&self, request: &SnapshotRequest, now: Timestamp) -> anyhow::Result<Option<RunComparison>> {
        let repo = &request.repo;
        let horizon = now - UNFINISHED_HORIZON;
        let summary =
            self.store.stored_runs(repo, request.since, &[], Some(horizon)).await.context("counting stored runs")?;
        let since = widen(request.since, summary.oldest_unfinished, horizon);
        let theirs = match self.github.run_window(repo, since).await {
            Ok(theirs) => theirs,
            Err(refused @ GitHubError::Forbidden(_)) => {
                tracing::warn!(%repo, error = %refused, "workflow runs not compared: GitHub refuses them to these credentials");
                return Ok(None);
            }
            Err(e) => return Err(e).context("counting workflow runs on GitHub"),
        };
        let ids: Vec<i64> = theirs.runs.iter().map(|r| r.run.id).collect();
        // An unchanged repository (no run listed, the window not widened) needs no second read.
        let ours = if ids.is_empty() && since == request.since {
            summary
        } else {
            self.store.stored_runs(repo, since, &ids, None).await.context("reading stored runs")?
        };
        Ok(Some(RunComparison { since, theirs, ours }))
    }

    /// Ask GitHub to redeliver every recent failed delivery of the hooks that
    /// have delivered here, unless the ledger already has it.
    async fn redeliver_failed(&self, now: Timestamp) -> anyhow::Result<u64> {
        let seen = self.store.delivery_hooks().await?;
        if seen.is_empty() {
            return Ok(0);
        }
        let hooks = self.resolve_hooks(&seen).await?;
        // Failures before the previous completed check were handled by it: read
        // the hook's delivery log back to then (newest first, so a page or so).
        let previous = self
            .store
            .list_checks(&PageRequest::first(20))
            .await?
            .items
            .into_iter()
            .find(|c| !c.dry_run && c.error.is_none())
            .map(|c| c.started_at);
        let window = self.redelivery_window;
        let since = previous.map_or(now - window, |p| (p - REDELIVERY_OVERLAP).max(now - window));
        let mut asked = 0;
        for (hook, hook_id) in hooks {
            let failed = match self.hooks.failed_deliveries(&hook, since).await {
                Ok(f) => f,
                Err(GitHubError::NotFound(_) | GitHubError::Forbidden(_) | GitHubError::NotInstalled { .. }) => {
                    continue;
                }
                Err(e) => return Err(e).context("listing failed deliveries"),
            };
            // The newest failed attempt per delivery GUID.
            let mut latest: BTreeMap<String, &crate::ports::HookDelivery> = BTreeMap::new();
            for d in &failed {
                latest
                    .entry(d.guid.clone())
                    .and_modify(|cur| {
                        if d.delivered_at > cur.delivered_at {
                            *cur = d
                        }
                    })
                    .or_insert(d);
            }
            let keys: Vec<DeliveryKey> = latest
                .keys()
                .filter_map(|g| DeliveryId::parse(g).ok())
                .map(|delivery_id| DeliveryKey { hook_id: hook_id.clone(), delivery_id })
                .collect();
            let known = self.store.known_deliveries(&keys).await?;
            for (key, known) in keys.iter().zip(known) {
                if known {
                    continue;
                }
                let attempt = latest[key.delivery_id.as_str()];
                match self.hooks.redeliver(&hook, attempt.id).await {
                    Ok(()) => asked += 1,
                    Err(e) if !e.is_retryable() => {
                        tracing::warn!(error = %e, delivery = %key.delivery_id, "redelivery refused")
                    }
                    Err(e) => return Err(e).context("asking for a redelivery"),
                }
            }
        }
        Ok(asked)
    }

    /// Which GitHub hook each hook id is: an organisation's or a repository's.
    async fn resolve_hooks(&self, seen: &[crate::ports::HookSeen]) -> anyhow::Result<Vec<(HookRef, HookId)>> {
        let mut resolved = Vec::new();
        let mut listed: HashSet<HookTarget> = HashSet::new();
        let mut known: Vec<HookRef> = Vec::new();
        for h in seen {
            let Ok(id) = h.hook_id.as_str().parse::<u64>() else { continue };
            let mut targets = Vec::new();
            if let Some(org) = &h.org {
                targets.push(HookTarget::Org(org.clone()));
            }
            if let Some(repo) = &h.repo {
                targets.push(HookTarget::Repo(repo.clone()));
            }
            if !h.org_events {
                targets.reverse();
            }
            for target in targets {
                if listed.insert(target.clone()) {
                    match self.hooks.hooks(&target).await {
                        Ok(hooks) => known.extend(hooks),
                        Err(
                            GitHubError::NotFound(_) | GitHubError::Forbidden(_) | GitHubError::NotInstalled { .. },
                        ) => {}
                        Err(e) => return Err(e).context("listing webhooks"),
                    }
                }
                if let Some(hook) = known.iter().find(|k| hook_id(k) == id) {
                    resolved.push((hook.clone(), h.hook_id.clone()));
                    break;
                }
            }
        }
        Ok(resolved)
    }
}

fn hook_id(h: &HookRef) -> u64 {
    match h {
        HookRef::Repo { id, .. } | HookRef::Org { id, .. } => *id,
    }
}
