//! [`Store`] on DynamoDB: the ledger, the read API, completeness and metrics.
//! Every read is a GetItem, BatchGetItem or Query (see `shared/docs/dynamodb.md`).

use std::collections::{BTreeMap, HashMap, HashSet};

use anyhow::Context as _;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};

use super::codec::*;
use super::ops::{Query, Range, corrupt, delete_request, put_request, sdk_error};
use super::{CLAIM_LEASE, DynamoStore, LEDGER_RETENTION, VERIFIED_RETENTION};
use crate::domain::*;
use crate::domain::{CheckRun, GapKind, JobRecord, JobState, Target};
use crate::ports::*;
use crate::ports::{OrgSnapshot, RepoSnapshot};
use crate::read::*;

/// A check's gaps are kept as JSON on its item; beyond this the list is cut
/// (the item must stay under 400 KB).
const MAX_GAPS_JSON: usize = 300 * 1024;
const MAX_TEXT: usize = 4 * 1024;

/// What a page reader does with an item.
enum Take {
    Yes,
    No,
    /// Past the range (a prefix ended): stop reading.
    Stop,
}

/// The sort key a cursor carries. DynamoDB sort keys are 1 to 1024 bytes:
/// anything else was never a cursor this store returned.
fn cursor(page: &PageRequest) -> Result<Option<String>, StoreError> {
    let sk = page.cursor.as_deref().map(decode_cursor::<String>).transpose()?;
    match sk {
        Some(sk) if sk.is_empty() || sk.len() > 1024 => Err(StoreError::BadCursor),
        sk => Ok(sk),
    }
}

/// `[since, until)` as a sort-key range over `{time}#…` keys; None when empty
/// (DynamoDB refuses a BETWEEN whose bounds are reversed).
fn window(f: &MetricsFilter) -> Option<Range> {
    (f.since < f.until).then(|| Range::Between(ts(&f.since), ts(&f.until)))
}

fn epoch(t: &Timestamp) -> AttributeValue {
    n(t.timestamp())
}

fn pull_view(i: &Item) -> anyhow::Result<PullView> {
    Ok(PullView {
        repo: i.req_str("repo")?,
        number: i.num("number").context("pull request number")?,
        title: i.req_str("title")?,
        state: i.req_str("state")?,
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
    })
}

fn run_view(i: &Item) -> anyhow::Result<WorkflowRunView> {
    Ok(WorkflowRunView {
        repo: i.req_str("repo")?,
        id: i.num("id").context("run id")?,
        name: i.str("name"),
        workflow_id: i.num("workflow_id"),
        head_branch: i.str("head_branch"),
        head_sha: i.str("head_sha"),
        event: i.str("event"),
        status: i.req_str("status")?,
        conclusion: i.str("conclusion"),
        run_number: i.num("run_number"),
        run_attempt: i.num("run_attempt"),
        actor: i.str("actor"),
        created_at: i.req_time("created_at")?,
        run_started_at: i.time("run_started_at")?,
        updated_at: i.req_time("updated_at")?,
        queue_seconds: None,
        duration_seconds: None,
    }
    .with_timings())
}

fn delivery_view(i: &Item) -> anyhow::Result<DeliveryView> {
    Ok(DeliveryView {
        hook_id: i.req_str("hook_id")?,
        delivery_id: i.req_str("delivery_id")?,
        event: i.req_str("event")?,
        action: i.str("action"),
        repo: i.str("repo"),
        org: i.str("org"),
        received_at: i.req_time("received_at")?,
        status: i.req_str("status")?,
        reason: i.str("reason"),
        changes: i.num("changes").unwrap_or(0),
        body_bytes: i.num("body_bytes").unwrap_or(0),
    })
}

fn check_run(i: &Item) -> anyhow::Result<CheckRun> {
    Ok(CheckRun {
        id: i.req_str("id")?,
        started_at: i.req_time("started_at")?,
        finished_at: i.req_time("finished_at")?,
        repos_compared: i.num("repos_compared").unwrap_or(0),
        orgs_compared: i.num("orgs_compared").unwrap_or(0),
        gaps: serde_json::from_str(&i.str("gaps").unwrap_or_default()).unwrap_or_default(),
        redelivered: i.num("redelivered").unwrap_or(0),
        requests: i.num("requests").unwrap_or(0),
        dry_run: i.flag("dry_run").unwrap_or(false),
        verified: Vec::new(),
        error: i.str("error"),
    })
}

fn job_record(i: &Item) -> anyhow::Result<JobRecord> {
    let target: Target = serde_json::from_str(&i.req_str("target")?).context("stored job target")?;
    let kinds: Vec<GapKind> = serde_json::from_str(&i.req_str("kinds")?).context("stored job kinds")?;
    Ok(JobRecord {
        id: i.req_str("id")?,
        target,
        kinds,
        watermark: i.time("watermark")?,
        state: JobState::parse(&i.req_str("state")?).unwrap_or(JobState::Failed),
        created_at: i.req_time("created_at")?,
        started_at: i.time("started_at")?,
        finished_at: i.time("finished_at")?,
        written: i.num("written").unwrap_or(0),
        requests: i.num("requests").unwrap_or(0),
        error: i.str("error"),
    })
}

