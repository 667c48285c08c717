//! [`ReadModel`] on DynamoDB: the lists and details the read API serves.

use async_trait::async_trait;

use super::DynamoStore;
use super::codec::*;
use super::ops::{Query, Range, corrupt};
use super::store::{Take, cursor, page_cut, views};
use crate::domain::*;
use crate::ports::*;
use crate::read::*;

fn delivery_view(i: &Item) -> anyhow::Result<DeliveryView> {
    Ok(DeliveryView {
        hook_id: i.req_typed("hook_id")?,
        delivery_id: i.req_typed("delivery_id")?,
        event: i.req_typed("event")?,
        action: i.str("action"),
        repo: i.typed("repo")?,
        org: i.str("org"),
        received_at: i.req_time("received_at")?,
        status: i.req_typed("status")?,
        reason: i.str("reason"),
        changes: i.num("changes").unwrap_or(0),
        body_bytes: i.num("body_bytes").unwrap_or(0),
    })
}

impl DynamoStore {
    async fn pulls_of_state(
        &self,
        state: PrState,
        filter: &PullFilter,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Item>, StoreError> {
        let range = before.map_or(Range::All, |c| Range::Below(c.to_owned()));
        let q = Query::sharded("gsi1", key::pulls_by_state(state.as_str()), range).backward();
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

#[async_trait]
impl ReadModel for DynamoStore {
    async fn list_repos(&self, page: &PageRequest) -> Result<Page<RepoView>, StoreError> {
        // The index holds each live repository once under a key that never
        // moves (its name), so activity updates write no index entry; the
        // order, newest activity first, is made here from every live one.
        let after = cursor(page)?;
        let mut keyed = Vec::new();
        for i in self.query_all(&Query::index("gsi1", key::REPOS, Range::All)).await? {
            let activity = i.time("last_activity_at").map_err(corrupt)?;
            let order = format!("{}#{}", newest_first(activity.as_ref()), i.str("full_name").unwrap_or_default());
            if after.as_ref().is_none_or(|c| order > *c) {
                keyed.push((order, i));
            }
        }
        keyed.sort_by(|a, b| a.0.cmp(&b.0));
        let next_cursor = (keyed.len() > page.limit && page.limit > 0).then(|| encode_cursor(&keyed[page.limit - 1].0));
        let items = keyed.into_iter().take(page.limit).map(|(_, i)| i);
        let mut out = Vec::with_capacity(items.len());
        for i in items {
            let repo: RepoName = i.req_typed("full_name").map_err(corrupt)?;
            let branches = self
                .query_all(&Query::table(key::repo(&repo), Range::Prefix("BR#".into())))
                .await?
                .iter()
                .filter(|b| b.flag("deleted") != Some(true))
                .filter_map(|b| decode::branch(b).ok())
                .collect();
            out.push(RepoView {
                full_name: repo,
                default_branch: i.str("default_branch"),
                private: i.flag("private"),
                archived: i.flag("archived"),
                branches,
                last_activity_at: i.time("last_activity_at").map_err(corrupt)?,
            });
        }
        Ok(Page { items: out, next_cursor })
    }

    async fn list_pulls(&self, filter: &PullFilter, page: &PageRequest) -> Result<Page<PullRequest>, StoreError> {
        let before = cursor(page)?;
        let filter = &PullFilter { repo: self.canonical_opt(filter.repo.as_ref()).await?, ..filter.clone() };
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
        // A list carries no bodies (as on SQLite); `get_pull` does.
        let pull = |i: &Item| decode::pull(i).map(|p| PullRequest { body: None, ..p });
        Ok(Page { items: views(&items, pull)?, next_cursor })
    }

    async fn get_pull(&self, repo: &RepoName, number: u64) -> Result<Option<PullDetail>, StoreError> {
        let repo = &self.canonical(repo).await?;
        let pull_sk = key::pull_sk(number);
        let items = self.query_all(&Query::table(key::repo(repo), Range::Prefix(pull_sk.clone()))).await?;
        let Some(pull) = items.iter().find(|i| i.str("sk").as_deref() == Some(pull_sk.as_str())) else {
            return Ok(None);
        };
        let body = self.pull_body(pull).await?;
        let pull = PullRequest { body, ..decode::pull(pull).map_err(corrupt)? };
        let mut reviews = items
            .iter()
            .filter(|i| i.str("entity").as_deref() == Some("review"))
            .map(decode::review)
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
    ) -> Result<Page<Commit>, StoreError> {
        let repo = &self.canonical(repo).await?;
        let pk = branch.map_or_else(|| key::commits(repo), |b| key::branch_commits(repo, b));
        let range = cursor(page)?.map_or(Range::All, Range::Below);
        let (items, next_cursor) =
            self.page_of(Query::index("gsi1", pk, range).backward(), page.limit, |_| Take::Yes).await?;
        Ok(Page { items: views(&items, decode::commit)?, next_cursor })
    }

    async fn list_workflow_runs(
        &self,
        repo: Option<&RepoName>,
        page: &PageRequest,
    ) -> Result<Page<WorkflowRunView>, StoreError> {
        let range = cursor(page)?.map_or(Range::All, Range::Below);
        let repo = self.canonical_opt(repo).await?;
        let q = match &repo {
            Some(r) => Query::index("gsi2", key::runs_of(r.as_str()), range),
            None => Query::sharded("gsi1", key::RUNS, range),
        };
        let (items, next_cursor) = self.page_of(q.backward(), page.limit, |_| Take::Yes).await?;
        Ok(Page { items: views(&items, |i| decode::workflow_run(i).map(WorkflowRunView::from))?, next_cursor })
    }

    async fn list_deliveries(
        &self,
        filter: &DeliveryFilter,
        page: &PageRequest,
    ) -> Result<Page<DeliveryView>, StoreError> {
        // The listing pages of the repository, or of every delivery; the other filters are applied to what they list.
        let (items, next_cursor) = self.listed_deliveries(filter, page).await?;
        Ok(Page { items: views(&items, delivery_view)?, next_cursor })
    }

    /// From the counters kept on write (`counters.rs`): one BatchGetItem.
    async fn stats(&self) -> Result<StoreStats, StoreError> {
        self.counted().await
    }
}

impl DynamoStore {
    /// A pull request's body: from its body item when the pull request item
    /// names one (`body_sha`), else the item's own (written before bodies
    /// had items of their own).
    pub(super) async fn pull_body(&self, pull: &Item) -> Result<Option<String>, StoreError> {
        if pull.str("body_sha").is_none() {
            return Ok(pull.str("body"));
        }
        let (Some(pk), Some(number)) = (pull.str("pk"), pull.num::<u64>("number")) else {
            return Ok(None);
        };
        Ok(self.get(key_of(pk, key::pull_body_sk(number))).await?.and_then(|b| b.str("body")))
    }
}
