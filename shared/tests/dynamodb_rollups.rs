//! Rollup cells on DynamoDB (moto), kept by `DynamoStore::mark_rollups` and
//! `settle_rollups` (as the stream function and its schedule do) from the
//! table's real stream records (DynamoDB Streams GetShardIterator /
//! GetRecords, new and old images): after a first load, a duplicate, a late
//! event, pull requests and jobs moving between weeks, people and
//! repositories, a resync and a replay, the stored cells equal a
//! recomputation from the rows and the SQLite store's cells on the same data.
#![cfg(feature = "dynamodb")]

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, StreamSpecification, StreamViewType};
use aws_sdk_dynamodbstreams::types::{AttributeValue as StreamValue, ShardIteratorType};
use chrono::{Duration, NaiveDate, TimeZone, Utc};
use octoscope::adapters::aws::dynamodb::{CostMeter, DynamoStore, SETTLE_AFTER, create_table};
use octoscope::adapters::rollups_from_rows;
use octoscope::adapters::sqlite::SqliteStore;
use octoscope::domain::*;
use octoscope::ports::*;
use octoscope::read::rollup::{CellKey, CiCell, Grain, PullCell};
use octoscope::services::metrics::MetricsService;
use octoscope_testkit::moto::ShardPosition;

type Item = HashMap<String, AttributeValue>;

/// The table's stream, read shard by shard from where the last read
/// stopped, by position ([`StreamReader`](octoscope_testkit::moto::StreamReader) says why).
struct Stream {
    client: aws_sdk_dynamodbstreams::Client,
    arn: String,
    shards: HashMap<String, ShardPosition>,
}

impl Stream {
    /// The table's stream (enabled here if the table has none), read from its start.
    async fn of(sdk: &aws_config::SdkConfig, db: &aws_sdk_dynamodb::Client, table: &str) -> Stream {
        let t = db.describe_table().table_name(table).send().await.unwrap().table.unwrap();
        let arn = match (t.stream_specification.is_some_and(|s| s.stream_enabled), t.latest_stream_arn) {
            (true, Some(arn)) => arn,
            _ => {
                let spec = StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(StreamViewType::NewAndOldImages)
                    .build()
                    .unwrap();
                let out = db.update_table().table_name(table).stream_specification(spec).send().await.unwrap();
                out.table_description.unwrap().latest_stream_arn.unwrap()
            }
        };
        Stream { client: aws_sdk_dynamodbstreams::Client::new(sdk), arn, shards: HashMap::new() }
    }

    /// Every record since the last read, as (old image, new image).
    async fn read(&mut self) -> Vec<(Option<Item>, Option<Item>)> {
        let desc = self.client.describe_stream().stream_arn(&self.arn).send().await.unwrap();
        let mut changes = Vec::new();
        for shard in desc.stream_description.unwrap().shards.unwrap_or_default() {
            let id = shard.shard_id.unwrap();
            let start = shard.sequence_number_range.and_then(|r| r.starting_sequence_number).unwrap();
            let position = self.shards.entry(id.clone()).or_insert_with(|| ShardPosition::of(&start).unwrap());
            loop {
                let it = self
                    .client
                    .get_shard_iterator()
                    .stream_arn(&self.arn)
                    .shard_id(&id)
                    .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
                    .sequence_number(position.next())
                    .send()
                    .await
                    .unwrap()
                    .shard_iterator
                    .unwrap();
                let records =
                    self.client.get_records().shard_iterator(&it).send().await.unwrap().records.unwrap_or_default();
                if records.is_empty() {
                    break;
                }
                position.read += records.len() as u128;
                for r in records {
                    let d = r.dynamodb.unwrap();
                    changes.push((d.old_image.map(image), d.new_image.map(image)));
                }
            }
        }
        changes
    }
}

fn image(m: HashMap<String, StreamValue>) -> Item {
    m.into_iter().map(|(k, v)| (k, value(v))).collect()
}

fn value(v: StreamValue) -> AttributeValue {
    match v {
        StreamValue::S(s) => AttributeValue::S(s),
        StreamValue::N(n) => AttributeValue::N(n),
        StreamValue::B(b) => AttributeValue::B(Blob::new(b.into_inner())),
        StreamValue::Bool(b) => AttributeValue::Bool(b),
        StreamValue::Null(n) => AttributeValue::Null(n),
        StreamValue::L(l) => AttributeValue::L(l.into_iter().map(value).collect()),
        StreamValue::M(m) => AttributeValue::M(image(m)),
        StreamValue::Ss(v) => AttributeValue::Ss(v),
        StreamValue::Ns(v) => AttributeValue::Ns(v),
        StreamValue::Bs(v) => AttributeValue::Bs(v.into_iter().map(|b| Blob::new(b.into_inner())).collect()),
        other => panic!("a stream value this test does not know: {other:?}"),
    }
}

fn at(days: i64, hours: i64) -> Timestamp {
    // Monday 2030-03-04.
    Utc.with_ymd_and_hms(2030, 3, 4, 9, 0, 0).unwrap() + Duration::days(days) + Duration::hours(hours)
}

fn repo(name: &str) -> RepoName {
    RepoName::parse(name).unwrap()
}

fn pull(number: u64, r: &str, author: Option<&str>, created: i64, merged: Option<i64>, updated: i64) -> Change {
    Change::pull_request(PullRequest {
        repo: repo(r),
        number,
        id: Some(number as i64 + 1000),
        title: format!("change {number}"),
        state: if merged.is_some() { PrState::Merged } else { PrState::Open },
        draft: false,
        author: author.map(str::to_owned),
        created_at: at(created, 0),
        updated_at: at(updated, 1),
        closed_at: merged.map(|m| at(m, 0)),
        merged_at: merged.map(|m| at(m, 0)),
        additions: Some(10 * number as i64),
        deletions: Some(number as i64),
        changed_files: Some(1),
        commits: Some(1),
        labels: vec![],
        requested_reviewers: vec![],
        requested_teams: vec![],
        base_ref: Some("main".into()),
        head_ref: Some(format!("topic-{number}")),
        head_sha: Some(format!("{number:040x}")),
        body: None,
    })
}

fn review(r: &str, number: u64, id: i64, by: &str, state: &str, day: i64, hour: i64) -> Change {
    Change::Review(Review {
        repo: repo(r),
        pr_number: number,
        id,
        author: Some(by.into()),
        state: ReviewState::parse(state).unwrap(),
        submitted_at: Some(at(day, hour)),
        commit_id: None,
        body: None,
    })
}