fn views<T>(items: &[Item], f: impl Fn(&Item) -> anyhow::Result<T>) -> Result<Vec<T>, StoreError> {
    items.iter().map(f).collect::<anyhow::Result<Vec<_>>>().map_err(corrupt)
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

impl DynamoStore {
    /// Up to `limit` items of `q` that `take` accepts, and the cursor after
    /// them: the last item's sort key, for a range bound on the next page.
    async fn page_of(
        &self,
        q: Query,
        limit: usize,
        mut take: impl FnMut(&Item) -> Take,
    ) -> Result<(Vec<Item>, Option<String>), StoreError> {
        let sk = q.sk_name();
        let q = q.page(limit + 1);
        let mut items = Vec::new();
        self.query_each(&q, |i| match take(&i) {
            Take::Yes => {
                items.push(i);
                items.len() <= limit
            }
            Take::No => true,
            Take::Stop => false,
        })
        .await?;
        Ok(page_cut(items, limit, &sk))
    }

    /// The first item of `q`, reading one.
    async fn first(&self, q: &Query) -> Result<Option<Item>, StoreError> {
        let mut first = None;
        self.query_each(&q.clone().page(1), |i| {
            first = Some(i);
            false
        })
        .await?;
        Ok(first)
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

    async fn who<'a>(&self, f: &'a MetricsFilter) -> Result<Who<'a>, StoreError> {
        let team = match &f.team {
            Some(t) => Some(self.team_logins(t).await?),
            None => None,
        };
        Ok(Who { repo: f.repo.as_ref().map(RepoName::as_str), person: f.author.as_deref(), team })
    }

    async fn register_claim(&self, c: &DeliveryClaim) -> Result<(), StoreError> {
        if let Some(repo) = &c.repo {
            // The newest delivery per repository (`last_deliveries`), kept on its registry item.
            let mut u = Update::default();
            u.set("repo", s(repo.as_str())).set("last_received_at", t(&c.received_at));
            let (a, v) = (u.name("last_received_at"), u.value(t(&c.received_at)));
            u.condition(format!("attribute_not_exists({a}) OR {a} < {v}"));
            self.update(key_of(key::TRACKED, key::tracked_repo_sk(repo)), u).await?;
        }
        if let Some(org) = &c.org {
            self.register(key::tracked_org_sk(org), &[("org", org)]).await?;
        }
        let hook = c.key.hook_id.as_str();
        if hook != HookId::unknown().as_str() {
            if let Some(org) = &c.org {
                self.register_in(key::HOOKS, format!("{hook}#ORG#{org}"), &[("hook", hook), ("org", org)]).await?;
            }
            if let Some(repo) = &c.repo {
                let attrs = [("hook", hook), ("repo", repo.as_str())];
                self.register_in(key::HOOKS, format!("{hook}#REPO#{repo}"), &attrs).await?;
            }
            if c.repo.is_none() && c.org.is_some() {
                self.register_in(key::HOOKS, format!("{hook}#ORGEVENTS"), &[("hook", hook), ("org_events", "1")])
                    .await?;
            }
        }
        Ok(())
    }

    async fn pulls_of_state(
        &self,
        state: PrState,
        filter: &PullFilter,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Item>, StoreError> {
        let range = before.map_or(Range::All, |c| Range::Below(c.to_owned()));
        let q = Query::index("gsi1", key::pulls_by_state(state.as_str()), range).backward();
        let (mut items, _) = self
            .page_of(q, limit + 1, |i| {
                let repo_ok = filter.repo.as_ref().is_none_or(|r| i.str("repo").as_deref() == Some(r.as_str()));
                let author_ok = filter.author.as_ref().is_none_or(|a| i.str("author").as_ref() == Some(a));
                if repo_ok && author_ok { Take::Yes } else { Take::No }
            })
            .await?;
        items.truncate(limit + 1);
        Ok(items)
    }
}

/// Keep `limit` items; if there were more, the cursor is the last kept item's `sk`.
fn page_cut(mut items: Vec<Item>, limit: usize, sk: &str) -> (Vec<Item>, Option<String>) {
    let next = if items.len() > limit {
        items.truncate(limit);
        items.last().and_then(|i| i.str(sk)).map(|k| encode_cursor(&k))
    } else {
        None
    };
    (items, next)
}

#[async_trait]
impl DeliveryLedger for DynamoStore {
    async fn claim_delivery(&self, claim: &DeliveryClaim) -> Result<Claim, StoreError> {
        let c = claim;
        let received = ts(&c.received_at);
        let sort = format!("{received}#{}#{}", c.key.hook_id, c.key.delivery_id);
        let mut item = key_of(key::delivery(&c.key), key::ONE);
        for (k, v) in [
            ("hook_id", Some(c.key.hook_id.to_string())),
            ("delivery_id", Some(c.key.delivery_id.to_string())),
            ("event", Some(c.event.to_string())),
            ("action", c.action.clone()),
            ("repo", c.repo.as_ref().map(RepoName::to_string)),
            ("org", c.org.clone()),
            ("received_at", Some(received.clone())),
            ("status", Some("pending".to_owned())),
            ("gsi1pk", Some(key::DELIVERIES.to_owned())),
            ("gsi1sk", Some(sort.clone())),
            ("gsi2pk", c.repo.as_ref().map(|r| key::deliveries_of_repo(r.as_str()))),
            ("gsi2sk", c.repo.as_ref().map(|_| sort.clone())),
            ("gsi3pk", Some(key::deliveries_by_status("pending"))),
            ("gsi3sk", Some(sort.clone())),
        ] {
            if let Some(v) = v {
                item.insert(k.to_owned(), s(v));
            }
        }
        item.insert("changes".into(), n(0));
        item.insert("body_bytes".into(), n(c.body_bytes));
        item.insert(super::TTL_ATTRIBUTE.into(), epoch(&(c.received_at + LEDGER_RETENTION)));
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#pk) OR (#status = :pending AND #received_at < :cutoff)")
            .expression_attribute_names("#pk", "pk")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#received_at", "received_at")
            .expression_attribute_values(":pending", s("pending"))
            .expression_attribute_values(":cutoff", t(&(c.received_at - CLAIM_LEASE)))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => {}
            Err(e) => {
                let Some(aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(failed)) =
                    e.as_service_error()
                else {
                    return Err(sdk_error("claiming a delivery")(e));
                };
                let old = match failed.item() {
                    Some(old) => Some(old.clone()),
                    None => self.get(key_of(key::delivery(&c.key), key::ONE)).await?,
                };
                let status = old.and_then(|o| o.str("status")).and_then(|s| DeliveryStatus::parse(&s));
                return Ok(Claim::Duplicate(status.unwrap_or(DeliveryStatus::Pending)));
            }
        }
        if let Err(e) = self.register_claim(c).await {
            // Nothing may stay claimed that the caller was told failed.
            let _ = self.release_delivery(&c.key).await;
            return Err(e);
        }
        Ok(Claim::Claimed)
    }

    async fn release_delivery(&self, key: &DeliveryKey) -> Result<(), StoreError> {
        let mut c = Update::default();
        let (a, v) = (c.name("status"), c.value(s("pending")));
        c.condition(format!("{a} = {v}"));
        self.delete(key_of(key::delivery(key), key::ONE), Some(c)).await.map(drop)
    }

    /// Entity writes first, each an idempotent LWW update, then the ledger
    /// entry. A crash in between leaves the delivery pending; its redelivery
    /// (after the lease) applies the same changes again, which LWW makes a
    /// no-op for everything already written: exactly-once in effect.
    async fn complete_delivery(
        &self,
        key: &DeliveryKey,
        changes: &[Change],
        outcome: &DeliveryOutcome,
    ) -> Result<ApplyReport, StoreError> {
        let report = self.apply_all(changes).await?;
        // The status index's sort key was written with the claim; only its partition moves.
        let mut u = Update::default();
        u.set("status", s(outcome.status.as_str()))
            .set_or_remove("reason", outcome.reason.as_deref().map(|r| s(bounded(r, MAX_TEXT))))
            .set("changes", n(report.applied))
            .set("gsi3pk", s(key::deliveries_by_status(outcome.status.as_str())));
        let pk = u.name("pk");
        u.condition(format!("attribute_exists({pk})"));
        self.update(key_of(key::delivery(key), key::ONE), u).await?;
        Ok(report)
    }
}

