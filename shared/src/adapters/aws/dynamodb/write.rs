//! Entity writes: each [`Change`] is one conditional `UpdateItem` whose
//! condition is its last-writer-wins rule (the same rules as the SQLite
//! adapter's `ON CONFLICT … WHERE`), so a failed condition means "older,
//! skipped". Commits (immutable) are read and written in batches.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

use aws_sdk_dynamodb::types::AttributeValue;

use super::DynamoStore;
use super::codec::*;
use super::counters;
use super::moves::Held;
use super::ops::{Task, backoff, corrupt, put_request, run_bounded};
use crate::domain::*;
use crate::ports::StoreError;

/// Bounds that keep every item far below DynamoDB's 400 KB.
const MAX_TITLE: usize = 1024;
const MAX_MESSAGE: usize = 16 * 1024;
const MAX_TEXT: usize = 4 * 1024;

/// Optimistic retries of a read-modify-write (repositories, derived facts)
/// under contention, with jittered backoff: each round one writer wins.
pub(super) const RMW_ATTEMPTS: u32 = 20;

/// Items written at once by one `apply_changes` (a resync page, a delivery).
const CONCURRENCY: usize = 16;

/// Derived facts a write touched, refreshed once per call.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Refresh {
    ReviewFacts(RepoName, u64),
    Outcome(i64),
}

/// The item a change writes (its `pk`, `sk`): changes to one item apply in order.
fn item_key(change: &Change) -> (String, String) {
    match change {
        Change::Repository(r) => (key::repo(&r.full_name), key::REPO_SK.to_owned()),
        Change::RepositoryMoved { to, .. } => (key::repo(to), key::REPO_SK.to_owned()),
        Change::Branch(b) => (key::repo(&b.repo), key::branch_sk(&b.name)),
        Change::PullRequest { pull: p, .. } => (key::repo(&p.repo), key::pull_sk(p.number)),
        Change::Review(r) => (key::repo(&r.repo), key::review_sk(r.pr_number, r.id)),
        Change::ReviewComment(c) => (key::repo(&c.repo), key::review_comment_sk(c.pr_number, c.id)),
        Change::Team(t) => (key::org(&t.org), key::team_sk(&t.slug)),
        Change::TeamMember { org, team_slug, member } => (key::org(org), key::team_member_sk(team_slug, &member.login)),
        Change::OrgMember { org, member } => (key::org(org), key::org_member_sk(&member.login)),
        Change::Collaborator { repo, member } => (key::repo(repo), key::collaborator_sk(&member.login)),
        Change::Commit { commit, .. } => (key::repo(&commit.repo), key::commit_sk(&commit.sha)),
        Change::WorkflowRun(r) => (key::run(r.id), key::ONE.to_owned()),
        Change::WorkflowJob(j) => (key::run(j.run_id), key::workflow_job_sk(j.id)),
        Change::Deployment(d) => (key::deployment(d.id), key::ONE.to_owned()),
        Change::DeploymentStatus(s) => (key::deployment(s.deployment_id), key::deployment_status_sk(s.id)),
    }
}

/// What the pull request item keeps of its body: a SHA-256 prefix (hex) that says whether it changed.
pub(super) fn body_sha(body: &str) -> String {
    use sha2::Digest as _;
    hex::encode(&sha2::Sha256::digest(body.as_bytes())[..16])
}

fn opt_s(v: &Option<String>) -> Option<AttributeValue> {
    v.as_ref().map(|x| s(x.clone()))
}
fn opt_n(v: Option<i64>) -> Option<AttributeValue> {
    v.map(n)
}
fn opt_t(v: &Option<Timestamp>) -> Option<AttributeValue> {
    v.as_ref().map(t)
}

/// `attribute_not_exists(pk) OR stored <= incoming` on `attr`.
fn not_older(u: &mut Update, attr: &str, incoming: &Timestamp) {
    let (pk, a, v) = (u.name("pk"), u.name(attr), u.value(t(incoming)));
    u.condition(format!("attribute_not_exists({pk}) OR {a} <= {v}"));
}

/// `attribute_not_exists(pk) OR stored < incoming OR (stored = incoming AND rank <= incoming rank)`.
fn newer_or_ranked(u: &mut Update, attr: &str, incoming: &Timestamp, rank: i64) {
    let (pk, a, v, r, rv) = (u.name("pk"), u.name(attr), u.value(t(incoming)), u.name("rank"), u.value(n(rank)));
    u.condition(format!("attribute_not_exists({pk}) OR {a} < {v} OR ({a} = {v} AND {r} <= {rv})"));
}

