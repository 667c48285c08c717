//! Search latency on SQLite FTS5 over a generated org: 100,000 pull requests
//! and 1,000,000 commits in 20 repositories by 200 people, their titles and
//! messages drawn from a 400-word vocabulary with a skewed (Zipf-like)
//! frequency, so some words are in a third of all documents and others in a
//! few hundred. Written into a temporary store through `Store::apply_changes`
//! (the store's own write path: its triggers index what it writes), then each
//! query asked through the real Router (`GET /api/search`, JSON included), one
//! request at a time; prints matches, p50 / p99 / max per query.
//!
//! `cargo bench -p octoscope-core --bench search` (release; the full size).
//! Under `cargo test` (no `--bench`) it runs a small smoke size instead.
//! `OCTOSCOPE_BENCH_DIR=DIR` keeps the data (and reuses it when there).

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::{TimeDelta, TimeZone, Utc};
use http_body_util::BodyExt;
use octoscope::domain::*;
use octoscope::ports::store::*;
use tower::ServiceExt;

#[path = "../tests/common/bench.rs"]
mod bench;
use bench::percentile;
#[path = "../tests/common/rng.rs"]
mod rng;
use rng::Rng;

/// A word skewed towards the front of the vocabulary: the first words are
/// very common, the last rare.
fn word(rng: &mut Rng) -> &'static str {
    let u = rng.below(1 << 24) as f64 / (1u64 << 24) as f64;
    WORDS[((u * u) * WORDS.len() as f64) as usize]
}

fn words(rng: &mut Rng, min: u64, max: u64) -> String {
    let n = min + rng.below(max - min + 1);
    (0..n).map(|_| word(rng)).collect::<Vec<_>>().join(" ")
}

#[rustfmt::skip]
const WORDS: &[&str] = &[
    "fix", "add", "update", "the", "to", "in", "for", "of", "and", "remove", "test", "tests", "refactor", "bump",
    "use", "when", "on", "with", "from", "support", "api", "docs", "error", "handling", "config", "build", "ci",
    "release", "version", "dependency", "deps", "client", "server", "cache", "request", "response", "timeout",
    "retry", "logging", "metrics", "rate", "limiter", "gateway", "parser", "queue", "index", "login", "auth",
    "token", "session", "user", "users", "admin", "page", "view", "button", "form", "validation", "schema",
    "migration", "database", "query", "search", "filter", "sort", "pagination", "cursor", "webhook", "event",
    "events", "handler", "worker", "job", "jobs", "pipeline", "deploy", "deployment", "staging", "production",
    "rollback", "feature", "flag", "flags", "experiment", "dashboard", "chart", "report", "export", "import", "csv",
    "json", "yaml", "file", "files", "upload", "download", "storage", "bucket", "s3", "lambda", "function",
    "container", "docker", "image", "kubernetes", "helm", "terraform", "module", "modules", "lint", "format",
    "clippy", "warning", "warnings", "crash", "panic", "leak", "memory", "cpu", "performance", "slow", "fast",
    "faster", "latency", "throughput", "benchmark", "profile", "trace", "tracing", "span", "spans", "log", "logs",
    "alert", "alerts", "notification", "email", "slack", "message", "messages", "consumer", "producer", "stream",
    "streams", "kafka", "topic", "partition", "shard", "replica", "leader", "election", "lock", "locks", "mutex",
    "race", "condition", "deadlock", "thread", "threads", "async", "await", "future", "task", "tasks", "scheduler",
    "cron", "timer", "clock", "time", "timezone", "date", "parse", "serialize", "deserialize", "encode", "decode",
    "base64", "utf8", "unicode", "string", "strings", "bytes", "buffer", "stream", "reader", "writer", "io",
    "network", "socket", "tcp", "http", "https", "tls", "certificate", "proxy", "dns", "resolver", "endpoint",
    "route", "router", "middleware", "cors", "header", "headers", "cookie", "cookies", "redirect", "status", "code",
    "codes", "payment", "invoice", "billing", "subscription", "plan", "pricing", "checkout", "cart", "order",
    "orders", "inventory", "product", "catalog", "shipping", "address", "customer", "account", "accounts", "profile",
    "avatar", "settings", "preferences", "theme", "dark", "mode", "mobile", "layout", "responsive", "css", "style",
    "font", "icon", "icons", "modal", "dialog", "tooltip", "menu", "navigation", "sidebar", "header", "footer",
    "table", "column", "columns", "row", "rows", "grid", "list", "item", "items", "card", "badge", "spinner",
    "loading", "empty", "state", "store", "reducer", "action", "actions", "hook", "hooks", "component", "components",
    "prop", "props", "type", "types", "interface", "generic", "trait", "impl", "struct", "enum", "macro", "crate",
    "package", "npm", "cargo", "pip", "gradle", "maven", "java", "kotlin", "swift", "rust", "go", "python",
    "typescript", "javascript", "react", "vue", "angular", "svelte", "node", "deno", "bun", "wasm", "grpc",
    "protobuf", "graphql", "rest", "openapi", "swagger", "contract", "fixture", "fixtures", "mock", "stub", "fake",
    "flaky", "snapshot", "coverage", "fuzz", "fuzzing", "property", "assertion", "integration", "e2e", "unit",
    "smoke", "regression", "bug", "issue", "typo", "readme", "changelog", "license", "copyright", "security",
    "vulnerability", "cve", "audit", "secret", "secrets", "password", "hash", "encrypt", "decrypt", "key", "keys",
    "rotation", "permission", "permissions", "role", "roles", "policy", "policies", "tenant", "tenants", "org",
    "organization", "team", "teams", "member", "members", "invite", "onboarding", "signup", "oauth", "saml", "sso",
    "mfa", "otp", "captcha", "spam", "abuse", "moderation", "report", "translation", "locale", "i18n", "l10n",
    "accessibility", "a11y", "aria", "keyboard", "focus", "scroll", "resize", "drag", "drop", "clipboard", "paste",
    "undo", "redo", "history", "backup", "restore", "snapshot", "archive", "compaction", "vacuum", "bucket", "token",
    "window", "sliding", "leaky",
];

