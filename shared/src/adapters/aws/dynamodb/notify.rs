//! Notifications on DynamoDB: [`RuleStore`], [`NotificationSink`] (conditional
//! creates: a kept id is left as it is), [`NotificationLog`] (the sender's
//! work list and the log) and [`TransitionFacts`]. The items and their index
//! entries are in `shared/docs/dynamodb.md` ("Notifications").
//!
//! Rules and notifications carry no `entity`: a replay's `reset_entities`
//! leaves them (and the log) in place. A rule's signing secrets are a list
//! attribute of its item, protected as the table is (encryption at rest, IAM).

use std::time::Duration;

use anyhow::{Context as _, anyhow};
use async_trait::async_trait;

use super::DynamoStore;
use super::codec::*;
use super::ops::{Query, Range, Task, corrupt, run_bounded};
use super::store::{MAX_TEXT, Take, cursor, views};
use crate::domain::*;
use crate::ports::*;

/// Keys of the notification items (the store's other keys are in `codec.rs`).
mod nkey {
    /// A rule: `RULE#{id}` / `_`.
    pub fn rule(id: &str) -> String {
        format!("RULE#{id}")
    }
    /// A notification: `NOTE#{id}` / `_`; its attempts in the same partition.
    pub fn note(id: &str) -> String {
        format!("NOTE#{id}")
    }
    pub const ATTEMPTS_PREFIX: &str = "AT#";
    pub fn attempt_sk(number: u32) -> String {
        format!("{ATTEMPTS_PREFIX}{number:010}")
    }
    /// gsi1: every rule, oldest first.
    pub const RULES: &str = "RULES";
    /// gsi2 (sparse: enabled rules only): the rules of one event.
    pub fn rules_for(event: &str) -> String {
        format!("RULES#{event}")
    }
    /// gsi1: the log, every notification.
    pub const NOTES: &str = "NOTES";
    /// gsi2: one rule's notifications (rule ids begin `rul_`: no clash with [`DUE`]).
    pub fn notes_of(rule: &str) -> String {
        format!("NOTES#{rule}")
    }
    /// gsi3 (sparse: pending only): the work list, by next attempt.
    pub const DUE: &str = "NOTES#due";
}

/// How far back `previous_conclusion` reads a repository's runs (gsi2
/// `RUNS#{repo}`, newest first) for one of the same workflow and branch.
const PREVIOUS_RUN_LOOKBACK: usize = 1000;

/// A lease longer than this is taken as this.
const MAX_LEASE: chrono::TimeDelta = chrono::TimeDelta::days(1);

fn json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).context("serialising a notification field").map_err(StoreError::Internal)
}

fn rule_of(i: &Item) -> anyhow::Result<Rule> {
    let event = i.req_str("event")?;
    Ok(Rule {
        id: RuleId::parse(&i.req_str("id")?)?,
        event: RuleEvent::parse(&event).ok_or_else(|| anyhow!("stored rule event {event:?}"))?,
        filters: serde_json::from_str(&i.req_str("filters")?).context("stored rule filters")?,
        target: serde_json::from_str(&i.req_str("target")?).context("stored rule target")?,
        secrets: TargetSecrets(i.strings("secrets")),
        created_at: i.req_time("created_at")?,
        updated_at: i.req_time("updated_at")?,
        disabled: i.str("disabled"),
    })
}

fn note_of(i: &Item) -> anyhow::Result<Notification> {
    let (event, status) = (i.req_str("event")?, i.req_str("status")?);
    Ok(Notification {
        id: NotificationId::parse(&i.req_str("id")?)?,
        rule_id: RuleId::parse(&i.req_str("rule_id")?)?,
        event: RuleEvent::parse(&event).ok_or_else(|| anyhow!("stored notification event {event:?}"))?,
        transition_key: i.req_str("transition_key")?,
        late: i.flag("late").unwrap_or(false),
        data: serde_json::from_str(&i.req_str("data")?).context("stored notification data")?,
        occurred_at: i.req_time("occurred_at")?,
        created_at: i.req_time("created_at")?,
        status: NotificationStatus::parse(&status).ok_or_else(|| anyhow!("stored notification status {status:?}"))?,
        attempts: i.num("attempts").unwrap_or(0),
        next_attempt_at: i.time("next_attempt_at")?,
        last_error: i.str("last_error"),
    })
}

