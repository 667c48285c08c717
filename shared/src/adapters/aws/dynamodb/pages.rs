//! Delivery listings and delivery counts, derived from the ledger's writes.
//!
//! A ledger item (`DLV#{hook}#{delivery}`) is in no index: its one write is
//! the duplicate check's key and nothing more (1 WRU). What lists deliveries
//! (`list_deliveries`, `last_deliveries`) reads **page items** instead, each
//! holding the sort keys (`{received_at}#{hook}#{delivery}`) of many
//! deliveries: `DLVP` / `{newest sort key}#{page id}` for every delivery,
//! `DLVP#repo#{repo}` / the same for a repository's. The delivery counts of
//! `/api/health` move with the status a ledger write replaced.
//!
//! Both are derived from a batch of ledger changes (old and new image) by
//! [`DynamoStore::apply_stream`]: one page item per partition and batch (a
//! page spans at most [`SPAN`] of arrival times and [`PAGE_ENTRIES`]
//! deliveries) and one counter `ADD` per batch. The webhook function writes
//! its ledger items marked ([`MARK`]); the table's stream feeds their changes
//! to the stream function in batches, so listings and counts lag by seconds.
//! Every other writer (claims, completions, releases, any store not built
//! [`with_stream_derivation`](DynamoStore::with_stream_derivation)) writes
//! unmarked items and derives its own change at once, as a batch of one; the
//! stream function skips those, so nothing is derived twice.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;

use super::codec::*;
use super::counters;
use super::ops::{Query, Range, corrupt, put_request};
use super::store::{cursor, epoch};
use super::{DynamoStore, LEDGER_RETENTION};
use crate::domain::Timestamp;
use crate::ports::*;

/// The attribute that marks a ledger item whose listing and count the
/// table's stream derives (value [`STREAM`]).
pub(super) const MARK: &str = "derive";
pub(super) const STREAM: &str = "stream";

/// A marked ledger item's repository activity time (the newest the delivery
/// reports), which the stream writes on the repository item once per batch.
pub(super) const ACTIVITY: &str = "activity_at";

/// The widest span of arrival times one page item holds: a listing below a
/// cursor reads the pages whose newest entry is at most this much newer.
pub(super) const SPAN: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

/// The most deliveries one page item holds (≈ 70 bytes each).
pub(super) const PAGE_ENTRIES: usize = 200;

const PAGES: &str = "DLVP";
const TIME_LEN: usize = "2024-03-01T09:00:00.000Z".len();

fn pages_of_repo(repo: &str) -> String {
    format!("{PAGES}#repo#{repo}")
}

/// One item's change as a DynamoDB stream reports it: the images before and
/// after (None: absent), and whether DynamoDB's TTL removed it.
#[derive(Debug, Clone, Default)]
pub struct ItemChange {
    pub old: Option<HashMap<String, AttributeValue>>,
    pub new: Option<HashMap<String, AttributeValue>>,
    pub expired: bool,
}

fn is_ledger(i: &&Item) -> bool {
    i.str("pk").is_some_and(|p| p.starts_with("DLV#"))
}

/// A ledger item's listing sort key: `{received_at}#{hook}#{delivery}`.
fn sort_of(i: &Item) -> Option<String> {
    Some(format!("{}#{}#{}", i.str("received_at")?, i.str("hook_id")?, i.str("delivery_id")?))
}

/// The ledger key a listing sort key names.
fn ledger_key(sort: &str) -> Option<Item> {
    let rest = sort.get(TIME_LEN + 1..)?;
    Some(key_of(format!("DLV#{rest}"), key::ONE))
}

fn marked(c: &ItemChange) -> bool {
    c.new.as_ref().or(c.old.as_ref()).is_some_and(|i| i.str(MARK).as_deref() == Some(STREAM))
}

/// What a batch of ledger changes adds: count deltas, the newest arrival,
/// and the listing entries (repository, sort key) of deliveries new to it.
#[derive(Debug, Default)]
struct Derived {
    deltas: BTreeMap<String, i64>,
    newest: Option<String>,
    entries: Vec<(Option<String>, String)>,
    /// The newest activity per repository name of the batch's new deliveries.
    activity: BTreeMap<String, String>,
    /// The newest deferred repository metadata per name (`versions.rs`).
    metas: BTreeMap<String, HashMap<String, AttributeValue>>,
}

