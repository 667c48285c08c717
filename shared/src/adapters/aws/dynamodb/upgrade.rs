//! One-off upgrades of items written under an earlier key layout.
//!
//! Workflow jobs were items of their own (`pk = WJ#{id}`, `sk = _`) with a
//! per-run index entry (gsi2 `WJS#run#{run id}`); they now live in their run's
//! partition (`pk = RUN#{run id}`, `sk = WJ#{id}`), which saves that index
//! write on every new job. A table written before holds jobs under the old
//! key, which the new code does not update (a later delivery of such a job
//! writes a second item under the new key; both would then be counted by the
//! job metrics). [`DynamoStore::move_jobs_under_runs`] moves them: run it
//! once, offline, right after deploying the new functions
//! (`shared/docs/dynamodb.md`, "Upgrading: jobs under their run").
//!
//! Pull requests were listed newest update first (gsi1 `PRS#{state}` sort key
//! `{updated_at}#…`, moved by every update); they are now listed newest
//! created first (`{created_at}#…`, written once).
//! [`DynamoStore::list_pulls_by_creation`] rewrites the sort key of the pull
//! requests written before that no delivery has touched since.
//!
//! Jobs without `created_at` (GitHub's payloads before jobs carried it) were
//! in no job listing (gsi1 `WJS#…`); they are now listed by `started_at`.
//! [`DynamoStore::list_jobs_by_start`] gives those written before their key.
//!
//! A person's rollup cells were week cells; they are day cells now, their
//! weeks merged from them when read (`rollups.rs`, `kept`), so the stream's
//! upkeep recomputes a change's days from their rows, not its week's.
//! [`DynamoStore::person_cells_by_day`] rebuilds the cells of a table that
//! still holds a person's week cells.
//!
//! [`DynamoStore::upgrade`] runs every step; the batch job runs it when started
//! with `OCTOSCOPE_JOB_ID=upgrade`.

use super::DynamoStore;
use super::codec::*;
use super::ops::{delete_request, sdk_error};
use crate::ports::StoreError;

/// What [`DynamoStore::upgrade`] changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Upgraded {
    pub jobs_moved: u64,
    pub pulls_relisted: u64,
    /// Merge cells (DORA's merge times) written for the pull requests stored.
    pub merge_cells_written: u64,
    /// Jobs without `created_at` given their listing key by `started_at`.
    pub jobs_listed: u64,
    /// The cells rebuilt because a person's cells were stored by week (they
    /// are stored by day now: `rollups.rs`, `kept`).
    pub person_cells_by_day: bool,
}

impl DynamoStore {
    /// Every upgrade step, in order; idempotent (a second run changes nothing).
    pub async fn upgrade(&self) -> Result<Upgraded, StoreError> {
        let jobs_moved = self.move_jobs_under_runs().await?;
        let pulls_relisted = self.list_pulls_by_creation().await?;
        let merge_cells_written = self.fill_merge_cells().await?;
        let jobs_listed = self.list_jobs_by_start().await?;
        if jobs_listed > 0 {
            // Their weeks' CI cells were computed without them.
            self.rebuild_cells().await?;
        }
        let person_cells_by_day = self.person_cells_by_day().await?;
        Ok(Upgraded { jobs_moved, pulls_relisted, merge_cells_written, jobs_listed, person_cells_by_day })
    }

