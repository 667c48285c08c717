//! What the commands print: the welcome of `serve`, the report of `check`,
//! the progress bar and lines of `backfill`.

use std::net::SocketAddr;
use std::time::Duration;

use octoscope::config::{SecretSource, ServeConfig};
use octoscope::domain::{CheckRun, SearchComparison};
use octoscope::error::error_chain;
use octoscope::ports::GitHubSource;
use octoscope::services::backfill::BackfillEvent;
use octoscope::services::completeness::Repair;

pub fn remaining(budget_left: Option<u64>) -> String {
    budget_left.map_or_else(|| "unknown".to_owned(), |n| n.to_string())
}

pub fn checked(run: &CheckRun) {
    println!(
        "checked {} repositories and {} organisations with {} GitHub requests; {} failed deliveries redelivered",
        run.repos_compared, run.orgs_compared, run.requests, run.redelivered
    );
    if let Some(search) = &run.search {
        searched(search);
    }
    if run.gaps.is_empty() {
        println!("no gaps: the store matches GitHub");
        return;
    }
    println!("{} gaps:", run.gaps.len());
    for g in &run.gaps {
        println!("  {} {:?}: {}", g.target, g.kind, g.reason);
    }
}

/// The search index against the store.
fn searched(s: &SearchComparison) {
    if let Some(e) = &s.error {
        println!("search index not compared: {e}");
        return;
    }
    println!(
        "search index: {} documents for the store's {}, in {} scopes (type and repository)",
        s.index_documents, s.store_documents, s.scopes
    );
    if s.drift.is_empty() {
        return;
    }
    println!("{} scopes differ:", s.drift.len());
    for d in &s.drift {
        let repo = if d.repo.is_empty() { "-" } else { d.repo.as_str() };
        println!(
            "  {} {repo}: {} in the store (newest {:?}), {} in the index (newest {:?})",
            d.kind.as_str(),
            d.store_count,
            d.store_newest,
            d.index_count,
            d.index_newest
        );
    }
    match s.repaired {
        true => println!("reindexed: {} documents written again, {} removed", s.rewritten, s.removed),
        false => println!("search index not repaired (dry run)"),
    }
}

pub fn repaired(repair: &Repair, github: &dyn GitHubSource) {
    println!(
        "{} resync jobs ran; {} failed; {} GitHub requests remaining",
        repair.jobs,
        repair.failed.len(),
        remaining(github.budget().remaining)
    );
    for (id, e) in &repair.failed {
        println!("  {id}: {}", error_chain(e));
    }
}

/// What the check decided to notify (sent by `octoscope serve`, which reads
/// the same outbox).
pub fn notified(decided: usize) {
    if decided > 0 {
        let s = if decided == 1 { "" } else { "s" };
        println!("{decided} notification{s} decided (`octoscope serve` sends them)");
    }
}

/// The backfill's progress: a bar on a terminal (hidden otherwise), and one
/// printed line per target done.
pub fn backfill_progress() -> (indicatif::ProgressBar, impl FnMut(BackfillEvent<'_>) + Send) {
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} pull requests, ETA {eta} — {msg}",
        )
        .expect("a valid template"),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    let b = bar.clone();
    let report = move |event: BackfillEvent<'_>| match event {
        BackfillEvent::Started { .. } => {
            b.reset();
            b.set_length(0);
        }
        BackfillEvent::Progress { n, total, target, progress: p, budget_left } => {
            if let Some(all) = p.total_pulls {
                b.set_length(all);
            }
            b.set_position(p.pulls);
            let left = remaining(budget_left);
            b.set_message(format!("{n}/{total} {target}: {} written; GitHub budget left: {left}", p.written));
        }
        // Printed, not drawn: the bar is hidden when stdout is not a terminal.
        BackfillEvent::Done { target, progress: p } => {
            b.suspend(|| println!("{target}: {} pull requests in {} pages, {} written", p.pulls, p.pages, p.written))
        }
    };
    (bar, report)
}

pub fn welcome(config: &ServeConfig, addr: SocketAddr, dashboard: bool, empty: bool) {
    let secret = match &config.secret_source {
        SecretSource::Environment => "from GITHUB_WEBHOOK_SECRET".to_owned(),
        SecretSource::File { path, created } => {
            format!("the contents of {}{}", path.display(), if *created { " (just created)" } else { "" })
        }
    };
    println!("Octoscope is ready. Point a GitHub webhook at it (organization or repository → Settings → Webhooks):");
    println!("  Payload URL   http://{addr}/webhook   (GitHub must reach it: use your public URL or a tunnel)");
    println!("  Content type  application/json");
    println!("  Secret        {secret}");
    println!("  Events        Send me everything");
    println!("API: http://{addr}/api/health  (repos, pulls, teams, commits, workflow-runs, deliveries)");
    if dashboard {
        println!("Dashboard: http://{addr}/");
    }
    if empty {
        println!("The store is empty. To look around first: `make demo` (octoscope demo) loads a sample organisation.");
    }
    if !config.api_tokens.is_empty() {
        println!("API calls need 'Authorization: Bearer <token>' with a token from OCTOSCOPE_API_TOKENS.");
    }
    // Last, and in this exact form: scripts and tests wait for this line.
    println!("octoscope listening on http://{addr}");
}