impl Derived {
    fn add(&mut self, c: &ItemChange) {
        let (old, new) = (c.old.as_ref().filter(is_ledger), c.new.as_ref().filter(is_ledger));
        if (old.is_none() && new.is_none()) || (c.expired && new.is_none()) {
            // Not a delivery; or the ledger forgetting one (counts are not bounded by its 90 days).
            return;
        }
        let mut count = |i: &Item, by: i64| {
            let status = i.str("status").unwrap_or_default();
            *self.deltas.entry(counters::delivery(&status)).or_default() += by;
            if status == "ignored" {
                *self.deltas.entry(counters::ignored(&i.str("event").unwrap_or_default())).or_default() += by;
            }
        };
        if let Some(o) = old {
            count(o, -1);
        }
        if let Some(n) = new {
            count(n, 1);
            if old.is_none_or(|o| counters::carried_by(o).is_empty()) {
                // Entity counts the delivery's writes made, carried on its ledger item.
                for (attr, by) in counters::carried_by(n) {
                    *self.deltas.entry(attr).or_default() += by;
                }
            }
            let sort = sort_of(n);
            if let Some(sort) = sort.filter(|s| old.and_then(sort_of).as_ref() != Some(s)) {
                let at = sort[..TIME_LEN.min(sort.len())].to_owned();
                if self.newest.as_ref().is_none_or(|x| *x < at) {
                    self.newest = Some(at);
                }
                if let (Some(repo), Some(at)) = (n.str("repo"), n.str(ACTIVITY)) {
                    let newest = self.activity.entry(repo).or_default();
                    if *newest < at {
                        *newest = at;
                    }
                }
                if let (Some(repo), Some((version, meta))) = (n.str("repo"), super::versions::meta_of(n)) {
                    let newer = |m: &HashMap<String, AttributeValue>| {
                        m.get("version").and_then(|v| v.as_s().ok()).is_none_or(|v| *v < version)
                    };
                    if self.metas.get(&repo).is_none_or(newer) {
                        self.metas.insert(repo, meta);
                    }
                }
                self.entries.push((n.str("repo"), sort));
            }
        }
    }
}

/// Newest-first sort keys cut into pages of at most [`SPAN`] and [`PAGE_ENTRIES`].
fn paged(mut sorts: Vec<String>) -> Vec<Vec<String>> {
    sorts.sort_unstable_by(|a, b| b.cmp(a));
    sorts.dedup();
    let time = |s: &str| parse_ts(&s[..TIME_LEN.min(s.len())]).ok();
    let mut pages: Vec<Vec<String>> = Vec::new();
    for sort in sorts {
        let fits = pages.last().is_some_and(|p| {
            p.len() < PAGE_ENTRIES
                && matches!((time(&p[0]), time(&sort)), (Some(newest), Some(at)) if newest - at <= SPAN)
        });
        match pages.last_mut() {
            Some(p) if fits => p.push(sort),
            _ => pages.push(vec![sort]),
        }
    }
    pages
}

impl DynamoStore {
    /// The store for the webhook function: its ledger items are marked for
    /// the table's stream, which derives their listings and counts in
    /// batches ([`Self::apply_stream`]); none are written on its own path.
    pub fn with_stream_derivation(mut self) -> DynamoStore {
        self.stream_derived = true;
        self
    }

    /// The stream function's work: the listing pages and the counts of a
    /// batch of the table's changes whose ledger items are marked (every
    /// other change is skipped). Pages are written before the one counter
    /// `ADD`; a batch retried after a failure rewrites the same entries (a
    /// listing reads each once) and adds its counts once if the `ADD` failed.
    pub async fn apply_stream(&self, changes: &[ItemChange]) -> Result<(), StoreError> {
        let mut d = Derived::default();
        for c in changes.iter().filter(|c| marked(c)) {
            d.add(c);
        }
        self.write_derived(d).await
    }

