//! Where a repository's unfinished runs begin, kept by the table's stream for
//! the webhook function's writes.
//!
//! The integrity check widens a repository's runs window back to the oldest
//! run that is not completed or has a job that is not
//! (`CompletenessStore::stored_runs`). A store that writes at once keeps that
//! on the items themselves: a sparse gsi3 key (`RUNS#unfinished#{repo}`,
//! `WJS#unfinished#{repo}`) while a run or job is not completed, one index
//! write when it is set and one when it goes, two write units over a run's or
//! job's life. The webhook function's store ([`DynamoStore::with_stream_derivation`])
//! sets no such key; the ledger-stream function keeps one item per
//! repository instead, `UNFINISHED#{repo}` / `_`, with an attribute per
//! unfinished run (`run_{id}` = its `created_at`) and job (`job_{id}` =
//! `{created_at or started_at}#{run id}`), set and removed from each batch's
//! images ([`DynamoStore::apply_unfinished`]): one write per repository a
//! batch changes, whatever the batch holds.
//!
//! Order-proof and idempotent: an attribute belongs to one run or job, whose
//! stream records come in order, and each record sets or removes it as the
//! image says (a retried batch does the same again). A reader takes both:
//! the items' keys (writes made at once, and items written before) and
//! these entries. Entries of runs created more than [`KEPT`] before the
//! newest entry a batch sets are dropped when the item is next written (the
//! check looks back 7 days), and an item holds [`MAX_ENTRIES`] at most (the
//! oldest), so it stays small however many runs are stuck.

use std::collections::{BTreeMap, HashSet};

use chrono::TimeDelta;

use super::DynamoStore;
use super::codec::*;
use super::ops::{Task, run_bounded};
use super::pages::ItemChange;
use crate::domain::*;
use crate::ports::*;

/// How long before a batch's newest entry an entry is kept.
const KEPT: TimeDelta = TimeDelta::days(14);
/// Attributes set or removed per UpdateItem (an expression stays far below 4 KB).
const PER_UPDATE: usize = 50;
/// Entries an item holds at most (≈ 40 bytes each: ≈ 80 KB, far below
/// DynamoDB's 400 KB, so no batch can fail on the item's size). Beyond, the
/// newest are left out: the check's window reaches back to the oldest, which
/// covers them.
const MAX_ENTRIES: usize = 2_000;
/// Repositories written at once.
const CONCURRENCY: usize = 16;
const RUN: &str = "run_";
const JOB: &str = "job_";

/// The item of `repo`'s unfinished runs and jobs.
fn item_key(repo: &str) -> Item {
    key_of(key::unfinished(repo), key::ONE)
}

/// What an image of a run or a job says: its repository, its attribute, and
/// the attribute's value while it is not completed (None once it is).
fn entry(image: &Item) -> Option<(String, String, Option<String>)> {
    let repo = image.str("repo")?;
    let open = image.str("status").is_some_and(|s| s != RunStatus::Completed.as_str());
    match image.str("entity")?.as_str() {
        "workflow_run" => {
            let id: i64 = image.num("id")?;
            Some((repo, format!("{RUN}{id}"), open.then(|| image.str("created_at")).flatten()))
        }
        "workflow_job" => {
            let (id, run): (i64, i64) = (image.num("id")?, image.num("run_id")?);
            let at = image.str("created_at").or_else(|| image.str("started_at")).unwrap_or_default();
            Some((repo, format!("{JOB}{id}"), open.then(|| format!("{at}#{run}"))))
        }
        _ => None,
    }
}

/// The time an entry's value begins with (a job's may be empty: unknown).
fn time_of(value: &str) -> &str {
    value.split('#').next().unwrap_or_default()
}

/// The entries an item holds: (attribute, value).
fn entries(stored: &Item) -> impl Iterator<Item = (&str, &str)> {
    stored
        .iter()
        .filter(|(a, _)| a.starts_with(RUN) || a.starts_with(JOB))
        .filter_map(|(a, v)| Some((a.as_str(), v.as_s().ok()?.as_str())))
}

