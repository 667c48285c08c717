//! Moving a repository's items to its new name (`moves.rs` decides when):
//! the items of its partition are read back as the changes that wrote them
//! and written under the new name by the ordinary last-writer-wins writes
//! (so an item present under both names keeps the newer), then deleted;
//! items keyed by GitHub's id (runs, jobs, deployments, statuses) only have
//! their repository and per-repository index keys rewritten.

use std::collections::HashMap;

use anyhow::Context as _;
use aws_sdk_dynamodb::types::AttributeValue;

use super::DynamoStore;
use super::codec::*;
use super::counters;
use super::ops::{Query, Range, Task, corrupt, delete_request, run_bounded};
use crate::adapters::repo_moves::under;
use crate::domain::*;
use crate::ports::StoreError;

/// Items rewritten at once while moving.
const CONCURRENCY: usize = 16;

/// The change that wrote `i` (an item of a repository's partition), under
/// `repo`; a pull request with its body (`bodies`: the partition's body items
/// by number). None for a body item: its pull request's change carries it.
fn change_of(i: &Item, repo: &RepoName, bodies: &HashMap<u64, String>) -> anyhow::Result<Option<Change>> {
    let entity = i.req_str("entity")?;
    let change = match entity.as_str() {
        "repository" => Change::Repository(decode::repository(i)?),
        "branch" => Change::Branch(decode::branch(i)?),
        "pull_request" => {
            let mut pull = decode::pull(i)?;
            if i.str("body_sha").is_some() {
                pull.body = bodies.get(&pull.number).cloned();
            }
            Change::PullRequest { pull: Box::new(pull), known: decode::lists_known(i) }
        }
        "pull_body" => return Ok(None),
        "review" => Change::Review(decode::review(i)?),
        "review_comment" => Change::ReviewComment(decode::review_comment(i)?),
        "collaborator" => Change::Collaborator { repo: repo.clone(), member: decode::membership(i)? },
        "commit" | "branch_commit" => Change::Commit {
            commit: decode::commit(i)?,
            branch: i.str("branch").filter(|_| entity == "branch_commit"),
            pushed_at: i.time("pushed_at")?,
        },
        other => anyhow::bail!("a {other:?} item in a repository's partition"),
    };
    Ok(Some(under(&change, repo)))
}

/// One rewrite of an id-keyed item: its key, and the attributes to set.
struct Rename {
    key: Item,
    set: Vec<(&'static str, AttributeValue)>,
}

impl DynamoStore {
    /// Move what is stored under `from` to `target`; true if anything moved.
    pub(super) async fn move_history(&self, from: &RepoName, target: &RepoName) -> Result<bool, StoreError> {
        let items = self.query_all(&Query::table(key::repo(from), Range::All)).await?;
        let bodies: HashMap<u64, String> = items
            .iter()
            .filter(|i| i.str("entity").as_deref() == Some("pull_body"))
            .filter_map(|i| Some((i.num("number")?, i.str("body")?)))
            .collect();
        let changes = items
            .iter()
            .filter_map(|i| change_of(i, target, &bodies).transpose())
            .collect::<anyhow::Result<Vec<_>>>()
            .with_context(|| format!("reading {from}'s items to move them"))
            .map_err(corrupt)?;
        let mut moved = !items.is_empty();
        if moved {
            self.register(key::tracked_repo_sk(target), &[("repo", target.as_str())]).await?;
        }
        // New items first, old ones after: a move cut short leaves copies, never a gap.
        self.apply_plain(&changes, &Default::default()).await?;
        let deletes = items
            .iter()
            .map(|i| delete_request(key_of(i.str("pk").unwrap_or_default(), i.str("sk").unwrap_or_default())))
            .collect::<Result<Vec<_>, _>>()?;
        self.batch_write(deletes).await?;
        // The old copies are gone: the counts drop by what they counted (the new ones counted as created).
        let entity = |i: &&Item, e: &str| i.str("entity").as_deref() == Some(e);
        let pulls = items.iter().filter(|i| entity(i, "pull_request")).count() as i64;
        let live_repo = items.iter().any(|i| entity(&i, "repository") && i.flag("deleted") != Some(true));
        let gone = [(counters::PULLS.to_owned(), -pulls), (counters::REPOS.to_owned(), -i64::from(live_repo))];
        self.bump(&gone, None).await?;

        let mut renames = Vec::new();
        let runs = self.query_all(&Query::index("gsi2", key::runs_of(from.as_str()), Range::All)).await?;
        let mut jobs = self.query_all(&Query::index("gsi3", key::unfinished_jobs(from), Range::All)).await?;
        for run in &runs {
            let Some(id) = run.num::<i64>("id") else { continue };
            let mut set = vec![("repo", s(target.as_str())), ("gsi2pk", s(key::runs_of(target.as_str())))];
            if run.contains_key("gsi3pk") {
                set.push(("gsi3pk", s(key::unfinished_runs(target))));
            }
            renames.push(Rename { key: key_of(key::run(id), key::ONE), set });
            jobs.extend(self.query_all(&Query::table(key::run(id), Range::Prefix(key::JOB_PREFIX.into()))).await?);
        }
        let mut seen = std::collections::HashSet::new();
        for job in jobs.iter().filter(|j| j.str("repo").as_deref() == Some(from.as_str())) {
            let (Some(id), Some(run)) = (job.num::<i64>("id"), job.num::<i64>("run_id")) else { continue };
            if !seen.insert(id) {
                continue;
            }
            let mut set = vec![("repo", s(target.as_str()))];
            if job.contains_key("gsi3pk") {
                set.push(("gsi3pk", s(key::unfinished_jobs(target))));
            }
            renames.push(Rename { key: key_of(key::run(run), key::workflow_job_sk(id)), set });
        }
        for dep in self.query_all(&Query::index("gsi2", key::deployments_of(from), Range::All)).await? {
            let Some(id) = dep.num::<i64>("id") else { continue };
            let set = vec![("repo", s(target.as_str())), ("gsi2pk", s(key::deployments_of(target)))];
            renames.push(Rename { key: key_of(key::deployment(id), key::ONE), set });
            for st in self.query_all(&Query::table(key::deployment(id), Range::Prefix("ST#".into()))).await? {
                if let Some(sk) = st.str("sk") {
                    renames
                        .push(Rename { key: key_of(key::deployment(id), sk), set: vec![("repo", s(target.as_str()))] });
                }
            }
        }
        let tasks =
            renames.into_iter().map(|r| Box::pin(self.rename(r, from)) as Task<'_, Result<bool, StoreError>>).collect();
        for result in run_bounded(tasks, CONCURRENCY).await {
            moved |= result?;
        }
        Ok(moved)
    }

    /// Rewrite one id-keyed item, if it still names `from`.
    async fn rename(&self, r: Rename, from: &RepoName) -> Result<bool, StoreError> {
        let mut u = Update::default();
        for (attr, v) in r.set {
            u.set(attr, v);
        }
        let (a, v) = (u.name("repo"), u.value(s(from.as_str())));
        u.condition(format!("{a} = {v}"));
        self.update(r.key, u).await
    }
}