const REPOS: u64 = 20;
const AUTHORS: u64 = 200;
const DAYS: i64 = 730;

fn end() -> Timestamp {
    Utc.with_ymd_and_hms(2026, 11, 2, 0, 0, 0).unwrap()
}

fn repo(i: u64) -> RepoName {
    RepoName::parse(&format!("acme/service-{i:02}")).unwrap()
}

fn generate(pulls: u64, commits: u64) -> Vec<Change> {
    let mut rng = Rng(7);
    let start = end() - TimeDelta::days(DAYS);
    let span = (DAYS * 86_400) as u64;
    let mut out = Vec::with_capacity((pulls + commits) as usize);
    for n in 1..=pulls {
        let r = repo(n % REPOS);
        let created = start + TimeDelta::seconds(rng.below(span) as i64);
        let state = match rng.below(20) {
            0 => PrState::Open,
            1 | 2 => PrState::Closed,
            _ => PrState::Merged,
        };
        let closed_at = (state != PrState::Open).then(|| created + TimeDelta::hours(1 + rng.below(200) as i64));
        let mut title = words(&mut rng, 3, 8);
        if n % 1_000 == 0 {
            title = format!("Add a sliding window rate limiter to the gateway {n}");
        }
        out.push(Change::pull_request(PullRequest {
            repo: r,
            number: n,
            id: Some(n as i64),
            title,
            state,
            draft: false,
            author: Some(format!("dev{:03}", rng.below(AUTHORS))),
            created_at: created,
            updated_at: closed_at.unwrap_or(created),
            closed_at,
            merged_at: (state == PrState::Merged).then_some(closed_at.unwrap_or(created)),
            additions: None,
            deletions: None,
            changed_files: None,
            commits: None,
            labels: (0..rng.below(3)).map(|_| word(&mut rng).to_owned()).collect(),
            requested_reviewers: vec![],
            requested_teams: vec![],
            base_ref: Some("main".into()),
            head_ref: Some(format!("{}-{n}", word(&mut rng))),
            head_sha: None,
            body: None,
        }));
    }
    for i in 0..commits {
        let sha = format!("{:016x}{:016x}{:08x}", rng.next(), rng.next(), i as u32);
        let subject = words(&mut rng, 3, 10);
        let message = if rng.below(10) < 3 { format!("{subject}\n\n{}", words(&mut rng, 10, 40)) } else { subject };
        let author = rng.below(AUTHORS);
        out.push(Change::Commit {
            commit: Commit {
                repo: repo(rng.below(REPOS)),
                sha,
                message,
                author_login: Some(format!("dev{author:03}")),
                author_name: Some(format!("Developer {author}")),
                committed_at: Some(start + TimeDelta::seconds(rng.below(span) as i64)),
            },
            branch: Some("main".into()),
            pushed_at: None,
        });
    }
    out
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (pulls, commits, requests) = if full { (100_000, 1_000_000, 200) } else { (1_000, 5_000, 3) };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(run(pulls, commits, requests));
}