/// Change `ops` (sets and removals of `stored`'s entries) so that the item
/// holds at most `max` entries, leaving the newest out; how many it would
/// have held when that was more.
fn cap(stored: &Item, ops: &mut Vec<(String, Option<String>)>, max: usize) -> Option<usize> {
    let mut after: BTreeMap<&str, &str> = entries(stored).collect();
    for (attr, value) in ops.iter() {
        match value {
            Some(v) => after.insert(attr, v),
            None => after.remove(attr.as_str()),
        };
    }
    let entries = after.len();
    if entries <= max {
        return None;
    }
    let mut by_time: Vec<(&str, &str)> = after.iter().map(|(a, v)| (time_of(v), *a)).collect();
    by_time.sort_unstable();
    let over: HashSet<String> = by_time[max..].iter().map(|(_, a)| (*a).to_owned()).collect();
    ops.retain(|(a, v)| !(v.is_some() && over.contains(a)));
    ops.extend(over.into_iter().filter(|a| stored.contains_key(a)).map(|a| (a, None)));
    Some(entries)
}

/// A repository's unfinished runs and jobs as its item holds them.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Marked {
    /// The oldest `created_at` of its unfinished runs created at or after the bound.
    pub oldest_run: Option<Timestamp>,
    /// The runs of its unfinished jobs, but those of jobs created before the
    /// bound (whose runs were created before it too).
    pub job_runs: HashSet<i64>,
}

impl DynamoStore {
    /// Set and remove the unfinished entries of a batch of the table's
    /// changes: per repository they name, one GetItem of its item
    /// (strongly consistent) and, when anything differs, one UpdateItem.
    pub async fn apply_unfinished(&self, changes: &[ItemChange]) -> Result<(), StoreError> {
        // The last word of the batch on each (repository, attribute).
        let mut last: BTreeMap<String, BTreeMap<String, Option<String>>> = BTreeMap::new();
        for c in changes {
            let old = c.old.as_ref().and_then(entry);
            let new = c.new.as_ref().and_then(entry);
            if c.old.is_some() && old == new {
                // No news for the entry (a change of other fields, a time index entry set):
                // what the item holds of it stays, dropped or not.
                continue;
            }
            if let Some((repo, attr, Some(_))) = &old
                && new.as_ref().is_none_or(|(r, a, _)| (r, a) != (repo, attr))
            {
                last.entry(repo.clone()).or_default().insert(attr.clone(), None);
            }
            if let Some((repo, attr, value)) = new {
                last.entry(repo).or_default().insert(attr, value);
            }
        }
        let newest = last.values().flat_map(|m| m.values().flatten()).map(|v| time_of(v)).max().map(str::to_owned);
        let cut = newest.and_then(|n| parse_ts(&n).ok()).map(|n| ts(&(n - KEPT)));
        let writes = last
            .into_iter()
            .map(|(repo, wanted)| {
                Box::pin(self.write_unfinished(repo, wanted, cut.clone())) as Task<'_, Result<(), StoreError>>
            })
            .collect();
        for done in run_bounded(writes, CONCURRENCY).await {
            done?;
        }
        Ok(())
    }

    /// One repository's item made to hold `wanted` (None: absent), and no
    /// entry older than `cut`.
    async fn write_unfinished(
        &self,
        repo: String,
        wanted: BTreeMap<String, Option<String>>,
        cut: Option<String>,
    ) -> Result<(), StoreError> {
        let stored = self.get(item_key(&repo)).await?.unwrap_or_default();
        let held = |attr: &str| stored.get(attr).and_then(|v| v.as_s().ok()).cloned();
        let mut ops: Vec<(String, Option<String>)> =
            wanted.iter().filter(|(a, v)| held(a) != **v).map(|(a, v)| (a.clone(), v.clone())).collect();
        if let Some(cut) = &cut {
            let stale = entries(&stored)
                .filter(|(a, v)| !time_of(v).is_empty() && time_of(v) < cut.as_str() && !wanted.contains_key(*a));
            ops.extend(stale.map(|(a, _)| (a.to_owned(), None)));
        }
        if let Some(entries) = cap(&stored, &mut ops, MAX_ENTRIES) {
            tracing::warn!(%repo, entries, kept = MAX_ENTRIES, "too many unfinished runs and jobs; the newest left out");
        }
        for chunk in ops.chunks(PER_UPDATE) {
            let mut u = Update::default();
            for (attr, value) in chunk {
                u.set_or_remove(attr, value.clone().map(s));
            }
            self.update(item_key(&repo), u).await?;
        }
        Ok(())
    }