fn attempt_of(i: &Item) -> anyhow::Result<Attempt> {
    Ok(Attempt {
        notification_id: NotificationId::parse(&i.req_str("notification_id")?)?,
        number: i.num("number").context("attempt number")?,
        at: i.req_time("at")?,
        status_code: i.num("status_code"),
        latency_ms: i.num("latency_ms").unwrap_or(0),
        excerpt: i.str("excerpt").unwrap_or_default(),
    })
}

/// The sort key of a rule or notification in the lists: creation time, then id.
fn created_sort(at: &Timestamp, id: &str) -> String {
    format!("{}#{id}", ts(at))
}

/// The work list's sort key: the next attempt's time, then id.
fn due_sort(at: &Timestamp, id: &str) -> String {
    format!("{}#{id}", ts(at))
}

/// Set `n`'s work-list entry: present while it is pending with a next attempt.
fn set_due(u: &mut Update, id: &str, status: NotificationStatus, next: Option<&Timestamp>) {
    match next.filter(|_| status == NotificationStatus::Pending) {
        Some(at) => u.set("gsi3pk", s(nkey::DUE)).set("gsi3sk", s(due_sort(at, id))),
        None => u.set_or_remove("gsi3pk", None).set_or_remove("gsi3sk", None),
    };
}

/// The conditional create of a notification: nothing is written when its id is kept.
fn note_create(n: &Notification) -> Result<Update, StoreError> {
    let id = n.id.as_str();
    let mut u = Update::default();
    u.set("id", s(id)).set("rule_id", s(n.rule_id.as_str())).set("event", s(n.event.as_str()));
    u.set("transition_key", s(n.transition_key.as_str())).set("late", b(n.late)).set("data", s(json(&n.data)?));
    u.set("occurred_at", t(&n.occurred_at)).set("created_at", t(&n.created_at)).set("status", s(n.status.as_str()));
    u.set("attempts", super::codec::n(n.attempts)).coalesce("next_attempt_at", n.next_attempt_at.as_ref().map(t));
    u.coalesce("last_error", n.last_error.as_deref().map(|e| s(bounded(e, MAX_TEXT))));
    let sort = created_sort(&n.created_at, id);
    u.set("gsi1pk", s(nkey::NOTES)).set("gsi1sk", s(sort.clone()));
    u.set("gsi2pk", s(nkey::notes_of(n.rule_id.as_str()))).set("gsi2sk", s(sort));
    if let (NotificationStatus::Pending, Some(at)) = (n.status, &n.next_attempt_at) {
        u.set("gsi3pk", s(nkey::DUE)).set("gsi3sk", s(due_sort(at, id)));
    }
    let pk = u.name("pk");
    u.condition(format!("attribute_not_exists({pk})"));
    Ok(u)
}

/// What a retried attempt leaves as the notification's last error (as on SQLite).
fn attempt_error(a: &Attempt) -> String {
    match a.status_code {
        Some(code) => format!("HTTP {code}"),
        None => a.excerpt.chars().take(200).collect(),
    }
}

impl DynamoStore {
    /// Create each notification unless its id is kept; how many were new.
    async fn create_notes(&self, notes: &[Notification]) -> Result<usize, StoreError> {
        let mut writes: Vec<Task<'_, Result<bool, StoreError>>> = Vec::with_capacity(notes.len());
        for n in notes {
            let (k, u) = (key_of(nkey::note(n.id.as_str()), key::ONE), note_create(n)?);
            writes.push(Box::pin(self.update(k, u)));
        }
        let mut new = 0;
        for created in run_bounded(writes, 16).await {
            new += usize::from(created?);
        }
        Ok(new)
    }
}

