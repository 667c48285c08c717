//! The backfill: full history from the GitHub API, target by target, through
//! the resync (so a stopped backfill resumes from each target's checkpoint).

use std::sync::Arc;

use anyhow::Context as _;

use crate::domain::{GapKind, RepoName, ResyncJob, Target};
use crate::ports::GitHubSource;
use crate::services::resync::{Progress, ResyncService};

/// What a backfill reports as it goes.
#[derive(Debug, Clone, Copy)]
pub enum BackfillEvent<'a> {
    /// Target `n` of `total` starts.
    Started { n: usize, total: usize, target: &'a Target },
    /// A page of it is stored; `budget_left` is GitHub's remaining request budget, when known.
    Progress { n: usize, total: usize, target: &'a Target, progress: &'a Progress, budget_left: Option<u64> },
    /// It is done.
    Done { target: &'a Target, progress: &'a Progress },
}

pub struct BackfillService {
    github: Arc<dyn GitHubSource>,
    resync: Arc<ResyncService>,
}

impl BackfillService {
    pub fn new(github: Arc<dyn GitHubSource>, resync: Arc<ResyncService>) -> Self {
        Self { github, resync }
    }

    /// Backfill `repos` and `orgs` (their teams, and every repository of
    /// theirs), telling `report` how it goes.
    pub async fn run(
        &self,
        mut repos: Vec<RepoName>,
        orgs: Vec<String>,
        mut report: impl FnMut(BackfillEvent<'_>) + Send,
    ) -> anyhow::Result<()> {
        for org in &orgs {
            let listed = self.github.org_repos(org).await;
            repos.extend(listed.with_context(|| format!("listing the repositories of {org}"))?);
        }
        repos.sort();
        repos.dedup();
        let mut targets: Vec<Target> = orgs.into_iter().map(Target::Org).collect();
        targets.extend(repos.into_iter().map(Target::Repo));
        let total = targets.len();
        for (i, target) in targets.iter().enumerate() {
            let n = i + 1;
            let kinds = match target {
                Target::Org(_) => vec![GapKind::Teams],
                Target::Repo(_) => GapKind::REPO.to_vec(),
            };
            // A stable id: a stopped backfill of the same target resumes from its checkpoint.
            let job = ResyncJob { id: format!("backfill-{target}"), target: target.clone(), kinds, watermark: None };
            report(BackfillEvent::Started { n, total, target });
            let budget_left = || self.github.budget().remaining;
            let done = self
                .resync
                .run(&job, |progress| {
                    report(BackfillEvent::Progress { n, total, target, progress, budget_left: budget_left() })
                })
                .await
                .with_context(|| format!("backfilling {target}"))?;
            report(BackfillEvent::Done { target, progress: &done });
        }
        Ok(())
    }
}