    /// What `repo`'s item says of its unfinished runs and jobs created at or
    /// after `from` (one GetItem, strongly consistent).
    pub(super) async fn marked_unfinished(&self, repo: &RepoName, from: &Timestamp) -> Result<Marked, StoreError> {
        let mut marked = Marked::default();
        let Some(item) = self.get(item_key(repo.as_str())).await? else { return Ok(marked) };
        let from = ts(from);
        for (attr, value) in &item {
            let Ok(value) = value.as_s() else { continue };
            let at = time_of(value);
            if attr.starts_with(RUN) {
                if at >= from.as_str()
                    && let Ok(t) = parse_ts(at)
                {
                    marked.oldest_run = Some(marked.oldest_run.map_or(t, |o| o.min(t)));
                }
            } else if attr.starts_with(JOB)
                && (at.is_empty() || at >= from.as_str())
                && let Some(run) = value.rsplit('#').next().and_then(|r| r.parse().ok())
            {
                marked.job_runs.insert(run);
            }
        }
        Ok(marked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::types::AttributeValue;

    fn image(pairs: &[(&str, &str)]) -> Item {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), AttributeValue::S((*v).to_owned()))).collect()
    }

    #[test]
    fn an_image_gives_its_entry_while_not_completed() {
        let mut run = image(&[
            ("entity", "workflow_run"),
            ("repo", "acme/api"),
            ("status", "in_progress"),
            ("created_at", "2030-03-04T09:00:00.000Z"),
        ]);
        run.insert("id".into(), AttributeValue::N("7".into()));
        assert_eq!(entry(&run), Some(("acme/api".into(), "run_7".into(), Some("2030-03-04T09:00:00.000Z".into()))));
        run.insert("status".into(), AttributeValue::S("completed".into()));
        assert_eq!(entry(&run), Some(("acme/api".into(), "run_7".into(), None)));
        let mut job = image(&[("entity", "workflow_job"), ("repo", "acme/api"), ("status", "queued")]);
        job.insert("id".into(), AttributeValue::N("70".into()));
        job.insert("run_id".into(), AttributeValue::N("7".into()));
        assert_eq!(entry(&job), Some(("acme/api".into(), "job_70".into(), Some("#7".into()))), "no time known");
        job.insert("started_at".into(), AttributeValue::S("2030-03-04T09:01:00.000Z".into()));
        assert_eq!(entry(&job).unwrap().2.as_deref(), Some("2030-03-04T09:01:00.000Z#7"));
        assert_eq!(entry(&image(&[("entity", "pull_request"), ("repo", "acme/api")])), None);
        assert_eq!(time_of("#7"), "");
    }

    #[test]
    fn an_item_past_its_cap_leaves_its_newest_entries_out() {
        let stored = image(&[
            ("pk", "UNFINISHED#acme/api"),
            ("run_1", "2030-01-01T00:00:00.000Z"),
            ("job_2", "2030-01-03T00:00:00.000Z#1"),
        ]);
        let set = |a: &str, v: &str| (a.to_owned(), Some(v.to_owned()));
        // Within the cap: nothing changes.
        let mut ops = vec![set("run_3", "2030-01-02T00:00:00.000Z")];
        assert_eq!(cap(&stored, &mut ops, 3), None);
        assert_eq!(ops, [set("run_3", "2030-01-02T00:00:00.000Z")]);
        // Past it: the newest stored entry goes, the newest new one is not set, the oldest stay.
        let mut ops = vec![set("run_3", "2030-01-02T00:00:00.000Z"), set("run_4", "2030-01-04T00:00:00.000Z")];
        assert_eq!(cap(&stored, &mut ops, 2), Some(4));
        ops.sort();
        assert_eq!(ops, [("job_2".to_owned(), None), set("run_3", "2030-01-02T00:00:00.000Z")]);
    }
}
