//! [`MetricRollups`] on SQLite.

use async_trait::async_trait;
use chrono::NaiveDate;

use super::store::SqliteStore;
use crate::ports::{CellScopes, MetricRollups, StoreError};
use crate::read::rollup::{CellKey, CiCell, PullCell};

#[async_trait]
impl MetricRollups for SqliteStore {
    async fn pull_cells(
        &self,
        scopes: &CellScopes,
        weeks: std::ops::Range<NaiveDate>,
    ) -> Result<Vec<(CellKey, PullCell)>, StoreError> {
        crate::adapters::rollups_from_rows::pulls(self, scopes, weeks).await
    }

    async fn ci_cells(
        &self,
        scopes: &CellScopes,
        weeks: std::ops::Range<NaiveDate>,
    ) -> Result<Vec<(CellKey, CiCell)>, StoreError> {
        crate::adapters::rollups_from_rows::ci(self, scopes, weeks).await
    }

    async fn rebuild_rollups(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
