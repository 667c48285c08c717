//! [`DeliveryLedger`] on DynamoDB: claims and outcomes of deliveries, and the
//! registry items (tracked repositories and organisations, hooks) a claim writes.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{ReturnValue, ReturnValuesOnConditionCheckFailure};

use super::codec::*;
use super::counters;
use super::ops::sdk_error;
use super::pages;
use super::store::{MAX_TEXT, epoch};
use super::versions;
use super::{CLAIM_LEASE, DynamoStore, LEDGER_RETENTION};
use crate::domain::*;
use crate::ports::*;

impl DynamoStore {
    async fn register_claim(&self, c: &DeliveryClaim) -> Result<(), StoreError> {
        if let Some(repo) = &c.repo {
            // Once per process: the newest delivery per repository (`last_deliveries`)
            // is read from the ledger's repository index, not kept here per delivery.
            self.register(key::tracked_repo_sk(repo), &[("repo", repo.as_str())]).await?;
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
}

/// The ledger item of a delivery with `status`: in no index (its listing is
/// a page entry, `pages.rs`); `marked`: derived by the table's stream.
fn ledger_item(c: &DeliveryClaim, status: &str, reason: Option<&str>, changes: u32, marked: bool) -> Item {
    let mut item = key_of(key::delivery(&c.key), key::ONE);
    for (k, v) in [
        ("hook_id", Some(c.key.hook_id.to_string())),
        ("delivery_id", Some(c.key.delivery_id.to_string())),
        ("event", Some(c.event.to_string())),
        ("action", c.action.clone()),
        ("repo", c.repo.as_ref().map(RepoName::to_string)),
        ("org", c.org.clone()),
        ("received_at", Some(ts(&c.received_at))),
        ("status", Some(status.to_owned())),
        ("reason", reason.map(|r| bounded(r, MAX_TEXT))),
        (pages::MARK, marked.then(|| pages::STREAM.to_owned())),
    ] {
        if let Some(v) = v {
            item.insert(k.to_owned(), s(v));
        }
    }
    item.insert("changes".into(), n(changes));
    item.insert("body_bytes".into(), n(c.body_bytes));
    item.insert(super::TTL_ATTRIBUTE.into(), epoch(&(c.received_at + LEDGER_RETENTION)));
    item
}

impl DynamoStore {
    /// Deferred repository writes (`versions.rs`) made now, outside the deferring scope.
    async fn flush_deferred(&self, repos: impl IntoIterator<Item = Repository>) -> Result<(), StoreError> {
        for r in repos {
            self.apply_repository(&r, None).await?;
        }
        Ok(())
    }

    /// [`flush_deferred`](Self::flush_deferred) for a ledger item that was not written (a failure is
    /// logged: the repository's `version` then waits for its next delivery).
    async fn flush_deferred_logged(&self, repo: Option<Repository>) {
        if let Err(e) = self.flush_deferred(repo).await {
            tracing::warn!(error = ?e, "a repository's newer version was not written");
        }
    }

    /// Count deltas held back for a ledger item that was not written: added now
    /// (a failure is logged, leaving those counts behind).
    async fn flush_counts(&self, counts: &std::collections::BTreeMap<String, i64>) {
        let deltas: Vec<(String, i64)> = counts.iter().map(|(k, v)| (k.clone(), *v)).collect();
        if let Err(e) = self.bump(&deltas, None).await {
            tracing::error!(error = ?e, "entity counts of an unrecorded delivery were not added");
        }
    }

    /// Put a ledger item if the delivery is new (or its claim was abandoned:
    /// pending past the lease): Ok with the item it replaced, or Err with the
    /// status of the copy already recorded (a duplicate).
    async fn put_ledger(
        &self,
        mut item: Item,
        c: &DeliveryClaim,
    ) -> Result<Result<Option<Item>, DeliveryStatus>, StoreError> {
        // This call's token: a write whose answer was lost (the SDK's retry
        // then fails the condition, or every attempt "failed") may have landed,
        // and is then recognised as this call's own, not another copy's.
        let token = format!("{:016x}", fastrand::u64(..));
        item.insert("written_by".into(), s(&token));
        let written = self.meter.as_ref().map(|_| item.clone());
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
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        let ours = |o: &Item| o.str("written_by").is_some_and(|t| t == token);
        match result {
            Ok(out) => {
                let old = out.attributes.filter(|a| !a.is_empty());
                if let Some(m) = &self.meter {
                    m.write(old.as_ref(), written.as_ref());
                }
                Ok(Ok(old))
            }
            Err(e) => {
                let Some(aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(failed)) =
                    e.as_service_error()
                else {
                    let err = sdk_error("recording a delivery")(e);
                    let landed = self.get(key_of(key::delivery(&c.key), key::ONE)).await;
                    return match landed {
                        Ok(Some(old)) if err.is_retryable() && ours(&old) => Ok(Ok(None)),
                        _ => Err(err),
                    };
                };
                if let Some(m) = &self.meter {
                    m.failed_write(failed.item());
                }
                let old = match failed.item() {
                    Some(old) => Some(old.clone()),
                    None => self.get(key_of(key::delivery(&c.key), key::ONE)).await?,
                };
                if old.as_ref().is_some_and(ours) {
                    return Ok(Ok(None));
                }
                let status = old.and_then(|o| o.str("status")).and_then(|s| DeliveryStatus::parse(&s));
                Ok(Err(status.unwrap_or(DeliveryStatus::Pending)))
            }
        }
    }
}

#[async_trait]
impl DeliveryLedger for DynamoStore {
    async fn claim_delivery(&self, claim: &DeliveryClaim) -> Result<Claim, StoreError> {
        let c = claim;
        // Claims are derived at once (never marked): a claim's release or completion follows it here.
        let item = ledger_item(c, "pending", None, 0, false);
        let old = match self.put_ledger(item.clone(), c).await? {
            Ok(old) => old,
            Err(status) => return Ok(Claim::Duplicate(status)),
        };
        // A first claim is one more pending delivery (and listed); a re-taken one already counts.
        let registered = async {
            self.derive_now(old, Some(item)).await?;
            self.register_claim(c).await
        };
        if let Err(e) = registered.await {
            // Nothing may stay claimed that the caller was told failed.
            let _ = self.release_delivery(&c.key).await;
            return Err(e);
        }
        Ok(Claim::Claimed)
    }

    /// Ingest looks, without writing: the ledger item is written once, by
    /// [`record_delivery`](DeliveryLedger::record_delivery), after the effects.
    /// An eventually consistent read (half the units): a copy that reads a
    /// stale "absent" re-applies idempotent last-writer-wins effects and is
    /// then answered `duplicate` by the ledger put's condition, as two copies
    /// arriving together already are under a strongly consistent read.
    async fn check_delivery(&self, claim: &DeliveryClaim) -> Result<Claim, StoreError> {
        let Some(old) = self.get_with(key_of(key::delivery(&claim.key), key::ONE), false).await? else {
            return Ok(Claim::Claimed);
        };
        let status = old.str("status").and_then(|s| DeliveryStatus::parse(&s)).unwrap_or(DeliveryStatus::Pending);
        let cutoff = ts(&(claim.received_at - CLAIM_LEASE));
        // A claim left pending by a crash (older than the lease) is taken over.
        let abandoned = status == DeliveryStatus::Pending && old.str("received_at").is_some_and(|r| r < cutoff);
        Ok(if abandoned { Claim::Claimed } else { Claim::Duplicate(status) })
    }

    /// The changes (each an idempotent last-writer-wins write), then the
    /// ledger item, once, with its outcome, conditioned like a claim. A crash
    /// before the ledger write leaves no record: the redelivery (GitHub's, or
    /// the integrity check's) applies the same changes again, a no-op for
    /// what was written, and records it. A copy of the delivery recorded
    /// meanwhile makes this one a duplicate; its writes rewrote the same values.
    async fn record_delivery(
        &self,
        claim: &DeliveryClaim,
        changes: &[Change],
        outcome: &DeliveryOutcome,
    ) -> Result<Recorded, StoreError> {
        let c = claim;
        self.register_claim(c).await?;
        // The webhook's store carries its entity count deltas on the ledger item (the stream adds them).
        let (report, counts, mut deferred) = if self.stream_derived {
            let ((report, counts), deferred) =
                versions::deferring(Box::pin(counters::carried(self.apply_all(changes)))).await;
            (report, counts, deferred)
        } else {
            (self.apply_all(changes).await, Default::default(), Default::default())
        };
        // A deferred repository write the ledger item cannot carry (another repository's) is made now.
        let carried = c.repo.as_ref().and_then(|r| deferred.remove(r));
        let report = match (report, self.flush_deferred(deferred.into_values()).await) {
            (Ok(report), Ok(())) => report,
            (Err(e), _) | (_, Err(e)) => {
                self.flush_counts(&counts).await;
                return Err(e);
            }
        };
        let mut item =
            ledger_item(c, outcome.status.as_str(), outcome.reason.as_deref(), report.applied, self.stream_derived);
        if self.stream_derived {
            // The repository's newest activity is the stream's to write (once per batch, `pages.rs`).
            let activity = changes.iter().filter_map(|ch| match ch {
                Change::Repository(r) if Some(&r.full_name) == c.repo.as_ref() => r.activity_at,
                _ => None,
            });
            if let Some(at) = activity.max() {
                item.insert(pages::ACTIVITY.into(), t(&at));
            }
            if let Some(v) = counters::carried_value(&counts) {
                item.insert(counters::CARRIED_ATTRIBUTE.into(), v);
            }
            if let Some(v) = carried.as_ref().and_then(versions::meta_value) {
                item.insert(versions::REPO_META.into(), v);
            }
        }
        let old = match self.put_ledger(item.clone(), c).await {
            Ok(Ok(old)) => old,
            Ok(Err(status)) => {
                // Another copy was recorded: what this copy's writes created is counted here.
                self.flush_counts(&counts).await;
                self.flush_deferred_logged(carried).await;
                return Ok(Recorded::Duplicate(status));
            }
            Err(e) => {
                self.flush_counts(&counts).await;
                self.flush_deferred_logged(carried).await;
                return Err(e);
            }
        };
        // Recorded: from here the answer is a success whatever the listing and count do (marked:
        // the stream derives them; else now, a failure logged, leaving that count one behind).
        if let Err(e) = self.derive_now(old, Some(item)).await {
            tracing::error!(error = ?e, delivery = %c.key.delivery_id, "a recorded delivery was not counted");
        }
        Ok(Recorded::Done(report))
    }

    async fn release_delivery(&self, key: &DeliveryKey) -> Result<(), StoreError> {
        let mut c = Update::default();
        let (a, v) = (c.name("status"), c.value(s("pending")));
        c.condition(format!("{a} = {v}"));
        if self.delete(key_of(key::delivery(key), key::ONE), Some(c)).await? {
            // Only claims are pending, and claims are never marked: the count is this store's to move.
            self.bump(&[(counters::delivery("pending"), -1)], None).await?;
        }
        Ok(())
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
        // No listing change: the outcome is one write of the ledger item, in no index.
        let k = key_of(key::delivery(key), key::ONE);
        let mut u = Update::default();
        u.set("status", s(outcome.status.as_str()))
            .set_or_remove("reason", outcome.reason.as_deref().map(|r| s(bounded(r, MAX_TEXT))))
            .set("changes", n(report.applied))
            // Derived here, by this write: the stream leaves it alone.
            .set_or_remove(pages::MARK, None);
        let pk = u.name("pk");
        u.condition(format!("attribute_exists({pk})"));
        let effects = u.effects.clone();
        if let Some(Some(old)) = self.update_item(k.clone(), u).await? {
            // The count moves with the status this write replaced (once, whatever retries).
            let new = super::meter::after(&k, Some(&old), &effects);
            self.derive_now(Some(old), Some(new)).await?;
        }
        Ok(report)
    }
}