impl DynamoStore {
    /// Apply changes under the LWW rules. Commits go in batches; the other
    /// changes are grouped by the item they write: in order within an item
    /// (so the report counts as a sequential apply would), concurrently
    /// across items (LWW makes their relative order irrelevant). Derived
    /// facts are refreshed once per pull request or deployment, at the end.
    ///
    /// Moves go first, one after another; then every other change naming an
    /// old name of a repository is written under its current name
    /// ([`canonicalise`](Self::canonicalise): the batch's repository items,
    /// then the alias items of the names those do not settle).
    pub(super) async fn apply_all(&self, changes: &[Change]) -> Result<ApplyReport, StoreError> {
        let (moves, others): (Vec<&Change>, Vec<&Change>) =
            changes.iter().partition(|c| matches!(c, Change::RepositoryMoved { .. }));
        let mut report = ApplyReport::default();
        for m in moves {
            if let Change::RepositoryMoved { id, from, to, at } = m {
                if self.apply_move(*id, from, to, *at).await? {
                    report.applied += 1;
                } else {
                    report.skipped += 1;
                }
            }
        }
        let (others, held) = self.canonicalise(&others).await?;
        let rest = self.apply_plain(&others, &held).await?;
        report.applied += rest.applied;
        report.skipped += rest.skipped;
        Ok(report)
    }