    /// A writer's own ledger change, derived at once unless the stream derives it.
    pub(super) async fn derive_now(&self, old: Option<Item>, new: Option<Item>) -> Result<(), StoreError> {
        let c = ItemChange { old, new, expired: false };
        if marked(&c) {
            return Ok(());
        }
        let mut d = Derived::default();
        d.add(&c);
        self.write_derived(d).await
    }

    async fn write_derived(&self, d: Derived) -> Result<(), StoreError> {
        let mut parts: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (repo, sort) in d.entries {
            if let Some(repo) = repo {
                parts.entry(pages_of_repo(&repo)).or_default().push(sort.clone());
            }
            parts.entry(PAGES.to_owned()).or_default().push(sort);
        }
        let mut puts = Vec::new();
        for (pk, sorts) in parts {
            for page in paged(sorts) {
                let newest = parse_ts(&page[0][..TIME_LEN.min(page[0].len())]).map_err(corrupt)?;
                let mut item = key_of(pk.clone(), format!("{}#{:08x}", page[0], fastrand::u32(..)));
                item.insert("entries".into(), list(&page));
                item.insert(super::TTL_ATTRIBUTE.into(), epoch(&(newest + LEDGER_RETENTION + SPAN)));
                puts.push(put_request(item)?);
            }
        }
        self.batch_write(puts).await?;
        let mut deltas = d.deltas;
        let repos = self.write_repository_news(d.activity, d.metas).await?;
        *deltas.entry(super::versions::repos_counter()).or_default() += repos;
        let deltas: Vec<(String, i64)> = deltas.into_iter().filter(|(_, by)| *by != 0).collect();
        let newest = d.newest.as_deref().map(parse_ts).transpose().map_err(corrupt)?;
        self.bump(&deltas, newest.as_ref()).await
    }

    /// Deliveries newest first, from the page items: pages are read newest
    /// first and merged (an entry is handed over once no unread page can hold
    /// a newer one), then the ledger items read by key; an entry whose item
    /// is gone (expired, released) or arrived again later is dropped.
    pub(super) async fn listed_deliveries(
        &self,
        filter: &DeliveryFilter,
        page: &PageRequest,
    ) -> Result<(Vec<Item>, Option<String>), StoreError> {
        const PAGES_A_READ: usize = 4;
        let below = cursor(page)?;
        let pk = filter.repo.as_ref().map_or_else(|| PAGES.to_owned(), |r| pages_of_repo(r.as_str()));
        // Pages newer than the cursor by more than their span hold nothing below it.
        let mut bound = match &below {
            Some(c) => {
                let at =
                    parse_ts(c.get(..TIME_LEN).ok_or(StoreError::BadCursor)?).map_err(|_| StoreError::BadCursor)?;
                Some(ts(&(at + SPAN + chrono::TimeDelta::seconds(1))))
            }
            None => None,
        };
        let (mut waiting, mut out) = (BTreeSet::<String>::new(), Vec::new());
        // Entries at or above the floor are ready: no unread page holds a newer one.
        let (mut floor, mut exhausted) = (None::<String>, false);
        while out.len() <= page.limit {
            let need = page.limit + 1 - out.len();
            let is_ready = |e: &String, floor: &Option<String>| exhausted || floor.as_ref().is_some_and(|f| e >= f);
            let ready = waiting.iter().rev().take_while(|e| is_ready(e, &floor)).count();
            if ready < need && !exhausted {
                let mut read = Vec::new();
                let q = Query::table(&pk, bound.clone().map_or(Range::All, Range::Below)).backward().page(PAGES_A_READ);
                self.query_each(&q, |i| {
                    read.push(i);
                    read.len() < PAGES_A_READ
                })
                .await?;
                exhausted = read.len() < PAGES_A_READ;
                for p in &read {
                    waiting.extend(p.strings("entries").into_iter().filter(|e| below.as_ref().is_none_or(|c| e < c)));
                }
                // Unread pages hold nothing newer than the last read page's newest entry.
                if let Some(sk) = read.last().and_then(|p| p.str("sk")) {
                    floor = Some(sk.clone());
                    bound = Some(sk);
                }
                continue;
            }
            let ready: Vec<String> =
                waiting.iter().rev().take_while(|e| is_ready(e, &floor)).take(need).cloned().collect();
            if ready.is_empty() {
                break;
            }
            for e in &ready {
                waiting.remove(e);
            }
            let keys = ready.iter().filter_map(|e| ledger_key(e)).collect();
            let found: HashMap<String, Item> =
                self.batch_get(keys).await?.into_iter().filter_map(|i| Some((sort_of(&i)?, i))).collect();
            for e in &ready {
                let Some(item) = found.get(e) else { continue };
                let status_ok = filter.status.is_none_or(|s| item.str("status").as_deref() == Some(s.as_str()));
                let event_ok = filter.event.as_ref().is_none_or(|v| item.str("event").as_deref() == Some(v.as_str()));
                if status_ok && event_ok {
                    out.push(item.clone());
                }
            }
        }
        let next = if out.len() > page.limit {
            out.truncate(page.limit);
            out.last().and_then(sort_of).map(|s| encode_cursor(&s))
        } else {
            None
        };
        Ok((out, next))
    }

