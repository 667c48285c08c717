//! The indexer's documents per second: stream batches of row changes through
//! `IndexerService::apply` into osmem-server (an OpenSearch-compatible
//! engine; no real cluster), with lookups on DynamoDB (moto) as the function
//! does them. `make bench-indexer` (shared/docs/search.md, "Measured").
//!
//! Each batch is what one stream batch of the function's event source
//! mapping carries (`OCTOSCOPE_BENCH_BATCH`, default 100 records): new pull
//! requests, their reviews (titled from the same batch) and commits, 20,000
//! documents in all (`OCTOSCOPE_BENCH_DOCS`). Prints documents per second and
//! the time per batch (p50 / p99). Under `cargo test` (no `--bench`) it runs
//! 300 documents, as a smoke test, and checks they are all searchable.

use std::sync::Arc;
use std::time::Instant;

use chrono::{Duration, TimeZone, Utc};
use octoscope::adapters::aws::dynamodb::{DynamoStore, create_table};
use octoscope::adapters::opensearch::OpenSearchIndex;
use octoscope::domain::*;
use octoscope::ports::{PageRequest, SearchIndex};
use octoscope::services::indexer::{IndexerService, RowChange};
use octoscope_testkit::moto::MotoServer;
use octoscope_testkit::osmem::OsmemServer;

const WORDS: [&str; 24] = [
    "rate",
    "limiter",
    "cache",
    "session",
    "retry",
    "backoff",
    "parser",
    "config",
    "deploy",
    "queue",
    "worker",
    "schema",
    "migration",
    "index",
    "search",
    "token",
    "refresh",
    "timeout",
    "metrics",
    "dashboard",
    "flaky",
    "test",
    "fix",
    "docs",
];

/// A small deterministic generator (the same documents on every run).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> usize {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) as usize
    }

    fn words(&mut self, n: usize) -> String {
        (0..n).map(|_| WORDS[self.next() % WORDS.len()]).collect::<Vec<_>>().join(" ")
    }
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Row changes of about `docs` documents: per pull request, one review and one commit.
fn changes(docs: usize) -> Vec<RowChange> {
    let mut rng = Lcg(7);
    let t0 = Utc.with_ymd_and_hms(2026, 1, 5, 9, 0, 0).unwrap();
    let mut rows = Vec::with_capacity(docs);
    for n in 1..=(docs / 3).max(1) as u64 {
        let repo = RepoName::parse(&format!("acme/service-{:02}", n % 20)).unwrap();
        let at = t0 + Duration::minutes(n as i64);
        let author = format!("dev{:03}", rng.next() % 200);
        let pull = PullRequest {
            repo: repo.clone(),
            number: n,
            id: Some(n as i64),
            title: rng.words(6),
            state: PrState::Open,
            draft: false,
            author: Some(author.clone()),
            created_at: at,
            updated_at: at,
            closed_at: None,
            merged_at: None,
            additions: None,
            deletions: None,
            changed_files: None,
            commits: None,
            labels: vec!["backend".into()],
            requested_reviewers: vec![],
            requested_teams: vec![],
            base_ref: Some("main".into()),
            head_ref: Some(format!("topic-{n}")),
            head_sha: None,
            body: Some(rng.words(40)),
        };
        let review = Review {
            repo: repo.clone(),
            pr_number: n,
            id: n as i64,
            author: Some(format!("dev{:03}", rng.next() % 200)),
            state: ReviewState::Approved,
            submitted_at: Some(at + Duration::minutes(30)),
            commit_id: None,
            body: Some(rng.words(12)),
        };
        let sha = format!("{:040x}", n.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let commit = Commit {
            repo: repo.clone(),
            sha,
            message: format!("{}\n\n{}", rng.words(5), rng.words(20)),
            author_name: Some(author.clone()),
            author_login: Some(author),
            committed_at: Some(at),
        };
        for new in [
            Change::pull_request(pull),
            Change::Review(review),
            Change::Commit { commit, branch: Some("main".into()), pushed_at: Some(at) },
        ] {
            rows.push(RowChange { old: None, new: Some(new) });
        }
    }
    rows
}

fn main() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let full = std::env::args().any(|a| a == "--bench");
        let docs = env("OCTOSCOPE_BENCH_DOCS", if full { 20_000 } else { 300 });
        let batch = env("OCTOSCOPE_BENCH_BATCH", 100).max(1);
        let sdk = MotoServer::shared().sdk_config().await;
        let client = aws_sdk_dynamodb::Client::new(&sdk);
        let table = format!("octoscope-bench-{}", std::process::id());
        create_table(&client, &table).await.unwrap();
        let index = OpenSearchIndex::new(&OsmemServer::shared().url, &format!("bench-{}", std::process::id())).unwrap();
        // The smoke run refreshes after each batch, so what it wrote is searchable at once.
        let index = Arc::new(if full { index } else { index.refreshing() });
        index.ensure_index().await.unwrap();
        let service = IndexerService::new(Arc::new(DynamoStore::new(client, &table)), index.clone());
        let rows = changes(docs);
        let mut times = Vec::new();
        let mut written = 0u64;
        let start = Instant::now();
        for chunk in rows.chunks(batch) {
            let t = Instant::now();
            let done = service.apply(chunk).await.expect("a batch is indexed");
            times.push(t.elapsed());
            written += (done.upserted + done.deleted) as u64;
        }
        let elapsed = start.elapsed();
        assert_eq!(written as usize, rows.len(), "every row writes one document");
        if !full {
            let all = index.search(&SearchQuery::parse("").unwrap(), &PageRequest::first(1)).await.unwrap();
            assert_eq!(all.total as usize, rows.len(), "{all:?}");
        }
        times.sort();
        let pct = |p: f64| times[((times.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1e3;
        println!(
            "indexer: {written} documents in {} batches of {batch} rows, {:.2} s = {:.0} documents/s; \
             a batch p50 {:.1} ms, p99 {:.1} ms (osmem-server, lookups on moto)",
            times.len(),
            elapsed.as_secs_f64(),
            written as f64 / elapsed.as_secs_f64(),
            pct(0.5),
            pct(0.99),
        );
    });
}