#[async_trait]
impl ChangeSink for DynamoStore {
    async fn apply_changes(&self, changes: &[Change]) -> Result<ApplyReport, StoreError> {
        self.apply_all(changes).await
    }

    /// The one Scan: replay drops every entity item (marked by `entity`), a
    /// rare offline operation; the ledger, checks, jobs and registries stay.
    async fn reset_entities(&self) -> Result<(), StoreError> {
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("attribute_exists(#e)")
                .projection_expression("#pk, #sk")
                .expression_attribute_names("#e", "entity")
                .expression_attribute_names("#pk", "pk")
                .expression_attribute_names("#sk", "sk")
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(sdk_error("listing entities to reset"))?;
            let deletes = out.items.unwrap_or_default().into_iter().map(delete_request).collect::<Result<_, _>>()?;
            self.batch_write(deletes).await?;
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(()),
            }
        }
    }
}

#[async_trait]
impl ReadModel for DynamoStore {
    async fn list_repos(&self, page: &PageRequest) -> Result<Page<RepoView>, StoreError> {
        let range = cursor(page)?.map_or(Range::All, Range::Above);
        let (items, next_cursor) =
            self.page_of(Query::index("gsi1", key::REPOS, range), page.limit, |_| Take::Yes).await?;
        let mut out = Vec::with_capacity(items.len());
        for i in items {
            let full_name = i.req_str("full_name").map_err(corrupt)?;
            let repo = RepoName::parse(&full_name).context("stored repository name").map_err(corrupt)?;
            let branches = self
                .query_all(&Query::table(key::repo(&repo), Range::Prefix("BR#".into())))
                .await?
                .iter()
                .filter(|b| b.flag("deleted") != Some(true))
                .filter_map(|b| Some(BranchView { name: b.str("name")?, head_sha: b.str("head_sha") }))
                .collect();
            out.push(RepoView {
                full_name,
                default_branch: i.str("default_branch"),
                private: i.flag("private"),
                archived: i.flag("archived"),
                branches,
                last_activity_at: i.time("last_activity_at").map_err(corrupt)?,
            });
        }
        Ok(Page { items: out, next_cursor })
    }