#[async_trait]
impl RuleStore for DynamoStore {
    async fn put_rule(&self, rule: &Rule) -> Result<(), StoreError> {
        let id = rule.id.as_str();
        let mut u = Update::default();
        u.set("id", s(id)).set("event", s(rule.event.as_str())).set("filters", s(json(&rule.filters)?));
        u.set("target", s(json(&rule.target)?)).set("secrets", list(&rule.secrets.0));
        u.set("created_at", t(&rule.created_at)).set("updated_at", t(&rule.updated_at));
        u.set_or_remove("disabled", rule.disabled.as_deref().map(|d| s(bounded(d, MAX_TEXT))));
        let sort = created_sort(&rule.created_at, id);
        u.set("gsi1pk", s(nkey::RULES)).set("gsi1sk", s(sort.clone()));
        if rule.disabled.is_none() {
            u.set("gsi2pk", s(nkey::rules_for(rule.event.as_str()))).set("gsi2sk", s(sort));
        } else {
            u.set_or_remove("gsi2pk", None).set_or_remove("gsi2sk", None);
        }
        self.update(key_of(nkey::rule(id), key::ONE), u).await.map(drop)
    }

    async fn get_rule(&self, id: &RuleId) -> Result<Option<Rule>, StoreError> {
        match self.get(key_of(nkey::rule(id.as_str()), key::ONE)).await? {
            Some(i) => rule_of(&i).map(Some).map_err(corrupt),
            None => Ok(None),
        }
    }

    async fn list_rules(&self, page: &PageRequest) -> Result<Page<Rule>, StoreError> {
        let range = cursor(page)?.map_or(Range::All, Range::Above);
        let q = Query::index("gsi1", nkey::RULES, range);
        let (items, next_cursor) = self.page_of(q, page.limit, |_| Take::Yes).await?;
        Ok(Page { items: views(&items, rule_of)?, next_cursor })
    }

    async fn delete_rule(&self, id: &RuleId) -> Result<bool, StoreError> {
        let mut c = Update::default();
        let pk = c.name("pk");
        c.condition(format!("attribute_exists({pk})"));
        self.delete(key_of(nkey::rule(id.as_str()), key::ONE), Some(c)).await
    }

    async fn rules_for(&self, event: RuleEvent) -> Result<Vec<Rule>, StoreError> {
        let items = self.query_all(&Query::index("gsi2", nkey::rules_for(event.as_str()), Range::All)).await?;
        let rules = views(&items, rule_of)?;
        Ok(rules.into_iter().filter(|r| r.disabled.is_none() && r.event == event).collect())
    }

    async fn disable_rule(&self, id: &RuleId, reason: &str) -> Result<(), StoreError> {
        let mut u = Update::default();
        u.set("disabled", s(bounded(reason, MAX_TEXT))).set_or_remove("gsi2pk", None).set_or_remove("gsi2sk", None);
        let pk = u.name("pk");
        u.condition(format!("attribute_exists({pk})"));
        self.update(key_of(nkey::rule(id.as_str()), key::ONE), u).await.map(drop)
    }
}

#[async_trait]
impl NotificationSink for DynamoStore {
    async fn enqueue(&self, notes: &[Notification]) -> Result<usize, StoreError> {
        self.create_notes(notes).await
    }
}

#[async_trait]
impl NotificationLog for DynamoStore {
    async fn admit(&self, note: &Notification) -> Result<bool, StoreError> {
        Ok(self.create_notes(std::slice::from_ref(note)).await? == 1)
    }

