//! Deciding notifications: which transitions a set of changes makes, which
//! rules they match, and the notifications that follow — kept durably
//! (through a [`NotificationSink`]) before the changes are recorded.
//!
//! Two seams, both decorators, so neither ingest nor the resync changes:
//! - [`DecidingLedger`] wraps the delivery ledger: a webhook's transitions
//!   are decided from the delivery's event and action and its changes
//!   (`pull_request` `closed` + merged → `pull_request.merged`, `push` →
//!   `branch.moved`, …), whatever the timestamps in the payload say;
//! - [`DecidingSink`] wraps the resync's change sink: what the integrity
//!   check's resync writes is decided from the changes alone, marked `late`,
//!   and only for transitions that happened within [`Decider::late_window`]
//!   and after the rule was created (a first backfill of an organisation
//!   does not announce its history). `replay` writes through the store
//!   directly and never fires.
//!
//! Exactly once: a notification's id is derived from (rule, transition
//! key), and the sink keeps an id once — a duplicate delivery, a
//! redelivery, the resync finding the same merge later, all name the same
//! notification.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;

use crate::domain::*;
use crate::error::StoreError;
use crate::ports::{
    ChangeSink, Claim, Clock, DeliveryLedger, MetricRows, MetricsFilter, NotificationSink, PageRequest, PullFilter,
    ReadModel, Recorded, RuleStore, TransitionFacts,
};

/// How old a transition found late may be and still fire.
pub const DEFAULT_LATE_WINDOW: chrono::TimeDelta = chrono::TimeDelta::hours(24);
/// Commits listed in a `branch.moved` notification (GitHub's push payload lists at most 20).
const MAX_COMMITS: usize = 20;
/// Conclusions that count as a failed run.
const FAILED: [&str; 3] = ["failure", "timed_out", "startup_failure"];
/// `review.pickup_breached` without `hours`.
pub const DEFAULT_PICKUP_HOURS: u32 = 24;
/// `ci.queue_time_regressed` without `threshold_seconds`.
pub const DEFAULT_QUEUE_SECONDS: u64 = 300;

pub struct Decider {
    rules: Arc<dyn RuleStore>,
    sink: Arc<dyn NotificationSink>,
    facts: Arc<dyn TransitionFacts>,
    clock: Arc<dyn Clock>,
    late_window: chrono::TimeDelta,
    /// Notifications this decider kept that were new (for `octoscope check`'s report).
    decided: std::sync::atomic::AtomicUsize,
}

/// Where a set of changes comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source<'a> {
    /// A webhook delivery: its event and action say what happened.
    Webhook { event: &'a str, action: Option<&'a str> },
    /// The integrity check's resync: found late.
    Resync,
}

impl Decider {
    pub fn new(
        rules: Arc<dyn RuleStore>,
        sink: Arc<dyn NotificationSink>,
        facts: Arc<dyn TransitionFacts>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self { rules, sink, facts, clock, late_window: DEFAULT_LATE_WINDOW, decided: Default::default() }
    }

    pub fn with_late_window(mut self, window: chrono::TimeDelta) -> Self {
        self.late_window = window;
        self
    }

    pub fn late_window(&self) -> chrono::TimeDelta {
        self.late_window
    }

