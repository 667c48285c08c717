//! [`ChangeSink`] on DynamoDB (the write path itself is in `write.rs`).

use async_trait::async_trait;

use super::DynamoStore;
use super::codec::*;
use super::ops::{delete_request, sdk_error};
use crate::domain::*;
use crate::ports::*;

#[async_trait]
impl ChangeSink for DynamoStore {
    async fn apply_changes(&self, changes: &[Change]) -> Result<ApplyReport, StoreError> {
        self.apply_all(changes).await
    }

    /// The one Scan: replay drops every entity item (marked by `entity`), a
    /// rare offline operation; the ledger, checks, jobs and registries stay.
    async fn reset_entities(&self) -> Result<(), StoreError> {
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("attribute_exists(#e)")
                .projection_expression("#pk, #sk")
                .expression_attribute_names("#e", "entity")
                .expression_attribute_names("#pk", "pk")
                .expression_attribute_names("#sk", "sk")
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(sdk_error("listing entities to reset"))?;
            let deletes = out.items.unwrap_or_default().into_iter().map(delete_request).collect::<Result<_, _>>()?;
            self.batch_write(deletes).await?;
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return self.reset_entity_counts().await,
            }
        }
    }
}
