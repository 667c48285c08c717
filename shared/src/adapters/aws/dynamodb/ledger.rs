//! [`DeliveryLedger`] on DynamoDB: claims and outcomes of deliveries, and the
//! registry items (tracked repositories and organisations, hooks) a claim writes.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure;

use super::codec::*;
use super::ops::sdk_error;
use super::store::{MAX_TEXT, epoch};
use super::{CLAIM_LEASE, DynamoStore, LEDGER_RETENTION};
use crate::domain::*;
use crate::ports::*;

impl DynamoStore {
    async fn register_claim(&self, c: &DeliveryClaim) -> Result<(), StoreError> {
        if let Some(repo) = &c.repo {
            // The newest delivery per repository (`last_deliveries`), kept on its registry item.
            let mut u = Update::default();
            u.set("repo", s(repo.as_str())).set("last_received_at", t(&c.received_at));
            let (a, v) = (u.name("last_received_at"), u.value(t(&c.received_at)));
            u.condition(format!("attribute_not_exists({a}) OR {a} < {v}"));
            self.update(key_of(key::TRACKED, key::tracked_repo_sk(repo)), u).await?;
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
            ("gsi1pk", Some(key::DELIVERIES.to_owned())),
            ("gsi1sk", Some(sort.clone())),
            ("gsi2pk", c.repo.as_ref().map(|r| key::deliveries_of_repo(r.as_str()))),
            ("gsi2sk", c.repo.as_ref().map(|_| sort.clone())),
            ("gsi3pk", Some(key::deliveries_by_status("pending"))),
            ("gsi3sk", Some(sort.clone())),
        ] {
            if let Some(v) = v {
                item.insert(k.to_owned(), s(v));
            }
        }
        item.insert("changes".into(), n(0));
        item.insert("body_bytes".into(), n(c.body_bytes));
        item.insert(super::TTL_ATTRIBUTE.into(), epoch(&(c.received_at + LEDGER_RETENTION)));
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
            .send()
            .await;
        match result {
            Ok(_) => {}
            Err(e) => {
                let Some(aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(failed)) =
                    e.as_service_error()
                else {
                    return Err(sdk_error("claiming a delivery")(e));
                };
                let old = match failed.item() {
                    Some(old) => Some(old.clone()),
                    None => self.get(key_of(key::delivery(&c.key), key::ONE)).await?,
                };
                let status = old.and_then(|o| o.str("status")).and_then(|s| DeliveryStatus::parse(&s));
                return Ok(Claim::Duplicate(status.unwrap_or(DeliveryStatus::Pending)));
            }
        }
        if let Err(e) = self.register_claim(c).await {
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
        self.delete(key_of(key::delivery(key), key::ONE), Some(c)).await.map(drop)
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
        // The status index's sort key was written with the claim; only its partition moves.
        let mut u = Update::default();
        u.set("status", s(outcome.status.as_str()))
            .set_or_remove("reason", outcome.reason.as_deref().map(|r| s(bounded(r, MAX_TEXT))))
            .set("changes", n(report.applied))
            .set("gsi3pk", s(key::deliveries_by_status(outcome.status.as_str())));
        let pk = u.name("pk");
        u.condition(format!("attribute_exists({pk})"));
        self.update(key_of(key::delivery(key), key::ONE), u).await?;
        Ok(report)
    }
}