    /// How many new notifications this decider has kept since it was built.
    pub fn decided(&self) -> usize {
        self.decided.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Decide and keep the notifications for `changes` (before they are
    /// applied: a branch's previous head is read from the store). Returns
    /// how many notifications were new.
    pub async fn decide(&self, source: Source<'_>, changes: &[Change]) -> Result<usize, StoreError> {
        // Only the events some rule listens for are worked out (a push with no
        // `branch.moved` rule reads no branch head).
        let mut rules = Vec::new();
        for event in candidates(changes) {
            let listening = self.rules.rules_for(event).await?;
            if !listening.is_empty() {
                rules.push((event, listening));
            }
        }
        if rules.is_empty() {
            return Ok(0);
        }
        let mut transitions = self.transitions(source, changes).await?;
        transitions.retain(|t| rules.iter().any(|(e, _)| *e == t.event));
        self.keep(&transitions, &rules).await
    }

    /// Match transitions against the rules and keep the notifications.
    pub async fn decide_transitions(&self, transitions: &[Transition]) -> Result<usize, StoreError> {
        let mut rules = Vec::new();
        for t in transitions {
            if !rules.iter().any(|(e, _)| *e == t.event) {
                rules.push((t.event, self.rules.rules_for(t.event).await?));
            }
        }
        self.keep(transitions, &rules).await
    }

    /// Match `transitions` against `rules` (by event) and keep the notifications.
    async fn keep(&self, transitions: &[Transition], rules: &[(RuleEvent, Vec<Rule>)]) -> Result<usize, StoreError> {
        let now = self.clock.now();
        let mut notes = Vec::new();
        for (event, rules) in rules {
            for t in transitions.iter().filter(|t| t.event == *event) {
                for rule in rules {
                    if self.matches(rule, t, now).await? {
                        notes.push(Notification::decide(&rule.id, t, now));
                    }
                }
            }
        }
        if notes.is_empty() {
            return Ok(0);
        }
        let new = self.sink.enqueue(&notes).await?;
        if new > 0 {
            self.decided.fetch_add(new, std::sync::atomic::Ordering::Relaxed);
            tracing::info!(decided = notes.len(), new, "notifications decided");
        }
        Ok(new)
    }

    async fn matches(&self, rule: &Rule, t: &Transition, now: Timestamp) -> Result<bool, StoreError> {
        let f = &rule.filters;
        if rule.disabled.is_some() || rule.event != t.event {
            return Ok(false);
        }
        if t.late && (f.skip_late || t.occurred_at < rule.created_at || t.occurred_at < now - self.late_window) {
            return Ok(false);
        }
        if let Some(repo) = &f.repo
            && t.repo.as_ref().is_none_or(|r| !r.as_str().eq_ignore_ascii_case(repo.as_str()))
        {
            return Ok(false);
        }
        if let Some(glob) = &f.branch
            && t.branch.as_deref().is_none_or(|b| !branch_glob_matches(glob, b))
        {
            return Ok(false);
        }
        if let Some(author) = &f.author
            && t.author.as_deref().is_none_or(|a| !a.eq_ignore_ascii_case(author))
        {
            return Ok(false);
        }
        if let Some(env) = &f.environment
            && t.environment.as_deref() != Some(env.as_str())
        {
            return Ok(false);
        }
        if let Some(team) = &f.team {
            let Some((org, slug)) = team.split_once('/') else { return Ok(false) };
            let Some(author) = t.author.as_deref() else { return Ok(false) };
            if !self.facts.is_team_member(org, slug, author).await? {
                return Ok(false);
            }
        }
        // A scheduled finding is made per threshold: it matches the rules of that threshold.
        let threshold = match t.event {
            RuleEvent::ReviewPickupBreached => Some(("hours", u64::from(f.hours.unwrap_or(DEFAULT_PICKUP_HOURS)))),
            RuleEvent::CiQueueTimeRegressed => {
                Some(("threshold_seconds", f.threshold_seconds.unwrap_or(DEFAULT_QUEUE_SECONDS)))
            }
            _ => None,
        };
        if let Some((field, want)) = threshold
            && t.data.get(field).and_then(serde_json::Value::as_u64) != Some(want)
        {
            return Ok(false);
        }
        if let Some(label) = &f.label
            && t.data.get("label").and_then(|l| l.as_str()) != Some(label.as_str())
        {
            return Ok(false);
        }
        Ok(true)
    }

    /// The transitions `changes` make.
    pub async fn transitions(&self, source: Source<'_>, changes: &[Change]) -> Result<Vec<Transition>, StoreError> {
        let late = source == Source::Resync;
        let (event, action) = match source {
            Source::Webhook { event, action } => (Some(event), action),
            Source::Resync => (None, None),
        };
        let said = |e: &str, a: &[&str]| event.is_none() || (event == Some(e) && a.iter().any(|x| action == Some(x)));
        let mut out = Vec::new();
        for change in changes {
            match change {
                Change::PullRequest { pull, .. } => {
                    if pull.state == PrState::Open && said("pull_request", &["opened"]) {
                        out.push(pull_transition(RuleEvent::PullRequestOpened, pull, pull.created_at, late));
                    }
                    if let Some(merged_at) = pull.merged_at
                        && said("pull_request", &["closed"])
                    {
                        out.push(pull_transition(RuleEvent::PullRequestMerged, pull, merged_at, late));
                    }
                }
                Change::Branch(b) if !b.deleted && (event.is_none() || event == Some("push")) => {
                    let Some(after) = &b.head_sha else { continue };
                    let before = self.facts.branch_head(&b.repo, &b.name).await?;
                    // Unchanged; or, found late, a branch the store never had
                    // (a first backfill is not news).
                    if before.as_deref() == Some(after.as_str()) || (late && before.is_none()) {
                        continue;
                    }
                    out.push(branch_transition(b, after, before, changes, late));
                }
                Change::WorkflowRun(run)
                    if run.status == RunStatus::Completed && said("workflow_run", &["completed"]) =>
                {
                    let conclusion = run.conclusion.as_deref().unwrap_or_default();
                    let failed = FAILED.contains(&conclusion);
                    if !failed && conclusion != "success" {
                        continue;
                    }
                    let previous = self.facts.previous_conclusion(run).await?;
                    let previous_failed = previous.as_deref().is_some_and(|c| FAILED.contains(&c));
                    if failed {
                        let broke = previous.as_deref() == Some("success");
                        out.push(run_transition(RuleEvent::WorkflowRunFailed, run, previous.as_deref(), broke, late));
                    } else if previous_failed {
                        out.push(run_transition(
                            RuleEvent::WorkflowRunRecovered,
                            run,
                            previous.as_deref(),
                            false,
                            late,
                        ));
                    }
                }
                Change::DeploymentStatus(s)
                    if matches!(s.state.as_str(), "failure" | "error") && said("deployment_status", &["created"]) =>
                {
                    out.push(Transition {
                        event: RuleEvent::DeploymentFailed,
                        key: format!("deployment.failed:{}:{}", s.repo, s.deployment_id),
                        repo: Some(s.repo.clone()),
                        branch: None,
                        author: s.creator.clone(),
                        environment: s.environment.clone(),
                        occurred_at: s.created_at,
                        late,
                        data: json!({
                            "repo": s.repo.as_str(),
                            "deployment_id": s.deployment_id,
                            "status_id": s.id,
                            "state": s.state,
                            "environment": s.environment,
                            "creator": s.creator,
                            "url": format!("https://github.com/{}/deployments", s.repo),
                        }),
                    });
                }
                _ => {}
            }
        }
        Ok(out)
    }

    /// The scheduled rules, evaluated at `now`: `review.pickup_breached` and
    /// `ci.queue_time_regressed`. Returns how many notifications were new.
    pub async fn evaluate_scheduled(&self, rows: &dyn MetricRows, reads: &dyn ReadModel) -> Result<usize, StoreError> {
        let now = self.clock.now();
        let mut transitions = Vec::new();
        let pickup = self.rules.rules_for(RuleEvent::ReviewPickupBreached).await?;
        if !pickup.is_empty() {
            transitions.extend(pickup_breaches(rows, reads, &pickup, now).await?);
        }
        let queue = self.rules.rules_for(RuleEvent::CiQueueTimeRegressed).await?;
        if !queue.is_empty() {
            transitions.extend(queue_regressions(rows, &queue, now).await?);
        }
        self.decide_transitions(&transitions).await
    }

    /// `integrity.gaps_found` for a check that found gaps, and
    /// `resync.failed` for each failed resync job.
    pub async fn integrity_findings(
        &self,
        run: &CheckRun,
        failed_jobs: &[(String, String)],
    ) -> Result<usize, StoreError> {
        let mut transitions = Vec::new();
        if !run.gaps.is_empty() && !run.dry_run {
            let repos: Vec<String> = run.gaps.iter().map(|g| g.target.to_string()).take(20).collect();
            transitions.push(Transition {
                event: RuleEvent::IntegrityGapsFound,
                key: format!("integrity.gaps_found:{}", run.id),
                repo: None,
                branch: None,
                author: None,
                environment: None,
                occurred_at: run.finished_at,
                late: false,
                data: json!({
                    "check_id": run.id,
                    "gaps": run.gaps.len(),
                    "targets": repos,
                    "reasons": run.gaps.iter().map(|g| g.reason.as_str()).take(20).collect::<Vec<_>>(),
                }),
            });
        }
        for (job, reason) in failed_jobs {
            transitions.push(Transition {
                event: RuleEvent::ResyncFailed,
                key: format!("resync.failed:{job}"),
                repo: None,
                branch: None,
                author: None,
                environment: None,
                occurred_at: self.clock.now(),
                late: false,
                data: json!({ "job": job, "error": reason }),
            });
        }
        self.decide_transitions(&transitions).await
    }
}

/// The events `changes` could make (cheap: no store read).
fn candidates(changes: &[Change]) -> Vec<RuleEvent> {
    let mut out = Vec::new();
    let mut add = |e: RuleEvent| {
        if !out.contains(&e) {
            out.push(e);
        }
    };
    for change in changes {
        match change {
            Change::PullRequest { pull, .. } => {
                if pull.state == PrState::Open {
                    add(RuleEvent::PullRequestOpened);
                }
                if pull.merged_at.is_some() {
                    add(RuleEvent::PullRequestMerged);
                }
            }
            Change::Branch(b) if !b.deleted && b.head_sha.is_some() => add(RuleEvent::BranchMoved),
            Change::WorkflowRun(r) if r.status == RunStatus::Completed => {
                add(RuleEvent::WorkflowRunFailed);
                add(RuleEvent::WorkflowRunRecovered);
            }
            Change::DeploymentStatus(_) => add(RuleEvent::DeploymentFailed),
            _ => {}
        }
    }
    out
}

/// Rules read through a short-lived cache, for a process that decides
/// often and whose rules change elsewhere (the webhook function on AWS: a
/// rule created through the API applies within `ttl`). Writes go through
/// and clear the cache.
pub struct CachedRules {
    inner: Arc<dyn RuleStore>,
    ttl: std::time::Duration,
    cache: std::sync::Mutex<std::collections::HashMap<RuleEvent, (std::time::Instant, Vec<Rule>)>>,
}

impl CachedRules {
    pub fn new(inner: Arc<dyn RuleStore>, ttl: std::time::Duration) -> Self {
        Self { inner, ttl, cache: Default::default() }
    }

    fn clear(&self) {
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

#[async_trait]
impl RuleStore for CachedRules {
    async fn put_rule(&self, rule: &Rule) -> Result<(), StoreError> {
        self.clear();
        self.inner.put_rule(rule).await
    }
    async fn get_rule(&self, id: &RuleId) -> Result<Option<Rule>, StoreError> {
        self.inner.get_rule(id).await
    }
    async fn list_rules(&self, page: &PageRequest) -> Result<crate::ports::Page<Rule>, StoreError> {
        self.inner.list_rules(page).await
    }
    async fn delete_rule(&self, id: &RuleId) -> Result<bool, StoreError> {
        self.clear();
        self.inner.delete_rule(id).await
    }
    async fn rules_for(&self, event: RuleEvent) -> Result<Vec<Rule>, StoreError> {
        if let Some((at, rules)) = self.cache.lock().unwrap_or_else(|p| p.into_inner()).get(&event)
            && at.elapsed() < self.ttl
        {
            return Ok(rules.clone());
        }
        let rules = self.inner.rules_for(event).await?;
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).insert(event, (std::time::Instant::now(), rules.clone()));
        Ok(rules)
    }
    async fn disable_rule(&self, id: &RuleId, reason: &str) -> Result<(), StoreError> {
        self.clear();
        self.inner.disable_rule(id, reason).await
    }
}

fn pull_transition(event: RuleEvent, pull: &PullRequest, at: Timestamp, late: bool) -> Transition {
    Transition {
        event,
        key: format!("{}:{}#{}", event.as_str(), pull.repo, pull.number),
        repo: Some(pull.repo.clone()),
        branch: pull.base_ref.clone(),
        author: pull.author.clone(),
        environment: None,
        occurred_at: at,
        late,
        data: json!({
            "repo": pull.repo.as_str(),
            "number": pull.number,
            "title": pull.title,
            "author": pull.author,
            "base": pull.base_ref,
            "head": pull.head_ref,
            "draft": pull.draft,
            "url": format!("https://github.com/{}/pull/{}", pull.repo, pull.number),
            "at": at,
        }),
    }
}

fn branch_transition(b: &Branch, after: &str, before: Option<String>, changes: &[Change], late: bool) -> Transition {
    let commits: Vec<&Commit> = changes
        .iter()
        .filter_map(|c| match c {
            Change::Commit { commit, branch: Some(branch), .. } if *branch == b.name && commit.repo == b.repo => {
                Some(commit)
            }
            _ => None,
        })
        .collect();
    let author = commits.iter().find(|c| c.sha == after).and_then(|c| c.author_login.clone());
    let listed: Vec<_> = commits
        .iter()
        .take(MAX_COMMITS)
        .map(|c| {
            json!({
                "sha": c.sha,
                "message": c.message.lines().next().unwrap_or_default(),
                "author": c.author_login.as_deref().or(c.author_name.as_deref()),
                "url": format!("https://github.com/{}/commit/{}", c.repo, c.sha),
            })
        })
        .collect();
    let compare = match &before {
        Some(before) => format!("https://github.com/{}/compare/{}...{}", b.repo, short(before), short(after)),
        None => format!("https://github.com/{}/commit/{after}", b.repo),
    };
    Transition {
        event: RuleEvent::BranchMoved,
        key: format!("branch.moved:{}:{}:{after}", b.repo, b.name),
        repo: Some(b.repo.clone()),
        branch: Some(b.name.clone()),
        author,
        environment: None,
        occurred_at: b.version,
        late,
        data: json!({
            "repo": b.repo.as_str(),
            "branch": b.name,
            "before": before,
            "after": after,
            "commits": listed,
            "commit_count": commits.len(),
            "url": compare,
        }),
    }
}

fn run_transition(event: RuleEvent, run: &WorkflowRun, previous: Option<&str>, broke: bool, late: bool) -> Transition {
    let attempt = run.run_attempt.unwrap_or(1);
    Transition {
        event,
        key: format!("{}:{}:{}:{attempt}", event.as_str(), run.repo, run.id),
        repo: Some(run.repo.clone()),
        branch: run.head_branch.clone(),
        author: run.actor.clone(),
        environment: None,
        occurred_at: run.updated_at,
        late,
        data: json!({
            "repo": run.repo.as_str(),
            "run_id": run.id,
            "workflow": run.name,
            "workflow_id": run.workflow_id,
            "branch": run.head_branch,
            "sha": run.head_sha,
            "conclusion": run.conclusion,
            "previous_conclusion": previous,
            "broke": broke,
            "run_number": run.run_number,
            "attempt": attempt,
            "actor": run.actor,
            "url": format!("https://github.com/{}/actions/runs/{}", run.repo, run.id),
        }),
    }
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

/// Open, non-draft pull requests created more than the rule's `hours` ago
/// (default 24) without a review by someone other than the author.
async fn pickup_breaches(
    rows: &dyn MetricRows,
    reads: &dyn ReadModel,
    rules: &[Rule],
    now: Timestamp,
) -> Result<Vec<Transition>, StoreError> {
    // Open pull requests (with their first review) come with any window ending now.
    let open: Vec<_> = rows
        .metric_pulls(&MetricsFilter::window(now, now))
        .await?
        .into_iter()
        .filter(|p| p.state == PrState::Open && p.first_review_at.is_none())
        .collect();
    if open.is_empty() {
        return Ok(Vec::new());
    }
    // Drafts are not waiting for a review: the list view knows which are.
    let mut drafts = std::collections::HashSet::new();
    let mut page = PageRequest::first(PageRequest::MAX_LIMIT);
    loop {
        let filter = PullFilter { state: Some(PrState::Open), ..Default::default() };
        let got = reads.list_pulls(&filter, &page).await?;
        drafts.extend(got.items.iter().filter(|p| p.draft).map(|p| (p.repo.clone(), p.number)));
        match got.next_cursor {
            Some(c) => page.cursor = Some(c),
            None => break,
        }
    }
    let mut out = Vec::new();
    let mut hours: Vec<u32> = rules.iter().map(|r| r.filters.hours.unwrap_or(DEFAULT_PICKUP_HOURS)).collect();
    hours.sort_unstable();
    hours.dedup();
    for h in hours {
        for p in open.iter().filter(|p| !drafts.contains(&(p.repo.clone(), p.number))) {
            let due = p.created_at + chrono::TimeDelta::hours(i64::from(h));
            if due > now {
                continue;
            }
            out.push(Transition {
                event: RuleEvent::ReviewPickupBreached,
                // One per pull request and threshold: a rule with another `hours` is another transition.
                key: format!("review.pickup_breached:{}#{}:{h}h", p.repo, p.number),
                repo: Some(p.repo.clone()),
                branch: None,
                author: p.author.clone(),
                environment: None,
                occurred_at: due,
                late: false,
                data: json!({
                    "repo": p.repo.as_str(),
                    "number": p.number,
                    "author": p.author,
                    "hours": h,
                    "created_at": p.created_at,
                    "url": format!("https://github.com/{}/pull/{}", p.repo, p.number),
                }),
            });
        }
    }
    Ok(out)
}

/// Per runner label, the p90 queue time (started − created) of the jobs
/// created in the last hour; one transition per label, hour and threshold over it.
async fn queue_regressions(
    rows: &dyn MetricRows,
    rules: &[Rule],
    now: Timestamp,
) -> Result<Vec<Transition>, StoreError> {
    let since = now - chrono::TimeDelta::hours(1);
    let jobs = rows.metric_jobs(&MetricsFilter::window(since, now)).await?;
    let mut by_label: std::collections::BTreeMap<&str, Vec<i64>> = Default::default();
    for j in &jobs {
        let (Some(created), Some(started)) = (j.created_at, j.started_at) else { continue };
        let queued = (started - created).num_seconds().max(0);
        for l in &j.labels {
            by_label.entry(l.as_str()).or_default().push(queued);
        }
    }
    let hour = now.format("%Y-%m-%dT%H");
    let mut thresholds: Vec<u64> =
        rules.iter().map(|r| r.filters.threshold_seconds.unwrap_or(DEFAULT_QUEUE_SECONDS)).collect();
    thresholds.sort_unstable();
    thresholds.dedup();
    let mut out = Vec::new();
    for (label, mut secs) in by_label {
        secs.sort_unstable();
        let p90 = secs[((secs.len() as f64 * 0.9).ceil() as usize).clamp(1, secs.len()) - 1];
        for &t in &thresholds {
            if p90 as u64 <= t {
                continue;
            }
            out.push(Transition {
                event: RuleEvent::CiQueueTimeRegressed,
                key: format!("ci.queue_time_regressed:{label}:{hour}:{t}s"),
                repo: None,
                branch: None,
                author: None,
                environment: None,
                occurred_at: now,
                late: false,
                data: json!({ "label": label, "p90_seconds": p90, "jobs": secs.len(), "threshold_seconds": t, "hour": hour.to_string() }),
            });
        }
    }
    Ok(out)
}

/// A branch glob as GitHub's workflow filters read it: `*` matches within a
/// path segment (not `/`), `**` matches anything, `?` one character other
/// than `/`; everything else is literal. Hand-written (20 lines) rather than
/// a glob crate, whose regex engine would take the webhook function's zip
/// over its size budget.
pub fn branch_glob_matches(glob: &str, name: &str) -> bool {
    fn go(g: &[u8], n: &[u8]) -> bool {
        match g.split_first() {
            None => n.is_empty(),
            Some((b'*', rest)) if rest.first() == Some(&b'*') => {
                let rest = &rest[1..];
                (0..=n.len()).any(|i| go(rest, &n[i..]))
            }
            Some((b'*', rest)) => {
                let seg = n.iter().position(|&c| c == b'/').unwrap_or(n.len());
                (0..=seg).any(|i| go(rest, &n[i..]))
            }
            Some((b'?', rest)) => n.first().is_some_and(|&c| c != b'/') && go(rest, &n[1..]),
            Some((c, rest)) => n.first() == Some(c) && go(rest, &n[1..]),
        }
    }
    go(glob.as_bytes(), name.as_bytes())
}

/// A glob a rule may hold: non-empty, at most 255 bytes, no control characters.
pub fn valid_branch_glob(glob: &str) -> bool {
    !glob.is_empty() && glob.len() <= 255 && !glob.chars().any(char::is_control)
}

/// The delivery ledger, deciding a delivery's notifications before recording it.
pub struct DecidingLedger {
    inner: Arc<dyn DeliveryLedger>,
    decider: Arc<Decider>,
}

impl DecidingLedger {
    pub fn new(inner: Arc<dyn DeliveryLedger>, decider: Arc<Decider>) -> Self {
        Self { inner, decider }
    }

    async fn decide(&self, claim: &DeliveryClaim, changes: &[Change]) -> Result<(), StoreError> {
        let source = Source::Webhook { event: claim.event.as_str(), action: claim.action.as_deref() };
        self.decider.decide(source, changes).await.map(drop)
    }
}

#[async_trait]
impl DeliveryLedger for DecidingLedger {
    async fn claim_delivery(&self, claim: &DeliveryClaim) -> Result<Claim, StoreError> {
        self.inner.claim_delivery(claim).await
    }
    async fn release_delivery(&self, key: &DeliveryKey) -> Result<(), StoreError> {
        self.inner.release_delivery(key).await
    }
    async fn complete_delivery(
        &self,
        key: &DeliveryKey,
        changes: &[Change],
        outcome: &DeliveryOutcome,
    ) -> Result<ApplyReport, StoreError> {
        self.inner.complete_delivery(key, changes, outcome).await
    }
    async fn check_delivery(&self, claim: &DeliveryClaim) -> Result<Claim, StoreError> {
        self.inner.check_delivery(claim).await
    }
    async fn record_delivery(
        &self,
        claim: &DeliveryClaim,
        changes: &[Change],
        outcome: &DeliveryOutcome,
    ) -> Result<Recorded, StoreError> {
        // Kept before the delivery is recorded: a crash between the two leaves
        // the notification (the redelivery decides the same id again), never a
        // recorded delivery without its notification.
        if outcome.status == DeliveryStatus::Stored {
            self.decide(claim, changes).await?;
        }
        self.inner.record_delivery(claim, changes, outcome).await
    }
}

/// The resync's change sink, deciding what it finds (`late`) before applying it.
pub struct DecidingSink {
    inner: Arc<dyn ChangeSink>,
    decider: Arc<Decider>,
}

impl DecidingSink {
    pub fn new(inner: Arc<dyn ChangeSink>, decider: Arc<Decider>) -> Self {
        Self { inner, decider }
    }
}

#[async_trait]
impl ChangeSink for DecidingSink {
    async fn apply_changes(&self, changes: &[Change]) -> Result<ApplyReport, StoreError> {
        self.decider.decide(Source::Resync, changes).await?;
        self.inner.apply_changes(changes).await
    }
    async fn reset_entities(&self) -> Result<(), StoreError> {
        self.inner.reset_entities().await
    }
}

#[cfg(test)]
mod tests {
    use super::branch_glob_matches as m;

    #[test]
    fn branch_globs_read_as_github_reads_them() {
        assert!(m("main", "main"));
        assert!(!m("main", "main2"));
        assert!(m("release/*", "release/1.2"));
        assert!(!m("release/*", "release/1.2/hotfix"));
        assert!(m("release/**", "release/1.2/hotfix"));
        assert!(m("*", "feature"));
        assert!(!m("*", "feature/x"));
        assert!(m("**", "feature/x"));
        assert!(m("v?", "v1"));
        assert!(!m("v?", "v/"));
        assert!(m("feat-*-x", "feat-abc-x"));
    }
}
