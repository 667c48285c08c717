//! Upgrading a DynamoDB table written under an earlier key layout, on a local
//! moto server: workflow jobs written as items of their own (`WJ#{id}` / `_`,
//! with a per-run gsi2 entry) are moved under their run (`RUN#{run}` /
//! `WJ#{id}`) by `DynamoStore::move_jobs_under_runs`, and then read once.
#![cfg(feature = "dynamodb")]

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{Duration, TimeZone, Utc};
use octoscope::adapters::aws::dynamodb::{DynamoStore, create_table};
use octoscope::domain::*;
use octoscope::ports::*;
use octoscope::read::JobMetricRow;
use octoscope::services::metrics::MetricsService;
use std::sync::Arc;

fn at(seconds: i64) -> Timestamp {
    Utc.with_ymd_and_hms(2030, 3, 4, 9, 0, 0).unwrap() + Duration::seconds(seconds)
}

/// A new table on the shared moto server, its client and a store on it.
async fn new_table() -> (aws_sdk_dynamodb::Client, String, DynamoStore) {
    let client = aws_sdk_dynamodb::Client::new(&octoscope_testkit::moto::MotoServer::shared().sdk_config().await);
    let table = octoscope_testkit::moto::unique("octoscope");
    create_table(&client, &table).await.unwrap();
    let store = DynamoStore::new(client.clone(), &table);
    (client, table, store)
}

fn repo() -> RepoName {
    RepoName::parse("acme/api").unwrap()
}

fn run(id: i64) -> Change {
    Change::WorkflowRun(WorkflowRun {
        repo: repo(),
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
        actor: Some("dev".into()),
        created_at: at(0),
        run_started_at: Some(at(5)),
        updated_at: at(300),
    })
}

