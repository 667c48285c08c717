//! Metric rollups on the SQLite store on disk: after a late event, a
//! duplicate, a resync, a repository move and a replay, every stored cell equals
//! the cell recomputed from the rows (`adapters::rollups_from_rows`, the pure
//! functions over `MetricRows`); and the API's figures from cells are exact
//! for counts and within the stated bound for percentiles.

mod common;

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDate, TimeZone, Utc};
use common::TestApp;
use octoscope::adapters::rollups_from_rows;
use octoscope::domain::*;
use octoscope::ports::store::*;
use octoscope::read::rollup::{ALPHA, CellKey, CiCell, Grain, MergeCell, PullCell};

/// Monday 2026-03-02 09:00 UTC (ISO week 2026-W10), plus `hours`.
fn mon(hours: i64) -> Timestamp {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap() + Duration::hours(hours)
}

fn repo(name: &str) -> RepoName {
    RepoName::parse(name).unwrap()
}

fn pull(
    r: &str,
    number: u64,
    author: &str,
    created: Timestamp,
    merged: Option<Timestamp>,
    updated: Timestamp,
) -> Change {
    Change::pull_request(PullRequest {
        repo: repo(r),
        number,
        id: Some(number as i64),
        title: format!("PR {number}"),
        state: if merged.is_some() { PrState::Merged } else { PrState::Open },
        draft: false,
        author: Some(author.into()),
        created_at: created,
        updated_at: updated,
        closed_at: merged,
        merged_at: merged,
        additions: Some(number as i64 * 10),
        deletions: Some(3),
        changed_files: None,
        commits: None,
        labels: vec![],
        requested_reviewers: vec![],
        requested_teams: vec![],
        base_ref: Some("main".into()),
        head_ref: None,
        head_sha: None,
        body: None,
    })
}

fn review(r: &str, pr: u64, id: i64, author: &str, state: ReviewState, at: Timestamp) -> Change {
    Change::Review(Review {
        repo: repo(r),
        pr_number: pr,
        id,
        author: Some(author.into()),
        state,
        submitted_at: Some(at),
        commit_id: None,
        body: None,
    })
}

fn run(id: i64, actor: &str, created: Timestamp, done: bool, updated: Timestamp) -> Change {
    Change::WorkflowRun(WorkflowRun {
        repo: repo("acme/api"),
        id,
        name: Some("CI".into()),
        workflow_id: Some(1),
        head_branch: Some("main".into()),
        head_sha: None,
        event: Some("push".into()),
        status: if done { RunStatus::Completed } else { RunStatus::InProgress },
        conclusion: done.then(|| "failure".into()),
        run_number: Some(id),
        run_attempt: Some(1),
        actor: Some(actor.into()),
        created_at: created,
        run_started_at: Some(created + Duration::minutes(1)),
        updated_at: updated,
    })
}

/// A job as GitHub sent it before jobs carried `created_at`.
fn without_created(job: Change) -> Change {
    let Change::WorkflowJob(mut j) = job else { unreachable!("a job") };
    j.created_at = None;
    Change::WorkflowJob(j)
}

fn job(id: i64, run_id: i64, created: Timestamp, queued_s: i64) -> Change {
    let started = created + Duration::seconds(queued_s);
    Change::WorkflowJob(WorkflowJob {
        repo: repo("acme/api"),
        id,
        run_id,
        name: format!("job {id}"),
        workflow_name: Some("CI".into()),
        head_branch: Some("main".into()),
        status: RunStatus::Completed,
        conclusion: Some("success".into()),
        labels: vec!["ubuntu-latest".into()],
        runner_name: None,
        runner_group: None,
        os: Some("linux".into()),
        created_at: Some(created),
        started_at: Some(started),
        completed_at: Some(started + Duration::seconds(300)),
    })
}

/// Four weeks around the data, Mondays.
fn weeks() -> std::ops::Range<NaiveDate> {
    NaiveDate::from_ymd_opt(2026, 2, 16).unwrap()..NaiveDate::from_ymd_opt(2026, 3, 30).unwrap()
}

fn sorted<C: Clone>(mut v: Vec<(CellKey, C)>) -> BTreeMap<CellKey, C> {
    v.drain(..).collect()
}

