//! The integrity check: compare GitHub with the store, cheaply, and turn every
//! difference into a gap on the queue. It also asks GitHub to redeliver the
//! webhook deliveries that failed.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use anyhow::Context as _;

use crate::domain::*;
use crate::domain::{CheckRun, Gap, GapKind, Target};
use crate::ports::{Clock, CompletenessStore, GapQueue, PageRequest, Tracked};
use crate::ports::{
    GitHubChecks, GitHubError, GitHubHooks, HookRef, HookTarget, OrgSnapshot, RepoSnapshot, SnapshotRequest,
};

/// How far back GitHub keeps hook deliveries.
const REDELIVERY_WINDOW: chrono::TimeDelta = chrono::TimeDelta::days(3);
/// How far before the previous check's start a check looks for failed deliveries.
const REDELIVERY_OVERLAP: chrono::TimeDelta = chrono::TimeDelta::minutes(10);
/// Repositories compared per round (the adapter batches them further).
const REPO_CHUNK: usize = 100;

pub struct IntegrityService {
    store: Arc<dyn CompletenessStore>,
    github: Arc<dyn GitHubChecks>,
    hooks: Arc<dyn GitHubHooks>,
    queue: Arc<dyn GapQueue>,
    clock: Arc<dyn Clock>,
    /// Tracked by configuration (`OCTOSCOPE_REPOS`, `OCTOSCOPE_ORGS`) besides what the store knows.
    configured: Tracked,
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
        Self { store, github, hooks, queue, clock, configured }
    }

    /// What is tracked: configured, plus every repository and organisation the store has heard of.
    pub async fn tracked(&self) -> anyhow::Result<Tracked> {
        let mut t = self.store.tracked().await.context("reading what is tracked")?;
        t.repos.extend(self.configured.repos.iter().cloned());
        t.orgs.extend(self.configured.orgs.iter().cloned());
        t.repos.sort();
        t.repos.dedup();
        t.orgs.sort();
        t.orgs.dedup();
        Ok(t)
    }

    /// One check. With `dry_run`, gaps are found and recorded but nothing is
    /// queued or redelivered.
    pub async fn check(&self, dry_run: bool) -> anyhow::Result<CheckRun> {
        let started_at = self.clock.now();
        let requests_before = self.github.budget().requests;
        let mut run = CheckRun {
            id: format!("check-{}", started_at.format("%Y%m%dT%H%M%S%.3fZ")),
            started_at,
            finished_at: started_at,
            repos_compared: 0,
            orgs_compared: 0,
            gaps: Vec::new(),
            redelivered: 0,
            requests: 0,
            dry_run,
            verified: Vec::new(),
            error: None,
        };
        let result = self.compare(&mut run).await;
        if let Err(e) = &result {
            run.error = Some(crate::error::error_chain(e.as_ref()));
        }
        if !dry_run && result.is_ok() {
            self.queue.send(&run.gaps).await.context("queueing gaps")?;
        }
        run.finished_at = self.clock.now();
        run.requests = self.github.budget().requests.saturating_sub(requests_before);
        self.store.record_check(&run).await.context("recording the check")?;
        result.map(|()| run)
    }

    async fn compare(&self, run: &mut CheckRun) -> anyhow::Result<()> {
        let tracked = self.tracked().await?;
        if !run.dry_run {
            run.redelivered = self.redeliver_failed(run.started_at).await?;
        }
        for chunk in tracked.repos.chunks(REPO_CHUNK) {
            let chunk: Vec<SnapshotRequest> = chunk.iter().map(|r| SnapshotRequest::new(r.clone(), None)).collect();
            let theirs = self.github.repo_snapshots(&chunk).await.context("reading repositories from GitHub")?;
            let ours = self.store.repo_summaries(&chunk).await.context("summarising the store")?;
            run.repos_compared += theirs.len() as u64;
            for t in &theirs {
                let target = Target::Repo(t.repo.clone());
                let o = ours.iter().find(|o| o.repo == t.repo);
                let gaps = compare_repo(t, o);
                if gaps.is_empty() {
                    run.verified.push(target);
                } else {
                    let watermark = self.store.verified_at(&target).await?;
                    run.gaps.extend(gaps.into_iter().map(|(kind, reason)| Gap {
                        target: target.clone(),
                        kind,
                        watermark,
                        reason,
                    }));
                }
            }
        }
        if !tracked.orgs.is_empty() {
            let theirs = match self.github.org_snapshots(&tracked.orgs).await {
                Ok(t) => t,
                Err(GitHubError::NotFound(what)) => {
                    tracing::warn!(what, "an organisation was not found on GitHub; teams not compared");
                    Vec::new()
                }
                Err(e) => return Err(e).context("reading organisations from GitHub"),
            };
            let ours = self.store.org_summaries(&tracked.orgs).await?;
            run.orgs_compared = theirs.len() as u64;
            for t in &theirs {
                let target = Target::Org(t.org.clone());
                match compare_org(t, ours.iter().find(|o| o.org == t.org)) {
                    None => run.verified.push(target),
                    Some(reason) => run.gaps.push(Gap { target, kind: GapKind::Teams, watermark: None, reason }),
                }
            }
        }
        Ok(())
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
        let since = previous.map_or(now - REDELIVERY_WINDOW, |p| (p - REDELIVERY_OVERLAP).max(now - REDELIVERY_WINDOW));
        let mut asked = 0;
        for (hook, hook_id) in hooks {
            let failed = match self.hooks.failed_deliveries(&hook, since).await {
                Ok(f) => f,
                Err(GitHubError::NotFound(_) | GitHubError::Forbidden(_)) => continue,
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
                        Err(GitHubError::NotFound(_) | GitHubError::Forbidden(_)) => {}
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

/// The differences between GitHub's and the store's view of one repository.
pub fn compare_repo(theirs: &RepoSnapshot, ours: Option<&RepoSnapshot>) -> Vec<(GapKind, String)> {
    let mut gaps = Vec::new();
    let empty = RepoSnapshot::empty(theirs.repo.clone());
    let ours = ours.unwrap_or(&empty);
    let secs = |t: Option<Timestamp>| t.map(|t| t.timestamp());
    let counts = (theirs.open, theirs.closed, theirs.merged) != (ours.open, ours.closed, ours.merged);
    if counts || secs(theirs.newest_pr_updated_at) != secs(ours.newest_pr_updated_at) {
        gaps.push((
            GapKind::Pulls,
            format!(
                "pull requests open/closed/merged {}/{}/{} on GitHub, {}/{}/{} here; newest update {:?} vs {:?}",
                theirs.open,
                theirs.closed,
                theirs.merged,
                ours.open,
                ours.closed,
                ours.merged,
                theirs.newest_pr_updated_at,
                ours.newest_pr_updated_at
            ),
        ));
    }
    let ours_heads: BTreeMap<&str, &str> = ours.branches.iter().map(|(n, s)| (n.as_str(), s.as_str())).collect();
    let mut differ: Vec<&str> = theirs
        .branches
        .iter()
        .filter(|(n, s)| ours_heads.get(n.as_str()) != Some(&s.as_str()))
        .map(|(n, _)| n.as_str())
        .collect();
    if !theirs.branches_truncated {
        let theirs_names: HashSet<&str> = theirs.branches.iter().map(|(n, _)| n.as_str()).collect();
        differ.extend(ours.branches.iter().map(|(n, _)| n.as_str()).filter(|n| !theirs_names.contains(n)));
    }
    if !differ.is_empty() {
        differ.sort();
        differ.truncate(10);
        gaps.push((GapKind::Branches, format!("branch heads differ: {}", differ.join(", "))));
    }
    gaps
}

/// The difference between GitHub's and the store's teams of one organisation.
pub fn compare_org(theirs: &OrgSnapshot, ours: Option<&OrgSnapshot>) -> Option<String> {
    let mut t = theirs.teams.clone();
    let mut o = ours.map(|o| o.teams.clone()).unwrap_or_default();
    t.sort();
    o.sort();
    (t != o).then(|| {
        let differ: Vec<String> = t
            .iter()
            .filter(|x| !o.contains(x))
            .chain(o.iter().filter(|x| !t.contains(x)))
            .map(|(slug, n)| format!("{slug}({n})"))
            .take(10)
            .collect();
        format!("teams or member counts differ: {}", differ.join(", "))
    })
}
