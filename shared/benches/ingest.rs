//! Hot path of a webhook delivery, without I/O: HMAC verification, typed
//! parsing and normalisation of GitHub's example `pull_request` payload.
//!
//! Run: `cargo bench -p octoscope-core --bench ingest` (figures in shared/docs/benchmarks.md).

use chrono::Utc;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use octoscope::webhook::{WebhookSecrets, normalize, sign};
use std::hint::black_box;

fn payload(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/github-webhooks/api.github.com/pull_request")
        .join(name);
    std::fs::read(path).expect("fixture")
}

fn bench(c: &mut Criterion) {
    let pretty = payload("opened.payload.json");
    // GitHub sends compact JSON; the example file is pretty-printed. Both are measured.
    let compact = serde_json::to_vec(&serde_json::from_slice::<serde_json::Value>(&pretty).unwrap()).unwrap();
    let secrets = WebhookSecrets::parse("It's a Secret to Everybody,a-second-rotated-secret").unwrap();
    let now = Utc::now();
    for (label, body) in [("pretty", &pretty), ("compact", &compact)] {
        let sig = sign("It's a Secret to Everybody", body);
        let mut g = c.benchmark_group(format!("pull_request_{label}_{}B", body.len()));
        g.throughput(Throughput::Elements(1));
        g.bench_function("verify", |b| b.iter(|| secrets.verify(Some(sig.as_bytes()), black_box(body)).unwrap()));
        g.bench_function("parse_normalise", |b| b.iter(|| normalize("pull_request", black_box(body), now).unwrap()));
        g.bench_function("verify_parse_normalise", |b| {
            b.iter(|| {
                secrets.verify(Some(sig.as_bytes()), black_box(body)).unwrap();
                normalize("pull_request", black_box(body), now).unwrap()
            })
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