/// Every stored cell (all three kinds of scope) equals its recomputation from
/// the rows; returns the stored pull cells of everything, for spot checks.
async fn assert_cells_equal_rows(app: &TestApp, when: &str) -> BTreeMap<CellKey, PullCell> {
    let store = app.store.as_ref();
    let mut all = BTreeMap::new();
    for scopes in [CellScopes::All, CellScopes::EveryRepo, CellScopes::EveryAuthor] {
        let stored: BTreeMap<CellKey, PullCell> = sorted(store.pull_cells(&scopes, weeks()).await.unwrap());
        let rows = sorted(rollups_from_rows::pulls(store, &scopes, weeks()).await.unwrap());
        assert_eq!(stored, rows, "{when}: pull request cells of {scopes:?}");
        let stored: BTreeMap<CellKey, CiCell> = sorted(store.ci_cells(&scopes, weeks()).await.unwrap());
        let rows = sorted(rollups_from_rows::ci(store, &scopes, weeks()).await.unwrap());
        assert_eq!(stored, rows, "{when}: CI cells of {scopes:?}");
        // And the day cells of every day of those weeks.
        let stored: BTreeMap<CellKey, PullCell> = sorted(store.pull_day_cells(&scopes, weeks()).await.unwrap());
        let rows = sorted(rollups_from_rows::pulls_by(Grain::Day, store, &scopes, weeks()).await.unwrap());
        assert_eq!(stored, rows, "{when}: pull request day cells of {scopes:?}");
        let stored: BTreeMap<CellKey, CiCell> = sorted(store.ci_day_cells(&scopes, weeks()).await.unwrap());
        let rows = sorted(rollups_from_rows::ci_by(Grain::Day, store, &scopes, weeks()).await.unwrap());
        assert_eq!(stored, rows, "{when}: CI day cells of {scopes:?}");
        // And the merge cells (DORA's lead time).
        let stored: BTreeMap<CellKey, MergeCell> = sorted(store.merge_cells(&scopes, weeks()).await.unwrap());
        let rows = sorted(rollups_from_rows::merges(store, &scopes, weeks()).await.unwrap());
        assert!(!stored.is_empty(), "{when}: merge cells of {scopes:?}");
        assert_eq!(stored, rows, "{when}: merge cells of {scopes:?}");
        if scopes == CellScopes::All {
            all = sorted(store.pull_cells(&scopes, weeks()).await.unwrap());
        }
    }
    all
}