    /// Give every job without `created_at` nor a listing key the key by its
    /// `started_at` (gsi1 `WJS#{shard}`, `{started_at}#{id}`), as a write of
    /// such a job does now. Conditioned on the key still being absent. A
    /// Scan: an offline operation. Returns how many were listed.
    pub async fn list_jobs_by_start(&self) -> Result<u64, StoreError> {
        let mut start: Option<Item> = None;
        let mut listed = 0;
        loop {
            let out = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression(
                    "#e = :job AND attribute_not_exists(#c) AND attribute_exists(#st) AND attribute_not_exists(#g)",
                )
                .projection_expression("#pk, #sk, #st, #id")
                .expression_attribute_names("#e", "entity")
                .expression_attribute_names("#c", "created_at")
                .expression_attribute_names("#st", "started_at")
                .expression_attribute_names("#g", "gsi1sk")
                .expression_attribute_names("#pk", "pk")
                .expression_attribute_names("#sk", "sk")
                .expression_attribute_names("#id", "id")
                .expression_attribute_values(":job", s("workflow_job"))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(sdk_error("listing jobs without created_at"))?;
            for i in out.items.unwrap_or_default() {
                let (Some(pk), Some(sk), Some(started), Some(id)) =
                    (i.str("pk"), i.str("sk"), i.str("started_at"), i.num::<i64>("id"))
                else {
                    tracing::warn!(pk = ?i.str("pk"), sk = ?i.str("sk"), "a job without its id or start is left in place");
                    continue;
                };
                let result = self
                    .client
                    .update_item()
                    .table_name(&self.table)
                    .set_key(Some(key_of(pk, sk)))
                    .update_expression("SET #gp = :gp, #g = :g")
                    .condition_expression("attribute_exists(#pk) AND attribute_not_exists(#g)")
                    .expression_attribute_names("#pk", "pk")
                    .expression_attribute_names("#gp", "gsi1pk")
                    .expression_attribute_names("#g", "gsi1sk")
                    .expression_attribute_values(":gp", s(key::shard(key::WORKFLOW_JOBS, &num(id))))
                    .expression_attribute_values(":g", s(format!("{started}#{}", num(id))))
                    .send()
                    .await;
                match result {
                    Ok(_) => listed += 1,
                    Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {}
                    Err(e) => return Err(sdk_error("listing a job by its start")(e)),
                }
            }
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(listed),
            }
        }
    }

    /// Give every pull request whose gsi1 sort key is still its update time
    /// the key by creation (`{created_at}#{repo}#{number}`). Conditioned on the
    /// key read, so a write that moved it meanwhile is kept. A Scan: an
    /// offline operation. Returns how many were rewritten.
    pub async fn list_pulls_by_creation(&self) -> Result<u64, StoreError> {
        let mut start: Option<Item> = None;
        let mut relisted = 0;
        loop {
            let out = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("#e = :pr")
                .projection_expression("#pk, #sk, #g, #c, #repo, #n")
                .expression_attribute_names("#e", "entity")
                .expression_attribute_names("#pk", "pk")
                .expression_attribute_names("#sk", "sk")
                .expression_attribute_names("#g", "gsi1sk")
                .expression_attribute_names("#c", "created_at")
                .expression_attribute_names("#repo", "repo")
                .expression_attribute_names("#n", "number")
                .expression_attribute_values(":pr", s("pull_request"))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(sdk_error("listing pull requests to relist"))?;
            for i in out.items.unwrap_or_default() {
                let (Some(old), Some(created), Some(repo), Some(number)) =
                    (i.str("gsi1sk"), i.str("created_at"), i.str("repo"), i.num::<i64>("number"))
                else {
                    tracing::warn!(pk = ?i.str("pk"), sk = ?i.str("sk"), "a pull request without its list key is left in place");
                    continue;
                };
                let new = format!("{created}#{repo}#{}", num(number));
                if old == new {
                    continue;
                }
                let result = self
                    .client
                    .update_item()
                    .table_name(&self.table)
                    .set_key(Some(key_of(i.str("pk").unwrap_or_default(), i.str("sk").unwrap_or_default())))
                    .update_expression("SET #g = :new")
                    .condition_expression("#g = :old")
                    .expression_attribute_names("#g", "gsi1sk")
                    .expression_attribute_values(":new", s(new))
                    .expression_attribute_values(":old", s(old))
                    .send()
                    .await;
                match result {
                    Ok(_) => relisted += 1,
                    Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {}
                    Err(e) => return Err(sdk_error("relisting a pull request")(e)),
                }
            }
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(relisted),
            }
        }
    }

    /// Move every job item of the old layout (`pk = WJ#{id}`, `sk = _`) under
    /// its run (`pk = RUN#{run id}`, `sk = WJ#{id}`), without its gsi2 entry,
    /// then delete the old item. A job already written under the new key by a
    /// newer (or equal) version keeps that one (the move is a last-writer-wins
    /// put). Idempotent: a second run finds nothing to move. A Scan: an
    /// offline operation. Returns how many items were moved or superseded.
    pub async fn move_jobs_under_runs(&self) -> Result<u64, StoreError> {
        let mut start: Option<Item> = None;
        let mut moved = 0;
        loop {
            let out = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("begins_with(#pk, :wj) AND #sk = :one")
                .expression_attribute_names("#pk", "pk")
                .expression_attribute_names("#sk", "sk")
                .expression_attribute_values(":wj", s(key::JOB_PREFIX))
                .expression_attribute_values(":one", s(key::ONE))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(sdk_error("listing jobs to move under their runs"))?;
            let mut deletes = Vec::new();
            for old in out.items.unwrap_or_default() {
                let (Some(id), Some(run)) = (old.num::<i64>("id"), old.num::<i64>("run_id")) else {
                    tracing::warn!(pk = ?old.str("pk"), "a job item without id or run_id is left in place");
                    continue;
                };
                let mut item = old.clone();
                item.insert("pk".into(), s(key::run(run)));
                item.insert("sk".into(), s(key::workflow_job_sk(id)));
                item.remove("gsi2pk");
                item.remove("gsi2sk");
                let mut req = self
                    .client
                    .put_item()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .expression_attribute_names("#pk", "pk")
                    .expression_attribute_names("#v", "version")
                    .expression_attribute_names("#r", "rank");
                let mut cond = "attribute_not_exists(#pk) OR attribute_not_exists(#v)".to_owned();
                if let (Some(v), Some(r)) = (old.get("version").cloned(), old.get("rank").cloned()) {
                    req = req.expression_attribute_values(":v", v).expression_attribute_values(":r", r);
                    cond.push_str(" OR #v < :v OR (#v = :v AND #r <= :r)");
                }
                match req.condition_expression(cond).send().await {
                    Ok(_) => {}
                    Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {}
                    Err(e) => return Err(sdk_error("moving a job under its run")(e)),
                }
                deletes.push(delete_request(key_of(old.str("pk").unwrap_or_default(), key::ONE))?);
                moved += 1;
            }
            self.batch_write(deletes).await?;
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(moved),
            }
        }
    }
}
