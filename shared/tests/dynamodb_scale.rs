//! DynamoDB at scale, on a local moto server: per-kind index partitions are
//! written in shards and read back merged in the SQLite store's order, and
//! `/api/health`'s counts cost the same few read units whatever the store holds.
#![cfg(feature = "dynamodb")]

use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, Select, WriteRequest};
use chrono::{Duration, TimeZone, Utc};
use octoscope::adapters::aws::dynamodb::{CostMeter, DynamoStore, create_table};
use octoscope::adapters::sqlite::SqliteStore;
use octoscope::domain::*;
use octoscope::ports::*;

async fn client() -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&octoscope_testkit::moto::MotoServer::shared().sdk_config().await)
}

async fn table(client: &aws_sdk_dynamodb::Client) -> String {
    let name = octoscope_testkit::moto::unique("octoscope");
    create_table(client, &name).await.unwrap();
    name
}

fn at(seconds: i64) -> Timestamp {
    Utc.with_ymd_and_hms(2030, 3, 4, 9, 0, 0).unwrap() + Duration::seconds(seconds)
}

fn run(id: i64) -> Change {
    Change::WorkflowRun(WorkflowRun {
        repo: RepoName::parse(if id % 2 == 0 { "acme/api" } else { "acme/web" }).unwrap(),
        id,
        name: Some("CI".into()),
        workflow_id: Some(1),
        head_branch: Some("main".into()),
        head_sha: Some("abc".into()),
        event: Some("push".into()),
        status: RunStatus::parse("completed"),
        conclusion: Some("success".into()),
        run_number: Some(id),
        run_attempt: Some(1),
        actor: Some(format!("dev{}", id % 7)),
        created_at: at(id * 60),
        run_started_at: Some(at(id * 60 + 5)),
        updated_at: at(id * 60 + 300),
    })
}

