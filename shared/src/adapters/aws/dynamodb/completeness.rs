//! [`CompletenessStore`] on DynamoDB: the store's side of the integrity check
//! and the record of its runs.

use std::collections::{BTreeMap, HashSet};

use anyhow::Context as _;
use async_trait::async_trait;

use super::codec::*;
use super::ops::{Query, Range, Task, corrupt, put_request, run_bounded};
use super::store::{MAX_TEXT, Take, cursor, epoch, views};
use super::{DynamoStore, VERIFIED_RETENTION};
use crate::domain::*;
use crate::ports::*;

/// A check's gaps are kept as JSON on its item; beyond this the list is cut
/// (the item must stay under 400 KB).
const MAX_GAPS_JSON: usize = 300 * 1024;
/// The same for the search comparison's drift list.
const MAX_SEARCH_JSON: usize = 64 * 1024;

/// Repositories summarised at once.
const SUMMARY_CONCURRENCY: usize = 8;

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
        requests_by_installation: counts_of(i, "requests_by_installation"),
        dry_run: i.flag("dry_run").unwrap_or(false),
        verified: Vec::new(),
        error: i.str("error"),
        search: i.str("search").and_then(|j| serde_json::from_str(&j).ok()),
    })
}

/// A check's search comparison as JSON, its drift list cut to fit beside the gaps.
fn search_json(search: &SearchComparison) -> Result<String, StoreError> {
    let mut search = search.clone();
    loop {
        let json =
            serde_json::to_string(&search).context("serialising a search comparison").map_err(StoreError::Internal)?;
        if json.len() <= MAX_SEARCH_JSON || search.drift.is_empty() {
            return Ok(json);
        }
        search.drift.truncate(search.drift.len() * 9 / 10);
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
        let mut names = Vec::new();
        for i in items {
            if let Some(r) = i.str("repo") {
                if let Ok(r) = RepoName::parse(&r) {
                    names.push(r);
                }
            } else if let Some(o) = i.str("org") {
                tracked.orgs.push(o);
            }
        }
        // Old names of moved repositories (still registered by the deliveries
        // that arrived with them) count as the current names, once each.
        let current = self.canonical_names(&names).await?;
        let mut seen = HashSet::new();
        for name in names {
            let name = current.get(&name).cloned().unwrap_or(name);
            if !deleted.contains(name.as_str()) && seen.insert(name.clone()) {
                tracked.repos.push(name);
            }
        }
        tracked.repos.sort();
        Ok(tracked)
    }

    /// Repositories are read [`SUMMARY_CONCURRENCY`] at a time (see `summaries.rs`).
    async fn repo_summaries(&self, repos: &[SnapshotRequest]) -> Result<Vec<RepoSnapshot>, StoreError> {
        let reads = repos.iter().map(|req| Box::pin(self.repo_snapshot(req)) as Task<'_, _>).collect();
        run_bounded(reads, SUMMARY_CONCURRENCY).await.into_iter().collect()
    }

    async fn org_summaries(&self, orgs: &[String]) -> Result<Vec<OrgSnapshot>, StoreError> {
        let mut out = Vec::with_capacity(orgs.len());
        for org in orgs {
            let teams = self.team_rosters(org).await?.into_iter().map(|(slug, m)| (slug, m.len() as u64)).collect();
            out.push(OrgSnapshot {
                org: org.clone(),
                teams,
                teams_withheld: false,
                repos_total: None,
                recent_repos: Vec::new(),
            });
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
        if let Some(search) = &run.search {
            item.insert("search".into(), s(search_json(search)?));
        }
        if let Some(c) = counts(&run.requests_by_installation) {
            item.insert("requests_by_installation".into(), c);
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

    async fn stored_runs(
        &self,
        repo: &RepoName,
        since: Option<Timestamp>,
        ids: &[i64],
        unfinished_from: Option<Timestamp>,
    ) -> Result<StoredRuns, StoreError> {
        self.runs_of(repo, &since, ids, unfinished_from).await
    }

    async fn list_checks(&self, page: &PageRequest) -> Result<Page<CheckRun>, StoreError> {
        let range = cursor(page)?.map_or(Range::All, Range::Below);
        let q = Query::index("gsi1", key::CHECKS, range).backward();
        let (items, next_cursor) = self.page_of(q, page.limit, |_| Take::Yes).await?;
        Ok(Page { items: views(&items, check_run)?, next_cursor })
    }
}