async fn run(pulls: u64, commits: u64, requests: usize) {
    let tmp = tempfile::tempdir().unwrap();
    let (store, archive, reuse) = bench::open(&tmp);
    if !reuse {
        let changes = generate(pulls, commits);
        let t = Instant::now();
        for chunk in changes.chunks(50_000) {
            store.apply_changes(chunk).await.unwrap();
        }
        println!(
            "wrote {pulls} pull requests and {commits} commits through the store (indexed by its triggers) in {:.1} s",
            t.elapsed().as_secs_f64()
        );
    }
    let router = bench::router(store.clone(), archive);
    // One of the pull requests titled alike, asked by its whole title: it ranks first.
    let exact = format!("Add a sliding window rate limiter to the gateway {pulls}");
    let exact_key = format!("pr:{}#{pulls}", repo(pulls % REPOS));
    let queries = [
        "rate limiter",
        "\"sliding window rate limiter\"",
        exact.as_str(),
        "retry repo:acme/service-07",
        "author:dev042 cache",
        "type:pr is:open parser",
        "type:commit migration database",
        "created:>2026-10-01 deadlock",
        "flaky -test",
        "kafka consumer -fix",
        "fix",
        "fix the",
        "repo:acme/service-03",
        "type:pr author:dev007",
        "",
    ];
    // OCTOSCOPE_BENCH_ONLY=TEXT asks only the queries containing TEXT (to profile one).
    let only = std::env::var("OCTOSCOPE_BENCH_ONLY").ok();
    println!("{:<58} {:>9} {:>9} {:>9} {:>9} {:>6}", "q (20 a page)", "matches", "p50 ms", "p99 ms", "max ms", "runs");
    for q in queries.iter().filter(|q| only.as_ref().is_none_or(|o| q.contains(o.as_str()))) {
        let path =
            format!("/api/search?limit=20&q={}", form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>());
        let mut times = Vec::with_capacity(requests);
        let mut total = String::new();
        let began = Instant::now();
        for i in 0..requests + 5 {
            // A slow query stops after 20 timed requests past 30 seconds.
            if times.len() >= 20 && began.elapsed() > Duration::from_secs(30) {
                break;
            }
            let t = Instant::now();
            let resp = router.clone().oneshot(Request::get(path.as_str()).body(Body::empty()).unwrap()).await.unwrap();
            let status = resp.status();
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(status, StatusCode::OK, "{path}: {}", String::from_utf8_lossy(&body));
            if i >= 5 {
                times.push(t.elapsed());
            }
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            // A lower bound beyond what the search counts exactly: "1000+".
            let plus = if v["total_is_exact"].as_bool().unwrap() { "" } else { "+" };
            total = format!("{}{plus}", v["total"].as_u64().unwrap());
            if *q == exact {
                assert_eq!(v["items"][0]["key"], exact_key.as_str(), "an exact title ranks first");
            }
        }
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "{:<58} {:>9} {:>9.2} {:>9.2} {:>9.2} {:>6}",
            format!("{q:?}"),
            total,
            ms(percentile(&times, 50)),
            ms(percentile(&times, 99)),
            ms(*times.last().unwrap()),
            times.len()
        );
    }
}
