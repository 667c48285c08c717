//! Rollup cells on DynamoDB (moto), kept by `DynamoStore::refresh_rollups`
//! from the table's real stream records (DynamoDB Streams GetShardIterator /
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
use octoscope::adapters::aws::dynamodb::{CostMeter, DynamoStore, create_table};
use octoscope::adapters::rollups_from_rows;
use octoscope::adapters::sqlite::SqliteStore;
use octoscope::domain::*;
use octoscope::ports::*;
use octoscope::read::rollup::{CellKey, CiCell, PullCell};

type Item = HashMap<String, AttributeValue>;

/// The table's stream, read shard by shard from where the last read stopped.
struct Stream {
    client: aws_sdk_dynamodbstreams::Client,
    arn: String,
    next: HashMap<String, String>,
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
        Stream { client: aws_sdk_dynamodbstreams::Client::new(sdk), arn, next: HashMap::new() }
    }

    /// Every record since the last read, as (old image, new image).
    async fn read(&mut self) -> Vec<(Option<Item>, Option<Item>)> {
        let desc = self.client.describe_stream().stream_arn(&self.arn).send().await.unwrap();
        let mut changes = Vec::new();
        for shard in desc.stream_description.unwrap().shards.unwrap_or_default() {
            let id = shard.shard_id.unwrap();
            let mut it = match self.next.get(&id) {
                Some(it) => it.clone(),
                None => {
                    let out = self
                        .client
                        .get_shard_iterator()
                        .stream_arn(&self.arn)
                        .shard_id(&id)
                        .shard_iterator_type(ShardIteratorType::TrimHorizon)
                        .send()
                        .await
                        .unwrap();
                    out.shard_iterator.unwrap()
                }
            };
            loop {
                let out = self.client.get_records().shard_iterator(&it).send().await.unwrap();
                let records = out.records.unwrap_or_default();
                let empty = records.is_empty();
                for r in records {
                    let d = r.dynamodb.unwrap();
                    changes.push((d.old_image.map(image), d.new_image.map(image)));
                }
                match out.next_shard_iterator {
                    Some(next) => it = next,
                    None => break,
                }
                if empty {
                    break;
                }
            }
            self.next.insert(id, it);
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

/// The first load: three weeks of pull requests, reviews, runs and jobs in two repositories.
fn first_load() -> Vec<Change> {
    vec![
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
        let dynamo = Arc::new(DynamoStore::new(client, &name).with_meter(meter.clone()));
        let dir = tempfile::tempdir().unwrap();
        let sqlite = SqliteStore::open(&dir.path().join("store.db")).unwrap();
        Both { dynamo, sqlite, stream, meter, _dir: dir }
    }

    async fn apply(&self, changes: &[Change]) {
        self.dynamo.apply_changes(changes).await.unwrap();
        self.sqlite.apply_changes(changes).await.unwrap();
    }

    /// Hand the stream's records since the last call to the upkeep, as the stream function does.
    async fn refresh(&mut self) -> (octoscope::adapters::aws::dynamodb::RollupsRefreshed, f64, f64) {
        let records = self.stream.read().await;
        let (r0, w0) = (self.meter.rru(), self.meter.wru());
        let done = self.dynamo.refresh_rollups(records.iter().map(|(o, n)| (o.as_ref(), n.as_ref()))).await.unwrap();
        (done, self.meter.rru() - r0, self.meter.wru() - w0)
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
        }
        // One repository by an old name answers for its current one.
        let api = sorted(self.dynamo.pull_cells(&CellScopes::Repo(repo("acme/api")), weeks()).await.unwrap());
        let rows = sorted(
            rollups_from_rows::pulls(self.dynamo.as_ref(), &CellScopes::Repo(repo("acme/api")), weeks()).await.unwrap(),
        );
        assert_eq!(api, rows, "{what}: one repository's cells");
        eprintln!("{what}: {seen} CI cells equal a recomputation");
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