    async fn list_pulls(&self, filter: &PullFilter, page: &PageRequest) -> Result<Page<PullView>, StoreError> {
        let before = cursor(page)?;
        let states = match filter.state {
            Some(s) => vec![s],
            None => vec![PrState::Open, PrState::Closed, PrState::Merged],
        };
        // One newest-first stream per state, merged: each holds at most limit + 1.
        let mut items = Vec::new();
        for state in states {
            items.extend(self.pulls_of_state(state, filter, before.as_deref(), page.limit).await?);
        }
        items.sort_by_key(|i| std::cmp::Reverse(i.str("gsi1sk")));
        items.truncate(page.limit + 1);
        let (items, next_cursor) = page_cut(items, page.limit, "gsi1sk");
        Ok(Page { items: views(&items, pull_view)?, next_cursor })
    }

    async fn get_pull(&self, repo: &RepoName, number: u64) -> Result<Option<PullDetail>, StoreError> {
        let pull_sk = key::pull_sk(number);
        let items = self.query_all(&Query::table(key::repo(repo), Range::Prefix(pull_sk.clone()))).await?;
        let Some(pull) = items.iter().find(|i| i.str("sk").as_deref() == Some(pull_sk.as_str())) else {
            return Ok(None);
        };
        let pull = pull_view(pull).map_err(corrupt)?;
        let mut reviews = items
            .iter()
            .filter(|i| i.str("entity").as_deref() == Some("review"))
            .map(|r| {
                Ok(ReviewView {
                    id: r.num("id").context("review id")?,
                    author: r.str("author"),
                    state: r.req_str("state")?,
                    submitted_at: r.time("submitted_at")?,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()
            .map_err(corrupt)?;
        reviews.sort_by(|a, b| {
            (a.submitted_at.map(|t| ts(&t)).unwrap_or_default(), a.id)
                .cmp(&(b.submitted_at.map(|t| ts(&t)).unwrap_or_default(), b.id))
        });
        Ok(Some(PullDetail { pull, reviews }))
    }

    async fn list_teams(&self, org: Option<&str>, page: &PageRequest) -> Result<Page<TeamView>, StoreError> {
        let prefix = org.map(|o| format!("{o}#"));
        let range = match (cursor(page)?, &prefix) {
            (Some(c), _) => Range::Above(c),
            (None, Some(p)) => Range::Prefix(p.clone()),
            (None, None) => Range::All,
        };
        let (items, next_cursor) = self
            .page_of(Query::index("gsi1", key::TEAMS, range), page.limit, |i| match &prefix {
                Some(p) if !i.str("gsi1sk").is_some_and(|k| k.starts_with(p.as_str())) => Take::Stop,
                _ => Take::Yes,
            })
            .await?;
        let mut out = Vec::with_capacity(items.len());
        for i in items {
            let (org, slug) = (i.req_str("org").map_err(corrupt)?, i.req_str("slug").map_err(corrupt)?);
            let members = self
                .query_all(&Query::table(key::org(&org), Range::Prefix(key::team_member_prefix(&slug))))
                .await?
                .iter()
                .filter(|m| m.flag("present") == Some(true))
                .filter_map(|m| m.str("login"))
                .collect();
            out.push(TeamView {
                name: i.str("name").unwrap_or_default(),
                description: i.str("description"),
                privacy: i.str("privacy"),
                parent: i.str("parent_slug"),
                members,
                org,
                slug,
            });
        }
        Ok(Page { items: out, next_cursor })
    }

    async fn list_commits(
        &self,
        repo: &RepoName,
        branch: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<CommitView>, StoreError> {
        let pk = branch.map_or_else(|| key::commits(repo), |b| key::branch_commits(repo, b));
        let range = cursor(page)?.map_or(Range::All, Range::Below);
        let (items, next_cursor) =
            self.page_of(Query::index("gsi1", pk, range).backward(), page.limit, |_| Take::Yes).await?;
        let items = views(&items, |i| {
            Ok(CommitView {
                repo: i.req_str("repo")?,
                sha: i.req_str("sha")?,
                message: i.str("message").unwrap_or_default(),
                author_login: i.str("author_login"),
                author_name: i.str("author_name"),
                committed_at: i.time("committed_at")?,
            })
        })?;
        Ok(Page { items, next_cursor })
    }

    async fn list_workflow_runs(
        &self,
        repo: Option<&RepoName>,
        page: &PageRequest,
    ) -> Result<Page<WorkflowRunView>, StoreError> {
        let range = cursor(page)?.map_or(Range::All, Range::Below);
        let q = match repo {
            Some(r) => Query::index("gsi2", key::runs_of(r.as_str()), range),
            None => Query::index("gsi1", key::RUNS, range),
        };
        let (items, next_cursor) = self.page_of(q.backward(), page.limit, |_| Take::Yes).await?;
        Ok(Page { items: views(&items, run_view)?, next_cursor })
    }

    async fn list_deliveries(
        &self,
        filter: &DeliveryFilter,
        page: &PageRequest,
    ) -> Result<Page<DeliveryView>, StoreError> {
        let range = cursor(page)?.map_or(Range::All, Range::Below);
        // The most selective index; the other filters are applied to what it reads.
        let q = match (&filter.repo, filter.status) {
            (Some(r), _) => Query::index("gsi2", key::deliveries_of_repo(r.as_str()), range),
            (None, Some(s)) => Query::index("gsi3", key::deliveries_by_status(s.as_str()), range),
            (None, None) => Query::index("gsi1", key::DELIVERIES, range),
        };
        let (items, next_cursor) = self
            .page_of(q.backward(), page.limit, |i| {
                let status_ok = filter.status.is_none_or(|s| i.str("status").as_deref() == Some(s.as_str()));
                let event_ok = filter.event.as_ref().is_none_or(|e| i.str("event").as_deref() == Some(e.as_str()));
                if status_ok && event_ok { Take::Yes } else { Take::No }
            })
            .await?;
        Ok(Page { items: views(&items, delivery_view)?, next_cursor })
    }

    async fn stats(&self) -> Result<StoreStats, StoreError> {
        let mut stats = StoreStats::default();
        for status in [DeliveryStatus::Pending, DeliveryStatus::Stored, DeliveryStatus::Ignored, DeliveryStatus::Failed]
        {
            let count = self.count("gsi3", &key::deliveries_by_status(status.as_str())).await?;
            if count > 0 {
                stats.deliveries.insert(status.as_str().to_owned(), count);
            }
        }
        if stats.deliveries.contains_key("ignored") {
            let q = Query::index("gsi3", key::deliveries_by_status("ignored"), Range::All);
            for i in self.query_all(&q).await? {
                *stats.ignored_events.entry(i.str("event").unwrap_or_default()).or_default() += 1;
            }
        }
        stats.repositories = self.count("gsi1", key::REPOS).await?;
        for state in [PrState::Open, PrState::Closed, PrState::Merged] {
            stats.pull_requests += self.count("gsi1", &key::pulls_by_state(state.as_str())).await?;
        }
        stats.teams = self.count("gsi1", key::TEAMS).await?;
        stats.workflow_runs = self.count("gsi1", key::RUNS).await?;
        let newest = self.first(&Query::index("gsi1", key::DELIVERIES, Range::All).backward()).await?;
        stats.last_delivery_at = match newest {
            Some(i) => i.time("received_at").map_err(corrupt)?,
            None => None,
        };
        Ok(stats)
    }
}

#[async_trait]
impl CompletenessStore for DynamoStore {
    async fn tracked(&self) -> Result<Tracked, StoreError> {
        let deleted: HashSet<String> = self
            .query_all(&Query::index("gsi1", key::REPOS_DELETED, Range::All))
            .await?
            .iter()
            .filter_map(|i| i.str("full_name"))
            .collect();
        let items = self.query_all(&Query::table(key::TRACKED, Range::All)).await?;
        let mut tracked = Tracked::default();
        for i in items {
            if let Some(r) = i.str("repo") {
                if !deleted.contains(&r)
                    && let Ok(r) = RepoName::parse(&r)
                {
                    tracked.repos.push(r);
                }
            } else if let Some(o) = i.str("org") {
                tracked.orgs.push(o);
            }
        }
        Ok(tracked)
    }

    async fn repo_summaries(&self, repos: &[RepoName]) -> Result<Vec<RepoSnapshot>, StoreError> {
        let mut out = Vec::with_capacity(repos.len());
        for repo in repos {
            let items = self.query_all(&Query::table(key::repo(repo), Range::All)).await?;
            let mut snap = RepoSnapshot {
                repo: repo.clone(),
                open: 0,
                closed: 0,
                merged: 0,
                newest_pr_updated_at: None,
                branches: Vec::new(),
                branches_truncated: false,
                default_branch: None,
            };
            for i in &items {
                match i.str("entity").as_deref() {
                    Some("repository") => snap.default_branch = i.str("default_branch"),
                    Some("branch") if i.flag("deleted") != Some(true) => {
                        snap.branches.push((i.str("name").unwrap_or_default(), i.str("head_sha").unwrap_or_default()));
                    }
                    Some("pull_request") => {
                        match i.str("state").as_deref() {
                            Some("open") => snap.open += 1,
                            Some("closed") => snap.closed += 1,
                            Some("merged") => snap.merged += 1,
                            _ => {}
                        }
                        let at = i.time("updated_at").map_err(corrupt)?;
                        snap.newest_pr_updated_at = snap.newest_pr_updated_at.max(at);
                    }
                    _ => {}
                }
            }
            out.push(snap);
        }
        Ok(out)
    }

    async fn org_summaries(&self, orgs: &[String]) -> Result<Vec<OrgSnapshot>, StoreError> {
        let mut out = Vec::with_capacity(orgs.len());
        for org in orgs {
            let teams = self.team_rosters(org).await?.into_iter().map(|(slug, m)| (slug, m.len() as u64)).collect();
            out.push(OrgSnapshot { org: org.clone(), teams });
        }
        Ok(out)
    }

    async fn team_rosters(&self, org: &str) -> Result<Vec<(String, Vec<String>)>, StoreError> {
        let items = self.query_all(&Query::table(key::org(org), Range::All)).await?;
        let mut rosters: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for i in items.iter().filter(|i| i.str("entity").as_deref() == Some("team")) {
            if i.flag("deleted") != Some(true)
                && let Some(slug) = i.str("slug")
            {
                rosters.insert(slug, Vec::new());
            }
        }
        for i in items.iter().filter(|i| i.str("entity").as_deref() == Some("team_member")) {
            if i.flag("present") == Some(true)
                && let (Some(slug), Some(login)) = (i.str("team_slug"), i.str("login"))
                && let Some(members) = rosters.get_mut(&slug)
            {
                members.push(login);
            }
        }
        Ok(rosters.into_iter().collect())
    }

    async fn known_deliveries(&self, keys: &[DeliveryKey]) -> Result<Vec<bool>, StoreError> {
        let wanted: Vec<Item> = keys.iter().map(|k| key_of(key::delivery(k), key::ONE)).collect();
        let known: HashSet<String> = self
            .batch_get(wanted)
            .await?
            .iter()
            .filter(|i| i.str("status").as_deref() != Some("pending"))
            .filter_map(|i| i.str("pk"))
            .collect();
        Ok(keys.iter().map(|k| known.contains(&key::delivery(k))).collect())
    }

    async fn delivery_hooks(&self) -> Result<Vec<HookSeen>, StoreError> {
        let items = self.query_all(&Query::table(key::HOOKS, Range::All)).await?;
        let mut hooks: BTreeMap<String, (Option<String>, Option<String>, bool)> = BTreeMap::new();
        for i in items {
            let Some(hook) = i.str("hook") else { continue };
            let seen = hooks.entry(hook).or_default();
            seen.0 = seen.0.take().max(i.str("org"));
            seen.1 = seen.1.take().max(i.str("repo"));
            seen.2 |= i.str("org_events").is_some();
        }
        Ok(hooks
            .into_iter()
            .filter_map(|(hook, (org, repo, org_events))| {
                Some(HookSeen {
                    hook_id: HookId::parse(&hook).ok()?,
                    org,
                    repo: repo.and_then(|r| RepoName::parse(&r).ok()),
                    org_events,
                })
            })
            .collect())
    }

    async fn record_check(&self, run: &CheckRun) -> Result<(), StoreError> {
        let mut gaps = run.gaps.clone();
        let mut gaps_json = serde_json::to_string(&gaps).context("serialising gaps").map_err(StoreError::Internal)?;
        while gaps_json.len() > MAX_GAPS_JSON && !gaps.is_empty() {
            gaps.truncate(gaps.len() * 9 / 10);
            gaps_json = serde_json::to_string(&gaps).context("serialising gaps").map_err(StoreError::Internal)?;
        }
        if gaps.len() < run.gaps.len() {
            tracing::warn!(check = %run.id, kept = gaps.len(), found = run.gaps.len(), "check gaps cut to fit one item");
        }
        let started = ts(&run.started_at);
        let mut item = key_of(key::check(&run.id), key::ONE);
        item.extend([
            ("id".to_owned(), s(&run.id)),
            ("started_at".to_owned(), s(&started)),
            ("finished_at".to_owned(), t(&run.finished_at)),
            ("repos_compared".to_owned(), n(run.repos_compared)),
            ("orgs_compared".to_owned(), n(run.orgs_compared)),
            ("gaps".to_owned(), s(gaps_json)),
            ("redelivered".to_owned(), n(run.redelivered)),
            ("requests".to_owned(), n(run.requests)),
            ("dry_run".to_owned(), b(run.dry_run)),
            ("gsi1pk".to_owned(), s(key::CHECKS)),
            ("gsi1sk".to_owned(), s(format!("{started}#{}", run.id))),
        ]);
        if let Some(e) = &run.error {
            item.insert("error".into(), s(bounded(e, MAX_TEXT)));
        }
        let mut writes = vec![put_request(item)?];
        if !run.dry_run {
            // One mark per target (BatchWriteItem refuses a key twice in a request).
            let mut marked = HashSet::new();
            for target in run.verified.iter().filter(|t| marked.insert(*t)) {
                let json =
                    serde_json::to_string(target).context("serialising a target").map_err(StoreError::Internal)?;
                let mut mark = key_of(key::verified(&json), format!("{started}#{}", run.id));
                mark.insert("started_at".into(), s(&started));
                mark.insert(super::TTL_ATTRIBUTE.into(), epoch(&(run.started_at + VERIFIED_RETENTION)));
                writes.push(put_request(mark)?);
            }
        }
        self.batch_write(writes).await
    }

    async fn verified_at(&self, target: &Target) -> Result<Option<Timestamp>, StoreError> {
        let json = serde_json::to_string(target).context("serialising a target").map_err(StoreError::Internal)?;
        match self.first(&Query::table(key::verified(&json), Range::All).backward()).await? {
            Some(i) => i.time("started_at").map_err(corrupt),
            None => Ok(None),
        }
    }

    async fn list_checks(&self, page: &PageRequest) -> Result<Page<CheckRun>, StoreError> {
        let range = cursor(page)?.map_or(Range::All, Range::Below);
        let q = Query::index("gsi1", key::CHECKS, range).backward();
        let (items, next_cursor) = self.page_of(q, page.limit, |_| Take::Yes).await?;
        Ok(Page { items: views(&items, check_run)?, next_cursor })
    }
}

#[async_trait]
impl JobStore for DynamoStore {
    async fn save_job(&self, job: &JobRecord) -> Result<(), StoreError> {
        let target =
            serde_json::to_string(&job.target).context("serialising a target").map_err(StoreError::Internal)?;
        let kinds = serde_json::to_string(&job.kinds).context("serialising kinds").map_err(StoreError::Internal)?;
        let mut u = Update::default();
        u.init("id", s(&job.id)).init("target", s(target)).init("kinds", s(kinds));
        if let Some(w) = &job.watermark {
            u.init("watermark", t(w));
        }
        u.init("created_at", t(&job.created_at)).init("gsi1pk", s(key::RESYNC_JOBS));
        u.init("gsi1sk", s(format!("{}#{}", ts(&job.created_at), job.id)));
        u.set("state", s(job.state.as_str())).set_or_remove("started_at", job.started_at.as_ref().map(t));
        u.set_or_remove("finished_at", job.finished_at.as_ref().map(t));
        u.set("written", n(job.written)).set("requests", n(job.requests));
        u.set_or_remove("error", job.error.as_deref().map(|e| s(bounded(e, MAX_TEXT))));
        self.update(key_of(key::resync_job(&job.id), key::ONE), u).await.map(drop)
    }

    async fn list_jobs(&self, page: &PageRequest) -> Result<Page<JobRecord>, StoreError> {
        let range = cursor(page)?.map_or(Range::All, Range::Below);
        let q = Query::index("gsi1", key::RESYNC_JOBS, range).backward();
        let (items, next_cursor) = self.page_of(q, page.limit, |_| Take::Yes).await?;
        Ok(Page { items: views(&items, job_record)?, next_cursor })
    }

    async fn get_job(&self, id: &str) -> Result<Option<JobRecord>, StoreError> {
        match self.get(key_of(key::resync_job(id), key::ONE)).await? {
            Some(i) => job_record(&i).map(Some).map_err(corrupt),
            None => Ok(None),
        }
    }

    async fn checkpoint(&self, job_id: &str) -> Result<Option<String>, StoreError> {
        Ok(self.get(key_of(key::checkpoint(job_id), key::ONE)).await?.and_then(|i| i.str("cursor")))
    }

    async fn save_checkpoint(&self, job_id: &str, cursor: Option<&str>, at: Timestamp) -> Result<(), StoreError> {
        let k = key_of(key::checkpoint(job_id), key::ONE);
        match cursor {
            Some(c) => {
                let mut u = Update::default();
                u.set("cursor", s(c)).set("updated_at", t(&at));
                self.update(k, u).await.map(drop)
            }
            None => self.delete(k, None).await.map(drop),
        }
    }
}

#[async_trait]
impl Locks for DynamoStore {
    async fn try_lock(
        &self,
        key: &str,
        owner: &str,
        now: Timestamp,
        ttl: chrono::TimeDelta,
    ) -> Result<bool, StoreError> {
        let until = now + ttl;
        let mut u = Update::default();
        u.set("owner", s(owner)).set("until", t(&until));
        // Expired locks are also dropped by TTL (lazily); `until` is what counts.
        u.set(super::TTL_ATTRIBUTE, epoch(&(until + chrono::TimeDelta::days(1))));
        let (pk, o, ov, at, nv) = (u.name("pk"), u.name("owner"), u.value(s(owner)), u.name("until"), u.value(t(&now)));
        u.condition(format!("attribute_not_exists({pk}) OR {o} = {ov} OR {at} < {nv}"));
        self.update(key_of(key::lock(key), key::ONE), u).await
    }

    async fn release_lock(&self, key: &str, owner: &str) -> Result<(), StoreError> {
        let mut c = Update::default();
        let (o, v) = (c.name("owner"), c.value(s(owner)));
        c.condition(format!("{o} = {v}"));
        self.delete(key_of(key::lock(key), key::ONE), Some(c)).await.map(drop)
    }
}

#[async_trait]
impl MetricRows for DynamoStore {
    async fn metric_pulls(&self, f: &MetricsFilter) -> Result<Vec<PullMetricRow>, StoreError> {
        let who = self.who(f).await?;
        let (since, until) = (ts(&f.since), ts(&f.until));
        let (mut merged, mut created) = (Vec::new(), Vec::new());
        if let Some(window) = window(f) {
            merged = self.query_all(&Query::index("gsi3", key::PULLS_MERGED, window.clone())).await?;
            created = self.query_all(&Query::index("gsi2", key::PULLS_CREATED, window)).await?;
        }
        let open = self.query_all(&Query::index("gsi1", key::pulls_by_state("open"), Range::All)).await?;
        let in_window = |at: Option<String>| at.is_some_and(|a| a >= since && a < until);
        let rows = merged
            .iter()
            .chain(created.iter().filter(|i| !in_window(i.str("merged_at"))))
            .chain(open.iter().filter(|i| i.str("created_at").is_some_and(|c| c < since)))
            .filter(|i| who.admits(i.str("repo").as_deref(), i.str("author").as_deref()));
        rows.map(|i| {
            Ok(PullMetricRow {
                repo: i.req_str("repo")?,
                number: i.num("number").context("pull request number")?,
                author: i.str("author"),
                state: i.req_str("state")?,
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

    async fn metric_runs(&self, f: &MetricsFilter) -> Result<Vec<RunMetricRow>, StoreError> {
        let who = self.who(f).await?;
        let Some(window) = window(f) else { return Ok(Vec::new()) };
        let items = self.query_all(&Query::index("gsi1", key::RUNS, window)).await?;
        items
            .iter()
            .filter(|i| who.admits(i.str("repo").as_deref(), i.str("actor").as_deref()))
            .filter(|i| f.workflow.as_ref().is_none_or(|w| i.str("name").as_ref() == Some(w)))
            .filter(|i| f.branch.as_ref().is_none_or(|b| i.str("head_branch").as_ref() == Some(b)))
            .map(|i| {
                Ok(RunMetricRow {
                    repo: i.req_str("repo")?,
                    workflow: i.str("name"),
                    branch: i.str("head_branch"),
                    actor: i.str("actor"),
                    status: i.req_str("status")?,
                    conclusion: i.str("conclusion"),
                    created_at: i.req_time("created_at")?,
                    run_started_at: i.time("run_started_at")?,
                    updated_at: i.req_time("updated_at")?,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()
            .map_err(corrupt)
    }

    async fn metric_jobs(&self, f: &MetricsFilter) -> Result<Vec<JobMetricRow>, StoreError> {
        let who = self.who(f).await?;
        let Some(window) = window(f) else { return Ok(Vec::new()) };
        let items = self.query_all(&Query::index("gsi1", key::WORKFLOW_JOBS, window)).await?;
        // The runs' actors, one batch read.
        let run_ids: HashSet<i64> = items.iter().filter_map(|i| i.num("run_id")).collect();
        let keys = run_ids.iter().map(|id| key_of(key::run(*id), key::ONE)).collect();
        let actors: HashMap<i64, String> =
            self.batch_get(keys).await?.iter().filter_map(|r| Some((r.num("id")?, r.str("actor")?))).collect();
        items
            .iter()
            .map(|i| (i, i.num::<i64>("run_id").and_then(|r| actors.get(&r).cloned())))
            .filter(|(i, actor)| who.admits(i.str("repo").as_deref(), actor.as_deref()))
            .filter(|(i, _)| f.workflow.as_ref().is_none_or(|w| i.str("workflow_name").as_ref() == Some(w)))
            .filter(|(i, _)| f.branch.as_ref().is_none_or(|b| i.str("head_branch").as_ref() == Some(b)))
            .map(|(i, actor)| {
                Ok(JobMetricRow {
                    repo: i.req_str("repo")?,
                    workflow: i.str("workflow_name"),
                    branch: i.str("head_branch"),
                    actor,
                    status: i.req_str("status")?,
                    conclusion: i.str("conclusion"),
                    labels: i.strings("labels"),
                    os: i.str("os"),
                    created_at: i.time("created_at")?,
                    started_at: i.time("started_at")?,
                    completed_at: i.time("completed_at")?,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()
            .map_err(corrupt)
    }

    async fn metric_deployments(&self, f: &MetricsFilter) -> Result<Vec<DeploymentMetricRow>, StoreError> {
        let q = Query::index("gsi1", key::DEPLOYMENTS, Range::AtLeast(ts(&f.since)));
        let items = self.query_all(&q).await?;
        items
            .iter()
            .filter(|i| f.repo.as_ref().is_none_or(|r| i.str("repo").as_deref() == Some(r.as_str())))
            .filter(|i| f.environment.as_ref().is_none_or(|e| i.str("environment").as_ref() == Some(e)))
            .map(|i| {
                Ok(DeploymentMetricRow {
                    id: i.num("id").context("deployment id")?,
                    repo: i.req_str("repo")?,
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

    async fn last_deliveries(&self) -> Result<Vec<RepoDeliveryRow>, StoreError> {
        let items = self.query_all(&Query::table(key::TRACKED, Range::Prefix("REPO#".into()))).await?;
        items
            .iter()
            .filter_map(|i| Some((i.str("repo")?, i.time("last_received_at").transpose()?)))
            .map(|(repo, at)| Ok(RepoDeliveryRow { repo, last_received_at: at? }))
            .collect::<anyhow::Result<Vec<_>>>()
            .map_err(corrupt)
    }
}