fn week(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

#[tokio::test]
async fn rollups_equal_a_recomputation_through_late_events_duplicates_resyncs_moves_and_replays() {
    let app = TestApp::new();
    let store = app.store.clone();
    let w10 = (octoscope::read::rollup::Scope::All, week(2026, 3, 2));
    let w11 = (octoscope::read::rollup::Scope::All, week(2026, 3, 9));

    // GIVEN pull requests, one merged the next week, and a run with jobs
    let first = vec![
        pull("acme/api", 1, "alice", mon(0), Some(mon(24)), mon(24)),
        pull("acme/api", 2, "bob", mon(1), Some(mon(24 * 7 + 2)), mon(24 * 7 + 2)),
        pull("acme/web", 3, "carol", mon(2), None, mon(2)),
        run(10, "alice", mon(3), false, mon(3)),
        job(100, 10, mon(3), 30),
    ];
    store.apply_changes(&first).await.unwrap();
    let cells = assert_cells_equal_rows(&app, "first writes").await;
    // THEN the week's cell counts them (a check that the cells are not both empty)
    assert_eq!((cells[&w10].merged, cells[&w10].opened, cells[&w10].unreviewed), (1, 3, 3));
    assert_eq!(cells[&w11].merged, 1);

    // WHEN a late event: a review of #1 arrives after its merge, and an older
    // version of #2 (last-writer-wins ignores it); jobs whose run comes later,
    // one without created_at (counted by its started_at)
    store
        .apply_changes(&[
            review("acme/api", 1, 500, "bob", ReviewState::ChangesRequested, mon(5)),
            pull("acme/api", 2, "bob", mon(1), None, mon(2)),
            job(101, 11, mon(30), 45),
            without_created(job(102, 11, mon(31), 0)),
        ])
        .await
        .unwrap();
    let cells = assert_cells_equal_rows(&app, "late events").await;
    assert_eq!(cells[&w10].unreviewed, 2, "the late review counts");
    assert_eq!(cells[&w11].merged, 1, "the older version of #2 changes nothing");

    // WHEN the run of job 101 arrives (its actor becomes the job's person), and
    // run 10 completes; then the same changes again (a duplicate)
    let more = vec![run(11, "dave", mon(29), true, mon(31)), run(10, "alice", mon(3), true, mon(4))];
    store.apply_changes(&more).await.unwrap();
    assert_cells_equal_rows(&app, "run after its job").await;
    store.apply_changes(&more).await.unwrap();
    assert_cells_equal_rows(&app, "duplicate").await;
    let dave = store.ci_cells(&CellScopes::Authors(vec![Some("dave".into())]), weeks()).await.unwrap();
    assert_eq!(dave.iter().map(|(_, c)| (c.runs.count, c.jobs.count)).collect::<Vec<_>>(), vec![(1, 2)]);

    // WHEN a resync rewrites #3 as merged in week 11 and a dismissed review no longer requests changes
    store
        .apply_changes(&[
            pull("acme/web", 3, "carol", mon(2), Some(mon(24 * 8)), mon(24 * 8)),
            review("acme/api", 1, 500, "bob", ReviewState::Dismissed, mon(5)),
        ])
        .await
        .unwrap();
    let cells = assert_cells_equal_rows(&app, "resync").await;
    assert_eq!(cells[&w11].merged, 2);

    // WHEN the repository moves (its rows change name)
    store
        .apply_changes(&[Change::RepositoryMoved {
            id: Some(7),
            from: repo("acme/api"),
            to: repo("acme/api2"),
            at: mon(40),
        }])
        .await
        .unwrap();
    assert_cells_equal_rows(&app, "move").await;
    let moved = store.pull_cells(&CellScopes::Repo(repo("acme/api")), weeks()).await.unwrap();
    assert!(moved.iter().all(|((s, _), _)| s.key() == "repo:acme/api2"), "an old name reads the current one");
    assert!(!moved.is_empty());

    // WHEN replayed: every entity dropped, then the same history applied again
    let before = assert_cells_equal_rows(&app, "before replay").await;
    store.reset_entities().await.unwrap();
    assert!(store.pull_cells(&CellScopes::All, weeks()).await.unwrap().is_empty(), "a reset empties the cells");
    store.apply_changes(&first).await.unwrap();
    store.apply_changes(&more).await.unwrap();
    assert_cells_equal_rows(&app, "replay").await;

    // AND a rebuild from the rows changes nothing
    let now = assert_cells_equal_rows(&app, "after replay").await;
    store.rebuild_rollups().await.unwrap();
    assert_eq!(assert_cells_equal_rows(&app, "rebuild").await, now);
    assert_ne!(before, now, "the replay applied less history than before it");
}

#[tokio::test]
async fn cells_reopened_from_disk_and_figures_from_bucketed_cells_are_within_the_bound() {
    // GIVEN 600 merged pull requests in ISO week 10, cycle times spread from
    // seconds to weeks (more than a cell keeps exactly), by two authors
    let app = TestApp::new();
    let mut changes = Vec::new();
    let mut cycles = Vec::new();
    for n in 1..=600u64 {
        let created = mon(0) + Duration::minutes(n as i64);
        let cycle = (n * n * n) as i64 % 500_000 + 1;
        let merged = created + Duration::seconds(cycle);
        if merged >= mon(0) + Duration::days(6) {
            continue;
        }
        cycles.push(cycle);
        changes.push(pull("acme/api", n, if n % 2 == 0 { "alice" } else { "bob" }, created, Some(merged), merged));
    }
    app.store.apply_changes(&changes).await.unwrap();
    let dir = app.dir;
    let app = TestApp::open(dir, Default::default());
    assert_cells_equal_rows(&app, "reopened").await;
    let cells = app.store.pull_cells(&CellScopes::All, weeks()).await.unwrap();
    assert!(
        cells.iter().any(|(_, c)| matches!(c.cycle, octoscope::read::rollup::Sketch::Buckets { .. })),
        "this many values are bucketed"
    );

    // WHEN the whole week is asked for (from the cell), with and without an author filter
    for (query, author) in [("", None), ("&author=alice", Some("alice"))] {
        let (status, body) = app.get(&format!("/api/metrics/pulls?since=2026-03-02&until=2026-03-09{query}")).await;
        assert_eq!(status, 200, "{body}");
        let g = &body["groups"][0];
        let mut exact: Vec<i64> = cycles
            .iter()
            .zip(changes.iter())
            .filter(|(_, c)| match (author, c) {
                (Some(a), Change::PullRequest { pull, .. }) => pull.author.as_deref() == Some(a),
                _ => true,
            })
            .map(|(c, _)| *c)
            .collect();
        exact.sort_unstable();
        // THEN counts are exact and every percentile within round(α × exact) of nearest rank
        assert_eq!(g["merged"], exact.len() as u64);
        assert_eq!(g["cycle_time_seconds"]["count"], exact.len() as u64);
        for p in [50u32, 90, 95] {
            let want = exact[(p as usize * exact.len()).div_ceil(100) - 1];
            let got = g["cycle_time_seconds"][format!("p{p}")].as_i64().unwrap();
            let bound = (ALPHA * want as f64).round() as i64;
            assert!((got - want).abs() <= bound, "p{p} {query}: {got} vs {want}");
        }
    }
}
