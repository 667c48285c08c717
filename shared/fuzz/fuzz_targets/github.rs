//! GitHub's answers, as a misbehaving or hostile GitHub could send them,
//! through the product's adapter (`GitHubClient`: transport, GraphQL and REST
//! decoding, the mapping into domain types), served over loopback.
//!
//! Input: byte 0 picks the read; then line 1 the status (empty: 200), line 2
//! the `Link` header, line 3 `x-ratelimit-remaining`, line 4 `retry-after`
//! (each empty: absent); the rest is the body. Only the first request gets it;
//! later ones (next pages, retries) get a 404.
//!
//! Invariant: every read ends, with data or an error — no panic, no hang.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use octoscope::adapters::github::GitHubClient;
use octoscope::domain::RepoName;
use octoscope::ports::{GitHubChecks, GitHubHooks, GitHubSource, HookTarget, SnapshotRequest};
use octoscope_fuzz::fakegithub::{Answer, FakeGitHub};
use octoscope_fuzz::{line, runtime};

static RT: LazyLock<tokio::runtime::Runtime> = LazyLock::new(runtime);
static HUB: LazyLock<(FakeGitHub, GitHubClient)> = LazyLock::new(|| {
    RT.block_on(async {
        let hub = FakeGitHub::start().await;
        let client = hub.client().await;
        (hub, client)
    })
});

/// The reads, in the order byte 0 picks them.
pub const READS: usize = 13;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else { return };
    let (status, rest) = line(rest);
    let (link, rest) = line(rest);
    let (remaining, rest) = line(rest);
    let (retry_after, body) = line(rest);
    let status = std::str::from_utf8(status).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(200);
    let mut headers = Vec::new();
    for (name, value) in [("link", link), ("x-ratelimit-remaining", remaining), ("retry-after", retry_after)] {
        if !value.is_empty() {
            headers.push((name.to_owned(), String::from_utf8_lossy(value).into_owned()));
        }
    }
    let (hub, client) = &*HUB;
    hub.set(Answer { status, headers, body: body.to_vec() });
    RT.block_on(read(client, pick as usize % READS));
    // Whatever the read did not ask for is not left for the next input.
    hub.set_none();
});

async fn read(gh: &GitHubClient, pick: usize) {
    let repo = RepoName::parse("acme/api").unwrap();
    let org = "acme".to_owned();
    let _ = match pick {
        0 => gh
            .repo_snapshots(&[
                SnapshotRequest { repo: repo.clone(), since: None },
                SnapshotRequest { repo: RepoName::parse("acme/web").unwrap(), since: Some(chrono::Utc::now()) },
            ])
            .await
            .map(|v| v.len()),
        1 => gh.org_snapshots(std::slice::from_ref(&org)).await.map(|v| v.len()),
        2 => gh.run_window(&repo, None).await.map(|_| 1),
        3 => gh.job_counts("acme", &["WFR_1".to_owned(), "WFR_2".to_owned()]).await.map(|v| v.len()),
        4 => gh.pull_requests(&repo, None).await.map(|p| p.pulls.len()),
        5 => gh.teams(&org).await.map(|v| v.len()),
        6 => gh.org_repos(&org).await.map(|v| v.len()),
        7 => gh.branches(&repo).await.map(|v| v.len()),
        8 => gh.workflow_runs(&repo, None).await.map(|v| v.len()),
        9 => gh.workflow_jobs(&repo, 1).await.map(|v| v.len()),
        10 => gh.deployments(&repo, None).await.map(|v| v.len()),
        11 => gh.branch_commits(&repo, "main", None).await.map(|v| v.len()),
        _ => gh.hooks(&HookTarget::Org(org)).await.map(|v| v.len()),
    };
}
