//! [`DeliveryLedger`] on DynamoDB: claims and outcomes of deliveries, and the
//! registry items (tracked repositories and organisations, hooks) a claim writes.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{ReturnValue, ReturnValuesOnConditionCheckFailure};

use super::codec::*;
use super::counters;
use super::ops::sdk_error;
use super::store::{MAX_TEXT, epoch};
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
            ("gsi1pk", Some(key::shard(key::DELIVERIES, &key::delivery(&c.key)))),
            ("gsi1sk", Some(sort.clone())),
            ("gsi2pk", c.repo.as_ref().map(|r| key::deliveries_of_repo(r.as_str()))),
            ("gsi2sk", c.repo.as_ref().map(|_| sort.clone())),
        ] {
            if let Some(v) = v {
                item.insert(k.to_owned(), s(v));
            }
        }
        item.insert("changes".into(), n(0));
        item.insert("body_bytes".into(), n(c.body_bytes));
        item.insert(super::TTL_ATTRIBUTE.into(), epoch(&(c.received_at + LEDGER_RETENTION)));
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
        let first = match result {
            Ok(out) => {
                let old = out.attributes.filter(|a| !a.is_empty());
                if let Some(m) = &self.meter {
                    m.write(old.as_ref(), written.as_ref());
                }
                old.is_none()
            }
            Err(e) => {
                let Some(aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(failed)) =
                    e.as_service_error()
                else {
                    return Err(sdk_error("claiming a delivery")(e));
                };
                if let Some(m) = &self.meter {
                    m.failed_write(failed.item());
                }
                let old = match failed.item() {
                    Some(old) => Some(old.clone()),
                    None => self.get(key_of(key::delivery(&c.key), key::ONE)).await?,
                };
                let status = old.and_then(|o| o.str("status")).and_then(|s| DeliveryStatus::parse(&s));
                return Ok(Claim::Duplicate(status.unwrap_or(DeliveryStatus::Pending)));
            }
        };
        // A first claim is one more pending delivery; a re-taken one already counts.
        let pending = [(counters::delivery("pending"), i64::from(first))];
        let registered = async {
            self.bump(&pending, Some(&c.received_at)).await?;
            self.register_claim(c).await
        };
        if let Err(e) = registered.await {
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
        if self.delete(key_of(key::delivery(key), key::ONE), Some(c)).await? {
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
        // No index key changes: the outcome is one write of the ledger item, no index write.
        let mut u = Update::default();
        u.set("status", s(outcome.status.as_str()))
            .set_or_remove("reason", outcome.reason.as_deref().map(|r| s(bounded(r, MAX_TEXT))))
            .set("changes", n(report.applied));
        let pk = u.name("pk");
        u.condition(format!("attribute_exists({pk})"));
        if let Some(Some(old)) = self.update_item(key_of(key::delivery(key), key::ONE), u).await? {
            // The count moves with the status this write replaced (once, whatever retries).
            let (was, now) = (old.str("status").unwrap_or_default(), outcome.status.as_str());
            let event = old.str("event").unwrap_or_default();
            let mut deltas = Vec::new();
            if was != now {
                deltas.push((counters::delivery(&was), -1));
                deltas.push((counters::delivery(now), 1));
                if was == "ignored" {
                    deltas.push((counters::ignored(&event), -1));
                }
                if now == "ignored" {
                    deltas.push((counters::ignored(&event), 1));
                }
            }
            self.bump(&deltas, None).await?;
        }
        Ok(report)
    }
}
