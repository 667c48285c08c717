//! The dispatcher: coalesce queued gaps into one resync job per target, record
//! it, and launch it. The same on one machine (in-process) and on AWS (an SQS
//! batch in, ECS tasks out).

use anyhow::Context as _;
use std::collections::BTreeMap;

use crate::domain::{Gap, JobRecord, ResyncJob, Target};
use crate::ports::{Clock, JobLauncher, Store};

/// Coalesce `gaps` by target: one job per target, every kind, the oldest watermark.
pub fn coalesce(gaps: &[Gap], clock: &dyn Clock) -> Vec<ResyncJob> {
    let mut by_target: BTreeMap<&Target, Vec<Gap>> = BTreeMap::new();
    for g in gaps {
        by_target.entry(&g.target).or_default().push(g.clone());
    }
    let stamp = clock.now().format("%Y%m%dT%H%M%S%.3fZ");
    by_target
        .into_iter()
        .filter_map(|(target, gaps)| ResyncJob::coalesce(format!("resync-{stamp}-{target}"), &gaps))
        .collect()
}

/// Record and launch one job per target.
pub async fn dispatch(
    gaps: &[Gap],
    store: &dyn Store,
    launcher: &dyn JobLauncher,
    clock: &dyn Clock,
) -> anyhow::Result<Vec<ResyncJob>> {
    let jobs = coalesce(gaps, clock);
    for job in &jobs {
        store.save_job(&JobRecord::queued(job, clock.now())).await.context("recording a resync job")?;
        launcher.launch(job).await.with_context(|| format!("launching {}", job.id))?;
    }
    Ok(jobs)
}
