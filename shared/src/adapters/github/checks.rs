//! The integrity check's reads (`GitHubChecks`): batched snapshots, run
//! windows and job counts.

use async_trait::async_trait;
use serde_json::json;

use super::model::*;
use super::*;

impl Budgeted for GitHubClient {
    fn budget(&self) -> RateBudget {
        self.routes.budget()
    }

    fn requests_by_installation(&self) -> InstallationRequests {
        self.routes.requests()
    }
}

#[async_trait]
impl GitHubChecks for GitHubClient {
    /// Batches of [`queries::SNAPSHOT_BATCH`] repositories per request, each
    /// batch of one installation's repositories (its token sees no other). A
    /// repository GitHub does not know (or these credentials cannot see), or
    /// whose owner has no installation, is left out of the result, with a
    /// warning, rather than failing the batch. With several installations, one
    /// whose budget is spent (or that GitHub cannot serve now) leaves its
    /// repositories out too, so the others are still compared; they are
    /// compared again by the next check.
    async fn repo_snapshots(&self, repos: &[SnapshotRequest]) -> Result<Vec<RepoSnapshot>, GitHubError> {
        // Repositories by installation, in the order first asked.
        let mut groups: Vec<(&transport::Transport, Vec<SnapshotRequest>)> = Vec::new();
        for r in repos {
            let t = match self.routes.of(r.repo.owner()) {
                Ok(t) => t,
                Err(e) => {
                    tracing::warn!(repo = %r.repo, error = %e, "repository not compared");
                    continue;
                }
            };
            match groups.iter_mut().find(|(g, _)| std::ptr::eq(*g, t)) {
                Some((_, group)) => group.push(r.clone()),
                None => groups.push((t, vec![r.clone()])),
            }
        }
        let mut out = Vec::with_capacity(repos.len());
        for (t, group) in groups {
            for batch in group.chunks(queries::SNAPSHOT_BATCH) {
                match self.repo_batch(t, batch).await {
                    Ok(found) => out.extend(found),
                    Err(e) if self.routes.several() && e.is_retryable() => {
                        let owner = batch[0].repo.owner();
                        tracing::warn!(owner, repos = batch.len(), error = %e, "repositories not compared: \
                                       their installation cannot read now; the others go on");
                        break;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(out)
    }

    /// One request per organisation with up to 100 teams (the newest
    /// repositories come with the first page), one more per further 100 teams.
    async fn org_snapshots(&self, orgs: &[String]) -> Result<Vec<OrgSnapshot>, GitHubError> {
        let mut out = Vec::with_capacity(orgs.len());
        for org in orgs {
            let t = match self.routes.of(org) {
                Ok(t) => t,
                Err(e) => {
                    tracing::warn!(org, error = %e, "organisation not compared");
                    continue;
                }
            };
            match self.org_snapshot(t, org).await {
                Ok(snapshot) => out.push(snapshot),
                Err(e) if self.routes.several() && e.is_retryable() => {
                    tracing::warn!(org, error = %e, "organisation not compared: its installation cannot read now");
                }
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    async fn run_window(&self, repo: &RepoName, since: Option<Timestamp>) -> Result<RunWindow, GitHubError> {
        let created = since.map(|s| created_filter(s, None));
        let (total, runs) = self.runs_page(repo, created.as_deref(), 1).await?;
        Ok(RunWindow { total, runs: Self::listed_runs(repo, runs) })
    }

    async fn job_counts(&self, owner: &str, node_ids: &[String]) -> Result<Vec<JobCount>, GitHubError> {
        let t = self.routes.of(owner)?;
        // Without Checks GitHub nulls every run (its check suite is
        // forbidden): asking would cost a request per 100 runs for nothing.
        if !t.may_read("checks").await? {
            tracing::info!(
                owner,
                runs = node_ids.len(),
                "job counts not asked: the GitHub App's installation was not granted Checks (read); \
                 the resync reads these runs' jobs, the check leaves them uncompared"
            );
            return Ok(Vec::new());
        }
        let mut out = Vec::with_capacity(node_ids.len());
        for ids in node_ids.chunks(queries::NODES_BATCH) {
            let (data, errors): (NodesData<RunJobsNode>, _) =
                t.graphql_lenient(queries::RUN_JOB_COUNTS, json!({ "ids": ids })).await?;
            let at = At::new(&errors, &["nodes"]);
            let (nodes, gone) =
                sort_items(data.nodes, &at, |i| format!("workflow run {}", ids.get(i).map_or("?", |s| s)));
            for g in gone {
                // A run deleted since it was listed: nothing to count.
                tracing::info!(what = %g.what, why = %g.why, "job count left out");
            }
            for (i, node) in nodes.into_iter().enumerate() {
                match node.job_count() {
                    Some(c) => out.push(c),
                    None => {
                        tracing::warn!(node = i, "a node that is not a workflow run (or has no check suite) left out")
                    }
                }
            }
        }
        Ok(out)
    }
}

impl GitHubClient {
    /// One organisation's teams (one request per 100) and newest repositories.
    async fn org_snapshot(&self, t: &transport::Transport, org: &String) -> Result<OrgSnapshot, GitHubError> {
        // Teams are asked for only when the credentials may read them (Members):
        // GitHub would null the whole organisation for that field.
        let teams = t.may_read("members").await?;
        let mut snapshot = OrgSnapshot {
            org: org.clone(),
            teams: Vec::new(),
            teams_withheld: !teams,
            repos_total: None,
            recent_repos: Vec::new(),
        };
        if !teams {
            tracing::warn!(org, "teams not compared: the GitHub App's installation was not granted Members (read)");
        }
        let mut after: Option<String> = None;
        loop {
            let first_page = after.is_none();
            let vars = json!({ "org": org, "after": after, "teams": teams });
            let (data, errors): (OrgData<OrgTeamsOf>, _) = t.graphql_lenient(queries::ORG_TEAMS, vars).await?;
            let Some(found) = data.organization else {
                return Err(t.graphql_failure("OrgTeams", &errors, format!("organization {org}")));
            };
            let mut next = None;
            if let Some(page) = found.teams {
                let at = At::new(&errors, &["organization", "teams", "nodes"]);
                snapshot.teams.extend(
                    readable(page.nodes, &at, |i| format!("team #{i} of {org}"))
                        .into_iter()
                        .map(|t| (t.slug, t.members.total_count)),
                );
                next = page.page_info.next();
            }
            if first_page && let Some(repos) = found.repositories {
                snapshot.repos_total = Some(repos.total_count);
                let at = At::new(&errors, &["organization", "repositories", "nodes"]);
                for r in readable(repos.nodes, &at, |i| format!("repository #{i} of {org}")) {
                    match RepoName::parse(&r.name_with_owner) {
                        Ok(name) => snapshot.recent_repos.push(name),
                        Err(e) => tracing::warn!(name = %r.name_with_owner, error = %e, "repository name left out"),
                    }
                }
            }
            after = next;
            if after.is_none() {
                break;
            }
        }
        Ok(snapshot)
    }
}