fn run(id: i64, r: &str, actor: Option<&str>, day: i64, conclusion: Option<&str>) -> Change {
    Change::WorkflowRun(WorkflowRun {
        repo: repo(r),
        id,
        name: Some("CI".into()),
        workflow_id: Some(1),
        head_branch: Some("main".into()),
        head_sha: Some("abc".into()),
        event: Some("push".into()),
        status: RunStatus::parse(if conclusion.is_some() { "completed" } else { "in_progress" }),
        conclusion: conclusion.map(str::to_owned),
        run_number: Some(id),
        run_attempt: Some(1),
        actor: actor.map(str::to_owned),
        created_at: at(day, 0),
        run_started_at: Some(at(day, 0) + Duration::seconds(30 + id)),
        updated_at: at(day, 0) + Duration::seconds(600 + 60 * id + i64::from(conclusion.is_some())),
    })
}

/// A run as its `requested` delivery carries it (status `queued`).
fn requested(id: i64, r: &str, actor: Option<&str>, day: i64) -> Change {
    match run(id, r, actor, day, None) {
        Change::WorkflowRun(run) => Change::WorkflowRun(WorkflowRun { status: RunStatus::parse("queued"), ..run }),
        _ => unreachable!("run() builds a run"),
    }
}

fn job(id: i64, run_id: i64, r: &str, day: i64, done: bool) -> Change {
    Change::WorkflowJob(WorkflowJob {
        repo: repo(r),
        id,
        run_id,
        name: format!("job {id}"),
        workflow_name: Some("CI".into()),
        head_branch: Some("main".into()),
        status: RunStatus::parse(if done { "completed" } else { "in_progress" }),
        conclusion: done.then(|| if id % 3 == 0 { "failure" } else { "success" }.into()),
        labels: vec!["ubuntu-latest".into()],
        runner_name: None,
        runner_group: None,
        os: Some("linux".into()),
        created_at: Some(at(day, 0) + Duration::seconds(id)),
        started_at: Some(at(day, 0) + Duration::seconds(20 * id)),
        completed_at: done.then(|| at(day, 0) + Duration::seconds(300 * id)),
    })
}

fn member(login: &str) -> Change {
    Change::TeamMember {
        org: "acme".into(),
        team_slug: "core".into(),
        member: Membership { login: login.into(), role: None, present: true, version: at(0, 0) },
    }
}

/// The first load: three weeks of pull requests, reviews, runs and jobs in
/// two repositories; a team of two.
fn first_load() -> Vec<Change> {
    vec![
        member("ann"),
        member("cy"),
        pull(1, "acme/api", Some("ann"), 0, Some(2), 2),
        pull(2, "acme/api", None, 1, None, 1),
        pull(3, "acme/web", Some("bob"), 3, None, 3),
        pull(4, "acme/web", Some("ann"), 6, Some(8), 8),
        pull(5, "acme/api", Some("bob"), 9, Some(10), 10),
        pull(6, "acme/web", Some("cy"), 15, None, 15),
        review("acme/api", 5, 50, "ann", "approved", 9, 5),
        review("acme/web", 4, 40, "bob", "changes_requested", 7, 1),
        review("acme/web", 4, 41, "bob", "approved", 7, 9),
        run(1, "acme/api", Some("ann"), 0, Some("success")),
        run(2, "acme/web", Some("bob"), 6, Some("failure")),
        run(3, "acme/api", None, 13, None),
        job(1, 1, "acme/api", 0, true),
        job(2, 1, "acme/api", 0, true),
        job(3, 2, "acme/web", 6, true),
        job(4, 2, "acme/web", 7, true),
        job(5, 3, "acme/api", 13, false),
    ]
}

fn weeks() -> Range<NaiveDate> {
    NaiveDate::from_ymd_opt(2030, 2, 25).unwrap()..NaiveDate::from_ymd_opt(2030, 4, 1).unwrap()
}