    async fn take_due(&self, now: Timestamp, lease: Duration, limit: usize) -> Result<Vec<Notification>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let lease = chrono::TimeDelta::from_std(lease).unwrap_or(MAX_LEASE).min(MAX_LEASE);
        let (now_s, until) = (ts(&now), ts(&(now + lease)));
        // The work list up to now (`~` sorts after every id), each item read
        // from the table; those leased by another sender are passed over.
        let q = Query::index("gsi3", nkey::DUE, Range::Below(format!("{now_s}~"))).page(limit.min(100) * 2);
        let mut candidates = Vec::new();
        self.query_each(&q, |i| {
            let free = i.str("lease_until").is_none_or(|l| l < now_s);
            let due = i.str("next_attempt_at").is_some_and(|at| at <= now_s);
            if free && due && i.str("status").as_deref() == Some(NotificationStatus::Pending.as_str()) {
                candidates.push(i);
            }
            candidates.len() < limit
        })
        .await?;
        let mut taken = Vec::with_capacity(candidates.len());
        for i in candidates {
            let id = i.req_str("id").map_err(corrupt)?;
            let mut u = Update::default();
            u.set("lease_until", s(until.as_str()));
            let (st, pending) = (u.name("status"), u.value(s(NotificationStatus::Pending.as_str())));
            let (next, lease, at) = (u.name("next_attempt_at"), u.name("lease_until"), u.value(s(now_s.as_str())));
            u.condition(format!(
                "{st} = {pending} AND {next} <= {at} AND (attribute_not_exists({lease}) OR {lease} < {at})"
            ));
            // Another sender took it meanwhile: not ours.
            if let Some(Some(old)) = self.update_item(key_of(nkey::note(&id), key::ONE), u).await? {
                taken.push(note_of(&old).map_err(corrupt)?);
            }
        }
        Ok(taken)
    }

    async fn get_notification(&self, id: &NotificationId) -> Result<Option<Notification>, StoreError> {
        match self.get(key_of(nkey::note(id.as_str()), key::ONE)).await? {
            Some(i) => note_of(&i).map(Some).map_err(corrupt),
            None => Ok(None),
        }
    }

    async fn record_attempt(&self, attempt: &Attempt, next: &AfterAttempt) -> Result<(), StoreError> {
        let id = attempt.notification_id.as_str();
        // The attempt, once (a repeated report of it is ignored).
        let mut a = Update::default();
        a.set("notification_id", s(id)).set("number", n(attempt.number)).set("at", t(&attempt.at));
        a.coalesce("status_code", attempt.status_code.map(n)).set("latency_ms", n(attempt.latency_ms));
        a.set("excerpt", s(bounded(&attempt.excerpt, MAX_TEXT)));
        let pk = a.name("pk");
        a.condition(format!("attribute_not_exists({pk})"));
        self.update(key_of(nkey::note(id), nkey::attempt_sk(attempt.number)), a).await?;

        // What follows, only while the notification is pending. Unlike SQLite's
        // MAX(attempts, number), `attempts` is the number of this attempt.
        let (status, next_at, error) = match next {
            AfterAttempt::Delivered => (NotificationStatus::Delivered, None, None),
            AfterAttempt::Retry(at) => (NotificationStatus::Pending, Some(at), Some(attempt_error(attempt))),
            AfterAttempt::Failed(why) | AfterAttempt::DisableTarget(why) => {
                (NotificationStatus::Failed, None, Some(bounded(why, MAX_TEXT)))
            }
        };
        let mut u = Update::default();
        u.set("status", s(status.as_str())).set("attempts", n(attempt.number));
        u.set_or_remove("next_attempt_at", next_at.map(t)).set_or_remove("last_error", error.map(s));
        u.set_or_remove("lease_until", None);
        set_due(&mut u, id, status, next_at);
        let (st, pending) = (u.name("status"), u.value(s(NotificationStatus::Pending.as_str())));
        u.condition(format!("{st} = {pending}"));
        let before = self.update_item_or_current(key_of(nkey::note(id), key::ONE), u).await?;
        // 410 Gone: the rule's target is disabled too (a second write, not one
        // transaction: a repeated report of the attempt repeats it, idempotently).
        if let AfterAttempt::DisableTarget(why) = next {
            let rule = match before {
                Ok(Some(item)) | Err(Some(item)) => item.str("rule_id"),
                _ => None,
            };
            if let Some(rule) = rule {
                let rule = RuleId::parse(&rule).map_err(|e| corrupt(e.into()))?;
                self.disable_rule(&rule, why).await?;
            }
        }
        Ok(())
    }

    async fn list_notifications(
        &self,
        filter: &NotificationFilter,
        page: &PageRequest,
    ) -> Result<Page<Notification>, StoreError> {
        let range = cursor(page)?.map_or(Range::All, Range::Below);
        let q = match &filter.rule {
            Some(rule) => Query::index("gsi2", nkey::notes_of(rule.as_str()), range),
            None => Query::index("gsi1", nkey::NOTES, range),
        };
        // The status filter is applied to what is read.
        let status = filter.status.map(NotificationStatus::as_str);
        let (items, next_cursor) = self
            .page_of(q.backward(), page.limit, |i| {
                if status.is_none_or(|st| i.str("status").as_deref() == Some(st)) { Take::Yes } else { Take::No }
            })
            .await?;
        Ok(Page { items: views(&items, note_of)?, next_cursor })
    }

    async fn attempts(&self, id: &NotificationId) -> Result<Vec<Attempt>, StoreError> {
        let q = Query::table(nkey::note(id.as_str()), Range::Prefix(nkey::ATTEMPTS_PREFIX.to_owned()));
        views(&self.query_all(&q).await?, attempt_of)
    }

    async fn rule_stats(&self, rule: &RuleId, since: Timestamp) -> Result<RuleStats, StoreError> {
        let q = Query::index("gsi2", nkey::notes_of(rule.as_str()), Range::AtLeast(ts(&since)));
        let mut stats = RuleStats::default();
        self.query_each(&q, |i| {
            match i.str("status").as_deref().and_then(NotificationStatus::parse) {
                Some(NotificationStatus::Delivered) => stats.delivered += 1,
                Some(NotificationStatus::Failed) => stats.failed += 1,
                Some(NotificationStatus::Pending) => stats.pending += 1,
                None => {}
            }
            true
        })
        .await?;
        Ok(stats)
    }
}

