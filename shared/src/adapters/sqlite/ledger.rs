//! [`DeliveryLedger`] on SQLite: claims and outcomes of deliveries.

use async_trait::async_trait;
use rusqlite::params;

use super::apply::apply_all;
use super::store::SqliteStore;
use super::ts;
use crate::domain::*;
use crate::ports::*;

/// How long a claimed-but-unfinished delivery blocks a redelivery. After a
/// crash, GitHub's redelivery (same delivery id) is processed once this passed.
const CLAIM_LEASE: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

#[async_trait]
impl DeliveryLedger for SqliteStore {
    async fn claim_delivery(&self, claim: &DeliveryClaim) -> Result<Claim, StoreError> {
        let c = claim.clone();
        let cutoff = ts(&(claim.received_at - CLAIM_LEASE));
        self.write(move |conn| {
            let inserted = conn
                .prepare_cached(
                    "INSERT INTO deliveries (hook_id, delivery_id, event, action, repo, org, received_at, status, body_bytes)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending', ?8)
                     ON CONFLICT (hook_id, delivery_id) DO UPDATE SET received_at = excluded.received_at
                     WHERE deliveries.status = 'pending' AND deliveries.received_at < ?9",
                )?
                .execute(params![
                    c.key.hook_id.as_str(),
                    c.key.delivery_id.as_str(),
                    c.event.as_str(),
                    c.action,
                    c.repo.as_ref().map(RepoName::as_str),
                    c.org,
                    ts(&c.received_at),
                    c.body_bytes,
                    cutoff
                ])?;
            if inserted > 0 {
                return Ok(Claim::Claimed);
            }
            let status: String = conn
                .prepare_cached("SELECT status FROM deliveries WHERE hook_id = ?1 AND delivery_id = ?2")?
                .query_row(params![c.key.hook_id.as_str(), c.key.delivery_id.as_str()], |r| r.get(0))?;
            Ok(Claim::Duplicate(DeliveryStatus::parse(&status).unwrap_or(DeliveryStatus::Pending)))
        })
        .await
    }

    async fn release_delivery(&self, key: &DeliveryKey) -> Result<(), StoreError> {
        let key = key.clone();
        self.write(move |conn| {
            conn.prepare_cached(
                "DELETE FROM deliveries WHERE hook_id = ?1 AND delivery_id = ?2 AND status = 'pending'",
            )?
            .execute(params![key.hook_id.as_str(), key.delivery_id.as_str()])
            .map(drop)
        })
        .await
    }

    async fn complete_delivery(
        &self,
        key: &DeliveryKey,
        changes: &[Change],
        outcome: &DeliveryOutcome,
    ) -> Result<ApplyReport, StoreError> {
        let (key, changes, outcome) = (key.clone(), changes.to_vec(), outcome.clone());
        self.write(move |tx| {
            let report = apply_all(tx, &changes)?;
            tx.prepare_cached(
                "UPDATE deliveries SET status = ?3, reason = ?4, changes = ?5 WHERE hook_id = ?1 AND delivery_id = ?2",
            )?
            .execute(params![
                key.hook_id.as_str(),
                key.delivery_id.as_str(),
                outcome.status.as_str(),
                outcome.reason,
                report.applied
            ])?;
            Ok(report)
        })
        .await
    }
}
