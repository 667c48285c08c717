//! How workflow jobs are found by creation time (the CI metrics' jobs of a
//! window, the rollup settle's jobs of a day).
//!
//! A job lives in its run's partition (`RUN#{run id}`), and a job is created
//! with its run or soon after: the jobs created in a window are, nearly all,
//! the jobs of the runs created from [`NEAR`] before the window to [`SKEW`]
//! after it, whose partitions the CI reads take whole anyway (a run and its
//! jobs in one Query). A store writing at once puts every job in the time
//! index (gsi1 `WJS#{shard}` / `{created_at}#{id}`, one index write on its
//! first write). The webhook function's store ([`DynamoStore::with_stream_derivation`])
//! does not: the ledger-stream function gives the index entry only to the
//! jobs its batches show created apart from their run (more than [`NEAR`]
//! after it or more than [`SKEW`] before it: a re-run days later, a job
//! waiting for an approval), or whose run the table does not hold yet
//! ([`DynamoStore::index_apart_jobs`]). Most of the webhook's jobs thus cost
//! their item only, one write unit less on a job's first delivery.
//!
//! A reader takes both: the index's entries in the window (whose partitions
//! it reads too) and the jobs of the near runs' partitions, each job once,
//! kept where its own time is in the window. A job whose time the index
//! entry was set from is the one its item holds, so the reads agree with the
//! index wherever it is. A job created apart from its run is found by the
//! reads once its stream batch has been handled (seconds; a rollup settle
//! takes marks at least a minute old, after that). A job without
//! `created_at` (GitHub's payloads before jobs carried it) is indexed by its
//! `started_at` by every store, as before.

use std::collections::{BTreeMap, HashMap};

use chrono::TimeDelta;

use super::DynamoStore;
use super::codec::*;
use super::ops::ByKey;
use super::pages::ItemChange;
use crate::domain::Timestamp;
use crate::ports::StoreError;

/// How long after its run a job may be created and still be found through
/// its run (a workflow's later jobs are created as earlier ones finish).
pub(super) const NEAR: TimeDelta = TimeDelta::hours(6);
/// How long before its run a job may be created and still be found through
/// it (the two times are GitHub's, a second apart at most in practice).
pub(super) const SKEW: TimeDelta = TimeDelta::minutes(1);

/// The time a job is listed by: its `created_at`, or else its `started_at`.
pub(super) fn listed_at(job: &Item) -> Option<String> {
    job.str("created_at").or_else(|| job.str("started_at"))
}

/// `[since, until)` widened to the creation times of the runs whose jobs
/// may have been created in it.
pub(super) fn runs_around(since: &Timestamp, until: &Timestamp) -> (Timestamp, Timestamp) {
    (*since - NEAR, *until + SKEW)
}

/// The jobs among `parts` (items of run partitions) listed at a time in
/// `[since, until)`, each once, in time order (then by id).
pub(super) fn jobs_within<'a>(parts: &'a ByKey, since: &Timestamp, until: &Timestamp) -> Vec<&'a Item> {
    let (since, until) = (ts(since), ts(until));
    let mut out: BTreeMap<String, &Item> = BTreeMap::new();
    for item in parts.values().filter(|i| i.str("entity").as_deref() == Some("workflow_job")) {
        let (Some(at), Some(id)) = (listed_at(item), item.num::<i64>("id")) else { continue };
        if at >= since && at < until {
            out.insert(format!("{at}#{}", num(id)), item);
        }
    }
    out.into_values().collect()
}

/// Whether a job created at `job` is found through its run created at `run`.
fn near(job: &Timestamp, run: &Timestamp) -> bool {
    *job >= *run - SKEW && *job <= *run + NEAR
}

impl DynamoStore {
    /// The ledger-stream function's part: the jobs a batch shows written
    /// with a `created_at` they did not have (new ones, nearly always)
    /// and without an index entry (the webhook function's), whose run the
    /// table does not hold or was created apart from them, get their time
    /// index entry (one UpdateItem each, conditioned on the item still
    /// holding that `created_at` and no entry: a retried batch writes
    /// nothing, and its stream sees no change again). One
    /// BatchGetItem of their runs. Returns how many it indexed.
    pub async fn index_apart_jobs(&self, changes: &[ItemChange]) -> Result<usize, StoreError> {
        let created = |i: &Item| i.str("created_at");
        let jobs: Vec<&Item> = changes
            .iter()
            .filter(|c| c.old.as_ref().is_none_or(|o| created(o).is_none()))
            .filter_map(|c| c.new.as_ref())
            .filter(|i| i.str("entity").as_deref() == Some("workflow_job"))
            .filter(|i| created(i).is_some() && !i.contains_key("gsi1pk"))
            .collect();
        if jobs.is_empty() {
            return Ok(0);
        }
        let keys = jobs.iter().filter_map(|j| j.num::<i64>("run_id")).map(|r| key_of(key::run(r), key::ONE)).collect();
        let runs: HashMap<i64, Option<Timestamp>> = self
            .batch_get(keys)
            .await?
            .iter()
            .filter_map(|r| Some((r.num::<i64>("id")?, r.time("created_at").ok().flatten())))
            .collect();
        let mut indexed = 0;
        for job in jobs {
            let (Some(id), Some(run), Some(at)) = (job.num::<i64>("id"), job.num::<i64>("run_id"), created(job)) else {
                continue;
            };
            let job_at = parse_ts(&at).map_err(super::ops::corrupt)?;
            if runs.get(&run).copied().flatten().is_some_and(|run_at| near(&job_at, &run_at)) {
                continue;
            }
            let mut u = Update::default();
            u.set("gsi1pk", s(key::shard(key::WORKFLOW_JOBS, &num(id)))).set("gsi1sk", s(format!("{at}#{}", num(id))));
            let (pk, c, v, i) = (u.name("pk"), u.name("created_at"), u.value(s(at.clone())), u.name("gsi1pk"));
            u.condition(format!("attribute_exists({pk}) AND {c} = {v} AND attribute_not_exists({i})"));
            // A failed condition: the job is gone (a replay's reset), holds another time now,
            // or is indexed already (a retried batch).
            if self.update(key_of(key::run(run), key::workflow_job_sk(id)), u).await? {
                indexed += 1;
            }
        }
        Ok(indexed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_is_near_its_run_from_a_minute_before_to_six_hours_after() {
        let run = parse_ts("2030-03-04T09:00:00.000Z").unwrap();
        let at = |s: &str| parse_ts(s).unwrap();
        assert!(near(&at("2030-03-04T08:59:00.000Z"), &run));
        assert!(near(&at("2030-03-04T15:00:00.000Z"), &run));
        assert!(!near(&at("2030-03-04T08:58:59.999Z"), &run));
        assert!(!near(&at("2030-03-04T15:00:00.001Z"), &run));
        // The runs read for a window reach exactly as far.
        let (since, until) = runs_around(&at("2030-03-04T12:00:00.000Z"), &at("2030-03-04T13:00:00.000Z"));
        assert_eq!((ts(&since), ts(&until)), ("2030-03-04T06:00:00.000Z".into(), "2030-03-04T13:01:00.000Z".into()));
    }
}
