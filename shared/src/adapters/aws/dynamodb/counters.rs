//! The counts `/api/health` shows (`stats`), kept on write: [`SHARDS`]
//! counter items (`COUNT#{nn}` / `_`), each write an atomic `ADD` to one of
//! them chosen at random, so no single item takes every delivery's write
//! (an item takes 1,000 writes/s; 16 take 16,000). `stats` reads all of them
//! in one BatchGetItem: 16 items under 1 KB, eventually consistent, 8 RRU
//! whatever the store holds.
//!
//! A count changes only with the transition a conditional write reports
//! (its old image, `ReturnValues=ALL_OLD`): a pull request counts when its
//! write created it, a delivery moves from `pending` to its status when its
//! completion found it pending, so a duplicate or a replayed change never
//! counts twice. The `ADD` follows the write that made the transition; a
//! process that dies between the two leaves that one count behind (the
//! ledger and the entities themselves are right).

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::AttributeValue;

use super::DynamoStore;
use super::codec::*;
use crate::domain::{DeliveryStatus, Timestamp};
use crate::ports::StoreError;
use crate::read::StoreStats;

/// Counter items: the write ceiling of the counts is 1,000 writes/s each.
pub(super) const SHARDS: u32 = 16;

fn shard_key(shard: u32) -> Item {
    key_of(format!("COUNT#{shard:02}"), key::ONE)
}

/// The counter attribute of a delivery status.
pub(super) fn delivery(status: &str) -> String {
    format!("dlv_{status}")
}

/// The counter attribute of an ignored event type (attribute-name safe).
pub(super) fn ignored(event: &str) -> String {
    let safe: String = event.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    format!("ign_{safe}")
}

pub(super) const REPOS: &str = "repos";
pub(super) const PULLS: &str = "pulls";
pub(super) const TEAMS: &str = "teams";
pub(super) const RUNS: &str = "runs";
const LAST: &str = "last_at";

tokio::task_local! {
    /// Entity count deltas a webhook delivery's writes made, carried on its
    /// ledger item for the stream's batch `ADD` instead of an `ADD` each.
    static CARRIED: std::cell::RefCell<BTreeMap<String, i64>>;
}

/// Run `f` with the entity count deltas its writes make held back (not
/// written); they come back with its result.
pub(super) async fn carried<T>(f: impl std::future::Future<Output = T>) -> (T, BTreeMap<String, i64>) {
    CARRIED
        .scope(std::cell::RefCell::new(BTreeMap::new()), async {
            let out = f.await;
            (out, CARRIED.with(|c| c.take()))
        })
        .await
}

/// The count deltas an item carries (`counts`, a map of numbers).
pub(super) fn carried_by(item: &Item) -> Vec<(String, i64)> {
    match item.get(CARRIED_ATTRIBUTE) {
        Some(AttributeValue::M(m)) => {
            m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_n().ok()?.parse().ok()?))).collect()
        }
        _ => Vec::new(),
    }
}

/// The ledger item attribute of carried count deltas.
pub(super) const CARRIED_ATTRIBUTE: &str = "counts";

/// The attribute value of carried deltas (None: nothing to carry).
pub(super) fn carried_value(deltas: &BTreeMap<String, i64>) -> Option<AttributeValue> {
    let m: std::collections::HashMap<String, AttributeValue> =
        deltas.iter().filter(|(_, by)| **by != 0).map(|(k, by)| (k.clone(), n(*by))).collect();
    (!m.is_empty()).then_some(AttributeValue::M(m))
}

impl DynamoStore {
    /// Add `deltas` (zero ones skipped) to one counter item; with `last`, also
    /// mark the newest delivery time on it. Within [`carried`], entity deltas
    /// are held back instead.
    pub(super) async fn bump(&self, deltas: &[(String, i64)], last: Option<&Timestamp>) -> Result<(), StoreError> {
        if last.is_none()
            && CARRIED
                .try_with(|c| {
                    let mut c = c.borrow_mut();
                    for (attr, by) in deltas {
                        *c.entry(attr.clone()).or_default() += by;
                    }
                })
                .is_ok()
        {
            return Ok(());
        }
        let mut u = Update::default();
        for (attr, by) in deltas.iter().filter(|(_, by)| *by != 0) {
            u.add(attr, *by);
        }
        if let Some(at) = last {
            u.set(LAST, t(at));
        }
        if u.is_empty() {
            return Ok(());
        }
        self.update(shard_key(fastrand::u32(0..SHARDS)), u).await.map(drop)
    }

    /// Entity counts back to zero (`reset_entities`); delivery counts stay.
    pub(super) async fn reset_entity_counts(&self) -> Result<(), StoreError> {
        for shard in 0..SHARDS {
            let mut u = Update::default();
            for attr in [REPOS, PULLS, TEAMS, RUNS] {
                u.set(attr, n(0));
            }
            self.update(shard_key(shard), u).await?;
        }
        Ok(())
    }

    /// The counts, summed over the counter items (one BatchGetItem).
    pub(super) async fn counted(&self) -> Result<StoreStats, StoreError> {
        let items = self.batch_get_with((0..SHARDS).map(shard_key).collect(), false).await?;
        let mut stats = StoreStats::default();
        let sum = |attr: &str| items.iter().map(|i| i.num::<i64>(attr).unwrap_or(0)).sum::<i64>().max(0) as u64;
        for status in [DeliveryStatus::Pending, DeliveryStatus::Stored, DeliveryStatus::Ignored, DeliveryStatus::Failed]
        {
            let count = sum(&delivery(status.as_str()));
            if count > 0 {
                stats.deliveries.insert(status.as_str().to_owned(), count);
            }
        }
        let mut events: Vec<String> =
            items.iter().flat_map(|i| i.keys().filter(|k| k.starts_with("ign_")).cloned()).collect();
        events.sort();
        events.dedup();
        for attr in events {
            let count = sum(&attr);
            if count > 0 {
                stats.ignored_events.insert(attr["ign_".len()..].to_owned(), count);
            }
        }
        stats.repositories = sum(REPOS);
        stats.pull_requests = sum(PULLS);
        stats.teams = sum(TEAMS);
        stats.workflow_runs = sum(RUNS);
        let newest = items.iter().filter_map(|i| i.str(LAST)).max();
        stats.last_delivery_at = newest.as_deref().map(parse_ts).transpose().map_err(super::ops::corrupt)?;
        Ok(stats)
    }
}
