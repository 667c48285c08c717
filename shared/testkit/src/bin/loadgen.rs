//! Load generator: posts signed webhook deliveries to a running `octoscope
//! serve` and prints throughput and latency percentiles.
//!
//! Each request is a distinct delivery of GitHub's example `pull_request`
//! payload, its PR number varied over `--distinct` values so the store sees
//! both inserts and updates.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use octoscope_testkit::{fixture, sign};

#[derive(Parser)]
#[command(about = "Post signed deliveries to a running octoscope serve and report figures")]
struct Args {
    /// Server base URL, e.g. http://127.0.0.1:8080 (loopback only).
    #[arg(long)]
    url: String,
    /// The webhook secret the server is configured with.
    #[arg(long, env = "GITHUB_WEBHOOK_SECRET")]
    secret: String,
    /// Number of deliveries to post.
    #[arg(long, default_value_t = 20_000)]
    requests: usize,
    /// Concurrent connections.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Distinct pull request numbers to cycle through.
    #[arg(long, default_value_t = 1_000)]
    distinct: usize,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 120)]
    max_seconds: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let host = args.url.trim_start_matches("http://").split(['/', ':']).next().unwrap_or_default().to_owned();
    anyhow::ensure!(
        host == "localhost" || host.starts_with("127.") || host == "[::1]",
        "loadgen only targets loopback addresses, not {host}"
    );
    let template: serde_json::Value = serde_json::from_slice(&fixture("pull_request", "opened.payload.json"))?;
    let bodies: Arc<Vec<(Vec<u8>, String)>> = Arc::new(
        (0..args.distinct)
            .map(|i| {
                let mut p = template.clone();
                p["pull_request"]["number"] = serde_json::json!(10_000 + i);
                p["number"] = serde_json::json!(10_000 + i);
                let body = serde_json::to_vec(&p).expect("serialise");
                let sig = sign(&args.secret, &body);
                (body, sig)
            })
            .collect(),
    );
    let client = octoscope_testkit::http().pool_max_idle_per_host(args.concurrency).build()?;
    let next = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(args.max_seconds);
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..args.concurrency {
        let (client, bodies, next, url) = (client.clone(), bodies.clone(), next.clone(), args.url.clone());
        let total = args.requests;
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut failures = 0usize;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total || Instant::now() > deadline {
                    break;
                }
                let (body, sig) = &bodies[i % bodies.len()];
                let t0 = Instant::now();
                let resp = client
                    .post(format!("{url}/webhook"))
                    .header("content-type", "application/json")
                    .header("x-github-event", "pull_request")
                    .header("x-github-delivery", uuid::Uuid::new_v4().to_string())
                    .header("x-github-hook-id", "1")
                    .header("x-hub-signature-256", sig.as_str())
                    .body(body.clone())
                    .send()
                    .await;
                let ok = matches!(&resp, Ok(r) if r.status().is_success());
                if let Ok(r) = resp {
                    let _ = r.bytes().await;
                }
                latencies.push(t0.elapsed());
                failures += usize::from(!ok);
            }
            (latencies, failures)
        }));
    }
    let mut latencies = Vec::new();
    let mut failures = 0;
    for w in workers {
        let (l, f) = w.await?;
        latencies.extend(l);
        failures += f;
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let pct = |p: f64| {
        latencies.get(((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1)).copied().unwrap_or_default()
    };
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "loadgen: {} deliveries in {:.2} s = {:.0} deliveries/s; latency p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms; {} failed (concurrency {})",
        latencies.len(),
        elapsed.as_secs_f64(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        ms(pct(0.50)),
        ms(pct(0.90)),
        ms(pct(0.99)),
        ms(pct(1.0)),
        failures,
        args.concurrency
    );
    anyhow::ensure!(failures == 0, "{failures} deliveries were not acknowledged with a 2xx");
    Ok(())
}