fn job(id: i64, runs: i64) -> Change {
    let run_id = id % runs + 1;
    Change::WorkflowJob(WorkflowJob {
        repo: RepoName::parse(if run_id % 2 == 0 { "acme/api" } else { "acme/web" }).unwrap(),
        id,
        run_id,
        name: format!("job {}", id % 5),
        workflow_name: Some("CI".into()),
        head_branch: Some("main".into()),
        status: RunStatus::parse(if id % 10 == 0 { "in_progress" } else { "completed" }),
        conclusion: (id % 10 != 0).then(|| "success".into()),
        labels: vec!["ubuntu-latest".into()],
        runner_name: None,
        runner_group: None,
        os: Some("linux".into()),
        // One time bucket: every job created within the same hour (several per second).
        created_at: Some(at(id / 6)),
        started_at: Some(at(id / 6 + 10)),
        completed_at: (id % 10 != 0).then(|| at(id / 6 + 70)),
    })
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "20,000 conditional writes take about 25 minutes on moto: run with --ignored"]
async fn twenty_thousand_jobs_spread_over_the_index_shards_and_read_back_as_on_sqlite() {
    // GIVEN 200 runs and 20,000 workflow jobs created within one hour, in both stores
    let client = client().await;
    let name = table(&client).await;
    let dynamo = DynamoStore::new(client.clone(), &name);
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(&dir.path().join("store.db")).unwrap();
    let runs: i64 = 200;
    let changes: Vec<Change> = (1..=runs).map(run).chain((1..=20_000).map(|id| job(id, runs))).collect();
    for chunk in changes.chunks(2_000) {
        dynamo.apply_changes(chunk).await.unwrap();
        sqlite.apply_changes(chunk).await.unwrap();
    }

    // THEN the jobs' time index is spread over at least 10 partitions, none holding more than twice its share
    let mut per_shard = Vec::new();
    for shard in 0..16 {
        let mut count = 0;
        let mut start = None;
        loop {
            let out = client
                .query()
                .table_name(&name)
                .index_name("gsi1")
                .key_condition_expression("gsi1pk = :p")
                .expression_attribute_values(":p", AttributeValue::S(format!("WJS#{shard:02}")))
                .select(Select::Count)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .unwrap();
            count += out.count;
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        per_shard.push(count);
    }
    let used = per_shard.iter().filter(|c| **c > 0).count();
    assert_eq!(per_shard.iter().sum::<i32>(), 20_000, "{per_shard:?}");
    assert!(used >= 10, "{used} partitions: {per_shard:?}");
    assert!(per_shard.iter().all(|c| *c <= 2 * 20_000 / 16), "{per_shard:?}");
    eprintln!("workflow_job index entries per shard: {per_shard:?}");

    // AND metric reads over the window return the same rows as SQLite (whose metric queries are
    // unordered), DynamoDB's in time order
    let window = MetricsFilter::window(at(0), at(24 * 3600));
    let (d, s) = (dynamo.metric_jobs(&window).await.unwrap(), sqlite.metric_jobs(&window).await.unwrap());
    assert_eq!(d.len(), 20_000);
    same_rows(&d, &s, |r: &octoscope::read::JobMetricRow| format!("{:?}", r.created_at));
    let (d, s) = (dynamo.metric_runs(&window).await.unwrap(), sqlite.metric_runs(&window).await.unwrap());
    same_rows(&d, &s, |r: &octoscope::read::RunMetricRow| r.created_at.to_rfc3339());
    // AND the runs list, page by page, is the same
    same_runs_pages(&dynamo, &sqlite).await;
}

/// The same rows, DynamoDB's in time order. SQLite's metric queries have no
/// order (the metrics service sorts what it needs), and rows of equal time
/// carry no id, so both are compared as sorted multisets.
fn same_rows<T: std::fmt::Debug>(d: &[T], s: &[T], time: impl Fn(&T) -> String) {
    assert!(d.windows(2).all(|w| time(&w[0]) <= time(&w[1])), "DynamoDB rows in time order");
    let sorted = |rows: &[T]| {
        let mut v: Vec<String> = rows.iter().map(|r| format!("{r:?}")).collect();
        v.sort();
        v
    };
    let (d, s) = (sorted(d), sorted(s));
    assert_eq!(d.len(), s.len());
    if let Some(i) = (0..d.len()).find(|&i| d[i] != s[i]) {
        panic!("row {i} differs:\n dynamodb {}\n sqlite   {}", d[i], s[i]);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn six_hundred_jobs_read_back_as_on_sqlite() {
    let client = client().await;
    let dynamo = DynamoStore::new(client.clone(), table(&client).await);
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(&dir.path().join("store.db")).unwrap();
    let changes: Vec<Change> = (1..=20).map(run).chain((1..=600).map(|id| job(id, 20))).collect();
    dynamo.apply_changes(&changes).await.unwrap();
    sqlite.apply_changes(&changes).await.unwrap();
    let window = MetricsFilter::window(at(0), at(24 * 3600));
    let job_time = |r: &octoscope::read::JobMetricRow| format!("{:?}", r.created_at);
    same_rows(&dynamo.metric_jobs(&window).await.unwrap(), &sqlite.metric_jobs(&window).await.unwrap(), job_time);
}

/// Every page of the runs list, from both stores: the same runs in the same order.
async fn same_runs_pages(dynamo: &DynamoStore, sqlite: &SqliteStore) {
    let ids = |p: &Page<octoscope::read::WorkflowRunView>| p.items.iter().map(|r| r.run.id).collect::<Vec<_>>();
    let (mut d_page, mut s_page) = (PageRequest::first(37), PageRequest::first(37));
    loop {
        let d = dynamo.list_workflow_runs(None, &d_page).await.unwrap();
        let s = sqlite.list_workflow_runs(None, &s_page).await.unwrap();
        assert_eq!(ids(&d), ids(&s));
        match (d.next_cursor, s.next_cursor) {
            (Some(a), Some(b)) => {
                d_page = PageRequest { cursor: Some(a), ..d_page };
                s_page = PageRequest { cursor: Some(b), ..s_page };
            }
            (None, None) => break,
            other => panic!("one list ended before the other: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_hundred_runs_list_page_by_page_as_on_sqlite() {
    let client = client().await;
    let dynamo = DynamoStore::new(client.clone(), table(&client).await);
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(&dir.path().join("store.db")).unwrap();
    let runs: Vec<Change> = (1..=200).map(run).collect();
    dynamo.apply_changes(&runs).await.unwrap();
    sqlite.apply_changes(&runs).await.unwrap();
    same_runs_pages(&dynamo, &sqlite).await;
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// A pull request item as the store writes it (`shared/docs/dynamodb.md`), for seeding in bulk.
fn pull_item(number: u64) -> HashMap<String, AttributeValue> {
    let (created, updated) = (format!("2030-03-04T09:{:02}:00.000Z", number % 60), "2030-03-05T09:00:00.000Z");
    let tail = format!("acme/api#{number:020}");
    HashMap::from([
        ("pk".into(), s("REPO#acme/api")),
        ("sk".into(), s(format!("PR#{number:020}"))),
        ("entity".into(), s("pull_request")),
        ("repo".into(), s("acme/api")),
        ("number".into(), AttributeValue::N(number.to_string())),
        ("title".into(), s(format!("Pull request {number} with a title of a usual length"))),
        ("state".into(), s("open")),
        ("draft".into(), AttributeValue::Bool(false)),
        ("author".into(), s("ada")),
        ("created_at".into(), s(&created)),
        ("updated_at".into(), s(updated)),
        ("rank".into(), AttributeValue::N("0".into())),
        ("gsi1pk".into(), s(format!("PRS#open#{:02}", number % 16))),
        ("gsi1sk".into(), s(format!("{updated}#{tail}"))),
        ("gsi2pk".into(), s(format!("PRC#{:02}", number % 16))),
        ("gsi2sk".into(), s(format!("{created}#{tail}"))),
    ])
}

/// What `stats` reads, on a metered store.
async fn health_units(store: &DynamoStore, meter: &CostMeter) -> (f64, u64) {
    let before = meter.rru();
    let stats = store.stats().await.unwrap();
    (meter.rru() - before, stats.pull_requests)
}

/// How many pull requests the large store holds: `HEALTH_PULLS` (default
/// 10,000; the 100,000 takes moto about four minutes to seed:
/// `HEALTH_PULLS=100000 cargo test -p octoscope-core --features dynamodb
/// --test dynamodb_scale health -- --nocapture`).
fn health_pulls() -> u64 {
    std::env::var("HEALTH_PULLS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000)
}

#[tokio::test(flavor = "multi_thread")]
async fn health_reads_the_same_few_units_at_a_hundred_and_at_ten_thousand_pull_requests_or_more() {
    let many = health_pulls();
    let client = client().await;
    // GIVEN a store holding 100 pull requests, written through the store
    let small = table(&client).await;
    let meter = Arc::new(CostMeter::new());
    let store = DynamoStore::new(client.clone(), &small).with_meter(meter.clone());
    let pulls: Vec<Change> = (1..=100)
        .map(|n| {
            Change::pull_request(PullRequest {
                repo: RepoName::parse("acme/api").unwrap(),
                number: n,
                id: Some(n as i64),
                title: format!("PR {n}"),
                state: PrState::Open,
                draft: false,
                author: Some("ada".into()),
                created_at: at(n as i64),
                updated_at: at(n as i64 + 60),
                closed_at: None,
                merged_at: None,
                additions: None,
                deletions: None,
                changed_files: None,
                commits: None,
                labels: vec![],
                requested_reviewers: vec![],
                requested_teams: vec![],
                base_ref: None,
                head_ref: None,
                head_sha: None,
                body: None,
            })
        })
        .collect();
    store.apply_changes(&pulls).await.unwrap();
    let (units_small, counted) = health_units(&store, &meter).await;
    assert_eq!(counted, 100);

    // AND one holding 10,000 pull requests (a hundred times as many; `HEALTH_PULLS`), seeded in bulk
    // (BatchWriteItem) with their count
    let large = table(&client).await;
    let batches: Vec<Vec<WriteRequest>> = (1..=many)
        .map(|n| {
            WriteRequest::builder()
                .put_request(PutRequest::builder().set_item(Some(pull_item(n))).build().unwrap())
                .build()
        })
        .collect::<Vec<_>>()
        .chunks(25)
        .map(<[WriteRequest]>::to_vec)
        .collect();
    let mut writers = tokio::task::JoinSet::new();
    for group in batches.chunks(batches.len().div_ceil(8)) {
        let (client, large, group) = (client.clone(), large.clone(), group.to_vec());
        writers.spawn(async move {
            for mut batch in group {
                while !batch.is_empty() {
                    let out = client.batch_write_item().request_items(&large, batch).send().await.unwrap();
                    batch = out.unprocessed_items.and_then(|mut u| u.remove(&large)).unwrap_or_default();
                }
            }
        });
    }
    while let Some(done) = writers.join_next().await {
        done.unwrap();
    }
    let counter = HashMap::from([
        ("pk".to_owned(), s("COUNT#00")),
        ("sk".to_owned(), s("_")),
        ("pulls".to_owned(), AttributeValue::N(many.to_string())),
    ]);
    client.put_item().table_name(&large).set_item(Some(counter)).send().await.unwrap();
    let meter_large = Arc::new(CostMeter::new());
    let store_large = DynamoStore::new(client.clone(), &large).with_meter(meter_large.clone());
    let (units_large, counted) = health_units(&store_large, &meter_large).await;
    assert_eq!(counted, many);
    let listed = store_large.list_pulls(&PullFilter::default(), &PageRequest::first(3)).await.unwrap();
    assert_eq!(listed.items.len(), 3, "the seeded items read back through the store");

    // THEN both health reads cost the same, at most 10 read units
    eprintln!("/api/health: {units_small} RRU at 100 pull requests, {units_large} RRU at {many}");
    assert_eq!(units_small, units_large);
    assert!(units_large <= 10.0, "{units_large} RRU");
}