#[async_trait]
impl TransitionFacts for DynamoStore {
    async fn branch_head(&self, repo: &RepoName, branch: &str) -> Result<Option<String>, StoreError> {
        let repo = self.canonical(repo).await?;
        let item = self.get(key_of(key::repo(&repo), key::branch_sk(branch))).await?;
        Ok(item.filter(|i| !i.flag("deleted").unwrap_or(false)).and_then(|i| i.str("head_sha")))
    }

    async fn previous_conclusion(&self, run: &WorkflowRun) -> Result<Option<String>, StoreError> {
        let (Some(workflow_id), Some(branch)) = (run.workflow_id, run.head_branch.as_deref()) else {
            return Ok(None);
        };
        let repo = self.canonical(&run.repo).await?;
        // The repository's runs created before this one, newest first (gsi2
        // `RUNS#{repo}` / `{created_at}#{id}`), until one of its workflow and branch.
        let below = format!("{}#", ts(&run.created_at));
        let q = Query::index("gsi2", key::runs_of(repo.as_str()), Range::Below(below)).backward().page(50);
        let (mut read, mut found) = (0, None);
        self.query_each(&q, |i| {
            read += 1;
            let same = i.num::<i64>("workflow_id") == Some(workflow_id)
                && i.str("head_branch").as_deref() == Some(branch)
                && i.num::<i64>("id") != Some(run.id)
                && i.str("status").as_deref() == Some(RunStatus::Completed.as_str());
            if same {
                found = Some(i.str("conclusion"));
            }
            found.is_none() && read < PREVIOUS_RUN_LOOKBACK
        })
        .await?;
        Ok(found.flatten())
    }

    async fn is_team_member(&self, org: &str, team_slug: &str, login: &str) -> Result<bool, StoreError> {
        let item = self.get(key_of(key::org(org), key::team_member_sk(team_slug, login))).await?;
        Ok(item.is_some_and(|i| i.flag("present").unwrap_or(false)))
    }
}