fn sorted<C: Clone>(mut v: Vec<(CellKey, C)>) -> Vec<(CellKey, C)> {
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

struct Both {
    dynamo: Arc<DynamoStore>,
    sqlite: SqliteStore,
    stream: Stream,
    meter: Arc<CostMeter>,
    client: aws_sdk_dynamodb::Client,
    table: String,
    _dir: tempfile::TempDir,
}

impl Both {
    async fn new() -> Both {
        let sdk = octoscope_testkit::moto::MotoServer::shared().sdk_config().await;
        let client = aws_sdk_dynamodb::Client::new(&sdk);
        let name = octoscope_testkit::moto::unique("octoscope");
        create_table(&client, &name).await.unwrap();
        let stream = Stream::of(&sdk, &client, &name).await;
        let meter = Arc::new(CostMeter::new());
        let dynamo = Arc::new(DynamoStore::new(client.clone(), &name).with_meter(meter.clone()));
        let dir = tempfile::tempdir().unwrap();
        let sqlite = SqliteStore::open(&dir.path().join("store.db")).unwrap();
        Both { dynamo, sqlite, stream, meter, client, table: name, _dir: dir }
    }

    async fn apply(&self, changes: &[Change]) {
        self.dynamo.apply_changes(changes).await.unwrap();
        self.sqlite.apply_changes(changes).await.unwrap();
    }

    /// Hand the stream's records since the last call to the upkeep as the
    /// stream function does (one mark), then settle as its schedule does,
    /// a minute later: what the settle recomputed, and the units of both.
    async fn refresh(&mut self) -> (octoscope::adapters::aws::dynamodb::RollupsRefreshed, f64, f64) {
        let (mark_rru, mark_wru) = self.mark().await;
        let (done, rru, wru) = self.settle().await;
        (done, mark_rru + rru, mark_wru + wru)
    }

    /// Hand the stream's records since the last call to the stream
    /// function's upkeep (one mark): its RRU and WRU.
    async fn mark(&mut self) -> (f64, f64) {
        let records = self.stream.read().await;
        let (r0, w0) = (self.meter.rru(), self.meter.wru());
        self.dynamo.mark_rollups(records.iter().map(|(o, n)| (o.as_ref(), n.as_ref())), Utc::now()).await.unwrap();
        (self.meter.rru() - r0, self.meter.wru() - w0)
    }

    /// Settle every mark, as the schedule does a minute later: what it
    /// recomputed, its RRU and WRU.
    async fn settle(&self) -> (octoscope::adapters::aws::dynamodb::RollupsRefreshed, f64, f64) {
        let (r0, w0) = (self.meter.rru(), self.meter.wru());
        let later = Utc::now() + SETTLE_AFTER + Duration::seconds(1);
        let settled = self.dynamo.settle_rollups("test", later, Duration::minutes(1)).await.unwrap();
        let settled = settled.expect("no other settle holds the lock");
        (settled.refreshed, self.meter.rru() - r0, self.meter.wru() - w0)
    }

    /// The stored cells equal a recomputation from the DynamoDB rows and the
    /// SQLite store's cells, under every scope the service asks for.
    async fn assert_cells_recomputed(&self, what: &str) {
        let mut seen = 0;
        for scopes in [CellScopes::All, CellScopes::EveryRepo, CellScopes::EveryAuthor] {
            let stored: Vec<(CellKey, PullCell)> = sorted(self.dynamo.pull_cells(&scopes, weeks()).await.unwrap());
            let rows = sorted(rollups_from_rows::pulls(self.dynamo.as_ref(), &scopes, weeks()).await.unwrap());
            let sqlite = sorted(self.sqlite.pull_cells(&scopes, weeks()).await.unwrap());
            assert_eq!(stored, rows, "{what}: pull request cells of {scopes:?} equal a recomputation");
            assert_eq!(stored, sqlite, "{what}: pull request cells of {scopes:?} equal SQLite's");
            let stored: Vec<(CellKey, CiCell)> = sorted(self.dynamo.ci_cells(&scopes, weeks()).await.unwrap());
            let rows = sorted(rollups_from_rows::ci(self.dynamo.as_ref(), &scopes, weeks()).await.unwrap());
            let sqlite = sorted(self.sqlite.ci_cells(&scopes, weeks()).await.unwrap());
            assert_eq!(stored, rows, "{what}: CI cells of {scopes:?} equal a recomputation");
            assert_eq!(stored, sqlite, "{what}: CI cells of {scopes:?} equal SQLite's");
            seen += stored.len();
            // The day cells of every day of those weeks, likewise.
            let stored = sorted(self.dynamo.pull_day_cells(&scopes, weeks()).await.unwrap());
            let rows =
                sorted(rollups_from_rows::pulls_by(Grain::Day, self.dynamo.as_ref(), &scopes, weeks()).await.unwrap());
            let sqlite = sorted(self.sqlite.pull_day_cells(&scopes, weeks()).await.unwrap());
            assert_eq!(stored, rows, "{what}: pull request day cells of {scopes:?} equal a recomputation");
            assert_eq!(stored, sqlite, "{what}: pull request day cells of {scopes:?} equal SQLite's");
            let stored = sorted(self.dynamo.ci_day_cells(&scopes, weeks()).await.unwrap());
            let rows =
                sorted(rollups_from_rows::ci_by(Grain::Day, self.dynamo.as_ref(), &scopes, weeks()).await.unwrap());
            let sqlite = sorted(self.sqlite.ci_day_cells(&scopes, weeks()).await.unwrap());
            assert_eq!(stored, rows, "{what}: CI day cells of {scopes:?} equal a recomputation");
            assert_eq!(stored, sqlite, "{what}: CI day cells of {scopes:?} equal SQLite's");
            seen += stored.len();
        }
        // One repository by an old name answers for its current one.
        let api = sorted(self.dynamo.pull_cells(&CellScopes::Repo(repo("acme/api")), weeks()).await.unwrap());
        let rows = sorted(
            rollups_from_rows::pulls(self.dynamo.as_ref(), &CellScopes::Repo(repo("acme/api")), weeks()).await.unwrap(),
        );
        assert_eq!(api, rows, "{what}: one repository's cells");
        eprintln!("{what}: {seen} CI week and day cells equal a recomputation");
        self.assert_merges_recomputed(what).await;
    }

    /// The merge cells equal on both stores, and DORA's merges, which the
    /// metrics service reads from them, equal the window's merges read from
    /// the rows (DynamoDB's own, and SQLite's), for every filter, aligned to
    /// weeks or not.
    async fn assert_merges_recomputed(&self, what: &str) {
        for scopes in [CellScopes::All, CellScopes::EveryRepo, CellScopes::EveryAuthor] {
            let stored = sorted(self.dynamo.merge_cells(&scopes, weeks()).await.unwrap());
            let sqlite = sorted(self.sqlite.merge_cells(&scopes, weeks()).await.unwrap());
            assert_eq!(stored, sqlite, "{what}: merge cells of {scopes:?} equal SQLite's");
        }
        let (on_dynamo, on_sqlite) =
            (MetricsService::new(self.dynamo.clone()), MetricsService::new(Arc::new(self.sqlite.clone())));
        let flat = |by_repo: HashMap<RepoName, Vec<Timestamp>>| {
            let mut v: Vec<(RepoName, Timestamp)> =
                by_repo.into_iter().flat_map(|(r, times)| times.into_iter().map(move |t| (r.clone(), t))).collect();
            v.sort();
            v
        };
        let start = at(-7, -9);
        // The widest window holds every other one: DynamoDB's rows are read
        // once per filter, for it, and each window's merges are taken from
        // them (a read of the rows costs moto about 0.3 s; SQLite's rows are
        // read for every window).
        let widest = (start, start + Duration::weeks(5));
        let windows = [widest, (at(2, -9), at(9, 0)), (at(2, 0), at(10, 0)), (at(8, 0), at(8, 0))];
        let team = TeamRef { org: Some("acme".into()), slug: "core".into() };
        let all = MetricsFilter::window(widest.0, widest.1);
        let filters = [
            all.clone(),
            MetricsFilter { repo: Some(repo("acme/api")), ..all.clone() },
            MetricsFilter { repo: Some(repo("acme/web")), ..all.clone() },
            MetricsFilter { author: Some("bob".into()), ..all.clone() },
            MetricsFilter { team: Some(team.clone()), ..all.clone() },
            MetricsFilter { team: Some(team.clone()), repo: Some(repo("acme/api")), ..all.clone() },
            MetricsFilter { team: Some(team.clone()), author: Some("cy".into()), ..all },
        ];
        let mut seen = 0;
        for wide in filters {
            let merged: Vec<(RepoName, Timestamp)> = self
                .dynamo
                .metric_pulls(&wide)
                .await
                .unwrap()
                .into_iter()
                .filter_map(|p| p.merged_at.map(|m| (p.repo, m)))
                .collect();
            for (since, until) in windows {
                let f = MetricsFilter { since, until, ..wide.clone() };
                let sort = |mut v: Vec<(RepoName, Timestamp)>| {
                    v.sort();
                    v
                };
                let cells = flat(on_dynamo.merges(&f).await.unwrap());
                let rows = merged.iter().filter(|(_, m)| *m >= since && *m < until).cloned().collect();
                assert_eq!(cells, sort(rows), "{what}: merges from cells equal the rows' for {f:?}");
                let sqlite_rows = sort(self.sqlite.metric_merges(&f).await.unwrap());
                assert_eq!(cells, sqlite_rows, "{what}: merges from cells equal SQLite's rows for {f:?}");
                let sqlite_cells = flat(on_sqlite.merges(&f).await.unwrap());
                assert_eq!(sqlite_cells, sqlite_rows, "{what}: SQLite's merges from cells equal its rows for {f:?}");
                seen += cells.len();
            }
        }
        eprintln!("{what}: {seen} merges read from cells equal the rows'");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn stream_upkeep_keeps_cells_equal_to_a_recomputation_through_late_events_resyncs_and_replays() {
    let mut both = Both::new().await;

    // GIVEN three weeks of activity written through the store, its stream records handed to the upkeep
    both.apply(&first_load()).await;
    let (done, rru, wru) = both.refresh().await;
    eprintln!("first load: {done:?}, {rru} RRU, {wru} WRU");
    assert!(done.written > 0, "the first load writes cells");
    both.assert_cells_recomputed("first load").await;

    // WHEN the same changes arrive again (a duplicate delivery)
    both.apply(&first_load()).await;
    let (done, rru, wru) = both.refresh().await;
    eprintln!("duplicate: {done:?}, {rru} RRU, {wru} WRU");
    // THEN no cell is written
    assert_eq!((done.written, done.deleted), (0, 0), "a duplicate writes no cell");
    both.assert_cells_recomputed("duplicate").await;

    // WHEN a late review (submitted before the merge, arriving after it) and a stale pull request version arrive
    both.apply(&[
        review("acme/api", 1, 10, "bob", "changes_requested", 1, 2),
        pull(5, "acme/api", Some("bob"), 9, None, 9),
    ])
    .await;
    let (done, rru, wru) = both.refresh().await;
    eprintln!("late event: {done:?}, {rru} RRU, {wru} WRU");
    assert!(done.written > 0, "the late review changes pull request 1's cells");
    both.assert_cells_recomputed("late event").await;

    // WHEN a pull request gets its author, another merges a week later, and a
    // run arrives after its jobs (their person is the run's actor)
    both.apply(&[
        pull(2, "acme/api", Some("cy"), 1, Some(12), 12),
        job(6, 4, "acme/web", 14, true),
        job(7, 4, "acme/web", 14, false),
    ])
    .await;
    both.refresh().await;
    both.assert_cells_recomputed("jobs before their run").await;
    both.apply(&[run(4, "acme/web", Some("dee"), 14, Some("success"))]).await;
    let (done, rru, wru) = both.refresh().await;
    eprintln!("moves: {done:?}, {rru} RRU, {wru} WRU");
    let dee = both.dynamo.ci_cells(&CellScopes::Authors(vec![Some("dee".into())]), weeks()).await.unwrap();
    assert_eq!(dee.iter().map(|(_, c)| c.jobs.count).sum::<u64>(), 2, "the run's jobs count under its actor");
    both.assert_cells_recomputed("pull request and jobs moved").await;

    // WHEN a run is requested, then starts: until it completes it counts by its creation alone
    both.apply(&[requested(8, "acme/api", Some("cy"), 15)]).await;
    let (done, ..) = both.refresh().await;
    assert!(done.written > 0, "a requested run counts in its week's and day's cells");
    both.assert_cells_recomputed("run requested").await;
    both.apply(&[run(8, "acme/api", Some("cy"), 15, None)]).await;
    let (done, rru, wru) = both.refresh().await;
    eprintln!("run started: {done:?}, {rru} RRU, {wru} WRU");
    // THEN its start marks, reads and writes no cell: the settle's look at the marks is all it costs
    assert_eq!((done.recomputed, done.written, done.deleted, wru), (0, 0, 0, 0.0), "a run's start changes no cell");
    assert!(rru <= 1.0, "a settle without marks reads the marks' partition only: {rru} RRU");
    both.assert_cells_recomputed("run started").await;
    // and its completion does
    both.apply(&[run(8, "acme/api", Some("cy"), 15, Some("success"))]).await;
    let (done, ..) = both.refresh().await;
    assert!(done.written > 0, "a run's completion changes its cells");
    both.assert_cells_recomputed("run completed").await;

    // WHEN a resync applies changes again, some newer (a run finished, a job failed, a pull request merged)
    let mut resync = first_load();
    resync.extend([
        run(3, "acme/api", None, 13, Some("failure")),
        job(5, 3, "acme/api", 13, true),
        pull(3, "acme/web", Some("bob"), 3, Some(16), 16),
    ]);
    both.apply(&resync).await;
    let (done, rru, wru) = both.refresh().await;
    eprintln!("resync: {done:?}, {rru} RRU, {wru} WRU");
    both.assert_cells_recomputed("resync").await;

    // WHEN a repository moves: its cells move to the new name
    let moved = Change::RepositoryMoved { id: None, from: repo("acme/web"), to: repo("acme/site"), at: at(20, 0) };
    both.apply(&[moved]).await;
    both.refresh().await;
    both.assert_cells_recomputed("repository moved").await;
    let web = both.dynamo.pull_cells(&CellScopes::Repo(repo("acme/web")), weeks()).await.unwrap();
    assert!(
        web.iter().all(|((s, _), _)| s.key() == "repo:acme/site") && !web.is_empty(),
        "the old name answers with the new name's cells"
    );

    // WHEN a replay drops every entity and applies everything again
    both.dynamo.reset_entities().await.unwrap();
    both.sqlite.reset_entities().await.unwrap();
    let (done, ..) = both.refresh().await;
    assert!(done.deleted > 0, "dropping the entities empties the cells");
    both.assert_cells_recomputed("reset").await;
    let mut replay = first_load();
    replay.extend(resync);
    replay.extend([run(4, "acme/web", Some("dee"), 14, Some("success")), job(6, 4, "acme/web", 14, true)]);
    both.apply(&replay).await;
    both.refresh().await;
    both.assert_cells_recomputed("replay").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rebuild_recomputes_every_cell_from_the_rows() {
    // GIVEN rows written without their stream records handed to the upkeep, and one stale cell
    let mut both = Both::new().await;
    both.apply(&first_load()[..6]).await;
    both.refresh().await;
    both.apply(&first_load()).await;
    both.dynamo.reset_entities().await.unwrap();
    both.sqlite.reset_entities().await.unwrap();
    both.apply(&first_load()[6..]).await;
    let stale = sorted(both.dynamo.pull_cells(&CellScopes::All, weeks()).await.unwrap());
    assert!(!stale.is_empty(), "cells of rows since dropped are still stored");
    // WHEN the cells are rebuilt
    both.dynamo.rebuild_rollups().await.unwrap();
    // THEN they equal a recomputation: stale ones deleted, missing ones written
    both.assert_cells_recomputed("rebuild").await;
    // AND the stream records of all that, handed over late, change nothing
    let (done, ..) = both.refresh().await;
    assert_eq!((done.written, done.deleted), (0, 0), "late records after a rebuild write nothing");
    both.assert_cells_recomputed("after rebuild").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backlog_of_marks_is_settled_over_several_settles_and_an_unreadable_mark_is_dropped() {
    // GIVEN 35 stream batches, each a pull request of a day of its own (a backlog, as a replay leaves)
    let mut both = Both::new().await;
    for (n, day) in (-7..28).enumerate() {
        both.apply(&[pull(n as u64 + 1, "acme/api", Some("ann"), day, None, day)]).await;
        both.mark().await;
    }
    // AND a mark that does not parse, older than all of them
    let mut bad = HashMap::new();
    bad.insert("pk".to_owned(), AttributeValue::S("ROLLUP_MARKS".into()));
    bad.insert("sk".to_owned(), AttributeValue::S("2000-01-01T00:00:00.000Z#0000000000000000".into()));
    bad.insert("cells".to_owned(), AttributeValue::Ss(vec!["X2030-03-04|nowhere".into()]));
    both.client.put_item().table_name(&both.table).set_item(Some(bad)).send().await.unwrap();
    // WHEN the schedule settles, three times
    let later = Utc::now() + SETTLE_AFTER + Duration::seconds(1);
    let mut settles = Vec::new();
    for _ in 0..3 {
        settles.push(both.dynamo.settle_rollups("test", later, Duration::minutes(1)).await.unwrap().unwrap());
    }
    // THEN the unreadable mark is dropped, the first settle takes the oldest marks up to 31 days, the next the rest
    let taken: Vec<(usize, usize)> = settles.iter().map(|s| (s.marks, s.dropped)).collect();
    assert_eq!(taken, [(31, 1), (4, 0), (0, 0)], "{settles:?}");
    // AND the cells equal a recomputation and SQLite's
    both.assert_cells_recomputed("backlog").await;
}

/// splitmix64: deterministic synthetic data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> i64 {
        (self.next() % n) as i64
    }
}

const REPOS: u64 = 20;
const AUTHORS: u64 = 200;
/// Two years of weeks: the window is [W0, W0 + 104 weeks), W0 + 104 weeks = 2030-03-04.
const WEEKS: i64 = 104;

fn bench_repo(n: i64) -> RepoName {
    repo(&format!("acme/service-{n:02}"))
}

/// One synthetic day `day` (0 = W0) at `per_mille` of the full size: 100,000
/// pull requests (4 reviews each on average), 250,000 runs and 1,000,000 jobs
/// over 728 days, in 20 repositories by 200 people. As rows (for cells) and
/// as changes (for the store).
fn synthetic_day(day: i64, per_mille: u64, rng: &mut Rng) -> (Vec<Change>, Vec<Change>, Vec<Change>) {
    let scale = |n: u64| ((n * per_mille / 1000) as f64 / 728.0).round() as i64;
    let start = at(day - 7 * WEEKS, -9);
    let (mut pulls, mut runs, mut jobs) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..scale(100_000) {
        let number = rng.next() >> 40;
        let created = start + Duration::seconds(rng.below(86_400));
        let merged = (rng.below(10) < 8).then(|| created + Duration::seconds(600 + rng.below(14 * 86_400)));
        let r = bench_repo(rng.below(REPOS));
        let author = format!("dev{:03}", rng.below(AUTHORS));
        let mut p = match pull(number, "acme/x", Some(&author), 0, None, 0) {
            Change::PullRequest { pull, .. } => *pull,
            _ => unreachable!(),
        };
        p.repo = r;
        p.created_at = created;
        p.updated_at = merged.unwrap_or(created);
        p.merged_at = merged;
        p.closed_at = merged;
        p.state = if merged.is_some() { PrState::Merged } else { PrState::Open };
        p.additions = Some(rng.below(2_000));
        p.deletions = Some(rng.below(500));
        pulls.push(Change::pull_request(p.clone()));
        for k in 0..rng.below(9) {
            let state = if rng.below(4) == 0 { "changes_requested" } else { "approved" };
            let by = format!("dev{:03}", rng.below(AUTHORS));
            let mut rv = review("acme/x", number, (number as i64) * 16 + k, &by, state, 0, 0);
            if let Change::Review(r) = &mut rv {
                r.repo = p.repo.clone();
                r.submitted_at = Some(created + Duration::seconds(60 + rng.below(3 * 86_400)));
            }
            pulls.push(rv);
        }
    }
    for _ in 0..scale(250_000) {
        let id = (rng.next() >> 24) as i64;
        let r = rng.below(REPOS);
        let actor = format!("dev{:03}", rng.below(AUTHORS));
        let created = start + Duration::seconds(rng.below(86_400));
        let mut c =
            run(id % 1000, "acme/x", Some(&actor), 0, Some(if rng.below(10) == 0 { "failure" } else { "success" }));
        if let Change::WorkflowRun(w) = &mut c {
            w.id = id;
            w.repo = bench_repo(r);
            w.created_at = created;
            w.run_started_at = Some(created + Duration::seconds(rng.below(120)));
            w.updated_at = created + Duration::seconds(120 + rng.below(3_600));
        }
        runs.push(c);
        for k in 0..4 {
            let mut j = job(k + 1, id, "acme/x", 0, rng.below(50) != 0);
            if let Change::WorkflowJob(w) = &mut j {
                w.id = id * 8 + k;
                w.repo = bench_repo(r);
                w.created_at = Some(created + Duration::seconds(k));
                w.started_at = Some(created + Duration::seconds(k + rng.below(600)));
                w.completed_at = w.completed_at.map(|_| created + Duration::seconds(700 + rng.below(3_000)));
            }
            jobs.push(j);
        }
    }
    (pulls, runs, jobs)
}

/// A store's view of synthetic changes as metric rows: pull requests with
/// their review facts, runs, jobs under their run's actor.
fn rows_of(
    pulls: &[Change],
    runs: &[Change],
    jobs: &[Change],
) -> (Vec<octoscope::read::PullMetricRow>, Vec<octoscope::read::RunMetricRow>, Vec<octoscope::read::JobMetricRow>) {
    use octoscope::read::{CiFacts, JobMetricRow, PullMetricRow, RunMetricRow};
    let mut reviews: HashMap<(RepoName, u64), (Option<Timestamp>, u32)> = HashMap::new();
    for c in pulls {
        if let Change::Review(r) = c {
            let e = reviews.entry((r.repo.clone(), r.pr_number)).or_default();
            e.0 = e.0.min(r.submitted_at).or(e.0).or(r.submitted_at);
            e.1 += u32::from(r.state == ReviewState::ChangesRequested);
        }
    }
    let prs = pulls
        .iter()
        .filter_map(|c| match c {
            Change::PullRequest { pull: p, .. } => {
                let (first, changes) = reviews.get(&(p.repo.clone(), p.number)).copied().unwrap_or_default();
                Some(PullMetricRow {
                    repo: p.repo.clone(),
                    number: p.number,
                    author: p.author.clone(),
                    state: p.state,
                    created_at: p.created_at,
                    merged_at: p.merged_at,
                    additions: p.additions,
                    deletions: p.deletions,
                    first_review_at: first,
                    changes_requested: changes,
                })
            }
            _ => None,
        })
        .collect();
    let facts = |repo: &RepoName, actor: Option<String>, status: RunStatus, conclusion: Option<String>| CiFacts {
        repo: repo.clone(),
        workflow: Some("CI".into()),
        branch: Some("main".into()),
        actor,
        status,
        conclusion,
    };
    let mut actors = HashMap::new();
    let run_rows = runs
        .iter()
        .filter_map(|c| match c {
            Change::WorkflowRun(r) => {
                actors.insert(r.id, r.actor.clone());
                Some(RunMetricRow {
                    ci: facts(&r.repo, r.actor.clone(), r.status, r.conclusion.clone()),
                    created_at: r.created_at,
                    run_started_at: r.run_started_at,
                    updated_at: r.updated_at,
                })
            }
            _ => None,
        })
        .collect();
    let job_rows = jobs
        .iter()
        .filter_map(|c| match c {
            Change::WorkflowJob(j) => Some(JobMetricRow {
                ci: facts(&j.repo, actors.get(&j.run_id).cloned().flatten(), j.status, j.conclusion.clone()),
                labels: j.labels.clone(),
                os: j.os.clone(),
                created_at: j.created_at,
                started_at: j.started_at,
                completed_at: j.completed_at,
            }),
            _ => None,
        })
        .collect();
    (prs, run_rows, job_rows)
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "builds two years of cells at full size and measures the overview on moto (about a minute): make bench-rollups-dynamodb"]
async fn two_year_overview_reads_cells_bounded_by_weeks_and_repositories() {
    use octoscope::adapters::aws::dynamodb::LoadedCells;
    use octoscope::read::rollup::{MergeCell, Scope, ci_cells, ci_cells_by, merge_cells, pull_cells, pull_cells_by};
    use octoscope::services::metrics::{Extras, Interval};
    use std::collections::{BTreeMap, BTreeSet};
    // GIVEN the cells of two years at full size (100,000 pull requests, 400,000
    // reviews, 250,000 runs, 1,000,000 jobs), built week by week from synthetic
    // rows in memory with the store's pure builders
    let w0 = NaiveDate::from_ymd_opt(2028, 3, 6).unwrap();
    let mut rng = Rng(7);
    let (mut pull_map, mut ci_map) = (std::collections::BTreeMap::new(), std::collections::BTreeMap::new());
    let mut merge_map: std::collections::BTreeMap<CellKey, MergeCell> = std::collections::BTreeMap::new();
    let (mut n_pulls, mut n_jobs) = (0usize, 0usize);
    // The day cells of the days at an unaligned window's edges (3 days into the
    // first week, 3 days past the last), at full density.
    let edge_days: BTreeSet<NaiveDate> =
        (3..7).chain(7 * WEEKS..7 * WEEKS + 3).map(|d| w0 + Duration::days(d)).collect();
    let day_span = w0..w0 + Duration::weeks(WEEKS + 3);
    let (mut pull_days, mut ci_days): (BTreeMap<CellKey, PullCell>, BTreeMap<CellKey, CiCell>) = Default::default();
    // AND one person's day cells of every day (a person's weeks are merged
    // from their days when read; other people's are not loaded)
    const PERSON: &str = "dev007";
    let person = |k: &CellKey| k.0 == Scope::Author(Some(PERSON.into()));
    let mut add_days = |prs: &[_], runs: &[_], jobs: &[_]| {
        let kept = |k: &CellKey| (edge_days.contains(&k.1) && !matches!(k.0, Scope::Author(_))) || person(k);
        for (k, c) in pull_cells_by(Grain::Day, prs, &day_span).into_iter().filter(|(k, _)| kept(k)) {
            pull_days.entry(k).or_default().merge(&c);
        }
        for (k, c) in ci_cells_by(Grain::Day, runs, jobs, &day_span).into_iter().filter(|(k, _)| kept(k)) {
            ci_days.entry(k).or_default().merge(&c);
        }
    };
    for week in 0..WEEKS {
        let (mut p, mut r, mut j) = (Vec::new(), Vec::new(), Vec::new());
        for d in 0..7 {
            let (a, b, c) = synthetic_day(week * 7 + d, 1000, &mut rng);
            p.extend(a);
            r.extend(b);
            j.extend(c);
        }
        let (prs, runs, jobs) = rows_of(&p, &r, &j);
        n_pulls += prs.len();
        n_jobs += jobs.len();
        let span = w0 + Duration::weeks(week)..w0 + Duration::weeks(week + 1);
        // Merges after the week land in later weeks' cells: merged into the map.
        for (k, c) in pull_cells(&prs, &(w0..w0 + Duration::weeks(WEEKS + 3))) {
            pull_map.entry(k).or_insert_with(PullCell::default).merge(&c);
        }
        for (k, c) in merge_cells(&prs, &(w0..w0 + Duration::weeks(WEEKS + 3))) {
            if !matches!(k.0, Scope::Author(_)) {
                merge_map.entry(k).or_default().merge(&c);
            }
        }
        ci_map.extend(ci_cells(&runs, &jobs, &span));
        add_days(&prs, &runs, &jobs);
    }
    for d in 7 * WEEKS..7 * WEEKS + 3 {
        let (p, r, j) = synthetic_day(d, 1000, &mut rng);
        let (prs, runs, jobs) = rows_of(&p, &r, &j);
        add_days(&prs, &runs, &jobs);
    }
    let pull_days: BTreeMap<_, _> = pull_days.into_iter().map(|(k, c)| (k, c.compact())).collect();
    let ci_days: BTreeMap<_, _> = ci_days.into_iter().map(|(k, c)| (k, c.compact())).collect();
    eprintln!("{} pull request and {} CI day cells of the edge days", pull_days.len(), ci_days.len());
    // (what the person's week cells would weigh, stored as they were before 2026-12-07)
    let person_weeks: usize = pull_map
        .iter()
        .filter(|(k, _)| person(k))
        .map(|(_, c): (_, &PullCell)| c.clone().compact().encode().len())
        .chain(ci_map.iter().filter(|(k, _)| person(k)).map(|(_, c): (_, &CiCell)| c.encode().len()))
        .sum();
    let in_window = |k: &CellKey| k.1 < w0 + Duration::weeks(WEEKS);
    let person_merged: u64 = pull_map.iter().filter(|(k, _)| person(k) && in_window(k)).map(|(_, c)| c.merged).sum();
    let person_days = pull_days.keys().chain(ci_days.keys()).filter(|k| person(k)).count();
    let pull_map: std::collections::BTreeMap<_, _> = pull_map
        .into_iter()
        .filter(|((s, _), _)| !matches!(s, Scope::Author(_)))
        .map(|(k, c): (CellKey, PullCell)| (k, c.compact()))
        .collect();
    let ci_map: std::collections::BTreeMap<_, _> =
        ci_map.into_iter().filter(|((s, _), _)| !matches!(s, Scope::Author(_))).collect();
    let sizes: Vec<usize> =
        pull_map.values().map(|c| c.encode().len()).chain(ci_map.values().map(|c| c.encode().len())).collect();
    eprintln!(
        "built from {n_pulls} pull requests and {n_jobs} jobs: {} pull and {} CI cells (everything and each repository), cell bytes max {} mean {}",
        pull_map.len(),
        ci_map.len(),
        sizes.iter().max().unwrap(),
        sizes.iter().sum::<usize>() / sizes.len()
    );
    let both = Both::new().await;
    let merge_bytes: Vec<usize> = merge_map.values().map(|c| c.encode().len()).collect();
    eprintln!(
        "{} merge cells (everything and each repository), bytes max {} mean {}",
        merge_map.len(),
        merge_bytes.iter().max().unwrap(),
        merge_bytes.iter().sum::<usize>() / merge_bytes.len()
    );
    let loaded = LoadedCells { pulls: pull_map, ci: ci_map, merges: merge_map, pull_days, ci_days };
    both.dynamo.load_rollups(loaded).await.unwrap();

    let service = MetricsService::new(both.dynamo.clone());
    let extras = Extras { interval: Some(Interval::Week), previous: true };
    let now = at(10, 0);
    for (name, since) in [("week-aligned", midnight(w0)), ("unaligned (+3 days)", midnight(w0) + Duration::days(3))] {
        let f = MetricsFilter::window(since, since + Duration::weeks(WEEKS));
        let r0 = both.meter.rru();
        let pulls = service.pulls_with(&f, None, now, extras, 0).await.unwrap();
        let r1 = both.meter.rru();
        let ci = service.ci_with(&f, None, extras).await.unwrap();
        let r2 = both.meter.rru();
        service.dora_with(&f, None, extras).await.unwrap();
        let r3 = both.meter.rru();
        let merges: Vec<(RepoName, Timestamp)> = service
            .merges(&f)
            .await
            .unwrap()
            .into_iter()
            .flat_map(|(r, times)| times.into_iter().map(move |t| (r.clone(), t)))
            .collect();
        let r4 = both.meter.rru();
        assert!(merges.len() > 50_000, "the window's merges come from merge cells: {}", merges.len());
        assert!(merges.iter().all(|(_, m)| *m >= f.since && *m < f.until), "cut to the window");
        eprintln!("2-year merges ({}): {:.1} RRU", merges.len(), r4 - r3);
        assert!(pulls.groups[0].merged > 50_000, "the window's merges come from cells");
        assert!(ci.groups[0].jobs.count > 900_000, "the window's jobs come from cells");
        eprintln!(
            "2-year overview, {name}: pulls {:.1} RRU, ci {:.1} RRU, dora {:.1} RRU, total {:.1} RRU",
            r1 - r0,
            r2 - r1,
            r3 - r2,
            r3 - r0
        );
    }
    // AND one person's two years read from their day cells cost their days' bytes
    let f = MetricsFilter {
        author: Some(PERSON.into()),
        ..MetricsFilter::window(midnight(w0), midnight(w0) + Duration::weeks(WEEKS))
    };
    let r0 = both.meter.rru();
    let pulls = service.pulls_with(&f, None, now, extras, 0).await.unwrap();
    let r1 = both.meter.rru();
    service.ci_with(&f, None, extras).await.unwrap();
    let r2 = both.meter.rru();
    assert_eq!(pulls.groups[0].merged, person_merged, "the person's weeks merged from their days count every merge");
    eprintln!(
        "2-year overview of one person, from {person_days} day cells: pulls {:.1} RRU, ci {:.1} RRU (their week cells would weigh {person_weeks} bytes)",
        r1 - r0,
        r2 - r1
    );
}

fn midnight(d: NaiveDate) -> Timestamp {
    Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).unwrap())
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "writes a week of rows through the store on moto and measures the upkeep of one change in it (minutes): make bench-upkeep-dynamodb"]
async fn upkeep_of_a_change_reads_its_days_rows_not_its_weeks() {
    let mut both = Both::new().await;
    // GIVEN one week at BENCH_PER_MILLE (default 100) of the full size's density
    // (100,000 pull requests, 1,000,000 jobs in two years: ≈ 960 pull requests,
    // 2,400 runs, 9,600 jobs a week at 1000), written through both stores, its
    // stream records handed to the upkeep. moto answers a Query by reading the
    // whole table, so writing the full density here takes over half an hour.
    let per_mille: u64 = std::env::var("BENCH_PER_MILLE").ok().and_then(|v| v.parse().ok()).unwrap_or(100);
    let mut rng = Rng(11);
    let (mut pulls, mut runs, mut jobs) = (Vec::new(), Vec::new(), Vec::new());
    for day in 0..7 {
        let (p, r, j) = synthetic_day(day, per_mille, &mut rng);
        pulls.extend(p);
        runs.extend(r);
        jobs.extend(j);
    }
    let started = std::time::Instant::now();
    for chunk in pulls.chunks(500).chain(runs.chunks(500)).chain(jobs.chunks(500)) {
        both.apply(chunk).await;
    }
    let (load, rru, wru) = both.refresh().await;
    let n_pulls = pulls.iter().filter(|c| matches!(c, Change::PullRequest { .. })).count();
    eprintln!(
        "{per_mille} per mille: loaded {n_pulls} pull requests, {} runs, {} jobs in {:.0} s; first refresh: {load:?}, {rru:.0} RRU, {wru:.0} WRU",
        runs.len(),
        jobs.len(),
        started.elapsed().as_secs_f64()
    );

    // WHEN a stream batch holds one job's completion in that week
    let unfinished = jobs.iter().find_map(|c| match c {
        Change::WorkflowJob(j) if j.completed_at.is_none() => Some(j.clone()),
        _ => None,
    });
    let mut done = unfinished.expect("the week has an unfinished job");
    let job_day = |j: &WorkflowJob| j.created_at.or(j.started_at).map(|t| t.date_naive());
    let first_day = job_day(&done);
    done.status = RunStatus::parse("completed");
    done.conclusion = Some("success".into());
    done.completed_at = done.started_at.map(|s| s + Duration::seconds(90));
    both.apply(&[Change::WorkflowJob(done)]).await;
    let (job, job_rru, job_wru) = both.refresh().await;
    eprintln!("one job completed: {job:?}, {job_rru:.1} RRU, {job_wru:.1} WRU");
    // AND one holding a pull request's merge
    let open = pulls.iter().find_map(|c| match c {
        Change::PullRequest { pull, .. } if pull.merged_at.is_none() => Some((**pull).clone()),
        _ => None,
    });
    let mut merged = open.expect("the week has an open pull request");
    let when = merged.created_at + Duration::hours(2);
    (merged.state, merged.merged_at, merged.closed_at, merged.updated_at) =
        (PrState::Merged, Some(when), Some(when), when);
    both.apply(&[Change::pull_request(merged)]).await;
    let (pr, pr_rru, pr_wru) = both.refresh().await;
    eprintln!("one pull request merged: {pr:?}, {pr_rru:.1} RRU, {pr_wru:.1} WRU");

    // AND ten batches holding one job's change each (of the same day: live
    // traffic's batches hold today's changes; a job completing, or one
    // completed again a minute later with another conclusion, as a re-run's
    // report would), marked one by one, then one settle
    let more: Vec<WorkflowJob> = jobs
        .iter()
        .filter_map(|c| match c {
            Change::WorkflowJob(j) if j.started_at.is_some() && job_day(j) == first_day => Some(j.clone()),
            _ => None,
        })
        .skip(1)
        .take(10)
        .collect();
    assert_eq!(more.len(), 10, "the day has ten more jobs");
    let (mut marks_rru, mut marks_wru) = (0.0, 0.0);
    for mut j in more {
        j.completed_at = j.version().map(|v| v + Duration::seconds(60));
        j.conclusion = Some(if j.conclusion.as_deref() == Some("failure") { "success" } else { "failure" }.into());
        j.status = RunStatus::parse("completed");
        both.apply(&[Change::WorkflowJob(j)]).await;
        let (r, w) = both.mark().await;
        (marks_rru, marks_wru) = (marks_rru + r, marks_wru + w);
    }
    let (ten, settle_rru, settle_wru) = both.settle().await;
    eprintln!(
        "ten batches of one job's change: marks {:.1} RRU, {:.1} WRU each; one settle of the ten: {ten:?}, {settle_rru:.1} RRU, {settle_wru:.1} WRU",
        marks_rru / 10.0,
        marks_wru / 10.0
    );
    // (a stream batch every 10 s all day, the default window under steady
    // traffic: 8,640 batches; the default schedule settles 288 times a day;
    // a recomputation in each batch cost about one change's mark and settle)
    let dollars = |rru: f64, wru: f64| rru * 0.125 / 1e6 + wru * 0.625 / 1e6;
    let (each_r, each_w) = (8_640.0 * job_rru, 8_640.0 * job_wru);
    let (settled_r, settled_w) =
        (8_640.0 * marks_rru / 10.0 + 288.0 * settle_rru, 8_640.0 * marks_wru / 10.0 + 288.0 * settle_wru);
    eprintln!(
        "a batch every 10 s all day: recomputed in each batch {:.2} M RRU, {:.0} WRU (${:.3} a day); marked and settled every 5 minutes {:.2} M RRU, {:.0} WRU (${:.3} a day)",
        each_r / 1e6,
        each_w,
        dollars(each_r, each_w),
        settled_r / 1e6,
        settled_w,
        dollars(settled_r, settled_w)
    );
    assert!(ten.written > 0, "the ten changes change their cells");
    assert!(
        settle_rru < 2.0 * job_rru,
        "one settle of ten batches' marks reads their day once ({settle_rru} RRU), not ten times one change's ({job_rru})"
    );

    // THEN each batch reads the rows of its change's days, not its week's
    let per_day = |rru: f64| rru * 1_440.0;
    eprintln!(
        "one such batch a minute: job {:.1} M RRU a day (${:.2}), pull request {:.1} M RRU a day (${:.2}) at $0.125 per million",
        per_day(job_rru) / 1e6,
        per_day(job_rru) * 0.125 / 1e6,
        per_day(pr_rru) / 1e6,
        per_day(pr_rru) * 0.125 / 1e6
    );
    assert!(job.written > 0 && pr.written > 0, "both changes change their cells");
    // (a run partition, the run and its ≈ 4 jobs, is about one read unit: the
    // week's are ≈ `runs` read units, its day's about a seventh of them)
    let week_runs = runs.len() as f64;
    assert!(
        job_rru < week_runs / 3.0,
        "a job's change recomputes its day's CI cells, not its week's {week_runs} run partitions ({job_rru} RRU)"
    );
    let week_pulls = n_pulls as f64;
    assert!(
        pr_rru < week_pulls,
        "a merge recomputes its day's cells, not from its week's {week_pulls} pull requests ({pr_rru} RRU)"
    );
    // AND the week's cells (and the next weeks', where its merges land) equal a
    // recomputation from the rows and SQLite's, under every scope
    let first = octoscope::read::rollup::week_of(at(-7 * WEEKS, -9));
    let span = first - Duration::days(7)..first + Duration::days(28);
    let mut seen = 0;
    for scopes in [CellScopes::All, CellScopes::EveryRepo, CellScopes::EveryAuthor] {
        let stored = sorted(both.dynamo.ci_cells(&scopes, span.clone()).await.unwrap());
        let rows = sorted(rollups_from_rows::ci(both.dynamo.as_ref(), &scopes, span.clone()).await.unwrap());
        assert_eq!(stored, rows, "CI cells of {scopes:?} equal a recomputation");
        assert_eq!(stored, sorted(both.sqlite.ci_cells(&scopes, span.clone()).await.unwrap()), "and SQLite's");
        let pulls = sorted(both.dynamo.pull_cells(&scopes, span.clone()).await.unwrap());
        let rows = sorted(rollups_from_rows::pulls(both.dynamo.as_ref(), &scopes, span.clone()).await.unwrap());
        assert_eq!(pulls, rows, "pull request cells of {scopes:?} equal a recomputation");
        assert_eq!(pulls, sorted(both.sqlite.pull_cells(&scopes, span.clone()).await.unwrap()), "and SQLite's");
        seen += stored.len() + pulls.len();
    }
    assert!(seen > 0, "the week has cells");
    eprintln!("{seen} week cells equal a recomputation and SQLite's");
}