fn job(id: i64, run_id: i64, status: &str, completed: Option<Timestamp>) -> Change {
    Change::WorkflowJob(WorkflowJob {
        repo: repo(),
        id,
        run_id,
        name: format!("job {id}"),
        workflow_name: Some("CI".into()),
        head_branch: Some("main".into()),
        status: RunStatus::parse(status),
        conclusion: completed.map(|_| "success".into()),
        labels: vec!["ubuntu-latest".into()],
        runner_name: None,
        runner_group: None,
        os: Some("linux".into()),
        created_at: Some(at(10)),
        started_at: Some(at(20)),
        completed_at: completed,
    })
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

/// Rewrite the job `id` of run `run_id` as the earlier layout stored it.
async fn as_before(client: &aws_sdk_dynamodb::Client, table: &str, id: i64, run_id: i64) {
    let (pk, sk) = (format!("RUN#{run_id:020}"), format!("WJ#{id:020}"));
    let key = [("pk".to_owned(), s(&pk)), ("sk".to_owned(), s(&sk))].into_iter().collect();
    let got = client.get_item().table_name(table).set_key(Some(key)).send().await.unwrap();
    let mut item = got.item.expect("the job under its run");
    client.delete_item().table_name(table).key("pk", s(&pk)).key("sk", s(&sk)).send().await.unwrap();
    item.insert("pk".into(), s(&format!("WJ#{id:020}")));
    item.insert("sk".into(), s("_"));
    item.insert("gsi2pk".into(), s(&format!("WJS#run#{run_id:020}")));
    item.insert("gsi2sk".into(), s(&format!("{id:020}")));
    client.put_item().table_name(table).set_item(Some(item)).send().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn jobs_of_the_earlier_layout_move_under_their_run_and_are_counted_once() {
    // GIVEN a run with three jobs stored as the earlier layout stored them (one not completed)
    let (client, table, store) = new_table().await;
    let changes = vec![
        run(7),
        job(1, 7, "completed", Some(at(60))),
        job(2, 7, "completed", Some(at(70))),
        job(3, 7, "in_progress", None),
    ];
    store.apply_changes(&changes).await.unwrap();
    for id in 1..=3 {
        as_before(&client, &table, id, 7).await;
    }
    let window = MetricsFilter::window(at(0), at(3600));
    // The new code does not see them as its run's jobs
    assert_eq!(store.stored_runs(&repo(), None, &[7], None).await.unwrap().runs[0].jobs, 0);

    // WHEN job 3 completes after the new code is deployed, and then the upgrade runs
    store.apply_changes(&[job(3, 7, "completed", Some(at(90)))]).await.unwrap();
    let moved = store.move_jobs_under_runs().await.unwrap();

    // THEN every job is under its run once, the completion kept over the older copy
    assert_eq!(moved, 3);
    let stored = store.stored_runs(&repo(), None, &[7], None).await.unwrap();
    assert_eq!((stored.runs[0].jobs, stored.runs[0].jobs_completed), (3, 3), "{stored:?}");
    let rows = store.metric_jobs(&window).await.unwrap();
    assert_eq!(rows.len(), 3, "{rows:?}");
    let old = client
        .get_item()
        .table_name(&table)
        .key("pk", s(&format!("WJ#{:020}", 3)))
        .key("sk", s("_"))
        .send()
        .await
        .unwrap();
    assert!(old.item.is_none(), "the old item is deleted");
    // AND a second run finds nothing left to move
    assert_eq!(store.move_jobs_under_runs().await.unwrap(), 0);
}

fn pull(number: u64, created: i64, updated: i64) -> Change {
    Change::pull_request(PullRequest {
        repo: repo(),
        number,
        id: Some(number as i64),
        title: format!("pull {number}"),
        state: PrState::Open,
        draft: false,
        author: Some("dev".into()),
        created_at: at(created),
        updated_at: at(updated),
        closed_at: None,
        merged_at: None,
        additions: None,
        deletions: None,
        changed_files: None,
        commits: None,
        labels: vec![],
        requested_reviewers: vec![],
        requested_teams: vec![],
        base_ref: Some("main".into()),
        head_ref: Some(format!("topic-{number}")),
        head_sha: None,
        body: None,
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn pull_requests_listed_by_update_are_relisted_by_creation() {
    // GIVEN three pull requests created 1, 2, 3 and last updated in the opposite order, whose list
    // keys the earlier layout wrote (by update time)
    let (client, table, store) = new_table().await;
    store.apply_changes(&[pull(1, 10, 300), pull(2, 20, 200), pull(3, 30, 100)]).await.unwrap();
    for (number, updated) in [(1u64, 300), (2, 200), (3, 100)] {
        let sk = format!("PR#{number:020}");
        let old = format!("{}#acme/api#{number:020}", at(updated).format("%Y-%m-%dT%H:%M:%S%.3fZ"));
        client
            .update_item()
            .table_name(&table)
            .key("pk", s("REPO#acme/api"))
            .key("sk", s(&sk))
            .update_expression("SET gsi1sk = :k")
            .expression_attribute_values(":k", s(&old))
            .send()
            .await
            .unwrap();
    }
    async fn listed(store: &DynamoStore) -> Vec<u64> {
        let page = store.list_pulls(&PullFilter::default(), &PageRequest::first(10)).await.unwrap();
        page.items.iter().map(|p| p.number).collect()
    }
    assert_eq!(listed(&store).await, [1, 2, 3], "the earlier layout lists by update");

    // WHEN the upgrade runs
    let done = store.upgrade().await.unwrap();

    // THEN they are listed newest created first, and a second run changes nothing
    assert_eq!(done.pulls_relisted, 3);
    assert_eq!(listed(&store).await, [3, 2, 1]);
    assert_eq!(store.upgrade().await.unwrap(), octoscope::adapters::aws::dynamodb::Upgraded::default());
}

#[tokio::test(flavor = "multi_thread")]
async fn merge_cells_are_written_for_pull_requests_stored_before_them() {
    // GIVEN a pull request merged and stored before merge cells existed (no upkeep ran)
    let (_, _, store) = new_table().await;
    let store = Arc::new(store);
    let Change::PullRequest { mut pull, known } = pull(1, 10, 300) else { unreachable!() };
    (pull.state, pull.merged_at, pull.closed_at) = (PrState::Merged, Some(at(200)), Some(at(200)));
    store.apply_changes(&[Change::PullRequest { pull, known }]).await.unwrap();
    let window = MetricsFilter::window(at(0), at(1_000));
    let service = MetricsService::new(store.clone());
    let merges = |f: MetricsFilter| {
        let service = service.clone();
        async move { service.merges(&f).await.unwrap().into_iter().collect::<Vec<_>>() }
    };
    assert!(merges(window.clone()).await.is_empty(), "DORA reads merges from merge cells");

    // WHEN the upgrade runs
    let done = store.upgrade().await.unwrap();

    // THEN its merge cells are written (everything, its repository, its author) and DORA finds the merge
    assert_eq!(done.merge_cells_written, 3, "{done:?}");
    assert_eq!(merges(window.clone()).await, [(repo(), vec![at(200)])]);
    let by_author = MetricsFilter { author: Some("dev".into()), ..window.clone() };
    assert_eq!(merges(by_author).await, [(repo(), vec![at(200)])]);
    // AND a second run writes nothing
    assert_eq!(store.upgrade().await.unwrap(), octoscope::adapters::aws::dynamodb::Upgraded::default());
}

#[tokio::test(flavor = "multi_thread")]
async fn jobs_without_created_at_are_listed_by_their_start() {
    // GIVEN a run with two jobs without created_at (GitHub's payloads before jobs carried it):
    // one written now (listed by its start), one as earlier code wrote it (in no index), started
    // 8 hours after its run (a re-run: too far from the run to be found through it, `job_index.rs`)
    let (client, table, store) = new_table().await;
    let later = 8 * 3600;
    let without_created = |id: i64, started: i64| {
        let Change::WorkflowJob(mut j) = job(id, 7, "completed", Some(at(started + 40))) else { unreachable!() };
        (j.created_at, j.started_at) = (None, Some(at(started)));
        Change::WorkflowJob(j)
    };
    store.apply_changes(&[run(7), without_created(1, 20), without_created(2, later)]).await.unwrap();
    let key = |id: i64| {
        [("pk".to_owned(), s("RUN#00000000000000000007")), ("sk".to_owned(), s(&format!("WJ#{id:020}")))]
            .into_iter()
            .collect::<std::collections::HashMap<_, _>>()
    };
    client
        .update_item()
        .table_name(&table)
        .set_key(Some(key(2)))
        .update_expression("REMOVE gsi1pk, gsi1sk")
        .send()
        .await
        .unwrap();
    let window = MetricsFilter::window(at(0), at(later + 3600));
    let around = MetricsFilter::window(at(later - 60), at(later + 60));
    let ids = |rows: Vec<JobMetricRow>| rows.iter().map(|r| r.started_at).collect::<Vec<_>>();
    // (a window that reads the run's partition finds both; one of the earlier job's hour alone does not)
    assert_eq!(ids(store.metric_jobs(&window).await.unwrap()), [Some(at(20)), Some(at(later))]);
    assert!(store.metric_jobs(&around).await.unwrap().is_empty(), "the earlier job is in no index");

    // WHEN the upgrade runs
    let done = store.upgrade().await.unwrap();

    // THEN the earlier one is listed by its start too, and a second run lists nothing
    assert_eq!(done.jobs_listed, 1, "{done:?}");
    assert_eq!(ids(store.metric_jobs(&around).await.unwrap()), [Some(at(later))]);
    assert_eq!(ids(store.metric_jobs(&window).await.unwrap()), [Some(at(20)), Some(at(later))]);
    assert!(store.metric_jobs(&MetricsFilter::window(at(21), at(later))).await.unwrap().is_empty(), "by started_at");
    // AND the CI cells count both (the upgrade rebuilt them)
    let week = chrono::NaiveDate::from_ymd_opt(2030, 3, 4).unwrap(); // the Monday of at(0)
    let cells = store.ci_cells(&CellScopes::All, week..week + Duration::days(7)).await.unwrap();
    assert_eq!(cells.iter().map(|(_, c)| c.jobs.count).sum::<u64>(), 2, "{cells:?}");
    assert_eq!(store.upgrade().await.unwrap().jobs_listed, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_person_s_week_cells_give_way_to_their_day_cells() {
    // GIVEN a merged pull request and a run with a job of dev's, their cells built
    let (client, table, store) = new_table().await;
    let Change::PullRequest { mut pull, known } = pull(1, 10, 300) else { unreachable!() };
    (pull.state, pull.merged_at, pull.closed_at) = (PrState::Merged, Some(at(200)), Some(at(200)));
    store
        .apply_changes(&[Change::PullRequest { pull, known }, run(7), job(1, 7, "completed", Some(at(60)))])
        .await
        .unwrap();
    store.rebuild_rollups().await.unwrap();
    let dev = CellScopes::Authors(vec![Some("dev".into())]);
    let monday = chrono::NaiveDate::from_ymd_opt(2030, 3, 4).unwrap();
    let week = monday..monday + Duration::days(7);
    let pulls = store.pull_cells(&dev, week.clone()).await.unwrap();
    let ci = store.ci_cells(&dev, week.clone()).await.unwrap();
    assert_eq!((pulls.len(), ci.len()), (1, 1), "dev's week cells");
    // AND the table as the earlier layout kept it: dev's week cells stored, dev's day cells not
    let cell_items = |client: aws_sdk_dynamodb::Client, table: String| async move {
        let out = client
            .query()
            .table_name(&table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S("ROLLUP#author:dev".into()))
            .send()
            .await
            .unwrap();
        out.items.unwrap_or_default()
    };
    for item in cell_items(client.clone(), table.clone()).await {
        client.delete_item().table_name(&table).set_key(Some(key_of_item(&item))).send().await.unwrap();
    }
    for (sk, bytes) in [("P#2030-03-04", pulls[0].1.encode()), ("C#2030-03-04", ci[0].1.encode())] {
        client
            .put_item()
            .table_name(&table)
            .item("pk", AttributeValue::S("ROLLUP#author:dev".into()))
            .item("sk", AttributeValue::S(sk.into()))
            .item("kind", AttributeValue::S("rollup_cell".into()))
            .item("cell", AttributeValue::B(aws_sdk_dynamodb::primitives::Blob::new(bytes)))
            .send()
            .await
            .unwrap();
    }
    assert!(store.pull_cells(&dev, week.clone()).await.unwrap().is_empty(), "a person's weeks are their days'");

    // WHEN the upgrade runs
    let done = store.upgrade().await.unwrap();

    // THEN dev's day cells are written and the week cells read from them again, the week items gone
    assert!(done.person_cells_by_day, "{done:?}");
    assert_eq!(store.pull_cells(&dev, week.clone()).await.unwrap(), pulls);
    assert_eq!(store.ci_cells(&dev, week.clone()).await.unwrap(), ci);
    let left: Vec<String> = cell_items(client.clone(), table.clone())
        .await
        .iter()
        .filter_map(|i| match i.get("sk") {
            Some(AttributeValue::S(sk)) => Some(sk.clone()),
            _ => None,
        })
        .collect();
    assert!(left.iter().all(|sk| sk.contains("D#") || sk.starts_with("M#")), "no person week cell: {left:?}");
    assert!(left.iter().any(|sk| sk.starts_with("PD#")) && left.iter().any(|sk| sk.starts_with("CD#")), "{left:?}");
    // AND a second run changes nothing
    assert_eq!(store.upgrade().await.unwrap(), octoscope::adapters::aws::dynamodb::Upgraded::default());
}

fn key_of_item(
    item: &std::collections::HashMap<String, AttributeValue>,
) -> std::collections::HashMap<String, AttributeValue> {
    item.iter().filter(|(k, _)| *k == "pk" || *k == "sk").map(|(k, v)| (k.clone(), v.clone())).collect()
}
