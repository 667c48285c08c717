//! Facts derived from an item collection and kept on one of its items: a
//! pull request's review facts, a deployment's outcome and latest status.
//! Recomputed after the writes that touched them (`write.rs`).

use super::DynamoStore;
use super::codec::*;
use super::ops::{Query, Range, backoff};
use super::write::RMW_ATTEMPTS;
use crate::domain::RepoName;
use crate::ports::StoreError;

impl DynamoStore {
    /// Recompute a pull request's review facts (as SQLite's REFRESH_REVIEW_FACTS)
    /// from its item collection: the PR and its reviews are one Query.
    pub(super) async fn refresh_review_facts(&self, repo: &RepoName, number: u64) -> Result<(), StoreError> {
        let pull_sk = key::pull_sk(number);
        self.refresh_derived(&key::repo(repo), Range::Prefix(pull_sk.clone()), &pull_sk, |pull, items| {
            let author = pull.str("author");
            let mut first: Option<String> = None;
            let mut changes_requested = 0u32;
            for r in items.iter().filter(|i| i.str("entity").as_deref() == Some("review")) {
                let state = r.str("state").unwrap_or_default();
                if state == "changes_requested" {
                    changes_requested += 1;
                }
                let by_other = match (&author, r.str("author")) {
                    (Some(a), Some(ra)) => *a != ra,
                    _ => true,
                };
                if let Some(at) = r.str("submitted_at")
                    && state != "pending"
                    && by_other
                    && first.as_ref().is_none_or(|f| at < *f)
                {
                    first = Some(at);
                }
            }
            let mut u = Update::default();
            u.set_or_remove("first_review_at", first.map(s)).set("changes_requested", n(changes_requested));
            u
        })
        .await
    }

    /// Recompute a deployment's derived facts from its statuses (by status
    /// `created_at`, then id): `outcome`, the state of its latest status among
    /// success, failure and error; `latest_state`, the state of its newest
    /// status whatever it is (what the integrity check compares). The
    /// deployment and its statuses are one item collection.
    pub(super) async fn refresh_outcome(&self, deployment: i64) -> Result<(), StoreError> {
        self.refresh_derived(&key::deployment(deployment), Range::All, key::ONE, |_, items| {
            let statuses: Vec<(String, String, String)> = items
                .iter()
                .filter(|i| i.str("entity").as_deref() == Some("deployment_status"))
                .filter_map(|i| {
                    Some((i.str("created_at").unwrap_or_default(), i.str("sk").unwrap_or_default(), i.str("state")?))
                })
                .collect();
            let outcome = statuses
                .iter()
                .filter(|(_, _, state)| matches!(state.as_str(), "success" | "failure" | "error"))
                .max()
                .map(|(_, _, state)| state.clone());
            let latest = statuses.iter().max().map(|(_, _, state)| state.clone());
            let mut u = Update::default();
            u.set_or_remove("outcome", outcome.map(s)).set_or_remove("latest_state", latest.map(s));
            u
        })
        .await
    }

    /// Write facts derived from an item collection onto its `target_sk` item,
    /// optimistically: the write holds only if no other refresh wrote since
    /// this one read (`derived_rev`), so two concurrent writers (two Lambdas
    /// handling two reviews of one pull request) cannot leave the facts of
    /// the earlier read in place. Nothing to do while the target is absent:
    /// its own write refreshes it.
    async fn refresh_derived(
        &self,
        pk: &str,
        range: Range,
        target_sk: &str,
        derive: impl Fn(&Item, &[Item]) -> Update,
    ) -> Result<(), StoreError> {
        for attempt in 0..RMW_ATTEMPTS {
            if attempt > 0 {
                backoff(attempt.min(4)).await;
            }
            let items = self.query_all(&Query::table(pk, range.clone())).await?;
            let Some(target) = items.iter().find(|i| i.str("sk").as_deref() == Some(target_sk)) else {
                return Ok(());
            };
            let rev: i64 = target.num("derived_rev").unwrap_or(0);
            let mut u = derive(target, &items);
            // Facts unchanged: no write (a later writer that changes them reads after its own write).
            let key = key_of(pk, target_sk);
            if super::meter::after(&key, Some(target), &u.effects) == *target {
                return Ok(());
            }
            let (p, r, v) = (u.name("pk"), u.name("derived_rev"), u.value(n(rev)));
            u.condition(format!("attribute_exists({p}) AND (attribute_not_exists({r}) OR {r} = {v})"));
            u.set("derived_rev", n(rev + 1));
            if self.update(key_of(pk, target_sk), u).await? {
                return Ok(());
            }
        }
        Err(StoreError::Unavailable(anyhow::anyhow!("derived facts of {pk} kept changing under a refresh")))
    }
}
