//! Repository writes that only move `version`, left to the table's stream.
//!
//! GitHub's payloads carry the repository's `updated_at` (the item's
//! `version`, which guards its metadata fields). When a webhook delivery's
//! repository is known and its merged metadata equals what is stored except
//! for a newer `version`, the webhook function's store does not write the
//! item: it puts the delivery's repository metadata on its marked ledger item
//! (`repo_meta`), and the ledger-stream function writes the newest of a batch
//! per repository, as it writes the newest activity (`pages.rs`).
//!
//! Order-proof: the stream's write sets the delivery's metadata fields with
//! its `version`, conditioned on the stored `version` being older. An older
//! delivery with other metadata that lands between the webhook's skip and the
//! stream's write (it wins against the older stored `version`) is overwritten
//! by the stream's write, so the item converges to the newest delivery's
//! metadata, as on SQLite; until then (the batching window) it may show that
//! older metadata. A newer write already there makes the stream's write a no-op.

use std::cell::RefCell;
use std::collections::BTreeMap;

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

impl DynamoStore {
    /// Write each repository's newest deferred metadata (under its current
    /// name) if its stored `version` is older; `rev` moves too, so a writer
    /// merging the item meanwhile reads it again. Returns the live-repository
    /// count delta (a deferred write that changes `deleted`: only after an
    /// older delivery landed in between).
    pub(super) async fn write_deferred(
        &self,
        metas: BTreeMap<String, std::collections::HashMap<String, AttributeValue>>,
    ) -> Result<i64, StoreError> {
        let names: Vec<RepoName> = metas.keys().filter_map(|r| RepoName::parse(r).ok()).collect();
        let current = if names.is_empty() { Default::default() } else { self.canonical_names(&names).await? };
        let mut delta = 0;
        for (repo, meta) in metas {
            let Ok(name) = RepoName::parse(&repo) else { continue };
            let name = current.get(&name).cloned().unwrap_or(name);
            let Some(version) = meta.get("version").cloned() else { continue };
            let deleted = meta.get("deleted").and_then(|d| d.as_bool().ok().copied()).unwrap_or(false);
            let mut u = Update::default();
            for field in ["id", "default_branch", "private", "archived"] {
                if let Some(v) = meta.get(field) {
                    u.set(field, v.clone());
                }
            }
            u.set("deleted", b(deleted)).set("version", version.clone()).add("rev", 1);
            u.set("gsi1pk", s(if deleted { key::REPOS_DELETED } else { key::REPOS }));
            let (pk, a, v) = (u.name("pk"), u.name("version"), u.value(version));
            u.condition(format!("attribute_exists({pk}) AND (attribute_not_exists({a}) OR {a} < {v})"));
            // A failed condition: the item already holds a newer version (or is not there yet).
            if let Some(Some(old)) = self.update_item(key_of(key::repo(&name), key::REPO_SK), u).await? {
                let was_live = old.flag("deleted") != Some(true);
                delta += i64::from(!deleted) - i64::from(was_live);
            }
        }
        Ok(delta)
    }
}

/// The count attribute a deferred write's delta goes to.
pub(super) fn repos_counter() -> String {
    counters::REPOS.to_owned()
}
