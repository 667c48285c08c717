//! Repository writes that only move `version`, left to the table's stream.
//!
//! GitHub's payloads carry the repository's `updated_at` (the item's
//! `version`, which guards its metadata fields). When a webhook delivery's
//! repository is known and its merged metadata equals what is stored except
//! for a newer `version`, the webhook function's store does not write the
//! item: it puts the delivery's repository metadata on its marked ledger item
//! (`repo_meta`), and the ledger-stream function writes the newest of a batch
//! per repository together with the newest activity its deliveries report
//! (`pages.rs`): one UpdateItem per repository a batch names
//! ([`DynamoStore::write_repository_news`]).
//!
//! Order-proof: the stream's write sets the delivery's metadata fields with
//! its `version`, conditioned on the stored `version` being older. An older
//! delivery with other metadata that lands between the webhook's skip and the
//! stream's write (it wins against the older stored `version`) is overwritten
//! by the stream's write, so the item converges to the newest delivery's
//! metadata, as on SQLite; until then (the batching window) it may show that
//! older metadata. A newer write already there makes the stream's write a no-op.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;

use super::DynamoStore;
use super::codec::*;
use super::counters;
use crate::domain::*;
use crate::ports::StoreError;

/// The ledger item attribute of a deferred repository write.
pub(super) const REPO_META: &str = "repo_meta";

tokio::task_local! {
    /// Repository writes a webhook delivery deferred to the stream, by name.
    static DEFERRED: RefCell<BTreeMap<RepoName, Repository>>;
}

/// Run `f` (a delivery's writes) collecting the repository writes it deferred.
pub(super) async fn deferring<T>(f: impl std::future::Future<Output = T>) -> (T, BTreeMap<RepoName, Repository>) {
    DEFERRED
        .scope(RefCell::new(BTreeMap::new()), async {
            let out = f.await;
            (out, DEFERRED.with(|d| d.take()))
        })
        .await
}

/// Defer `r` (only within [`deferring`]); false outside it (write it now).
pub(super) fn defer(r: &Repository) -> bool {
    DEFERRED
        .try_with(|d| {
            let mut d = d.borrow_mut();
            match d.get(&r.full_name) {
                Some(had) if had.version >= r.version => {}
                _ => {
                    d.insert(r.full_name.clone(), r.clone());
                }
            }
        })
        .is_ok()
}

/// The `repo_meta` value of a deferred repository write.
pub(super) fn meta_value(r: &Repository) -> Option<AttributeValue> {
    let version = r.version.as_ref()?;
    let mut m = std::collections::HashMap::new();
    m.insert("version".to_owned(), t(version));
    m.insert("deleted".to_owned(), b(r.deleted));
    if let Some(id) = r.id {
        m.insert("id".to_owned(), n(id));
    }
    if let Some(br) = &r.default_branch {
        m.insert("default_branch".to_owned(), s(br));
    }
    if let Some(p) = r.private {
        m.insert("private".to_owned(), b(p));
    }
    if let Some(a) = r.archived {
        m.insert("archived".to_owned(), b(a));
    }
    Some(AttributeValue::M(m))
}

/// The deferred metadata a ledger item carries: (version, fields).
pub(super) fn meta_of(item: &Item) -> Option<(String, std::collections::HashMap<String, AttributeValue>)> {
    let AttributeValue::M(m) = item.get(REPO_META)? else { return None };
    let version = m.get("version")?.as_s().ok()?.clone();
    Some((version, m.clone()))
}

/// What one stream batch writes on a repository's item: the newest activity
/// its deliveries report, and the newest metadata they deferred.
#[derive(Debug, Default)]
struct News {
    activity: Option<String>,
    meta: Option<HashMap<String, AttributeValue>>,
}