    /// When the newest delivery of a repository name arrived (its newest page),
    /// or None if none is listed.
    pub(super) async fn newest_listed(&self, repo: &str) -> Result<Option<Timestamp>, StoreError> {
        let newest = self.first(&Query::table(pages_of_repo(repo), Range::All).backward()).await?;
        let at = newest.and_then(|p| p.str("sk")).map(|sk| sk[..TIME_LEN.min(sk.len())].to_owned());
        at.as_deref().map(parse_ts).transpose().map_err(corrupt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ledger(received: &str, id: &str, status: &str, mark: bool) -> Item {
        let mut i = key_of(format!("DLV#1#{id}"), key::ONE);
        for (k, v) in [("received_at", received), ("hook_id", "1"), ("delivery_id", id), ("status", status)] {
            i.insert(k.into(), s(v));
        }
        i.insert("event".into(), s("push"));
        i.insert("repo".into(), s("o/r"));
        if mark {
            i.insert(MARK.into(), s(STREAM));
        }
        i
    }

    #[test]
    fn a_new_delivery_counts_its_status_and_is_listed_and_a_status_change_moves_the_count_only() {
        let mut d = Derived::default();
        let at = "2026-01-01T00:00:00.000Z";
        d.add(&ItemChange { old: None, new: Some(ledger(at, "a", "ignored", true)), expired: false });
        d.add(&ItemChange {
            old: Some(ledger(at, "b", "pending", false)),
            new: Some(ledger(at, "b", "stored", false)),
            expired: false,
        });
        assert_eq!(d.deltas.get("dlv_ignored"), Some(&1));
        assert_eq!(d.deltas.get("ign_push"), Some(&1));
        assert_eq!((d.deltas.get("dlv_pending"), d.deltas.get("dlv_stored")), (Some(&-1), Some(&1)));
        assert_eq!(d.entries, vec![(Some("o/r".to_owned()), format!("{at}#1#a"))]);
        // TTL forgetting a delivery changes no count
        let mut gone = Derived::default();
        gone.add(&ItemChange { old: Some(ledger(at, "a", "stored", true)), new: None, expired: true });
        assert!(gone.deltas.is_empty() && gone.entries.is_empty());
    }

    #[test]
    fn pages_hold_at_most_their_span_newest_first() {
        let sorts = vec![
            "2026-01-01T00:00:00.000Z#1#a".to_owned(),
            "2026-01-01T00:00:59.000Z#1#b".to_owned(),
            "2026-01-01T00:01:30.000Z#1#c".to_owned(),
            "2026-01-01T00:00:59.000Z#1#b".to_owned(),
        ];
        let pages = paged(sorts);
        assert_eq!(pages.len(), 2, "{pages:?}");
        assert_eq!(
            pages[0],
            vec!["2026-01-01T00:01:30.000Z#1#c".to_owned(), "2026-01-01T00:00:59.000Z#1#b".to_owned()]
        );
        assert_eq!(pages[1], vec!["2026-01-01T00:00:00.000Z#1#a".to_owned()]);
        assert_eq!(ledger_key("2026-01-01T00:00:00.000Z#1#a"), Some(key_of("DLV#1#a", key::ONE)));
    }
}
