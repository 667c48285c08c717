//! Items: key layout, attribute encoding, and the `UpdateItem` expression builder.

use std::collections::HashMap;

use anyhow::{Context as _, anyhow};
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

use crate::domain::{InstallationRequests, Timestamp};
use crate::read::StoredText;

pub(super) type Item = HashMap<String, AttributeValue>;

/// Stored time format (as on SQLite): fixed width, so string order is time order.
pub(super) fn ts(t: &Timestamp) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

pub(super) fn parse_ts(s: &str) -> anyhow::Result<Timestamp> {
    DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc)).with_context(|| format!("stored time {s:?}"))
}

/// Fixed-width ids and numbers, so string order is numeric order.
pub(super) fn num(n: i64) -> String {
    format!("{n:020}")
}

/// A newest-first sort key that a forward (ascending) Query reads: each digit
/// of the time inverted; "no time" sorts after every time.
pub(super) fn newest_first(t: Option<&Timestamp>) -> String {
    match t {
        Some(t) => {
            let inverted: String =
                ts(t).chars().map(|c| c.to_digit(10).and_then(|d| char::from_digit(9 - d, 10)).unwrap_or(c)).collect();
            format!("0{inverted}")
        }
        None => "1".to_owned(),
    }
}

/// Truncate `s` to at most `max` bytes on a character boundary (item size bound).
pub(super) fn bounded(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

/// Partition and sort keys of every item type (see `shared/docs/dynamodb.md`).
pub(super) mod key {
    use super::num;
    use crate::domain::{DeliveryKey, RepoName};

    pub fn repo(r: &RepoName) -> String {
        format!("REPO#{r}")
    }
    pub const REPO_SK: &str = "REPO";
    pub fn branch_sk(name: &str) -> String {
        format!("BR#{name}")
    }
    /// The pull requests of a repository with their reviews and review comments.
    pub const PULLS_PREFIX: &str = "PR#";
    pub fn pull_sk(number: u64) -> String {
        format!("PR#{}", num(number as i64))
    }
    /// A pull request's body, kept apart from its item (outside the `PR#`
    /// collection, so the review-facts and snapshot Queries do not read it).
    pub fn pull_body_sk(number: u64) -> String {
        format!("BODY#PR#{}", num(number as i64))
    }
    pub fn review_sk(number: u64, id: i64) -> String {
        format!("PR#{}#REV#{}", num(number as i64), num(id))
    }
    pub fn review_comment_sk(number: u64, id: i64) -> String {
        format!("PR#{}#RC#{}", num(number as i64), num(id))
    }
    pub fn collaborator_sk(login: &str) -> String {
        format!("COLLAB#{login}")
    }
    pub fn commit_sk(sha: &str) -> String {
        format!("C#{sha}")
    }
    pub fn branch_commit_sk(branch: &str, sha: &str) -> String {
        format!("BC#{branch}#{sha}")
    }
    pub fn org(org: &str) -> String {
        format!("ORG#{org}")
    }
    pub fn team_sk(slug: &str) -> String {
        format!("TEAM#{slug}")
    }
    pub fn team_member_prefix(slug: &str) -> String {
        format!("TM#{slug}#")
    }
    pub fn team_member_sk(slug: &str, login: &str) -> String {
        format!("TM#{slug}#{login}")
    }
    pub fn org_member_sk(login: &str) -> String {
        format!("OM#{login}")
    }
    pub fn run(id: i64) -> String {
        format!("RUN#{}", num(id))
    }
    /// A workflow job lives in its run's partition (`pk` = [`run`]), so a
    /// run's jobs are one Query of the table and need no index entry.
    pub fn workflow_job_sk(id: i64) -> String {
        format!("{JOB_PREFIX}{}", num(id))
    }
    /// The sort-key prefix of the jobs in a run's partition.
    pub const JOB_PREFIX: &str = "WJ#";
    pub fn deployment(id: i64) -> String {
        format!("DEP#{}", num(id))
    }
    pub fn deployment_status_sk(id: i64) -> String {
        format!("ST#{}", num(id))
    }
    pub fn delivery(k: &DeliveryKey) -> String {
        format!("DLV#{}#{}", k.hook_id, k.delivery_id)
    }
    pub fn check(id: &str) -> String {
        format!("CHECK#{id}")
    }
    pub fn verified(target_json: &str) -> String {
        format!("VERIFIED#{target_json}")
    }
    pub fn resync_job(id: &str) -> String {
        format!("RJOB#{id}")
    }
    pub fn lock(k: &str) -> String {
        format!("LOCK#{k}")
    }
    pub fn checkpoint(job: &str) -> String {
        format!("CKPT#{job}")
    }
    /// An old name of a repository that moved: `ALIAS#{name}` / [`ONE`].
    pub fn alias(r: &RepoName) -> String {
        format!("ALIAS#{r}")
    }
    /// GSI partition (gsi1) of the aliases of one canonical name.
    pub fn aliases_of(r: &RepoName) -> String {
        format!("ALIASES#{r}")
    }
    /// The registry partition: tracked repositories and organisations.
    pub const TRACKED: &str = "TRACKED";
    pub fn tracked_repo_sk(r: &RepoName) -> String {
        format!("REPO#{r}")
    }
    pub fn tracked_org_sk(org: &str) -> String {
        format!("ORG#{org}")
    }
    /// The registry partition of webhook configurations seen.
    pub const HOOKS: &str = "HOOKS";
    /// The sort key of single-item partitions.
    pub const ONE: &str = "_";

    /// Write shards of every per-kind index partition (`RUNS`, `WJS`, `DEPS`,
    /// `DLVS`, `PRC`, `PRM`, `PRS#{state}`): each takes 1,000 writes/s, so a
    /// kind takes 16,000; reads merge the shards in key order.
    pub const SHARDS: u32 = 16;
    /// The shard `{base}#{nn}` of an item's entry, by a stable hash of the item's
    /// identity: an item stays in its shard whatever else changes.
    pub fn shard(base: &str, identity: &str) -> String {
        let h =
            identity.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
        format!("{base}#{:02}", h % u64::from(SHARDS))
    }

    // GSI partitions.
    pub const REPOS: &str = "REPOS";
    pub const REPOS_DELETED: &str = "REPOS#deleted";
    pub fn pulls_by_state(state: &str) -> String {
        format!("PRS#{state}")
    }
    pub const PULLS_CREATED: &str = "PRC";
    pub const PULLS_MERGED: &str = "PRM";
    pub const TEAMS: &str = "TEAMS";
    pub fn commits(r: &RepoName) -> String {
        format!("COMMITS#{r}")
    }
    pub fn branch_commits(r: &RepoName, branch: &str) -> String {
        format!("COMMITS#{r}#{branch}")
    }
    pub const RUNS: &str = "RUNS";
    pub fn runs_of(r: &str) -> String {
        format!("RUNS#{r}")
    }
    /// Runs of a repository that are not completed (sparse).
    pub fn unfinished_runs(r: &RepoName) -> String {
        format!("RUNS#unfinished#{r}")
    }
    pub const WORKFLOW_JOBS: &str = "WJS";
    /// Jobs of a repository that are not completed (sparse).
    pub fn unfinished_jobs(r: &RepoName) -> String {
        format!("WJS#unfinished#{r}")
    }
    /// The webhook function's unfinished runs and jobs of a repository, as
    /// the stream marks them (`unfinished.rs`).
    pub fn unfinished(r: &str) -> String {
        format!("UNFINISHED#{r}")
    }
    pub const DEPLOYMENTS: &str = "DEPS";
    pub fn deployments_of(r: &RepoName) -> String {
        format!("DEPS#{r}")
    }
    /// Ledger index entries of deliveries recorded before the listing pages
    /// (`pages.rs`): read by `last_deliveries` only, until they expire.
    pub fn deliveries_of_repo(r: &str) -> String {
        format!("DLVS#repo#{r}")
    }
    pub const CHECKS: &str = "CHECKS";
    pub const RESYNC_JOBS: &str = "RJOBS";
}

pub(super) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(super) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(super) fn b(v: bool) -> AttributeValue {
    AttributeValue::Bool(v)
}

pub(super) fn t(v: &Timestamp) -> AttributeValue {
    AttributeValue::S(ts(v))
}

pub(super) fn list(v: &[String]) -> AttributeValue {
    AttributeValue::L(v.iter().map(|x| AttributeValue::S(x.clone())).collect())
}

/// Requests per installation as a map of numbers; None when there are none
/// (the attribute is then absent).
pub(super) fn counts(v: &InstallationRequests) -> Option<AttributeValue> {
    (!v.is_empty()).then(|| AttributeValue::M(v.0.iter().map(|(k, c)| (k.clone(), n(c))).collect()))
}

/// Requests per installation as [`counts`] stored them (none when absent).
pub(super) fn counts_of(i: &Item, name: &str) -> InstallationRequests {
    match i.get(name) {
        Some(AttributeValue::M(m)) => m
            .iter()
            .filter_map(|(k, v)| match v {
                AttributeValue::N(c) => c.parse::<u64>().ok().map(|c| (k.clone(), c)),
                _ => None,
            })
            .collect(),
        _ => InstallationRequests::default(),
    }
}

pub(super) fn key_of(pk: impl Into<String>, sk: impl Into<String>) -> Item {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

/// Typed reads of an item's attributes.
pub(super) trait Attrs {
    fn str(&self, name: &str) -> Option<String>;
    fn num<T: std::str::FromStr>(&self, name: &str) -> Option<T>;
    fn flag(&self, name: &str) -> Option<bool>;
    fn strings(&self, name: &str) -> Vec<String>;

    fn req_str(&self, name: &str) -> anyhow::Result<String> {
        self.str(name).ok_or_else(|| anyhow!("item without {name}"))
    }
    fn time(&self, name: &str) -> anyhow::Result<Option<Timestamp>> {
        self.str(name).as_deref().map(parse_ts).transpose()
    }
    fn req_time(&self, name: &str) -> anyhow::Result<Timestamp> {
        self.time(name)?.ok_or_else(|| anyhow!("item without {name}"))
    }
    /// A string attribute as the domain value it was written from (a state, a name).
    fn typed<T: StoredText>(&self, name: &str) -> anyhow::Result<Option<T>> {
        self.str(name)
            .map(|v| T::from_stored(&v).ok_or_else(|| anyhow!("item with an invalid {name}: {v:?}")))
            .transpose()
    }
    fn req_typed<T: StoredText>(&self, name: &str) -> anyhow::Result<T> {
        self.typed(name)?.ok_or_else(|| anyhow!("item without {name}"))
    }
}

impl Attrs for Item {
    fn str(&self, name: &str) -> Option<String> {
        match self.get(name)? {
            AttributeValue::S(v) => Some(v.clone()),
            _ => None,
        }
    }
    fn num<T: std::str::FromStr>(&self, name: &str) -> Option<T> {
        match self.get(name)? {
            AttributeValue::N(v) => v.parse().ok(),
            _ => None,
        }
    }
    fn flag(&self, name: &str) -> Option<bool> {
        match self.get(name)? {
            AttributeValue::Bool(v) => Some(*v),
            _ => None,
        }
    }
    fn strings(&self, name: &str) -> Vec<String> {
        match self.get(name) {
            Some(AttributeValue::L(v)) => {
                v.iter().filter_map(|x| if let AttributeValue::S(s) = x { Some(s.clone()) } else { None }).collect()
            }
            _ => Vec::new(),
        }
    }
}

/// Items read back as the domain values that wrote them: one decoder per
/// entity, for the read API and for moving a repository's items alike.
pub(super) mod decode {
    use anyhow::Context as _;

    use super::{Attrs, Item};
    use crate::domain::*;

    pub fn repository(i: &Item) -> anyhow::Result<Repository> {
        Ok(Repository {
            full_name: i.req_typed("full_name")?,
            id: i.num("id"),
            default_branch: i.str("default_branch"),
            private: i.flag("private"),
            archived: i.flag("archived"),
            deleted: i.flag("deleted").unwrap_or(false),
            version: i.time("version")?,
            activity_at: i.time("last_activity_at")?,
        })
    }

    pub fn branch(i: &Item) -> anyhow::Result<Branch> {
        Ok(Branch {
            repo: i.req_typed("repo")?,
            name: i.req_str("name")?,
            head_sha: i.str("head_sha"),
            deleted: i.flag("deleted").unwrap_or(false),
            version: i.req_time("version")?,
        })
    }

    pub fn pull(i: &Item) -> anyhow::Result<PullRequest> {
        Ok(PullRequest {
            repo: i.req_typed("repo")?,
            number: i.num("number").context("pull request number")?,
            id: i.num("id"),
            title: i.req_str("title")?,
            state: i.req_typed("state")?,
            draft: i.flag("draft").unwrap_or(false),
            author: i.str("author"),
            created_at: i.req_time("created_at")?,
            updated_at: i.req_time("updated_at")?,
            closed_at: i.time("closed_at")?,
            merged_at: i.time("merged_at")?,
            additions: i.num("additions"),
            deletions: i.num("deletions"),
            changed_files: i.num("changed_files"),
            commits: i.num("commits"),
            labels: i.strings("labels"),
            requested_reviewers: i.strings("requested_reviewers"),
            requested_teams: i.strings("requested_teams"),
            base_ref: i.str("base_ref"),
            head_ref: i.str("head_ref"),
            head_sha: i.str("head_sha"),
            body: i.str("body"),
        })
    }

    /// The lists a pull request item holds: one never written was never known.
    pub fn lists_known(i: &Item) -> ListsKnown {
        ListsKnown {
            labels: i.contains_key("labels"),
            requested_reviewers: i.contains_key("requested_reviewers"),
            requested_teams: i.contains_key("requested_teams"),
        }
    }

    pub fn review(i: &Item) -> anyhow::Result<Review> {
        Ok(Review {
            repo: i.req_typed("repo")?,
            pr_number: i.num("pr_number").context("review's pull request")?,
            id: i.num("id").context("review id")?,
            author: i.str("author"),
            state: i.req_typed("state")?,
            submitted_at: i.time("submitted_at")?,
            commit_id: i.str("commit_id"),
            body: i.str("body"),
        })
    }

    pub fn review_comment(i: &Item) -> anyhow::Result<ReviewComment> {
        Ok(ReviewComment {
            repo: i.req_typed("repo")?,
            pr_number: i.num("pr_number").context("comment's pull request")?,
            id: i.num("id").context("comment id")?,
            review_id: i.num("review_id"),
            author: i.str("author"),
            created_at: i.req_time("created_at")?,
            updated_at: i.req_time("updated_at")?,
            deleted: i.flag("deleted").unwrap_or(false),
        })
    }

    pub fn membership(i: &Item) -> anyhow::Result<Membership> {
        Ok(Membership {
            login: i.req_str("login")?,
            role: i.str("role"),
            present: i.flag("present").unwrap_or(false),
            version: i.req_time("version")?,
        })
    }

    pub fn commit(i: &Item) -> anyhow::Result<Commit> {
        Ok(Commit {
            repo: i.req_typed("repo")?,
            sha: i.req_str("sha")?,
            message: i.str("message").unwrap_or_default(),
            author_login: i.str("author_login"),
            author_name: i.str("author_name"),
            committed_at: i.time("committed_at")?,
        })
    }

    pub fn workflow_run(i: &Item) -> anyhow::Result<WorkflowRun> {
        Ok(WorkflowRun {
            repo: i.req_typed("repo")?,
            id: i.num("id").context("run id")?,
            name: i.str("name"),
            workflow_id: i.num("workflow_id"),
            head_branch: i.str("head_branch"),
            head_sha: i.str("head_sha"),
            event: i.str("event"),
            status: i.req_typed("status")?,
            conclusion: i.str("conclusion"),
            run_number: i.num("run_number"),
            run_attempt: i.num("run_attempt"),
            actor: i.str("actor"),
            created_at: i.req_time("created_at")?,
            run_started_at: i.time("run_started_at")?,
            updated_at: i.req_time("updated_at")?,
        })
    }
}

/// An `UpdateItem` under construction: SET/REMOVE clauses, a condition, and
/// the attribute names and values they use (each registered on first use, as
/// DynamoDB refuses unused ones).
#[derive(Default)]
pub(super) struct Update {
    set: Vec<String>,
    remove: Vec<String>,
    add: Vec<String>,
    /// What the update does to each attribute, for the cost meter's image of
    /// the item after it (`meter.rs`).
    pub effects: Vec<(String, Effect)>,
    pub names: HashMap<String, String>,
    pub values: HashMap<String, AttributeValue>,
    condition: Option<String>,
}

impl Update {
    /// `#attr`, registered.
    pub fn name(&mut self, attr: &str) -> String {
        let k = format!("#{attr}");
        self.names.insert(k.clone(), attr.to_owned());
        k
    }

    /// `:vN`, registered.
    pub fn value(&mut self, v: AttributeValue) -> String {
        let k = format!(":v{}", self.values.len());
        self.values.insert(k.clone(), v);
        k
    }

    /// `attr = v` (the incoming value replaces the stored one).
    pub fn set(&mut self, attr: &str, v: AttributeValue) -> &mut Self {
        self.effects.push((attr.to_owned(), Effect::Set(v.clone())));
        let (a, v) = (self.name(attr), self.value(v));
        self.set.push(format!("{a} = {v}"));
        self
    }

    /// `attr = v`, or removed when the incoming value is absent.
    pub fn set_or_remove(&mut self, attr: &str, v: Option<AttributeValue>) -> &mut Self {
        match v {
            Some(v) => self.set(attr, v),
            None => {
                self.effects.push((attr.to_owned(), Effect::Remove));
                let a = self.name(attr);
                self.remove.push(a);
                self
            }
        }
    }

    /// `attr = COALESCE(v, attr)`: an absent incoming value keeps the stored one.
    pub fn coalesce(&mut self, attr: &str, v: Option<AttributeValue>) -> &mut Self {
        if let Some(v) = v {
            self.set(attr, v);
        }
        self
    }

    /// Set only when the item is created (`if_not_exists`).
    pub fn init(&mut self, attr: &str, v: AttributeValue) -> &mut Self {
        self.effects.push((attr.to_owned(), Effect::Init(v.clone())));
        let (a, v) = (self.name(attr), self.value(v));
        self.set.push(format!("{a} = if_not_exists({a}, {v})"));
        self
    }

    /// `ADD attr n` (an atomic counter; a missing attribute counts from 0).
    pub fn add(&mut self, attr: &str, by: i64) -> &mut Self {
        self.effects.push((attr.to_owned(), Effect::Add(by)));
        let (a, v) = (self.name(attr), self.value(n(by)));
        self.add.push(format!("{a} {v}"));
        self
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.remove.is_empty() && self.add.is_empty()
    }

    pub fn condition(&mut self, c: String) -> &mut Self {
        self.condition = Some(c);
        self
    }

    pub fn expression(&self) -> String {
        let mut clauses = Vec::new();
        if !self.set.is_empty() {
            clauses.push(format!("SET {}", self.set.join(", ")));
        }
        if !self.remove.is_empty() {
            clauses.push(format!("REMOVE {}", self.remove.join(", ")));
        }
        if !self.add.is_empty() {
            clauses.push(format!("ADD {}", self.add.join(", ")));
        }
        clauses.join(" ")
    }

    pub fn condition_expression(&self) -> Option<String> {
        self.condition.clone()
    }
}

/// One clause of an [`Update`], as the meter replays it on the old image.
#[derive(Debug, Clone)]
pub(super) enum Effect {
    Set(AttributeValue),
    Init(AttributeValue),
    Remove,
    Add(i64),
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn newest_first_keys_sort_newest_first_and_unknown_last() {
        let old = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
        let new = Utc.with_ymd_and_hms(2025, 6, 1, 12, 30, 0).unwrap();
        let (a, b, none) = (newest_first(Some(&new)), newest_first(Some(&old)), newest_first(None));
        assert!(a < b && b < none, "{a} {b} {none}");
    }

    #[test]
    fn update_expressions_name_every_attribute_and_value_once() {
        let mut u = Update::default();
        u.set("state", s("open")).coalesce("author", None).set_or_remove("merged_at", None).init("id", n(1));
        assert_eq!(u.expression(), "SET #state = :v0, #id = if_not_exists(#id, :v1) REMOVE #merged_at");
        assert_eq!(u.names.len(), 3);
        let mut only_remove = Update::default();
        only_remove.set_or_remove("x", None);
        assert_eq!(only_remove.expression(), "REMOVE #x");
    }

    #[test]
    fn bounded_cuts_on_a_character_boundary() {
        assert_eq!(bounded("héllo", 2), "h");
        assert_eq!(bounded("abc", 10), "abc");
    }
}