    /// [`apply_all`](Self::apply_all) of changes already under their current
    /// names; `held`: repository items already read (each used once, by the
    /// first write of its item).
    pub(super) async fn apply_plain(&self, changes: &[Change], held: &Held) -> Result<ApplyReport, StoreError> {
        let (commits, others): (Vec<&Change>, Vec<&Change>) =
            changes.iter().partition(|c| matches!(c, Change::Commit { .. }));
        let mut report = ApplyReport::default();
        if !commits.is_empty() {
            let applied = self.apply_commits(&commits).await?;
            report.applied += applied;
            report.skipped += commits.len() as u32 - applied;
        }
        let mut groups: Vec<Vec<&Change>> = Vec::new();
        let mut by_item: HashMap<(String, String), usize> = HashMap::new();
        for c in others {
            match by_item.entry(item_key(c)) {
                Entry::Occupied(e) => groups[*e.get()].push(c),
                Entry::Vacant(e) => {
                    e.insert(groups.len());
                    groups.push(vec![c]);
                }
            }
        }
        let writes = groups
            .into_iter()
            .map(|group| {
                Box::pin(async move {
                    let mut done = Vec::with_capacity(group.len());
                    for c in group {
                        done.push(self.apply_one(c, held).await?);
                    }
                    Ok(done)
                }) as Task<'_, Result<Vec<(bool, Option<Refresh>)>, StoreError>>
            })
            .collect();
        let mut refresh = Vec::new();
        let mut seen = HashSet::new();
        let mut first_error = None;
        for result in run_bounded(writes, CONCURRENCY).await {
            match result {
                Ok(done) => {
                    for (applied, r) in done {
                        if applied {
                            report.applied += 1;
                        } else {
                            report.skipped += 1;
                        }
                        if let Some(r) = r
                            && seen.insert(r.clone())
                        {
                            refresh.push(r);
                        }
                    }
                }
                Err(e) => first_error = first_error.or(Some(e)),
            }
        }
        // Refresh what the writes that did land touched, even if another failed.
        let refreshes =
            refresh.into_iter().map(|r| Box::pin(self.refresh(r)) as Task<'_, Result<(), StoreError>>).collect();
        for result in run_bounded(refreshes, CONCURRENCY).await {
            if let Err(e) = result {
                first_error = first_error.or(Some(e));
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }

    async fn refresh(&self, r: Refresh) -> Result<(), StoreError> {
        match r {
            Refresh::ReviewFacts(repo, number) => self.refresh_review_facts(&repo, number).await,
            Refresh::Outcome(deployment) => self.refresh_outcome(deployment).await,
        }
    }

    /// Apply one change; whether it applied, and what derived facts it touched.
    async fn apply_one(&self, change: &Change, held: &Held) -> Result<(bool, Option<Refresh>), StoreError> {
        let applied = match change {
            Change::Repository(r) => {
                let read = held.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&r.full_name);
                self.apply_repository(r, read).await?
            }
            // `apply_all` applies moves before anything else; none reaches here.
            Change::RepositoryMoved { .. } => {
                return Err(StoreError::Internal(anyhow::anyhow!("a repository move outside apply_all")));
            }
            Change::Branch(b) => {
                let mut u = Update::default();
                u.set("entity", s("branch")).set("repo", s(b.repo.as_str())).set("name", s(&b.name));
                u.set("deleted", self::b(b.deleted)).set("version", t(&b.version));
                if b.deleted {
                    u.set_or_remove("head_sha", None);
                } else {
                    u.coalesce("head_sha", opt_s(&b.head_sha));
                }
                not_older(&mut u, "version", &b.version);
                self.update(key_of(key::repo(&b.repo), key::branch_sk(&b.name)), u).await?
            }
            Change::PullRequest { pull: p, known } => {
                let applied = self.apply_pull(p, *known).await?;
                return Ok((applied, applied.then(|| Refresh::ReviewFacts(p.repo.clone(), p.number))));
            }
            Change::Review(r) => {
                let mut u = Update::default();
                u.set("entity", s("review")).set("repo", s(r.repo.as_str())).set("pr_number", n(r.pr_number));
                u.set("id", n(r.id)).set("state", s(r.state.as_str())).set("rank", n(r.state.rank()));
                u.coalesce("author", opt_s(&r.author)).coalesce("submitted_at", opt_t(&r.submitted_at));
                u.coalesce("commit_id", opt_s(&r.commit_id)).coalesce("body", opt_s(&r.body));
                let (pk, at) = (u.name("pk"), u.name("submitted_at"));
                let mut cond = format!("attribute_not_exists({pk}) OR attribute_not_exists({at})");
                if let Some(sub) = &r.submitted_at {
                    let (v, rk, rv) = (u.value(t(sub)), u.name("rank"), u.value(n(r.state.rank())));
                    cond.push_str(&format!(" OR {at} < {v} OR ({at} = {v} AND {rk} <= {rv})"));
                }
                u.condition(cond);
                let applied = self.update(key_of(key::repo(&r.repo), key::review_sk(r.pr_number, r.id)), u).await?;
                return Ok((applied, applied.then(|| Refresh::ReviewFacts(r.repo.clone(), r.pr_number))));
            }
            Change::ReviewComment(c) => {
                let mut u = Update::default();
                u.set("entity", s("review_comment")).set("repo", s(c.repo.as_str())).set("pr_number", n(c.pr_number));
                u.set("id", n(c.id)).init("created_at", t(&c.created_at)).set("updated_at", t(&c.updated_at));
                u.coalesce("review_id", opt_n(c.review_id)).set_or_remove("author", opt_s(&c.author));
                u.set("deleted", b(c.deleted));
                not_older(&mut u, "updated_at", &c.updated_at);
                self.update(key_of(key::repo(&c.repo), key::review_comment_sk(c.pr_number, c.id)), u).await?
            }
            Change::Team(tm) => {
                let mut u = Update::default();
                u.set("entity", s("team")).set("org", s(&tm.org)).set("slug", s(&tm.slug));
                u.coalesce("id", opt_n(tm.id)).set("name", s(bounded(&tm.name, MAX_TEXT)));
                u.set_or_remove("description", tm.description.as_deref().map(|d| s(bounded(d, MAX_TEXT))));
                u.set_or_remove("privacy", opt_s(&tm.privacy)).set_or_remove("parent_slug", opt_s(&tm.parent_slug));
                u.set("deleted", b(tm.deleted)).set("version", t(&tm.version));
                if tm.deleted {
                    u.set_or_remove("gsi1pk", None).set_or_remove("gsi1sk", None);
                } else {
                    u.set("gsi1pk", s(key::TEAMS)).set("gsi1sk", s(format!("{}#{}", tm.org, tm.slug)));
                }
                not_older(&mut u, "version", &tm.version);
                self.register(key::tracked_org_sk(&tm.org), &[("org", &tm.org)]).await?;
                match self.update_item(key_of(key::org(&tm.org), key::team_sk(&tm.slug)), u).await? {
                    Some(old) => {
                        let was = old.is_some_and(|o| o.flag("deleted") != Some(true));
                        self.bump(&[(counters::TEAMS.into(), i64::from(!tm.deleted) - i64::from(was))], None).await?;
                        true
                    }
                    None => false,
                }
            }
            Change::TeamMember { org, team_slug, member: m } => {
                let mut u = Update::default();
                u.set("entity", s("team_member")).set("org", s(org)).set("team_slug", s(team_slug));
                u.set("login", s(&m.login)).set("present", b(m.present)).set("version", t(&m.version));
                not_older(&mut u, "version", &m.version);
                self.update(key_of(key::org(org), key::team_member_sk(team_slug, &m.login)), u).await?
            }
            Change::OrgMember { org, member: m } => {
                let mut u = Update::default();
                u.set("entity", s("org_member")).set("org", s(org)).set("login", s(&m.login));
                u.coalesce("role", opt_s(&m.role)).set("present", b(m.present)).set("version", t(&m.version));
                not_older(&mut u, "version", &m.version);
                self.register(key::tracked_org_sk(org), &[("org", org)]).await?;
                self.update(key_of(key::org(org), key::org_member_sk(&m.login)), u).await?
            }
            Change::Collaborator { repo, member: m } => {
                let mut u = Update::default();
                u.set("entity", s("collaborator")).set("repo", s(repo.as_str())).set("login", s(&m.login));
                u.coalesce("role", opt_s(&m.role)).set("present", b(m.present)).set("version", t(&m.version));
                not_older(&mut u, "version", &m.version);
                self.update(key_of(key::repo(repo), key::collaborator_sk(&m.login)), u).await?
            }
            Change::Commit { .. } => self.apply_commits(&[change]).await? > 0,
            Change::WorkflowRun(r) => {
                let mut u = Update::default();
                let sort = format!("{}#{}", ts(&r.created_at), num(r.id));
                u.set("entity", s("workflow_run")).set("repo", s(r.repo.as_str())).set("id", n(r.id));
                u.set_or_remove("name", opt_s(&r.name)).set_or_remove("workflow_id", opt_n(r.workflow_id));
                u.set_or_remove("head_branch", opt_s(&r.head_branch)).set_or_remove("head_sha", opt_s(&r.head_sha));
                u.set_or_remove("event", opt_s(&r.event)).set("status", s(r.status.as_str()));
                u.set_or_remove("conclusion", opt_s(&r.conclusion)).set_or_remove("run_number", opt_n(r.run_number));
                u.set_or_remove("run_attempt", opt_n(r.run_attempt)).coalesce("actor", opt_s(&r.actor));
                u.set("created_at", t(&r.created_at)).coalesce("run_started_at", opt_t(&r.run_started_at));
                u.set("updated_at", t(&r.updated_at)).set("rank", n(r.status.rank()));
                u.set("gsi1pk", s(key::shard(key::RUNS, &num(r.id)))).set("gsi1sk", s(sort.clone()));
                u.set("gsi2pk", s(key::runs_of(r.repo.as_str()))).set("gsi2sk", s(sort.clone()));
                // Sparse: only runs not completed, for where unfinished runs begin (the
                // webhook function's are the stream's to mark, `unfinished.rs`).
                if r.status == RunStatus::Completed {
                    u.set_or_remove("gsi3pk", None).set_or_remove("gsi3sk", None);
                } else if !self.stream_derived {
                    u.set("gsi3pk", s(key::unfinished_runs(&r.repo))).set("gsi3sk", s(sort));
                }
                newer_or_ranked(&mut u, "updated_at", &r.updated_at, r.status.rank());
                self.counted_update(key_of(key::run(r.id), key::ONE), u, counters::RUNS).await?
            }
            Change::WorkflowJob(j) => {
                let mut u = Update::default();
                u.set("entity", s("workflow_job")).set("repo", s(j.repo.as_str())).set("id", n(j.id));
                u.set("run_id", n(j.run_id)).set("name", s(bounded(&j.name, MAX_TEXT)));
                u.coalesce("workflow_name", opt_s(&j.workflow_name)).coalesce("head_branch", opt_s(&j.head_branch));
                u.set("status", s(j.status.as_str())).set_or_remove("conclusion", opt_s(&j.conclusion));
                u.set("labels", list(&j.labels)).coalesce("runner_name", opt_s(&j.runner_name));
                u.coalesce("runner_group", opt_s(&j.runner_group)).coalesce("os", opt_s(&j.os));
                u.coalesce("created_at", opt_t(&j.created_at)).coalesce("started_at", opt_t(&j.started_at));
                u.coalesce("completed_at", opt_t(&j.completed_at));
                u.set_or_remove("version", opt_t(&j.version())).set("rank", n(j.status.rank()));
                // Listed by created_at; a job without one (GitHub's payloads before jobs
                // carried it) by its started_at until a write names its created_at. The
                // webhook function's jobs are found through their run, but those the
                // stream sees created apart from it (`job_index.rs`).
                match (&j.created_at, &j.started_at) {
                    (Some(_), _) if self.stream_derived => {}
                    (Some(c), _) => {
                        u.set("gsi1pk", s(key::shard(key::WORKFLOW_JOBS, &num(j.id))))
                            .set("gsi1sk", s(format!("{}#{}", ts(c), num(j.id))));
                    }
                    (None, Some(started)) => {
                        u.init("gsi1pk", s(key::shard(key::WORKFLOW_JOBS, &num(j.id))))
                            .init("gsi1sk", s(format!("{}#{}", ts(started), num(j.id))));
                    }
                    (None, None) => {}
                }
                // Sparse: only jobs not completed, for where unfinished runs begin (as runs).
                if j.status == RunStatus::Completed {
                    u.set_or_remove("gsi3pk", None).set_or_remove("gsi3sk", None);
                } else if !self.stream_derived {
                    u.set("gsi3pk", s(key::unfinished_jobs(&j.repo)));
                    u.set("gsi3sk", s(format!("{}#{}", num(j.run_id), num(j.id))));
                }
                let (pk, ver) = (u.name("pk"), u.name("version"));
                let mut cond = format!("attribute_not_exists({pk}) OR attribute_not_exists({ver})");
                if let Some(v) = j.version() {
                    let (vv, rk, rv) = (u.value(t(&v)), u.name("rank"), u.value(n(j.status.rank())));
                    cond.push_str(&format!(" OR {ver} < {vv} OR ({ver} = {vv} AND {rk} <= {rv})"));
                }
                u.condition(cond);
                self.update(key_of(key::run(j.run_id), key::workflow_job_sk(j.id)), u).await?
            }
            Change::Deployment(d) => {
                let mut u = Update::default();
                u.set("entity", s("deployment")).init("repo", s(d.repo.as_str())).set("id", n(d.id));
                u.set_or_remove("sha", opt_s(&d.sha)).set_or_remove("git_ref", opt_s(&d.git_ref));
                u.set_or_remove("environment", opt_s(&d.environment)).set_or_remove("task", opt_s(&d.task));
                u.coalesce("creator", opt_s(&d.creator)).init("created_at", t(&d.created_at));
                u.set("updated_at", t(&d.updated_at)).init("gsi1pk", s(key::shard(key::DEPLOYMENTS, &num(d.id))));
                u.init("gsi1sk", s(format!("{}#{}", ts(&d.created_at), num(d.id))));
                u.init("gsi2pk", s(key::deployments_of(&d.repo)));
                u.init("gsi2sk", s(format!("{}#{}", ts(&d.created_at), num(d.id))));
                not_older(&mut u, "updated_at", &d.updated_at);
                let applied = self.update(key_of(key::deployment(d.id), key::ONE), u).await?;
                return Ok((applied, applied.then_some(Refresh::Outcome(d.id))));
            }
            Change::DeploymentStatus(st) => {
                let mut u = Update::default();
                u.set("entity", s("deployment_status")).init("repo", s(st.repo.as_str())).set("id", n(st.id));
                u.init("deployment_id", n(st.deployment_id)).set("state", s(&st.state));
                u.set_or_remove("environment", opt_s(&st.environment)).init("created_at", t(&st.created_at));
                if let Some(c) = &st.creator {
                    u.init("creator", s(c));
                }
                u.set("updated_at", t(&st.updated_at));
                not_older(&mut u, "updated_at", &st.updated_at);
                let applied =
                    self.update(key_of(key::deployment(st.deployment_id), key::deployment_status_sk(st.id)), u).await?;
                return Ok((applied, applied.then_some(Refresh::Outcome(st.deployment_id))));
            }
        };
        Ok((applied, None))
    }

    async fn apply_pull(&self, p: &PullRequest, known: ListsKnown) -> Result<bool, StoreError> {
        let mut u = Update::default();
        let tail = format!("{}#{}", p.repo, num(p.number as i64));
        u.set("entity", s("pull_request")).set("repo", s(p.repo.as_str())).set("number", n(p.number));
        u.coalesce("id", opt_n(p.id)).set("title", s(bounded(&p.title, MAX_TITLE)));
        u.set("state", s(p.state.as_str())).set("draft", b(p.draft)).coalesce("author", opt_s(&p.author));
        u.set("created_at", t(&p.created_at)).set("updated_at", t(&p.updated_at));
        u.set_or_remove("closed_at", opt_t(&p.closed_at)).set_or_remove("merged_at", opt_t(&p.merged_at));
        u.coalesce("additions", opt_n(p.additions)).coalesce("deletions", opt_n(p.deletions));
        u.coalesce("changed_files", opt_n(p.changed_files)).coalesce("commits", opt_n(p.commits));
        let [labels, reviewers, teams] = known.of(p).map(|l| l.map(|l| list(&l[..l.len().min(100)])));
        u.coalesce("labels", labels).coalesce("requested_reviewers", reviewers).coalesce("requested_teams", teams);
        u.coalesce("base_ref", opt_s(&p.base_ref)).coalesce("head_ref", opt_s(&p.head_ref));
        u.coalesce("head_sha", opt_s(&p.head_sha)).set("rank", n(p.state.rank()));
        // The body is an item of its own, written only when it changed (its
        // hash, `body_sha`, is on the pull request item), so the pull request
        // item stays small and a body costs its KBs once per edit.
        if let Some(body) = &p.body {
            let sha = body_sha(body);
            let current = self.get(key_of(key::repo(&p.repo), key::pull_sk(p.number))).await?;
            if current.as_ref().and_then(|i| i.str("body_sha")).as_deref() != Some(sha.as_str()) {
                // Before the pull request item: a crash between the two leaves the old
                // hash, so a redelivery writes the body again.
                self.apply_pull_body(p, body).await?;
            }
            u.set("body_sha", s(sha)).set_or_remove("body", None);
        }
        // The review facts of a pull request without reviews, so that its refresh finds nothing to write.
        u.init("changes_requested", n(0));
        u.set("gsi1pk", s(key::shard(&key::pulls_by_state(p.state.as_str()), &tail)));
        // Listed newest created first: the entry moves only when the state does.
        u.set("gsi1sk", s(format!("{}#{tail}", ts(&p.created_at))));
        u.set("gsi2pk", s(key::shard(key::PULLS_CREATED, &tail)))
            .set("gsi2sk", s(format!("{}#{tail}", ts(&p.created_at))));
        match &p.merged_at {
            Some(m) => {
                u.set("gsi3pk", s(key::shard(key::PULLS_MERGED, &tail))).set("gsi3sk", s(format!("{}#{tail}", ts(m))))
            }
            None => u.set_or_remove("gsi3pk", None).set_or_remove("gsi3sk", None),
        };
        newer_or_ranked(&mut u, "updated_at", &p.updated_at, p.state.rank());
        self.counted_update(key_of(key::repo(&p.repo), key::pull_sk(p.number)), u, counters::PULLS).await
    }

    /// A pull request's body item, under the pull request's own
    /// last-writer-wins rule (its `updated_at`, then its state's rank).
    async fn apply_pull_body(&self, p: &PullRequest, body: &str) -> Result<bool, StoreError> {
        let mut u = Update::default();
        u.set("entity", s("pull_body")).set("repo", s(p.repo.as_str())).set("number", n(p.number));
        u.set("body", s(body)).set("updated_at", t(&p.updated_at)).set("rank", n(p.state.rank()));
        newer_or_ranked(&mut u, "updated_at", &p.updated_at, p.state.rank());
        self.update(key_of(key::repo(&p.repo), key::pull_body_sk(p.number)), u).await
    }

    /// A conditional write that counts one more `counter` when it created the
    /// item. The item keeps the creating call's token (`created_by`), so that
    /// a write whose answer was lost but which landed (the SDK's retry then
    /// finds the item, or every attempt "failed") is still counted, once.
    async fn counted_update(&self, key: Item, mut u: Update, counter: &str) -> Result<bool, StoreError> {
        let token = format!("{:016x}", fastrand::u64(..));
        u.init("created_by", s(&token));
        let ours = |item: &Option<Item>| item.as_ref().and_then(|i| i.str("created_by")).is_some_and(|t| t == token);
        let (written, created) = match self.update_item_or_current(key.clone(), u).await {
            Ok(Ok(None)) => (true, true),
            Ok(Ok(old)) => (true, ours(&old)),
            Ok(Err(current)) => (false, ours(&current)),
            Err(e) if e.is_retryable() && ours(&self.get(key).await.unwrap_or_default()) => (true, true),
            Err(e) => return Err(e),
        };
        if created {
            self.bump(&[(counter.to_owned(), 1)], None).await?;
        }
        Ok(written || created)
    }

    /// Repositories mix rules per field (version-guarded fields, the newest
    /// activity time, a never-forgotten id), so they are read, merged as on
    /// SQLite, and written back conditioned on the revision read. `read`: the
    /// item as a read of this call found it (None: to be read), used for the
    /// first attempt (a write meanwhile fails its condition and reads again).
    pub(super) async fn apply_repository(
        &self,
        r: &Repository,
        read: Option<Option<Item>>,
    ) -> Result<bool, StoreError> {
        let mut read = read;
        self.register(key::tracked_repo_sk(&r.full_name), &[("repo", r.full_name.as_str())]).await?;
        let k = key_of(key::repo(&r.full_name), key::REPO_SK);
        for attempt in 0..RMW_ATTEMPTS {
            if attempt > 0 {
                backoff(attempt.min(4)).await;
            }
            let old = match read.take() {
                Some(item) => item,
                None => self.get(k.clone()).await?,
            };
            let mut u = Update::default();
            let (mut id, mut branch, mut private, mut archived) =
                (r.id, r.default_branch.clone(), r.private, r.archived);
            let (mut deleted, mut version, mut activity) = (r.deleted, r.version, r.activity_at);
            let was_live = old.as_ref().is_some_and(|o| o.flag("deleted") != Some(true));
            let mut won = false;
            match &old {
                None => {
                    let pk = u.name("pk");
                    u.condition(format!("attribute_not_exists({pk})"));
                    u.set("rev", n(1));
                }
                Some(old) => {
                    let old_version = old.time("version").map_err(corrupt)?;
                    let wins = match (old_version, r.version) {
                        (None, _) => true,
                        (Some(o), Some(v)) => v >= o,
                        (Some(_), None) => false,
                    };
                    id = id.or(old.num("id"));
                    won = wins;
                    if wins {
                        branch = branch.or(old.str("default_branch"));
                        private = private.or(old.flag("private"));
                        archived = archived.or(old.flag("archived"));
                        version = version.or(old_version);
                    } else {
                        branch = old.str("default_branch");
                        private = old.flag("private");
                        archived = old.flag("archived");
                        deleted = old.flag("deleted").unwrap_or(false);
                        version = old_version;
                    }
                    let old_activity = old.time("last_activity_at").map_err(corrupt)?;
                    activity = match (old_activity, r.activity_at) {
                        // The webhook's store leaves a known repository's activity to the table's
                        // stream (`pages.rs`): most deliveries then write nothing here.
                        (Some(o), _) if self.stream_derived => Some(o),
                        (Some(o), Some(a)) if a > o => Some(a),
                        (Some(o), _) => Some(o),
                        (None, a) => a,
                    };
                    let rev: i64 = old.num("rev").unwrap_or(0);
                    let (a, v) = (u.name("rev"), u.value(n(rev)));
                    u.condition(format!("{a} = {v}"));
                    u.set("rev", n(rev + 1));
                }
            }
            let merged = Repository {
                full_name: r.full_name.clone(),
                id,
                default_branch: branch.clone(),
                private,
                archived,
                deleted,
                version,
                activity_at: None,
            };
            u.set("entity", s("repository")).set("full_name", s(r.full_name.as_str()));
            u.set_or_remove("id", opt_n(id)).set_or_remove("default_branch", branch.map(s));
            u.set_or_remove("private", private.map(b)).set_or_remove("archived", archived.map(b));
            u.set("deleted", b(deleted)).set_or_remove("version", opt_t(&version));
            u.set_or_remove("last_activity_at", opt_t(&activity));
            u.set("gsi1pk", s(if deleted { key::REPOS_DELETED } else { key::REPOS }));
            // A key that does not move with activity (`list_repos` orders in memory).
            u.set("gsi1sk", s(r.full_name.as_str()));
            // Nothing new (a delivery older than what is stored): no write at all.
            if let Some(old) = &old
                && super::meter::after(&k, Some(old), &u.effects)
                    .iter()
                    .all(|(a, v)| a == "rev" || old.get(a) == Some(v))
                && old.len() == super::meter::after(&k, Some(old), &u.effects).len()
            {
                return Ok(true);
            }
            // Only a newer `version` (GitHub moves `updated_at` often): the webhook's store leaves
            // the write to the table's stream, carried on the ledger item (`versions.rs`).
            if let Some(old) = &old
                && self.stream_derived
                && won
                && merged.version.is_some()
                && {
                    let after = super::meter::after(&k, Some(old), &u.effects);
                    after.len() == old.len()
                        && after.iter().all(|(a, v)| a == "rev" || a == "version" || old.get(a) == Some(v))
                }
                && super::versions::defer(&merged)
            {
                return Ok(true);
            }
            if self.update(k.clone(), u).await? {
                let delta = i64::from(!deleted) - i64::from(was_live);
                self.bump(&[(counters::REPOS.into(), delta)], None).await?;
                return Ok(true);
            }
        }
        Err(StoreError::Unavailable(anyhow::anyhow!("repository {} kept changing under a write", r.full_name)))
    }

    /// Insert-once commits: one batch read of which exist, one batch write of the rest.
    async fn apply_commits(&self, changes: &[&Change]) -> Result<u32, StoreError> {
        let mut wanted = Vec::new();
        for c in changes {
            if let Change::Commit { commit, branch, pushed_at } = *c {
                let pk = key::repo(&commit.repo);
                let sort = format!("{}#{}", commit.committed_at.as_ref().map(ts).unwrap_or_default(), commit.sha);
                let mut item = key_of(&pk, key::commit_sk(&commit.sha));
                item.insert("entity".into(), s("commit"));
                item.insert("repo".into(), s(commit.repo.as_str()));
                item.insert("sha".into(), s(&commit.sha));
                item.insert("message".into(), s(bounded(&commit.message, MAX_MESSAGE)));
                for (k, v) in [("author_name", &commit.author_name), ("author_login", &commit.author_login)] {
                    if let Some(v) = v {
                        item.insert(k.into(), s(v));
                    }
                }
                if let Some(at) = &commit.committed_at {
                    item.insert("committed_at".into(), t(at));
                }
                item.insert("gsi1sk".into(), s(sort));
                let mut of_branch = None;
                if let Some(branch) = branch {
                    let mut bc = item.clone();
                    bc.insert("sk".into(), s(key::branch_commit_sk(branch, &commit.sha)));
                    bc.insert("entity".into(), s("branch_commit"));
                    bc.insert("branch".into(), s(branch));
                    if let Some(p) = pushed_at {
                        bc.insert("pushed_at".into(), t(p));
                    }
                    bc.insert("gsi1pk".into(), s(key::branch_commits(&commit.repo, branch)));
                    of_branch = Some(bc);
                }
                item.insert("gsi1pk".into(), s(key::commits(&commit.repo)));
                wanted.push((item, of_branch));
            }
        }
        let key_str = |i: &Item| (i.str("pk").unwrap_or_default(), i.str("sk").unwrap_or_default());
        let mut keys = Vec::new();
        let mut seen = HashSet::new();
        for (c, bc) in &wanted {
            for i in std::iter::once(c).chain(bc.as_ref()) {
                let (pk, sk) = key_str(i);
                if seen.insert((pk.clone(), sk.clone())) {
                    keys.push(key_of(pk, sk));
                }
            }
        }
        let existing: HashSet<(String, String)> = self.batch_get(keys).await?.iter().map(key_str).collect();
        let mut written = HashSet::new();
        let mut puts = Vec::new();
        let mut applied = 0;
        for (c, bc) in wanted {
            let mut new = false;
            for i in std::iter::once(c).chain(bc) {
                let k = key_str(&i);
                if !existing.contains(&k) && written.insert(k) {
                    new = true;
                    puts.push(put_request(i)?);
                }
            }
            applied += u32::from(new);
        }
        self.batch_write(puts).await?;
        Ok(applied)
    }

    /// Write a registry item (`TRACKED`/`HOOKS` partitions) once per process.
    pub(super) async fn register(&self, sk: String, attrs: &[(&str, &str)]) -> Result<(), StoreError> {
        self.register_in(key::TRACKED, sk, attrs).await
    }

    pub(super) async fn register_in(&self, pk: &str, sk: String, attrs: &[(&str, &str)]) -> Result<(), StoreError> {
        let cache_key = format!("{pk}/{sk}");
        if self.registered.lock().map(|r| r.contains(&cache_key)).unwrap_or(false) {
            return Ok(());
        }
        let mut u = Update::default();
        for (k, v) in attrs {
            u.set(k, s(*v));
        }
        self.update(key_of(pk, sk), u).await?;
        if let Ok(mut r) = self.registered.lock() {
            r.insert(cache_key);
        }
        Ok(())
    }
}