/// One UpdateItem of `news`, conditioned on the item existing and on each
/// part being newer than what it holds (`last_activity_at`; `version`, which
/// guards the metadata); `rev` moves, so a writer merging the item meanwhile
/// reads it again.
fn news_update(news: &News) -> Update {
    let mut u = Update::default();
    let pk = u.name("pk");
    let mut cond = vec![format!("attribute_exists({pk})")];
    if let Some(at) = &news.activity {
        u.set("last_activity_at", s(at.clone()));
        let (a, v) = (u.name("last_activity_at"), u.value(s(at.clone())));
        cond.push(format!("(attribute_not_exists({a}) OR {a} < {v})"));
    }
    if let Some(meta) = &news.meta {
        for field in ["id", "default_branch", "private", "archived"] {
            if let Some(v) = meta.get(field) {
                u.set(field, v.clone());
            }
        }
        let deleted = meta.get("deleted").and_then(|d| d.as_bool().ok().copied()).unwrap_or(false);
        u.set("deleted", b(deleted));
        u.set("gsi1pk", s(if deleted { key::REPOS_DELETED } else { key::REPOS }));
        if let Some(version) = meta.get("version") {
            u.set("version", version.clone());
            let (a, v) = (u.name("version"), u.value(version.clone()));
            cond.push(format!("(attribute_not_exists({a}) OR {a} < {v})"));
        }
    }
    u.add("rev", 1);
    u.condition(cond.join(" AND "));
    u
}

/// `news` less what `current` (the item that failed the condition) already
/// holds as new or newer.
fn still_news(news: News, current: &Item) -> News {
    let held = |attr: &str| current.get(attr).and_then(|v| v.as_s().ok()).cloned();
    let newer = |ours: Option<&String>, attr: &str| ours.is_some_and(|o| held(attr).is_none_or(|h| h < *o));
    let version = news.meta.as_ref().and_then(|m| m.get("version")).and_then(|v| v.as_s().ok()).cloned();
    News {
        activity: news.activity.clone().filter(|_| newer(news.activity.as_ref(), "last_activity_at")),
        meta: news.meta.filter(|_| newer(version.as_ref(), "version")),
    }
}

/// Writes of one repository's news tried at most this often (each round one
/// concurrent writer wins; a later batch carries newer news anyway).
const NEWS_ATTEMPTS: usize = 4;

impl DynamoStore {
    /// Each repository's newest activity and deferred metadata of a stream
    /// batch, on its item: one UpdateItem for both, conditioned on each
    /// being newer ([`news_update`]). Where the condition fails, the item
    /// that failed it says which part is still new, written alone. A name
    /// with no item under it is resolved through its alias items then (one
    /// BatchGetItem: a repository that moved) and written under its current
    /// name; no read at all for a name that holds its item. Returns the
    /// live-repository count delta (a deferred write that changes `deleted`:
    /// only after an older delivery landed in between).
    pub(super) async fn write_repository_news(
        &self,
        activity: BTreeMap<String, String>,
        metas: BTreeMap<String, HashMap<String, AttributeValue>>,
    ) -> Result<i64, StoreError> {
        let mut news: BTreeMap<String, News> = BTreeMap::new();
        for (repo, at) in activity {
            news.entry(repo).or_default().activity = Some(at);
        }
        // (A deferred write always carries its `version`: `meta_value`.)
        for (repo, meta) in metas.into_iter().filter(|(_, m)| m.contains_key("version")) {
            news.entry(repo).or_default().meta = Some(meta);
        }
        let mut delta = 0;
        for (repo, n) in news {
            let Ok(name) = RepoName::parse(&repo) else { continue };
            delta += self.write_news(name, n).await?;
        }
        Ok(delta)
    }

    async fn write_news(&self, mut name: RepoName, mut news: News) -> Result<i64, StoreError> {
        let mut resolved = false;
        for _ in 0..NEWS_ATTEMPTS {
            if news.activity.is_none() && news.meta.is_none() {
                return Ok(0);
            }
            match self.update_item_or_current(key_of(key::repo(&name), key::REPO_SK), news_update(&news)).await? {
                Ok(old) => {
                    let Some(meta) = &news.meta else { return Ok(0) };
                    let deleted = meta.get("deleted").and_then(|d| d.as_bool().ok().copied()).unwrap_or(false);
                    let was_live = old.is_some_and(|o| o.flag("deleted") != Some(true));
                    return Ok(i64::from(!deleted) - i64::from(was_live));
                }
                Err(Some(current)) => news = still_news(news, &current),
                Err(None) if !resolved => {
                    // No item under the name: the repository moved (or is not there yet).
                    resolved = true;
                    let current = self.canonical(&name).await?;
                    if current == name {
                        return Ok(0);
                    }
                    name = current;
                }
                Err(None) => return Ok(0),
            }
        }
        Ok(0)
    }
}

/// The count attribute a deferred write's delta goes to.
pub(super) fn repos_counter() -> String {
    counters::REPOS.to_owned()
}
