//! The `Store` contract: one set of tests, run against every adapter: SQLite
//! on disk, and DynamoDB on a local moto server (feature `dynamodb`). Each test
//! takes a [`Backend`] that makes fresh, empty stores, and speaks only
//! `dyn Store`, so both adapters must give the same answers.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{Duration, TimeDelta, TimeZone, Utc};
use octoscope::domain::*;
use octoscope::domain::{CheckRun, Gap, GapKind, JobRecord, JobState, Target};
use octoscope::ports::*;
use octoscope::read::*;
use octoscope::read::{DeliveryView, WorkflowRunView};
use octoscope_testkit::entities;

/// Makes fresh, empty stores of one adapter.
#[async_trait]
trait Backend: Send + Sync {
    async fn store(&self) -> Arc<dyn Store>;
}

struct Sqlite(Mutex<Vec<tempfile::TempDir>>);

#[async_trait]
impl Backend for Sqlite {
    async fn store(&self) -> Arc<dyn Store> {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = octoscope::adapters::sqlite::SqliteStore::open(&dir.path().join("store.db")).expect("open store");
        self.0.lock().expect("dirs").push(dir);
        Arc::new(store)
    }
}

#[cfg(feature = "dynamodb")]
struct Dynamo;

#[cfg(feature = "dynamodb")]
#[async_trait]
impl Backend for Dynamo {
    async fn store(&self) -> Arc<dyn Store> {
        use octoscope::adapters::aws::dynamodb::{DynamoStore, create_table};
        let client = dynamo_client().await;
        let table = octoscope_testkit::moto::unique("octoscope");
        create_table(&client, &table).await.expect("create table");
        Arc::new(DynamoStore::new(client, table))
    }
}

/// A DynamoDB client for the shared moto server: fake credentials, fixed region.
#[cfg(feature = "dynamodb")]
async fn dynamo_client() -> aws_sdk_dynamodb::Client {
    dynamo_client_at(&octoscope_testkit::moto::MotoServer::shared().endpoint).await
}

#[cfg(feature = "dynamodb")]
async fn dynamo_client_at(endpoint: &str) -> aws_sdk_dynamodb::Client {
    use aws_sdk_dynamodb::config::{Credentials, Region};
    let sdk = octoscope::adapters::aws::sdk_config_with_endpoint(endpoint).await;
    let conf = aws_sdk_dynamodb::config::Builder::from(&sdk)
        .region(Region::new(octoscope_testkit::moto::REGION))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
        .build();
    aws_sdk_dynamodb::Client::from_conf(conf)
}

/// DynamoDB only: SDK errors keep their kind.
#[cfg(feature = "dynamodb")]
mod dynamodb_errors {
    use octoscope::adapters::aws::dynamodb::DynamoStore;
    use octoscope::ports::{JobStore, PageRequest, StoreError};

    #[tokio::test]
    async fn a_missing_table_is_not_retryable_and_an_unreachable_store_is() {
        // GIVEN a store whose table does not exist WHEN read THEN an internal (not retryable) error
        let missing = DynamoStore::new(super::dynamo_client().await, "no-such-table");
        let e = missing.list_jobs(&PageRequest::first(5)).await.unwrap_err();
        assert!(matches!(e, StoreError::Internal(_)) && !e.is_retryable(), "{e:?}");
        // GIVEN an endpoint nothing listens on WHEN read THEN unavailable, worth a retry
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let down = DynamoStore::new(super::dynamo_client_at(&format!("http://127.0.0.1:{port}")).await, "t");
        let e = down.get_job("j").await.unwrap_err();
        assert!(matches!(e, StoreError::Unavailable(_)) && e.is_retryable(), "{e:?}");
        // AND the SDK error is kept as the source, not flattened into a string
        let source = std::error::Error::source(&e).expect("a source");
        assert!(format!("{source:?}").contains("dispatch") || format!("{source:?}").contains("Dispatch"), "{source:?}");
    }
}

/// Instantiate every contract test for every backend.
macro_rules! contract {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test(&super::Sqlite(std::sync::Mutex::new(Vec::new()))).await;
                }
            )*
        }
        #[cfg(feature = "dynamodb")]
        mod dynamodb {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test(&super::Dynamo).await;
                }
            )*
        }
    };
}

contract!(
    ledger_claims_once_releases_and_reports_status,
    request_counts_per_installation_round_trip,
    complete_delivery_applies_changes_and_records_the_outcome,
    pull_requests_are_last_writer_wins_in_any_order,
    reviews_are_last_writer_wins_and_a_dismissal_wins_the_tie,
    memberships_runs_jobs_and_branches_are_order_proof,
    repositories_merge_fields_and_keep_the_newest_activity,
    stale_writes_are_reported_as_skipped,
    list_repos_orders_by_activity_and_pages_without_gaps,
    list_pulls_filters_and_pages_to_the_end,
    get_pull_returns_reviews_in_submission_order,
    bodies_round_trip_and_a_write_without_one_keeps_it,
    list_teams_filters_by_org_and_lists_present_members,
    list_commits_by_repo_and_branch,
    list_workflow_runs_by_repo_newest_first,
    list_deliveries_filters_and_pages,
    stats_count_what_the_store_holds,
    garbage_cursors_are_refused,
    completeness_reads_summarise_the_store,
    snapshots_list_recent_pulls_with_every_review,
    snapshots_cut_recent_pulls_at_the_limit,
    snapshots_count_default_branch_commits_and_deployments,
    stored_runs_count_the_window_and_the_jobs_of_asked_runs,
    stored_runs_find_where_unfinished_runs_begin,
    known_deliveries_and_delivery_hooks,
    checks_are_recorded_listed_and_verify_targets,
    jobs_are_saved_listed_and_fetched,
    locks_expire_and_renew,
    checkpoints_save_load_and_clear,
    metric_reads_window_and_filter,
    moves_take_the_whole_history_to_the_new_name,
    a_move_merges_with_what_the_new_name_holds_newest_wins,
    writes_under_an_old_name_land_on_the_new_one,
    moves_chain_return_and_repeat_without_changing_more,
    a_new_repository_taking_an_old_name_keeps_its_own_history,
    deliveries_keep_their_names_and_count_for_the_new_one,
    review_facts_survive_concurrent_writers,
    reset_entities_keeps_the_ledger,
);

// Builders.

fn t(min: i64) -> Timestamp {
    Utc.with_ymd_and_hms(2030, 3, 4, 9, 0, 0).unwrap() + Duration::minutes(min)
}

fn repo(name: &str) -> RepoName {
    RepoName::parse(name).unwrap()
}

fn page(limit: usize) -> PageRequest {
    PageRequest::first(limit)
}

fn pull(repo_name: &str, number: u64, state: PrState, author: &str, created: i64, updated: i64) -> PullRequest {
    PullRequest {
        repo: repo(repo_name),
        number,
        id: Some(number as i64 * 100),
        title: format!("PR {number}"),
        state,
        draft: false,
        author: Some(author.into()),
        created_at: t(created),
        updated_at: t(updated),
        closed_at: (state != PrState::Open).then(|| t(updated)),
        merged_at: (state == PrState::Merged).then(|| t(updated)),
        additions: Some(10),
        deletions: Some(2),
        changed_files: Some(1),
        commits: Some(1),
        labels: vec!["bug".into()],
        requested_reviewers: vec![],
        requested_teams: vec![],
        base_ref: Some("main".into()),
        head_ref: Some(format!("f{number}")),
        head_sha: None,
        body: None,
    }
}

fn pr(repo_name: &str, number: u64, state: PrState, author: &str, created: i64, updated: i64) -> Change {
    Change::pull_request(pull(repo_name, number, state, author, created, updated))
}

fn review(repo_name: &str, pr: u64, id: i64, author: &str, state: ReviewState, at: i64) -> Change {
    Change::Review(Review {
        repo: repo(repo_name),
        pr_number: pr,
        id,
        author: Some(author.into()),
        state,
        submitted_at: Some(t(at)),
        commit_id: None,
        body: None,
    })
}

fn team(org: &str, slug: &str, deleted: bool, at: i64) -> Change {
    Change::Team(Team {
        org: org.into(),
        slug: slug.into(),
        id: Some(1),
        name: slug.to_uppercase(),
        description: Some("d".into()),
        privacy: Some("closed".into()),
        parent_slug: None,
        deleted,
        version: t(at),
    })
}

fn member(org: &str, slug: &str, login: &str, present: bool, at: i64) -> Change {
    Change::TeamMember {
        org: org.into(),
        team_slug: slug.into(),
        member: Membership { login: login.into(), role: None, present, version: t(at) },
    }
}

fn repository(name: &str, activity: Option<i64>, deleted: bool, version: i64) -> Change {
    Change::Repository(Repository {
        full_name: repo(name),
        id: Some(1),
        default_branch: Some("main".into()),
        private: Some(false),
        archived: Some(false),
        deleted,
        version: Some(t(version)),
        activity_at: activity.map(t),
    })
}

fn branch(repo_name: &str, name: &str, sha: Option<&str>, deleted: bool, at: i64) -> Change {
    Change::Branch(Branch {
        repo: repo(repo_name),
        name: name.into(),
        head_sha: sha.map(Into::into),
        deleted,
        version: t(at),
    })
}

/// A repository with GitHub's id, as a delivery's `repository` says it.
fn repository_with_id(name: &str, id: i64, version: i64) -> Change {
    match repository(name, Some(version), false, version) {
        Change::Repository(r) => Change::Repository(Repository { id: Some(id), ..r }),
        other => other,
    }
}

fn run(repo_name: &str, id: i64, status: &str, actor: &str, created: i64, updated: i64) -> Change {
    Change::WorkflowRun(entities::workflow_run(repo_name, id, status, actor, t(created), t(updated)))
}

fn job(id: i64, run_id: i64, status: &str, created: i64, done: Option<i64>) -> Change {
    Change::WorkflowJob(entities::workflow_job(id, run_id, status, t(created), done.map(t)))
}

/// A job as GitHub sent it before jobs carried `created_at`: started at `started`.
fn without_created(job: Change, started: i64) -> Change {
    let Change::WorkflowJob(mut j) = job else { unreachable!("a job") };
    (j.created_at, j.started_at) = (None, Some(t(started)));
    Change::WorkflowJob(j)
}

fn commit(repo_name: &str, sha: &str, at: Option<i64>, branch: Option<&str>) -> Change {
    Change::Commit {
        commit: Commit {
            repo: repo(repo_name),
            sha: sha.into(),
            message: format!("commit {sha}"),
            author_name: Some("Alice".into()),
            author_login: Some("alice".into()),
            committed_at: at.map(t),
        },
        branch: branch.map(Into::into),
        pushed_at: at.map(t),
    }
}

fn deployment(repo_name: &str, id: i64, created: i64) -> Change {
    Change::Deployment(Deployment {
        repo: repo(repo_name),
        id,
        sha: Some("abc".into()),
        git_ref: Some("main".into()),
        environment: Some("production".into()),
        task: None,
        creator: Some("alice".into()),
        created_at: t(created),
        updated_at: t(created),
    })
}

fn deployment_status(repo_name: &str, deployment: i64, id: i64, state: &str, created: i64) -> Change {
    Change::DeploymentStatus(DeploymentStatus {
        repo: repo(repo_name),
        deployment_id: deployment,
        id,
        state: state.into(),
        environment: Some("production".into()),
        creator: Some("alice".into()),
        created_at: t(created),
        updated_at: t(created),
    })
}

fn key(hook: &str, delivery: &str) -> DeliveryKey {
    DeliveryKey { hook_id: HookId::parse(hook).unwrap(), delivery_id: DeliveryId::parse(delivery).unwrap() }
}

fn claim(
    hook: &str,
    delivery: &str,
    event: &str,
    repo_name: Option<&str>,
    org: Option<&str>,
    at: i64,
) -> DeliveryClaim {
    DeliveryClaim {
        key: key(hook, delivery),
        event: EventName::parse(event).unwrap(),
        action: Some("opened".into()),
        repo: repo_name.map(repo),
        org: org.map(Into::into),
        received_at: t(at),
        body_bytes: 100,
    }
}

fn outcome(status: DeliveryStatus) -> DeliveryOutcome {
    DeliveryOutcome { status, reason: None, changes: 0 }
}

/// Every page of a list, following cursors; fails on a repeated item.
async fn walk<T: Clone + std::fmt::Debug>(limit: usize, mut next: impl AsyncFnMut(PageRequest) -> Page<T>) -> Vec<T> {
    let mut all = Vec::new();
    let mut cursor = None;
    for _ in 0..1000 {
        let got = next(PageRequest { limit, cursor: cursor.clone() }).await;
        assert!(got.items.len() <= limit, "a page holds at most its limit");
        all.extend(got.items);
        match got.next_cursor {
            Some(c) => cursor = Some(c),
            None => return all,
        }
    }
    panic!("pagination did not end");
}

/// Apply `changes` one write at a time in each order, on a fresh store; every order must read the same.
async fn same_in_any_order<T: PartialEq + std::fmt::Debug>(
    b: &dyn Backend,
    changes: &[Change],
    orders: &[&[usize]],
    read: impl AsyncFn(&dyn Store) -> T,
) -> T {
    let mut first = None;
    for order in orders {
        let s = b.store().await;
        for &i in *order {
            s.apply_changes(std::slice::from_ref(&changes[i])).await.unwrap();
        }
        let got = read(&*s).await;
        match &first {
            None => first = Some(got),
            Some(f) => assert_eq!(&got, f, "order {order:?}"),
        }
    }
    first.unwrap()
}

// The ledger.

async fn ledger_claims_once_releases_and_reports_status(b: &dyn Backend) {
    // GIVEN a fresh ledger
    let s = b.store().await;
    let c = claim("1", "d-1", "push", Some("acme/api"), Some("acme"), 0);
    // WHEN a delivery is claimed twice THEN the second is a pending duplicate
    assert_eq!(s.claim_delivery(&c).await.unwrap(), Claim::Claimed);
    assert_eq!(s.claim_delivery(&c).await.unwrap(), Claim::Duplicate(DeliveryStatus::Pending));
    // WHEN the claimant crashed THEN a redelivery after the lease claims it again
    assert_eq!(s.claim_delivery(&claim("1", "d-1", "push", None, None, 2)).await.unwrap(), Claim::Claimed);
    // WHEN completed THEN every later claim is a duplicate with its status
    s.complete_delivery(&c.key, &[], &outcome(DeliveryStatus::Ignored)).await.unwrap();
    assert_eq!(
        s.claim_delivery(&claim("1", "d-1", "push", None, None, 600)).await.unwrap(),
        Claim::Duplicate(DeliveryStatus::Ignored)
    );
    // WHEN a claim is released THEN it is claimable at once; a completed one cannot be released
    let d2 = claim("1", "d-2", "push", None, None, 0);
    assert_eq!(s.claim_delivery(&d2).await.unwrap(), Claim::Claimed);
    s.release_delivery(&d2.key).await.unwrap();
    assert_eq!(s.claim_delivery(&d2).await.unwrap(), Claim::Claimed);
    s.release_delivery(&c.key).await.unwrap();
    assert_eq!(s.claim_delivery(&c).await.unwrap(), Claim::Duplicate(DeliveryStatus::Ignored));
    // AND the same delivery id from another hook is another delivery
    assert_eq!(s.claim_delivery(&claim("2", "d-1", "push", None, None, 0)).await.unwrap(), Claim::Claimed);
}

async fn complete_delivery_applies_changes_and_records_the_outcome(b: &dyn Backend) {
    // GIVEN a claimed delivery carrying a pull request and a stale copy of it
    let s = b.store().await;
    let c = claim("1", "d-1", "pull_request", Some("acme/api"), Some("acme"), 0);
    s.claim_delivery(&c).await.unwrap();
    let changes = [pr("acme/api", 1, PrState::Open, "alice", 0, 5), pr("acme/api", 1, PrState::Open, "alice", 0, 1)];
    // WHEN completed
    let report = s
        .complete_delivery(
            &c.key,
            &changes,
            &DeliveryOutcome { status: DeliveryStatus::Stored, reason: None, changes: 1 },
        )
        .await
        .unwrap();
    // THEN the newer write applied, the older skipped, and the ledger says so
    assert_eq!(report, ApplyReport { applied: 1, skipped: 1 });
    let got = s.get_pull(&repo("acme/api"), 1).await.unwrap().unwrap();
    assert_eq!(got.pull.updated_at, t(5));
    let d = s.list_deliveries(&DeliveryFilter::default(), &page(10)).await.unwrap().items;
    assert_eq!((d.len(), d[0].status.as_str(), d[0].changes), (1, "stored", 1));
    // WHEN a failed delivery is completed with a reason THEN the reason is kept
    let f = claim("1", "d-2", "push", None, None, 1);
    s.claim_delivery(&f).await.unwrap();
    let failed = DeliveryOutcome { status: DeliveryStatus::Failed, reason: Some("bad payload".into()), changes: 0 };
    s.complete_delivery(&f.key, &[], &failed).await.unwrap();
    let d = s.list_deliveries(&DeliveryFilter::default(), &page(10)).await.unwrap().items;
    assert_eq!((d[0].status.as_str(), d[0].reason.as_deref()), ("failed", Some("bad payload")));
}

// Last-writer-wins.

const ORDERS_4: &[&[usize]] = &[&[0, 1, 2, 3], &[3, 2, 1, 0], &[2, 0, 3, 1], &[1, 3, 0, 2], &[3, 0, 1, 2]];

async fn pull_requests_are_last_writer_wins_in_any_order(b: &dyn Backend) {
    // GIVEN opened at 1, closed at 3, merged at 3 (ties with the close), and a
    // review event's copy at 2 without sizes
    let mut no_sizes = pull("acme/api", 7, PrState::Open, "alice", 0, 2);
    (no_sizes.additions, no_sizes.deletions, no_sizes.labels) = (None, None, vec![]);
    no_sizes.title = "renamed".into();
    let changes = [
        pr("acme/api", 7, PrState::Open, "alice", 0, 1),
        Change::PullRequest { pull: Box::new(no_sizes), known: ListsKnown { labels: false, ..ListsKnown::ALL } },
        pr("acme/api", 7, PrState::Closed, "alice", 0, 3),
        pr("acme/api", 7, PrState::Merged, "alice", 0, 3),
    ];
    // WHEN applied in any order THEN the pull request is merged, and sizes from older writes are kept
    let got = same_in_any_order(b, &changes, ORDERS_4, async |s| {
        s.get_pull(&repo("acme/api"), 7).await.unwrap().unwrap().pull
    })
    .await;
    assert_eq!((got.state.as_str(), got.merged_at, got.title.as_str()), ("merged", Some(t(3)), "PR 7"));
    assert_eq!((got.additions, got.deletions, got.labels), (Some(10), Some(2), vec!["bug".to_owned()]));
}

async fn reviews_are_last_writer_wins_and_a_dismissal_wins_the_tie(b: &dyn Backend) {
    // GIVEN a review approved at 2 and dismissed (same submitted_at), and another commented at 4
    let changes = [
        pr("acme/api", 1, PrState::Open, "alice", 0, 1),
        review("acme/api", 1, 11, "bob", ReviewState::Approved, 2),
        review("acme/api", 1, 11, "bob", ReviewState::Dismissed, 2),
        review("acme/api", 1, 12, "carol", ReviewState::Commented, 4),
    ];
    // WHEN applied in any order THEN the dismissal stands
    let reviews = same_in_any_order(b, &changes, ORDERS_4, async |s| {
        s.get_pull(&repo("acme/api"), 1).await.unwrap().unwrap().reviews
    })
    .await;
    let got: Vec<_> = reviews.iter().map(|r| (r.id, r.state.as_str(), r.author.as_deref())).collect();
    assert_eq!(got, [(11, "dismissed", Some("bob")), (12, "commented", Some("carol"))]);
}

async fn memberships_runs_jobs_and_branches_are_order_proof(b: &dyn Backend) {
    // GIVEN alice added at 1 and removed at 3, bob added at 2
    let changes = [
        team("acme", "core", false, 0),
        member("acme", "core", "alice", true, 1),
        member("acme", "core", "bob", true, 2),
        member("acme", "core", "alice", false, 3),
    ];
    // WHEN applied in any order THEN a late "added" never resurrects alice
    let members = same_in_any_order(b, &changes, ORDERS_4, async |s| {
        s.list_teams(Some("acme"), &page(10)).await.unwrap().items[0].members.clone()
    })
    .await;
    assert_eq!(members, ["bob"]);

    // GIVEN a run queued, in progress, completed; its job queued then completed
    let changes = [
        run("acme/api", 7, "queued", "alice", 0, 0),
        run("acme/api", 7, "in_progress", "alice", 0, 2),
        run("acme/api", 7, "completed", "alice", 0, 9),
        job(70, 7, "completed", 0, Some(8)),
        job(70, 7, "queued", 0, None),
    ];
    // WHEN applied in any order THEN the run is completed with its timings, and the job too
    let orders: &[&[usize]] = &[&[0, 1, 2, 3, 4], &[2, 1, 0, 4, 3], &[1, 2, 0, 3, 4]];
    let (runs, jobs) = same_in_any_order(b, &changes, orders, async |s| {
        let runs = s.list_workflow_runs(None, &page(10)).await.unwrap().items;
        let jobs = s.metric_jobs(&MetricsFilter::window(t(-60), t(60))).await.unwrap();
        (runs, jobs)
    })
    .await;
    assert_eq!(runs[0].run.status.as_str(), "completed");
    assert_eq!((runs[0].queue_seconds, runs[0].duration_seconds), (Some(60), Some(480)));
    assert_eq!((jobs[0].ci.status.as_str(), jobs[0].completed_at), ("completed", Some(t(8))));

    // GIVEN a branch pushed at 1 and 2, deleted at 5
    let changes = [
        repository("acme/api", Some(0), false, 0),
        branch("acme/api", "feature", Some("a1"), false, 1),
        branch("acme/api", "feature", Some("b2"), false, 2),
        branch("acme/api", "feature", None, true, 5),
    ];
    // WHEN applied in any order THEN it is gone; without the deletion the newest push is the head
    let branches = same_in_any_order(b, &changes, ORDERS_4, async |s| {
        s.list_repos(&page(10)).await.unwrap().items[0].branches.clone()
    })
    .await;
    assert!(branches.is_empty(), "{branches:?}");
    let heads = same_in_any_order(b, &changes[..3], &[&[0, 1, 2], &[0, 2, 1], &[2, 1, 0]], async |s| {
        s.list_repos(&page(10)).await.unwrap().items[0].branches.clone()
    })
    .await;
    assert_eq!(heads.iter().map(|h| h.head_sha.as_deref()).collect::<Vec<_>>(), [Some("b2")]);
}

async fn repositories_merge_fields_and_keep_the_newest_activity(b: &dyn Backend) {
    // GIVEN a repository at version 5 with activity at 3, then an older write (version 1) with newer activity
    let s = b.store().await;
    let mut old = Repository {
        full_name: repo("acme/api"),
        id: None,
        default_branch: Some("master".into()),
        private: Some(true),
        archived: None,
        deleted: false,
        version: Some(t(1)),
        activity_at: Some(t(9)),
    };
    s.apply_changes(&[repository("acme/api", Some(3), false, 5)]).await.unwrap();
    s.apply_changes(&[Change::Repository(old.clone())]).await.unwrap();
    // THEN the newer version's fields stand, and the newest activity is kept
    let r = &s.list_repos(&page(10)).await.unwrap().items[0];
    assert_eq!((r.default_branch.as_deref(), r.private, r.last_activity_at), (Some("main"), Some(false), Some(t(9))));
    // WHEN a newer version says it was deleted THEN it leaves the list
    old.version = Some(t(8));
    old.deleted = true;
    s.apply_changes(&[Change::Repository(old)]).await.unwrap();
    assert!(s.list_repos(&page(10)).await.unwrap().items.is_empty());
}

async fn stale_writes_are_reported_as_skipped(b: &dyn Backend) {
    // GIVEN newer state of several entity types
    let s = b.store().await;
    let newer = [
        member("acme", "core", "alice", true, 5),
        pr("acme/api", 1, PrState::Open, "alice", 0, 5),
        run("acme/api", 1, "completed", "alice", 0, 5),
        team("acme", "core", false, 5),
        commit("acme/api", "aaa", Some(1), Some("main")),
    ];
    let r1 = s.apply_changes(&newer).await.unwrap();
    // WHEN older versions arrive (and the same commit again)
    let older = [
        member("acme", "core", "alice", false, 1),
        pr("acme/api", 1, PrState::Closed, "alice", 0, 1),
        run("acme/api", 1, "in_progress", "alice", 0, 1),
        team("acme", "core", true, 1),
        commit("acme/api", "aaa", Some(1), Some("main")),
    ];
    let r2 = s.apply_changes(&older).await.unwrap();
    // THEN the first were applied and the older all skipped
    assert_eq!(r1, ApplyReport { applied: 5, skipped: 0 });
    assert_eq!(r2, ApplyReport { applied: 0, skipped: 5 });
}

// The read API.

async fn list_repos_orders_by_activity_and_pages_without_gaps(b: &dyn Backend) {
    // GIVEN repositories with activity at various times, one never active, one deleted
    let s = b.store().await;
    let mut changes = vec![
        repository("acme/zeta", Some(5), false, 0),
        repository("acme/alpha", Some(5), false, 0),
        repository("acme/old", Some(1), false, 0),
        repository("acme/new", Some(9), false, 0),
        repository("acme/quiet", None, false, 0),
        repository("acme/gone", Some(7), true, 0),
        branch("acme/alpha", "main", Some("m1"), false, 1),
        branch("acme/alpha", "dev", Some("d1"), false, 1),
    ];
    changes.push(branch("acme/alpha", "old", None, true, 1));
    s.apply_changes(&changes).await.unwrap();
    // WHEN listed two at a time
    let all = walk(2, async |p| s.list_repos(&p).await.unwrap()).await;
    // THEN newest activity first, ties by name, never-active last, deleted absent
    let names: Vec<_> = all.iter().map(|r| r.full_name.as_str()).collect();
    assert_eq!(names, ["acme/new", "acme/alpha", "acme/zeta", "acme/old", "acme/quiet"]);
    let alpha: Vec<_> = all[1].branches.iter().map(|b| (b.name.as_str(), b.head_sha.as_deref())).collect();
    assert_eq!(alpha, [("dev", Some("d1")), ("main", Some("m1"))]);
}

async fn list_pulls_filters_and_pages_to_the_end(b: &dyn Backend) {
    // GIVEN 14 pull requests over two repositories, three states and two authors (some created at the
    // same time), updated in the opposite order of their creation
    let s = b.store().await;
    let states = [PrState::Open, PrState::Closed, PrState::Merged];
    let mut changes = Vec::new();
    for n in 1..=14u64 {
        let repo_name = if n % 2 == 0 { "acme/api" } else { "acme/web" };
        let author = if n % 3 == 0 { "bob" } else { "alice" };
        changes.push(pr(repo_name, n, states[(n % 3) as usize], author, (n / 2) as i64, 100 - n as i64));
    }
    s.apply_changes(&changes).await.unwrap();
    let expected = |f: &PullFilter| -> Vec<(String, u64)> {
        let mut v: Vec<_> = changes
            .iter()
            .filter_map(|c| if let Change::PullRequest { pull: p, .. } = c { Some(p) } else { None })
            .filter(|p| f.repo.as_ref().is_none_or(|r| &p.repo == r))
            .filter(|p| f.state.is_none_or(|st| p.state == st))
            .filter(|p| f.author.as_ref().is_none_or(|a| p.author.as_ref() == Some(a)))
            .map(|p| (p.created_at, p.repo.to_string(), p.number))
            .collect();
        v.sort_by(|a, b| b.cmp(a));
        v.into_iter().map(|(_, r, n)| (r, n)).collect()
    };
    let filters = [
        PullFilter::default(),
        PullFilter { repo: Some(repo("acme/api")), ..PullFilter::default() },
        PullFilter { state: Some(PrState::Merged), ..PullFilter::default() },
        PullFilter { state: Some(PrState::Open), ..PullFilter::default() },
        PullFilter { author: Some("bob".into()), ..PullFilter::default() },
        PullFilter { repo: Some(repo("acme/web")), state: Some(PrState::Closed), author: Some("alice".into()) },
        PullFilter { repo: Some(repo("acme/none")), ..PullFilter::default() },
    ];
    for f in &filters {
        for limit in [1, 3, 50] {
            // WHEN walked page by page THEN every match appears once, newest created first (not by update)
            let got: Vec<_> = walk(limit, async |p| s.list_pulls(f, &p).await.unwrap())
                .await
                .into_iter()
                .map(|p| (p.repo.to_string(), p.number))
                .collect();
            assert_eq!(got, expected(f), "filter {f:?}, limit {limit}");
        }
    }
    assert_eq!(expected(&filters[0]).len(), 14);
}

async fn get_pull_returns_reviews_in_submission_order(b: &dyn Backend) {
    // GIVEN a pull request with reviews submitted out of id order, and one pending (no time)
    let s = b.store().await;
    let pending = Change::Review(Review {
        repo: repo("acme/api"),
        pr_number: 3,
        id: 40,
        author: Some("dave".into()),
        state: ReviewState::Pending,
        submitted_at: None,
        commit_id: None,
        body: None,
    });
    s.apply_changes(&[
        pr("acme/api", 3, PrState::Open, "alice", 0, 1),
        review("acme/api", 3, 20, "bob", ReviewState::ChangesRequested, 5),
        review("acme/api", 3, 30, "carol", ReviewState::Approved, 2),
        pending,
        review("acme/api", 4, 50, "bob", ReviewState::Approved, 1),
    ])
    .await
    .unwrap();
    // WHEN read
    let got = s.get_pull(&repo("acme/api"), 3).await.unwrap().unwrap();
    // THEN its fields, and its own reviews by submission time (none first)
    assert_eq!((got.pull.number, got.pull.title.as_str(), got.pull.author.as_deref()), (3, "PR 3", Some("alice")));
    assert_eq!(got.pull.labels, ["bug"]);
    let ids: Vec<_> = got.reviews.iter().map(|r| (r.id, r.submitted_at)).collect();
    assert_eq!(ids, [(40, None), (30, Some(t(2))), (20, Some(t(5)))]);
    // AND an unknown pull request is None
    assert!(s.get_pull(&repo("acme/api"), 4).await.unwrap().is_none());
}

async fn bodies_round_trip_and_a_write_without_one_keeps_it(b: &dyn Backend) {
    // GIVEN a pull request and reviews with bodies: one of 65,536 wide characters, one empty
    let s = b.store().await;
    let wide = "é".repeat(65_536);
    let with =
        |p: PullRequest, body: Option<&str>| Change::pull_request(PullRequest { body: body.map(Into::into), ..p });
    let reviewed = |id, at, body: Option<&str>| match review("acme/api", 3, id, "bob", ReviewState::Commented, at) {
        Change::Review(r) => Change::Review(Review { body: body.map(Into::into), ..r }),
        _ => unreachable!(),
    };
    s.apply_changes(&[
        with(pull("acme/api", 3, PrState::Open, "alice", 0, 1), Some("Fixes the *rate* limiter.\n\n- [x] tests")),
        reviewed(20, 2, Some(&wide)),
        reviewed(30, 3, Some("")),
        reviewed(40, 4, None),
    ])
    .await
    .unwrap();
    // WHEN read THEN each body is as written (None: never said)
    let got = s.get_pull(&repo("acme/api"), 3).await.unwrap().unwrap();
    assert_eq!(got.pull.body.as_deref(), Some("Fixes the *rate* limiter.\n\n- [x] tests"));
    let bodies: Vec<_> = got.reviews.iter().map(|r| (r.id, r.body.as_deref())).collect();
    assert_eq!(bodies, [(20, Some(wide.as_str())), (30, Some("")), (40, None)]);
    // AND a list carries no bodies
    let listed = s.list_pulls(&PullFilter::default(), &PageRequest::first(10)).await.unwrap();
    assert!(listed.items.iter().all(|p| p.body.is_none()), "{:?}", listed.items);
    // WHEN newer writes say nothing of the body (None), or that it is now empty
    s.apply_changes(&[
        with(pull("acme/api", 3, PrState::Closed, "alice", 0, 5), None),
        reviewed(20, 6, None),
        reviewed(30, 7, Some("Now it says something")),
    ])
    .await
    .unwrap();
    // THEN an unknown body keeps the stored one, a known one replaces it
    let got = s.get_pull(&repo("acme/api"), 3).await.unwrap().unwrap();
    assert_eq!(
        (got.pull.state, got.pull.body.as_deref()),
        (PrState::Closed, Some("Fixes the *rate* limiter.\n\n- [x] tests"))
    );
    let bodies: Vec<_> = got.reviews.iter().map(|r| (r.id, r.body.as_deref())).collect();
    assert_eq!(bodies, [(40, None), (20, Some(wide.as_str())), (30, Some("Now it says something"))]);
    s.apply_changes(&[with(pull("acme/api", 3, PrState::Closed, "alice", 0, 8), Some(""))]).await.unwrap();
    let got = s.get_pull(&repo("acme/api"), 3).await.unwrap().unwrap();
    assert_eq!(got.pull.body.as_deref(), Some(""));
    // AND an older write does not bring an old body back
    s.apply_changes(&[with(pull("acme/api", 3, PrState::Open, "alice", 0, 2), Some("stale"))]).await.unwrap();
    assert_eq!(s.get_pull(&repo("acme/api"), 3).await.unwrap().unwrap().pull.body.as_deref(), Some(""));
    // WHEN the body is edited, and edited back to an earlier text
    for (at, body) in [(9, "first"), (10, "second"), (11, "first")] {
        s.apply_changes(&[with(pull("acme/api", 3, PrState::Closed, "alice", 0, at), Some(body))]).await.unwrap();
    }
    // THEN it reads as the last text
    assert_eq!(s.get_pull(&repo("acme/api"), 3).await.unwrap().unwrap().pull.body.as_deref(), Some("first"));
    // AND the repository renamed, its pull request keeps its body
    s.apply_changes(&[moved("acme/api", "acme/api-next", 12)]).await.unwrap();
    let got = s.get_pull(&repo("acme/api-next"), 3).await.unwrap().unwrap();
    assert_eq!((got.pull.repo.as_str(), got.pull.body.as_deref()), ("acme/api-next", Some("first")));
}

async fn list_teams_filters_by_org_and_lists_present_members(b: &dyn Backend) {
    // GIVEN teams in two organisations (one deleted), with members
    let s = b.store().await;
    s.apply_changes(&[
        team("acme", "web", false, 0),
        team("acme", "core", false, 0),
        team("acme", "core-x", false, 0),
        team("acme", "old", true, 0),
        team("beta", "ops", false, 0),
        member("acme", "core", "bob", true, 1),
        member("acme", "core", "alice", true, 1),
        member("acme", "core", "eve", false, 1),
        member("beta", "ops", "zed", true, 1),
    ])
    .await
    .unwrap();
    // WHEN listed one at a time, and for one organisation
    let all = walk(1, async |p| s.list_teams(None, &p).await.unwrap()).await;
    let acme = walk(2, async |p| s.list_teams(Some("acme"), &p).await.unwrap()).await;
    // THEN ordered by (org, slug), deleted absent, present members sorted
    let keys: Vec<_> = all.iter().map(|t| format!("{}/{}", t.org, t.slug)).collect();
    assert_eq!(keys, ["acme/core", "acme/core-x", "acme/web", "beta/ops"]);
    assert_eq!(acme.iter().map(|t| t.slug.as_str()).collect::<Vec<_>>(), ["core", "core-x", "web"]);
    assert_eq!((all[0].name.as_str(), all[0].members.clone()), ("CORE", vec!["alice".to_owned(), "bob".to_owned()]));
    assert_eq!(all[3].members, ["zed"]);
}

async fn list_commits_by_repo_and_branch(b: &dyn Backend) {
    // GIVEN commits on two branches of a repository, one without a time, and another repository's
    let s = b.store().await;
    s.apply_changes(&[
        commit("acme/api", "c1", Some(1), Some("main")),
        commit("acme/api", "c3", Some(3), Some("main")),
        commit("acme/api", "c2", Some(2), Some("dev")),
        commit("acme/api", "c0", None, Some("dev")),
        commit("acme/api", "c3", Some(3), Some("dev")),
        commit("acme/web", "w1", Some(5), Some("main")),
    ])
    .await
    .unwrap();
    let shas = |v: Vec<Commit>| v.into_iter().map(|c| c.sha).collect::<Vec<_>>();
    // WHEN listed for the repository and per branch, a page at a time
    let all = walk(2, async |p| s.list_commits(&repo("acme/api"), None, &p).await.unwrap()).await;
    let dev = walk(1, async |p| s.list_commits(&repo("acme/api"), Some("dev"), &p).await.unwrap()).await;
    let main = walk(5, async |p| s.list_commits(&repo("acme/api"), Some("main"), &p).await.unwrap()).await;
    // THEN newest first, untimed last, each commit once
    assert_eq!(all[0].message, "commit c3");
    assert_eq!((all[0].author_login.as_deref(), all[0].committed_at), (Some("alice"), Some(t(3))));
    assert_eq!(shas(all), ["c3", "c2", "c1", "c0"]);
    assert_eq!(shas(dev), ["c3", "c2", "c0"]);
    assert_eq!(shas(main), ["c3", "c1"]);
}

async fn list_workflow_runs_by_repo_newest_first(b: &dyn Backend) {
    // GIVEN runs in two repositories
    let s = b.store().await;
    let mut changes = Vec::new();
    for id in 1..=7 {
        let repo_name = if id % 2 == 0 { "acme/api" } else { "acme/web" };
        changes.push(run(repo_name, id, "completed", "alice", id / 2, id / 2 + 3));
    }
    s.apply_changes(&changes).await.unwrap();
    let ids = |v: Vec<WorkflowRunView>| v.into_iter().map(|r| r.run.id).collect::<Vec<_>>();
    // WHEN listed two at a time, all and for one repository
    let all = walk(2, async |p| s.list_workflow_runs(None, &p).await.unwrap()).await;
    let api = walk(2, async |p| s.list_workflow_runs(Some(&repo("acme/api")), &p).await.unwrap()).await;
    // THEN newest created first (ties: higher id first), with timings
    assert_eq!((all[0].queue_seconds, all[0].duration_seconds), (Some(60), Some(120)));
    assert_eq!(ids(all), [7, 6, 5, 4, 3, 2, 1]);
    assert_eq!(ids(api), [6, 4, 2]);
}

async fn list_deliveries_filters_and_pages(b: &dyn Backend) {
    // GIVEN deliveries of several events, repositories and outcomes
    let s = b.store().await;
    let rows = [
        ("d1", "push", Some("acme/api"), DeliveryStatus::Stored),
        ("d2", "pull_request", Some("acme/api"), DeliveryStatus::Stored),
        ("d3", "star", Some("acme/web"), DeliveryStatus::Ignored),
        ("d4", "team", None, DeliveryStatus::Stored),
        ("d5", "push", Some("acme/web"), DeliveryStatus::Failed),
        ("d6", "push", Some("acme/api"), DeliveryStatus::Pending),
    ];
    for (i, (id, event, r, status)) in rows.iter().enumerate() {
        let c = claim("9", id, event, *r, Some("acme"), i as i64);
        s.claim_delivery(&c).await.unwrap();
        if *status != DeliveryStatus::Pending {
            s.complete_delivery(&c.key, &[], &outcome(*status)).await.unwrap();
        }
    }
    let ids = |v: Vec<DeliveryView>| v.into_iter().map(|d| d.delivery_id.to_string()).collect::<Vec<_>>();
    let list =
        async |f: DeliveryFilter, limit| ids(walk(limit, async |p| s.list_deliveries(&f, &p).await.unwrap()).await);
    // WHEN listed with each filter THEN newest first, only matches, each once
    assert_eq!(list(DeliveryFilter::default(), 4).await, ["d6", "d5", "d4", "d3", "d2", "d1"]);
    let push = EventName::parse("push").unwrap();
    assert_eq!(list(DeliveryFilter { event: Some(push.clone()), ..Default::default() }, 1).await, ["d6", "d5", "d1"]);
    let stored = DeliveryFilter { status: Some(DeliveryStatus::Stored), ..Default::default() };
    assert_eq!(list(stored, 2).await, ["d4", "d2", "d1"]);
    let api = DeliveryFilter { repo: Some(repo("acme/api")), ..Default::default() };
    assert_eq!(list(api, 2).await, ["d6", "d2", "d1"]);
    let all3 = DeliveryFilter { status: Some(DeliveryStatus::Stored), event: Some(push), repo: Some(repo("acme/api")) };
    assert_eq!(list(all3, 1).await, ["d1"]);
    // AND a row carries what the claim said
    let d = &s.list_deliveries(&DeliveryFilter::default(), &page(1)).await.unwrap().items[0];
    assert_eq!((d.hook_id.as_str(), d.event.as_str(), d.action.as_deref()), ("9", "push", Some("opened")));
    assert_eq!(
        (d.org.as_deref(), d.received_at, d.body_bytes, d.status.as_str()),
        (Some("acme"), t(5), 100, "pending")
    );
}

async fn stats_count_what_the_store_holds(b: &dyn Backend) {
    // GIVEN an empty store THEN everything is zero
    let s = b.store().await;
    assert_eq!(s.stats().await.unwrap(), Default::default());
    // GIVEN deliveries and entities
    for (id, event, status) in [
        ("a", "push", DeliveryStatus::Stored),
        ("b", "star", DeliveryStatus::Ignored),
        ("c", "fork", DeliveryStatus::Ignored),
    ] {
        let c = claim("1", id, event, Some("acme/api"), None, 1);
        s.claim_delivery(&c).await.unwrap();
        s.complete_delivery(&c.key, &[], &outcome(status)).await.unwrap();
    }
    s.claim_delivery(&claim("1", "d", "push", None, None, 7)).await.unwrap();
    s.apply_changes(&[
        repository("acme/api", Some(1), false, 0),
        repository("acme/gone", Some(1), true, 0),
        pr("acme/api", 1, PrState::Open, "a", 0, 1),
        pr("acme/api", 2, PrState::Merged, "a", 0, 1),
        team("acme", "core", false, 0),
        team("acme", "old", true, 0),
        run("acme/api", 1, "queued", "a", 0, 0),
    ])
    .await
    .unwrap();
    // WHEN counted THEN the counts and the newest delivery
    let st = s.stats().await.unwrap();
    let deliveries: Vec<_> = st.deliveries.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    assert_eq!(deliveries, [("ignored", 2), ("pending", 1), ("stored", 1)]);
    let ignored: Vec<_> = st.ignored_events.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    assert_eq!(ignored, [("fork", 1), ("star", 1)]);
    assert_eq!((st.repositories, st.pull_requests, st.teams, st.workflow_runs), (1, 2, 1, 1));
    assert_eq!(st.last_delivery_at, Some(t(7)));
}

async fn garbage_cursors_are_refused(b: &dyn Backend) {
    // GIVEN a cursor no list returned
    let s = b.store().await;
    let bad = PageRequest { limit: 5, cursor: Some("!!not-a-cursor!!".into()) };
    // WHEN any list is asked for it THEN BadCursor
    let r = repo("acme/api");
    let errors = [
        s.list_repos(&bad).await.err(),
        s.list_pulls(&PullFilter::default(), &bad).await.err(),
        s.list_teams(None, &bad).await.err(),
        s.list_commits(&r, None, &bad).await.err(),
        s.list_workflow_runs(None, &bad).await.err(),
        s.list_deliveries(&DeliveryFilter::default(), &bad).await.err(),
        s.list_checks(&bad).await.err(),
        s.list_jobs(&bad).await.err(),
    ];
    for (i, e) in errors.into_iter().enumerate() {
        assert!(matches!(e, Some(StoreError::BadCursor)), "list {i}: {e:?}");
    }
    // AND well-formed cursors of the wrong shape are refused too
    for shape in [encode_cursor(&""), encode_cursor(&"x".repeat(2000)), encode_cursor(&(1, 2, 3))] {
        let odd = PageRequest { limit: 5, cursor: Some(shape) };
        let e = s.list_pulls(&PullFilter::default(), &odd).await.err();
        assert!(matches!(e, Some(StoreError::BadCursor)), "{e:?}");
    }
}

// Completeness.

async fn completeness_reads_summarise_the_store(b: &dyn Backend) {
    // GIVEN entities of two repositories and an organisation, and deliveries naming others
    let s = b.store().await;
    s.apply_changes(&[
        repository("acme/api", Some(1), false, 0),
        repository("acme/gone", Some(1), true, 0),
        branch("acme/api", "main", Some("m1"), false, 1),
        branch("acme/api", "dead", None, true, 1),
        branch("acme/api", "dev", Some("d1"), false, 1),
        pr("acme/api", 1, PrState::Open, "a", 0, 1),
        pr("acme/api", 2, PrState::Open, "a", 0, 4),
        pr("acme/api", 3, PrState::Merged, "a", 0, 2),
        pr("acme/api", 4, PrState::Closed, "a", 0, 3),
        team("acme", "core", false, 0),
        team("acme", "web", false, 0),
        team("acme", "old", true, 0),
        member("acme", "core", "bob", true, 1),
        member("acme", "core", "alice", true, 1),
        member("acme", "core", "eve", false, 1),
    ])
    .await
    .unwrap();
    s.claim_delivery(&claim("1", "x", "push", Some("acme/hooked"), Some("beta"), 0)).await.unwrap();
    s.claim_delivery(&claim("1", "y", "push", Some("acme/gone"), Some("acme"), 0)).await.unwrap();
    // WHEN asked what is tracked THEN live repositories and organisations, sorted, deleted absent
    let tracked = s.tracked().await.unwrap();
    assert_eq!(tracked.repos, [repo("acme/api"), repo("acme/hooked")]);
    assert_eq!(tracked.orgs, ["acme", "beta"]);
    // WHEN summarised THEN counts per state, newest update, live branches, default branch
    let sums = s
        .repo_summaries(&[SnapshotRequest::new(repo("acme/api"), None), SnapshotRequest::new(repo("acme/none"), None)])
        .await
        .unwrap();
    assert_eq!((sums[0].open, sums[0].closed, sums[0].merged), (2, 1, 1));
    assert_eq!(sums[0].newest_pr_updated_at, Some(t(4)));
    assert_eq!(sums[0].branches, [("dev".to_owned(), "d1".to_owned()), ("main".to_owned(), "m1".to_owned())]);
    assert_eq!((sums[0].default_branch.as_deref(), sums[0].branches_truncated), (Some("main"), false));
    assert_eq!((sums[1].open, sums[1].newest_pr_updated_at, sums[1].branches.len()), (0, None, 0));
    let orgs = s.org_summaries(&["acme".into(), "none".into()]).await.unwrap();
    assert_eq!(orgs[0].teams, [("core".to_owned(), 2), ("web".to_owned(), 0)]);
    assert!(orgs[1].teams.is_empty());
    let rosters = s.team_rosters("acme").await.unwrap();
    assert_eq!(rosters, [("core".to_owned(), vec!["alice".to_owned(), "bob".to_owned()]), ("web".to_owned(), vec![])]);
}

fn snapshot(repo_name: &str, since: Option<i64>) -> SnapshotRequest {
    SnapshotRequest::new(repo(repo_name), since.map(t))
}

fn pull_marks(snap: &RepoSnapshot) -> Vec<(u64, Timestamp, u64)> {
    snap.recent_pulls.iter().map(|p| (p.number, p.updated_at, p.reviews)).collect()
}

async fn snapshots_list_recent_pulls_with_every_review(b: &dyn Backend) {
    // GIVEN pull requests updated at 1, 3, 5 and 5 (a tie), with reviews in every
    // state (one pending, one dismissed), and a same-numbered pull request elsewhere
    let s = b.store().await;
    s.apply_changes(&[
        pr("acme/api", 1, PrState::Open, "a", 0, 1),
        pr("acme/api", 2, PrState::Merged, "a", 0, 5),
        pr("acme/api", 3, PrState::Open, "a", 0, 5),
        pr("acme/api", 4, PrState::Closed, "a", 0, 3),
        review("acme/api", 1, 11, "b", ReviewState::Approved, 1),
        review("acme/api", 2, 21, "b", ReviewState::Approved, 2),
        review("acme/api", 2, 22, "c", ReviewState::Dismissed, 3),
        review("acme/api", 2, 23, "d", ReviewState::Commented, 4),
        review("acme/api", 3, 31, "b", ReviewState::Pending, 4),
        pr("acme/web", 2, PrState::Open, "a", 0, 9),
        review("acme/web", 2, 91, "b", ReviewState::Approved, 9),
    ])
    .await
    .unwrap();
    // WHEN summarised without a watermark, beside an unknown repository, in a mixed order
    let sums = s.repo_summaries(&[snapshot("acme/none", None), snapshot("acme/api", None)]).await.unwrap();
    // THEN one snapshot per request in request order; the unknown one empty
    assert_eq!(sums.len(), 2);
    assert_eq!(sums[0], RepoSnapshot::empty(repo("acme/none")));
    // AND every pull request, newest updated first (tie: higher number first), with all its reviews
    assert_eq!(pull_marks(&sums[1]), [(3, t(5), 1), (2, t(5), 3), (4, t(3), 0), (1, t(1), 1)]);
    assert!(!sums[1].recent_pulls_truncated);
    // WHEN summarised since 3 (inclusive), and since after the newest update
    let sums = s.repo_summaries(&[snapshot("acme/api", Some(3)), snapshot("acme/api", Some(6))]).await.unwrap();
    // THEN only those updated at or after it
    assert_eq!(pull_marks(&sums[0]), [(3, t(5), 1), (2, t(5), 3), (4, t(3), 0)]);
    assert!(sums[1].recent_pulls.is_empty() && !sums[1].recent_pulls_truncated);
    // AND the counts per state and the newest update do not depend on the watermark
    assert_eq!((sums[1].open, sums[1].closed, sums[1].merged, sums[1].newest_pr_updated_at), (2, 1, 1, Some(t(5))));
}

async fn snapshots_cut_recent_pulls_at_the_limit(b: &dyn Backend) {
    // GIVEN one more pull request than a snapshot lists, pull request n updated at n
    let s = b.store().await;
    let n = RECENT_PULLS as u64 + 1;
    let changes: Vec<Change> = (1..=n).map(|i| pr("acme/api", i, PrState::Open, "a", 0, i as i64)).collect();
    s.apply_changes(&changes).await.unwrap();
    // WHEN summarised without a watermark
    let sums = s.repo_summaries(&[snapshot("acme/api", None), snapshot("acme/api", Some(2))]).await.unwrap();
    // THEN the newest RECENT_PULLS, newest first, and it says more matched
    let numbers: Vec<u64> = sums[0].recent_pulls.iter().map(|p| p.number).collect();
    assert_eq!(numbers, (2..=n).rev().collect::<Vec<_>>());
    assert!(sums[0].recent_pulls_truncated);
    assert_eq!(sums[0].open, n);
    // WHEN exactly RECENT_PULLS match (updated at or after 2) THEN all of them, not truncated
    assert_eq!(sums[1].recent_pulls.len(), RECENT_PULLS);
    assert!(!sums[1].recent_pulls_truncated);
}

async fn snapshots_count_default_branch_commits_and_deployments(b: &dyn Backend) {
    // GIVEN a repository whose default branch is main: commits on main at 1, 3 and
    // without a time, one on dev, one on no branch; and a repository whose
    // default branch the store does not know, with commits on main
    let s = b.store().await;
    s.apply_changes(&[
        repository("acme/api", Some(0), false, 0),
        commit("acme/api", "c1", Some(1), Some("main")),
        commit("acme/api", "c2", Some(3), Some("main")),
        commit("acme/api", "c3", None, Some("main")),
        commit("acme/api", "c4", Some(4), Some("dev")),
        commit("acme/api", "c5", Some(5), None),
        commit("acme/web", "w1", Some(5), Some("main")),
    ])
    .await
    .unwrap();
    // AND deployments: 10 (pending then success), 11 (two statuses at the same
    // time: the higher id is the newest), 12 created at the same time as 11
    // without statuses; and 21 deployments of another repository, without statuses
    let mut changes = vec![
        deployment("acme/api", 10, 1),
        deployment_status("acme/api", 10, 1, "pending", 1),
        deployment_status("acme/api", 10, 2, "success", 2),
        deployment("acme/api", 11, 2),
        deployment_status("acme/api", 11, 4, "success", 3),
        deployment_status("acme/api", 11, 3, "failure", 3),
        deployment("acme/api", 12, 2),
    ];
    changes.extend((1..=RECENT_DEPLOYMENTS as i64 + 1).map(|i| deployment("acme/ops", 100 + i, i)));
    s.apply_changes(&changes).await.unwrap();
    // WHEN summarised without a watermark
    let sums = s
        .repo_summaries(&[snapshot("acme/api", None), snapshot("acme/web", None), snapshot("acme/ops", None)])
        .await
        .unwrap();
    // THEN every commit of the default branch, with or without a time
    assert_eq!((sums[0].default_branch.as_deref(), sums[0].default_branch_commits), (Some("main"), Some(3)));
    // AND none counted where the default branch is unknown
    assert_eq!((sums[1].default_branch.as_deref(), sums[1].default_branch_commits), (None, None));
    // AND the deployments, newest created first (tie: higher id first), each with its newest status' state
    let marks: Vec<(i64, Option<&str>)> =
        sums[0].recent_deployments.iter().map(|d| (d.id, d.latest_state.as_deref())).collect();
    assert_eq!(marks, [(12, None), (11, Some("success")), (10, Some("success"))]);
    assert_eq!((sums[0].deployments, sums[1].deployments), (3, 0));
    // AND beyond RECENT_DEPLOYMENTS all are counted, the newest listed
    let ops: Vec<i64> = sums[2].recent_deployments.iter().map(|d| d.id).collect();
    assert_eq!(sums[2].deployments, RECENT_DEPLOYMENTS as u64 + 1);
    assert_eq!(ops, (102..=101 + RECENT_DEPLOYMENTS as i64).rev().collect::<Vec<_>>());
    // WHEN summarised since 3 THEN the commits of the default branch committed at or after it
    let sums = s.repo_summaries(&[snapshot("acme/api", Some(3)), snapshot("acme/api", Some(4))]).await.unwrap();
    assert_eq!((sums[0].default_branch_commits, sums[1].default_branch_commits), (Some(1), Some(0)));
    // AND the deployments are not windowed
    assert_eq!(sums[1].deployments, 3);
}

async fn stored_runs_count_the_window_and_the_jobs_of_asked_runs(b: &dyn Backend) {
    // GIVEN runs created at 0, 2, 4 and 5, one of another repository at 3; run 2 with
    // two completed jobs, run 4 with one completed job and one still running
    let s = b.store().await;
    s.apply_changes(&[
        run("acme/api", 1, "completed", "a", 0, 1),
        run("acme/api", 2, "completed", "a", 2, 3),
        run("acme/api", 3, "in_progress", "a", 4, 4),
        run("acme/api", 4, "completed", "a", 5, 7),
        run("acme/web", 9, "queued", "a", 3, 3),
        job(21, 2, "completed", 2, Some(3)),
        job(22, 2, "completed", 2, Some(3)),
        job(41, 4, "completed", 5, Some(6)),
        job(42, 4, "in_progress", 5, None),
    ])
    .await
    .unwrap();
    // WHEN asked without a watermark for runs 4, 2, another repository's, an unknown one, 1, and 4 again
    let got = s.stored_runs(&repo("acme/api"), None, &[4, 2, 9, 77, 1, 4], None).await.unwrap();
    // THEN every run of the repository is counted
    assert_eq!(got.total, 4);
    // AND the asked runs it has, in the order asked, each once, with their job counts
    let runs: Vec<_> = got.runs.iter().map(|r| (r.id, r.status, r.jobs, r.jobs_completed)).collect();
    assert_eq!(
        runs,
        [(4, RunStatus::Completed, 2, 1), (2, RunStatus::Completed, 2, 2), (1, RunStatus::Completed, 0, 0)]
    );
    assert_eq!((got.runs[0].conclusion.as_deref(), got.runs[0].updated_at), (Some("success"), t(7)));
    // WHEN asked since 2 (inclusive), and since after the newest run
    let since = s.stored_runs(&repo("acme/api"), Some(t(2)), &[], None).await.unwrap();
    let later = s.stored_runs(&repo("acme/api"), Some(t(6)), &[3], None).await.unwrap();
    // THEN the runs created at or after it; asked runs are found whatever their age
    assert_eq!((since.total, since.runs.len()), (3, 0));
    assert_eq!(later.total, 0);
    assert_eq!(later.runs.iter().map(|r| (r.id, r.status)).collect::<Vec<_>>(), [(3, RunStatus::InProgress)]);
    // WHEN asked about an unknown repository THEN nothing
    assert_eq!(s.stored_runs(&repo("acme/none"), None, &[1, 2], Some(t(0))).await.unwrap(), StoredRuns::default());
}

async fn stored_runs_find_where_unfinished_runs_begin(b: &dyn Backend) {
    // GIVEN finished runs created at 0 and 2, run 3 in progress (created at 4) with a
    // running job, run 4 completed (created at 5) with a job still running, and a
    // running job of a run the store does not have
    let s = b.store().await;
    s.apply_changes(&[
        run("acme/api", 1, "completed", "a", 0, 1),
        run("acme/api", 2, "completed", "a", 2, 3),
        run("acme/api", 3, "in_progress", "a", 4, 4),
        run("acme/api", 4, "completed", "a", 5, 7),
        job(31, 3, "in_progress", 4, None),
        job(41, 4, "completed", 5, Some(6)),
        job(42, 4, "in_progress", 5, None),
        job(99, 98, "queued", 1, None),
        run("acme/web", 9, "queued", "a", 1, 1),
    ])
    .await
    .unwrap();
    let from =
        async |at: i64| s.stored_runs(&repo("acme/api"), Some(t(9)), &[], Some(t(at))).await.unwrap().oldest_unfinished;
    let oldest = async || from(0).await;
    // WHEN asked from before every run (whatever the window) THEN the oldest run not completed
    assert_eq!(oldest().await, Some(t(4)));
    // WHEN asked from 5, or from 6 THEN run 3 (created at 4) does not count: run 4
    // (completed, with a job still running, created at 5), then nothing
    assert_eq!((from(5).await, from(6).await), (Some(t(5)), None));
    // WHEN not asked THEN nothing is looked for
    assert_eq!(s.stored_runs(&repo("acme/api"), None, &[], None).await.unwrap().oldest_unfinished, None);
    // WHEN run 3 completes but its job does not THEN still run 3, through its job
    s.apply_changes(&[run("acme/api", 3, "completed", "a", 4, 8)]).await.unwrap();
    assert_eq!(oldest().await, Some(t(4)));
    assert_eq!(from(5).await, Some(t(5)), "run 3's job counts from 4 only");
    // WHEN its job completes THEN run 4, completed but with a job still running
    s.apply_changes(&[job(31, 3, "completed", 4, Some(8))]).await.unwrap();
    assert_eq!(oldest().await, Some(t(5)));
    // WHEN that job completes too THEN nothing is unfinished
    s.apply_changes(&[job(42, 4, "completed", 5, Some(9))]).await.unwrap();
    assert_eq!(oldest().await, None);
    // AND another repository's unfinished run is its own
    let web = s.stored_runs(&repo("acme/web"), None, &[], Some(t(0))).await.unwrap();
    assert_eq!((web.total, web.oldest_unfinished), (1, Some(t(1))));
}

async fn known_deliveries_and_delivery_hooks(b: &dyn Backend) {
    // GIVEN deliveries from a repository hook, an organisation hook and an unknown hook
    let s = b.store().await;
    let done = claim("11", "a", "push", Some("acme/api"), Some("acme"), 0);
    s.claim_delivery(&done).await.unwrap();
    s.complete_delivery(&done.key, &[], &outcome(DeliveryStatus::Stored)).await.unwrap();
    s.claim_delivery(&claim("11", "b", "push", Some("acme/web"), Some("acme"), 1)).await.unwrap();
    let org = claim("22", "c", "team", None, Some("acme"), 2);
    s.claim_delivery(&org).await.unwrap();
    s.complete_delivery(&org.key, &[], &outcome(DeliveryStatus::Stored)).await.unwrap();
    s.claim_delivery(&claim("0", "d", "push", Some("acme/api"), None, 3)).await.unwrap();
    // WHEN asked which are known THEN finished ones only, in the order asked
    let asked = [key("11", "b"), key("22", "c"), key("11", "zz"), key("11", "a"), key("22", "c")];
    let known = s.known_deliveries(&asked).await.unwrap();
    assert_eq!(known, [false, true, false, true, true]);
    // WHEN asked for hooks THEN each hook once, with where it delivered from (not the unknown hook)
    let hooks = s.delivery_hooks().await.unwrap();
    let got: Vec<_> = hooks
        .iter()
        .map(|h| (h.hook_id.as_str(), h.org.as_deref(), h.repo.as_ref().map(RepoName::as_str), h.org_events))
        .collect();
    assert_eq!(got, [("11", Some("acme"), Some("acme/web"), false), ("22", Some("acme"), None, true)]);
}

fn check(id: &str, at: i64, dry_run: bool, verified: Vec<Target>) -> CheckRun {
    CheckRun {
        id: id.into(),
        started_at: t(at),
        finished_at: t(at + 1),
        repos_compared: 2,
        orgs_compared: 1,
        gaps: vec![Gap {
            target: Target::Repo(repo("acme/api")),
            kind: GapKind::Pulls,
            watermark: Some(t(0)),
            reason: "counts differ".into(),
        }],
        redelivered: 1,
        requests: 12,
        requests_by_installation: InstallationRequests::default(),
        dry_run,
        verified,
        error: None,
        search: None,
    }
}

/// A search comparison that found one scope drifting and repaired it.
fn search_comparison(at: i64) -> SearchComparison {
    SearchComparison {
        compared_at: t(at),
        scopes: 3,
        store_documents: 12,
        index_documents: 10,
        drift: vec![SearchDrift {
            kind: DocKind::Commit,
            repo: "acme/api".into(),
            store_count: 5,
            index_count: 3,
            store_newest: "2030-01-01T00:00:05.000Z".into(),
            index_newest: "2030-01-01T00:00:03.000Z".into(),
        }],
        repaired: true,
        rewritten: 5,
        removed: 0,
        error: None,
    }
}

async fn checks_are_recorded_listed_and_verify_targets(b: &dyn Backend) {
    // GIVEN three checks: two real ones verifying targets, and a newer dry run
    let s = b.store().await;
    let api = Target::Repo(repo("acme/api"));
    let web = Target::Repo(repo("acme/web"));
    s.record_check(&check("c1", 1, false, vec![api.clone(), web.clone()])).await.unwrap();
    let mut c2 = check("c2", 5, false, vec![api.clone(), api.clone()]);
    c2.search = Some(search_comparison(5));
    s.record_check(&c2).await.unwrap();
    s.record_check(&check("c3", 9, true, vec![api.clone(), web.clone()])).await.unwrap();
    // WHEN asked when targets last matched THEN the newest real check that verified them
    assert_eq!(s.verified_at(&api).await.unwrap(), Some(t(5)));
    assert_eq!(s.verified_at(&web).await.unwrap(), Some(t(1)));
    assert_eq!(s.verified_at(&Target::Org("acme".into())).await.unwrap(), None);
    // WHEN listed one at a time THEN newest first, as recorded
    let all = walk(1, async |p| s.list_checks(&p).await.unwrap()).await;
    assert_eq!(all.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), ["c3", "c2", "c1"]);
    let mut expected = check("c2", 5, false, vec![]);
    expected.verified = Vec::new();
    // (with its search comparison; the others have none)
    expected.search = Some(search_comparison(5));
    assert_eq!(all[1], expected);
    assert_eq!((all[0].search.as_ref(), all[2].search.as_ref()), (None, None));
}

fn job_record(id: &str, at: i64) -> JobRecord {
    JobRecord {
        id: id.into(),
        target: Target::Repo(repo("acme/api")),
        kinds: vec![GapKind::Pulls, GapKind::Branches],
        watermark: Some(t(0)),
        state: JobState::Queued,
        created_at: t(at),
        started_at: None,
        finished_at: None,
        written: 0,
        requests: 0,
        requests_by_installation: InstallationRequests::default(),
        skipped: Vec::new(),
        error: None,
    }
}

async fn request_counts_per_installation_round_trip(b: &dyn Backend) {
    // GIVEN a check and a resync job whose requests went through two installations
    let s = b.store().await;
    let counts: InstallationRequests = [("octo-org", 9u64), ("Other-Org", 3)].into_iter().collect();
    let mut run = check("c1", 1, false, vec![]);
    run.requests_by_installation = counts.clone();
    s.record_check(&run).await.unwrap();
    let mut job = job_record("j1", 1);
    (job.requests, job.requests_by_installation) = (12, counts.clone());
    s.save_job(&job).await.unwrap();
    // WHEN read back THEN each installation's count is as recorded, logins as written
    let listed = s.list_checks(&PageRequest::first(5)).await.unwrap().items;
    assert_eq!(listed.iter().map(|c| &c.requests_by_installation).collect::<Vec<_>>(), [&counts]);
    assert_eq!(s.get_job("j1").await.unwrap().map(|j| j.requests_by_installation), Some(counts.clone()));
    // WHEN the job is saved again with none (a token's check, or no request yet) THEN none, not the old ones
    s.save_job(&job_record("j1", 1)).await.unwrap();
    assert_eq!(
        s.get_job("j1").await.unwrap().map(|j| j.requests_by_installation),
        Some(InstallationRequests::default())
    );
    let listed = walk(1, async |p| s.list_jobs(&p).await.unwrap()).await;
    assert!(listed[0].requests_by_installation.is_empty(), "{listed:?}");
}

async fn jobs_are_saved_listed_and_fetched(b: &dyn Backend) {
    // GIVEN three jobs, one of which ran and failed
    let s = b.store().await;
    for (id, at) in [("j1", 1), ("j2", 2), ("j3", 3)] {
        s.save_job(&job_record(id, at)).await.unwrap();
    }
    let mut ran = job_record("j2", 2);
    (ran.state, ran.started_at, ran.finished_at) = (JobState::Failed, Some(t(4)), Some(t(5)));
    (ran.written, ran.requests, ran.error) = (7, 3, Some("rate limited".into()));
    ran.skipped = vec!["acme/api#7: null node".into(), "acme/api#9: partial error".into()];
    s.save_job(&ran).await.unwrap();
    // WHEN fetched THEN the latest record, with what it skipped
    assert_eq!(s.get_job("j2").await.unwrap(), Some(ran.clone()));
    assert_eq!(s.get_job("j1").await.unwrap().map(|j| j.skipped), Some(vec![]));
    assert_eq!(s.get_job("nope").await.unwrap(), None);
    // WHEN listed two at a time THEN newest created first
    let all = walk(2, async |p| s.list_jobs(&p).await.unwrap()).await;
    assert_eq!(all.iter().map(|j| j.id.as_str()).collect::<Vec<_>>(), ["j3", "j2", "j1"]);
    assert_eq!(all[1], ran);
    // WHEN saved with more skipped items than a record keeps THEN the first ones are kept
    let mut many = job_record("j4", 4);
    many.skipped = (0..JobRecord::MAX_SKIPPED + 5).map(|i| format!("item {i}")).collect();
    s.save_job(&many).await.unwrap();
    let kept = s.get_job("j4").await.unwrap().map(|j| j.skipped).unwrap_or_default();
    assert_eq!(kept, many.skipped[..JobRecord::MAX_SKIPPED]);
    // WHEN saved again with none THEN none
    s.save_job(&job_record("j2", 2)).await.unwrap();
    assert_eq!(s.get_job("j2").await.unwrap().map(|j| j.skipped), Some(vec![]));
}

async fn locks_expire_and_renew(b: &dyn Backend) {
    // GIVEN a lock held by job A for five minutes
    let s = b.store().await;
    let ttl = TimeDelta::minutes(5);
    assert!(s.try_lock("repo:acme/api", "A", t(0), ttl).await.unwrap());
    // THEN B is refused while it is unexpired, and another key is free
    assert!(!s.try_lock("repo:acme/api", "B", t(4), ttl).await.unwrap());
    assert!(s.try_lock("repo:acme/web", "B", t(4), ttl).await.unwrap());
    // WHEN A renews THEN it holds it longer
    assert!(s.try_lock("repo:acme/api", "A", t(4), ttl).await.unwrap());
    assert!(!s.try_lock("repo:acme/api", "B", t(8), ttl).await.unwrap());
    // WHEN it expires THEN B takes it, and A cannot release B's lock
    assert!(s.try_lock("repo:acme/api", "B", t(10), ttl).await.unwrap());
    s.release_lock("repo:acme/api", "A").await.unwrap();
    assert!(!s.try_lock("repo:acme/api", "A", t(11), ttl).await.unwrap());
    // WHEN B releases THEN anyone may take it at once
    s.release_lock("repo:acme/api", "B").await.unwrap();
    assert!(s.try_lock("repo:acme/api", "C", t(11), ttl).await.unwrap());
}

async fn checkpoints_save_load_and_clear(b: &dyn Backend) {
    // GIVEN no checkpoint
    let s = b.store().await;
    assert_eq!(s.checkpoint("j1").await.unwrap(), None);
    // WHEN saved twice THEN the latest is loaded, per job
    s.save_checkpoint("j1", Some("page-1"), t(1)).await.unwrap();
    s.save_checkpoint("j1", Some("page-2"), t(2)).await.unwrap();
    s.save_checkpoint("j2", Some("other"), t(2)).await.unwrap();
    assert_eq!(s.checkpoint("j1").await.unwrap().as_deref(), Some("page-2"));
    // WHEN cleared THEN gone, the other kept
    s.save_checkpoint("j1", None, t(3)).await.unwrap();
    assert_eq!(s.checkpoint("j1").await.unwrap(), None);
    assert_eq!(s.checkpoint("j2").await.unwrap().as_deref(), Some("other"));
}

// Metrics.

async fn metric_reads_window_and_filter(b: &dyn Backend) {
    // GIVEN a window [100, 200) and pull requests, runs, jobs and deployments around it
    let s = b.store().await;
    let mut reviewed = pull("acme/api", 2, PrState::Merged, "alice", 110, 150);
    reviewed.additions = Some(30);
    s.apply_changes(&[
        team("acme", "core", false, 0),
        member("acme", "core", "alice", true, 1),
        member("acme", "core", "bob", false, 1),
        team("acme", "gone", true, 0),
        member("acme", "gone", "carol", true, 1),
        pr("acme/api", 1, PrState::Merged, "bob", 50, 120), // created before, merged in
        Change::pull_request(reviewed),                     // created and merged in
        pr("acme/web", 3, PrState::Open, "alice", 150, 150), // created in, open
        pr("acme/api", 4, PrState::Open, "carol", 10, 10),  // open since before
        pr("acme/api", 5, PrState::Closed, "alice", 10, 20), // closed before: out
        pr("acme/api", 6, PrState::Open, "alice", 200, 200), // created at until: out
        pr("acme/api", 7, PrState::Merged, "bob", 120, 250), // created in, merged after
        review("acme/api", 2, 21, "alice", ReviewState::Commented, 115), // the author's own: not a first review
        review("acme/api", 2, 22, "bob", ReviewState::ChangesRequested, 120),
        review("acme/api", 2, 23, "carol", ReviewState::ChangesRequested, 130),
        review("acme/api", 2, 23, "carol", ReviewState::Dismissed, 130),
        run("acme/api", 1, "completed", "alice", 100, 105),
        run("acme/web", 2, "completed", "bob", 199, 205),
        run("acme/api", 3, "completed", "alice", 200, 205),
        run("acme/api", 4, "in_progress", "alice", 99, 120),
        job(10, 1, "completed", 100, Some(104)),
        job(11, 2, "completed", 199, Some(203)),
        job(12, 3, "queued", 200, None),
        job(13, 99, "queued", 150, None),
        // Jobs without created_at: counted by started_at (in the window, and after it).
        without_created(job(14, 1, "completed", 0, Some(170)), 160),
        without_created(job(15, 1, "completed", 0, Some(260)), 250),
        Change::Deployment(Deployment {
            repo: repo("acme/api"),
            id: 1,
            sha: Some("abc".into()),
            git_ref: Some("main".into()),
            environment: Some("production".into()),
            task: None,
            creator: Some("alice".into()),
            created_at: t(90),
            updated_at: t(90),
        }),
        Change::Deployment(Deployment {
            repo: repo("acme/api"),
            id: 2,
            sha: None,
            git_ref: None,
            environment: Some("production".into()),
            task: None,
            creator: None,
            created_at: t(150),
            updated_at: t(150),
        }),
        Change::Deployment(Deployment {
            repo: repo("acme/web"),
            id: 3,
            sha: None,
            git_ref: None,
            environment: Some("staging".into()),
            task: None,
            creator: None,
            created_at: t(300),
            updated_at: t(300),
        }),
    ])
    .await
    .unwrap();
    let status = |deployment_id, id, state: &str, at| {
        Change::DeploymentStatus(DeploymentStatus {
            repo: repo("acme/api"),
            deployment_id,
            id,
            state: state.into(),
            environment: Some("production".into()),
            creator: None,
            created_at: t(at),
            updated_at: t(at),
        })
    };
    // Statuses of deployment 2 arrive out of order; "in_progress" is not an outcome.
    s.apply_changes(&[
        status(2, 202, "success", 160),
        status(2, 201, "failure", 155),
        status(2, 203, "in_progress", 170),
    ])
    .await
    .unwrap();
    s.apply_changes(&[status(1, 101, "error", 91)]).await.unwrap();
    let window = MetricsFilter::window(t(100), t(200));

    // WHEN pull requests are read THEN merged in, created in, and open-before rows, with review facts
    let mut pulls = s.metric_pulls(&window).await.unwrap();
    pulls.sort_by_key(|p| p.number);
    let got: Vec<_> =
        pulls.iter().map(|p| (p.number, p.state.as_str(), p.first_review_at, p.changes_requested)).collect();
    assert_eq!(
        got,
        [
            (1, "merged", None, 0),
            (2, "merged", Some(t(120)), 1),
            (3, "open", None, 0),
            (4, "open", None, 0),
            (7, "merged", None, 0)
        ]
    );
    assert_eq!((pulls[1].additions, pulls[1].created_at, pulls[1].merged_at), (Some(30), t(110), Some(t(150))));
    // AND filters by repository, author and team (present members only)
    let by = async |f: MetricsFilter| {
        let mut v: Vec<_> = s.metric_pulls(&f).await.unwrap().into_iter().map(|p| p.number).collect();
        v.sort();
        v
    };
    assert_eq!(by(MetricsFilter { repo: Some(repo("acme/web")), ..window.clone() }).await, [3]);
    assert_eq!(by(MetricsFilter { author: Some("bob".into()), ..window.clone() }).await, [1, 7]);
    let core = TeamRef { org: Some("acme".into()), slug: "core".into() };
    assert_eq!(by(MetricsFilter { team: Some(core.clone()), ..window.clone() }).await, [2, 3]);
    let bare = TeamRef { org: None, slug: "core".into() };
    assert_eq!(by(MetricsFilter { team: Some(bare), ..window.clone() }).await, [2, 3]);

    // AND a reversed window holds nothing but the pull requests open since before it
    let reversed = MetricsFilter::window(t(200), t(100));
    assert_eq!(by(reversed.clone()).await, [3, 4]);
    assert!(s.metric_runs(&reversed).await.unwrap().is_empty());
    assert!(s.metric_jobs(&reversed).await.unwrap().is_empty());

    // WHEN runs and jobs are read THEN those created in the window, with the run's actor on jobs
    let mut runs = s.metric_runs(&window).await.unwrap();
    runs.sort_by_key(|r| r.created_at);
    let got: Vec<_> = runs.iter().map(|r| (r.ci.repo.as_str(), r.ci.actor.as_deref(), r.created_at)).collect();
    assert_eq!(got, [("acme/api", Some("alice"), t(100)), ("acme/web", Some("bob"), t(199))]);
    assert_eq!(
        (runs[0].ci.workflow.as_deref(), runs[0].ci.branch.as_deref(), runs[0].ci.status.as_str()),
        (Some("CI"), Some("main"), "completed")
    );
    let team_runs = s.metric_runs(&MetricsFilter { team: Some(core.clone()), ..window.clone() }).await.unwrap();
    assert_eq!(team_runs.len(), 1);
    let no_runs = s.metric_runs(&MetricsFilter { workflow: Some("Deploy".into()), ..window.clone() }).await.unwrap();
    assert!(no_runs.is_empty());
    let mut jobs = s.metric_jobs(&window).await.unwrap();
    jobs.sort_by_key(|j| j.created_at);
    let got: Vec<_> = jobs.iter().map(|j| (j.created_at, j.ci.actor.as_deref(), j.ci.status.as_str())).collect();
    assert_eq!(
        got,
        [
            (None, Some("alice"), "completed"),
            (Some(t(100)), Some("alice"), "completed"),
            (Some(t(150)), None, "queued"),
            (Some(t(199)), Some("bob"), "completed")
        ]
    );
    assert_eq!(jobs[0].started_at, Some(t(160)), "a job without created_at is in the window of its started_at");
    assert_eq!((jobs[0].labels.clone(), jobs[0].os.as_deref()), (vec!["ubuntu-latest".to_owned()], Some("linux")));
    let bobs = s.metric_jobs(&MetricsFilter { author: Some("bob".into()), ..window.clone() }).await.unwrap();
    assert_eq!(bobs.len(), 1);

    // WHEN deployments are read THEN created at or after since (no upper bound), oldest first, with outcomes
    let deps = s.metric_deployments(&window).await.unwrap();
    let got: Vec<_> =
        deps.iter().map(|d| (d.id, d.repo.as_str(), d.environment.as_deref(), d.outcome.as_deref())).collect();
    assert_eq!(got, [(2, "acme/api", Some("production"), Some("success")), (3, "acme/web", Some("staging"), None)]);
    let all = s.metric_deployments(&MetricsFilter::window(t(0), t(1))).await.unwrap();
    assert_eq!(
        all.iter().map(|d| (d.id, d.outcome.as_deref())).collect::<Vec<_>>(),
        [(1, Some("error")), (2, Some("success")), (3, None)]
    );
    let staging =
        s.metric_deployments(&MetricsFilter { environment: Some("staging".into()), ..window.clone() }).await.unwrap();
    assert_eq!(staging.len(), 1);

    // WHEN memberships are read THEN present members of live teams
    let rows = s.team_memberships(None).await.unwrap();
    assert_eq!(rows, [TeamMembershipRow { org: "acme".into(), team_slug: "core".into(), login: "alice".into() }]);
    assert_eq!(s.team_memberships(Some("acme")).await.unwrap(), rows);
    assert!(s.team_memberships(Some("beta")).await.unwrap().is_empty());

    // WHEN the newest delivery per repository is read THEN one row per repository, sorted
    s.claim_delivery(&claim("1", "a", "push", Some("acme/web"), None, 5)).await.unwrap();
    s.claim_delivery(&claim("1", "b", "push", Some("acme/api"), None, 9)).await.unwrap();
    s.claim_delivery(&claim("1", "c", "push", Some("acme/api"), None, 7)).await.unwrap();
    s.claim_delivery(&claim("1", "d", "team", None, Some("acme"), 11)).await.unwrap();
    let last = s.last_deliveries().await.unwrap();
    assert_eq!(
        last,
        [
            RepoDeliveryRow { repo: "acme/api".into(), last_received_at: t(9) },
            RepoDeliveryRow { repo: "acme/web".into(), last_received_at: t(5) }
        ]
    );
}

async fn review_facts_survive_concurrent_writers(b: &dyn Backend) {
    // GIVEN a pull request by alice
    let s = b.store().await;
    s.apply_changes(&[pr("acme/api", 1, PrState::Open, "alice", 0, 1)]).await.unwrap();
    // WHEN twelve reviews of it are written at once by separate writers (as by concurrent Lambdas)
    let mut writers = tokio::task::JoinSet::new();
    for i in 0..12i64 {
        let s = s.clone();
        let state = if i % 3 == 0 { ReviewState::ChangesRequested } else { ReviewState::Commented };
        writers.spawn(async move { s.apply_changes(&[review("acme/api", 1, 100 + i, "bob", state, 50 - i)]).await });
    }
    while let Some(done) = writers.join_next().await {
        done.unwrap().unwrap();
    }
    // THEN the facts count every review: the earliest is the first review, four requested changes
    let rows = s.metric_pulls(&MetricsFilter::window(t(0), t(10))).await.unwrap();
    assert_eq!(rows.iter().map(|r| (r.first_review_at, r.changes_requested)).collect::<Vec<_>>(), [(Some(t(39)), 4)]);
}

async fn reset_entities_keeps_the_ledger(b: &dyn Backend) {
    // GIVEN entities and a completed delivery
    let s = b.store().await;
    let c = claim("1", "a", "push", Some("acme/api"), None, 1);
    s.claim_delivery(&c).await.unwrap();
    s.complete_delivery(
        &c.key,
        &[pr("acme/api", 1, PrState::Open, "a", 0, 1), team("acme", "core", false, 0)],
        &outcome(DeliveryStatus::Stored),
    )
    .await
    .unwrap();
    s.apply_changes(&[commit("acme/api", "c1", Some(1), Some("main")), run("acme/api", 1, "queued", "a", 0, 0)])
        .await
        .unwrap();
    // WHEN reset
    s.reset_entities().await.unwrap();
    // THEN no entity is left, the ledger still knows the delivery, and replaying applies again
    assert!(s.get_pull(&repo("acme/api"), 1).await.unwrap().is_none());
    assert!(s.list_teams(None, &page(5)).await.unwrap().items.is_empty());
    assert!(s.list_commits(&repo("acme/api"), None, &page(5)).await.unwrap().items.is_empty());
    assert!(s.list_workflow_runs(None, &page(5)).await.unwrap().items.is_empty());
    assert_eq!(s.known_deliveries(std::slice::from_ref(&c.key)).await.unwrap(), [true]);
    let again = s.apply_changes(&[pr("acme/api", 1, PrState::Open, "a", 0, 1)]).await.unwrap();
    assert_eq!(again.applied, 1);
}

// Repositories followed by identity: moves (renames, transfers) and aliases.

fn moved(from: &str, to: &str, at: i64) -> Change {
    Change::RepositoryMoved { id: Some(4242), from: repo(from), to: repo(to), at: t(at) }
}

fn job_of(repo_name: &str, id: i64, run_id: i64, status: &str, created: i64, done: Option<i64>) -> Change {
    let Change::WorkflowJob(mut j) = job(id, run_id, status, created, done) else { unreachable!() };
    j.repo = repo(repo_name);
    Change::WorkflowJob(j)
}

/// A repository's whole history under `name`: repository, branch, pull
/// requests with reviews, a collaborator, commits on `main`, a run with a
/// job, a deployment with a status.
fn history(name: &str) -> Vec<Change> {
    vec![
        Change::Repository(Repository {
            full_name: repo(name),
            id: None,
            default_branch: Some("main".into()),
            private: Some(true),
            archived: Some(false),
            deleted: false,
            version: Some(t(1)),
            activity_at: Some(t(20)),
        }),
        branch(name, "main", Some("c2"), false, 5),
        pr(name, 1, PrState::Merged, "alice", 0, 10),
        review(name, 1, 11, "bob", ReviewState::ChangesRequested, 3),
        review(name, 1, 12, "carol", ReviewState::Approved, 8),
        Change::Collaborator {
            repo: repo(name),
            member: Membership { login: "bob".into(), role: Some("write".into()), present: true, version: t(2) },
        },
        commit(name, "c1", Some(1), Some("main")),
        commit(name, "c2", Some(4), Some("main")),
        run(name, 701, "completed", "alice", 6, 9),
        job_of(name, 801, 701, "in_progress", 6, None),
        deployment(name, 901, 12),
        deployment_status(name, 901, 902, "success", 13),
    ]
}

/// What the reads say of `name`, names included.
async fn seen(s: &dyn Store, name: &str) -> Vec<String> {
    let r = repo(name);
    let mut out = Vec::new();
    let filter = PullFilter { repo: Some(r.clone()), ..Default::default() };
    for p in walk(10, async |pg| s.list_pulls(&filter, &pg).await.unwrap()).await {
        let d = s.get_pull(&r, p.number).await.unwrap().expect("listed pull request");
        let reviews: Vec<i64> = d.reviews.iter().map(|r| r.id).collect();
        out.push(format!("pull {} #{} {} {:?} {:?}", p.repo, p.number, p.title, p.state, reviews));
    }
    for c in walk(10, async |pg| s.list_commits(&r, Some("main"), &pg).await.unwrap()).await {
        out.push(format!("commit {} {}", c.repo, c.sha));
    }
    for w in walk(10, async |pg| s.list_workflow_runs(Some(&r), &pg).await.unwrap()).await {
        out.push(format!("run {} {}", w.run.repo, w.run.id));
    }
    let mut f = MetricsFilter::window(t(-100), t(100));
    f.repo = Some(r.clone());
    for m in s.metric_pulls(&f).await.unwrap() {
        out.push(format!("metric pull {} #{} first review {:?}", m.repo, m.number, m.first_review_at));
    }
    for m in s.metric_runs(&f).await.unwrap() {
        out.push(format!("metric run {}", m.ci.repo));
    }
    for m in s.metric_jobs(&f).await.unwrap() {
        out.push(format!("metric job {}", m.ci.repo));
    }
    for m in s.metric_deployments(&f).await.unwrap() {
        out.push(format!("metric deployment {} {} {:?}", m.repo, m.id, m.outcome));
    }
    let snap = &s.repo_summaries(&[snapshot(name, None)]).await.unwrap()[0];
    out.push(format!(
        "snapshot {} open {} merged {} branches {:?} default {:?} commits {:?} deployments {}",
        snap.repo,
        snap.open,
        snap.merged,
        snap.branches,
        snap.default_branch,
        snap.default_branch_commits,
        snap.deployments
    ));
    let runs = s.stored_runs(&r, None, &[701], Some(t(-100_000))).await.unwrap();
    out.push(format!(
        "stored runs {} {:?} {:?}",
        runs.total,
        runs.runs.iter().map(|r| r.jobs).collect::<Vec<_>>(),
        runs.oldest_unfinished
    ));
    out
}

async fn moves_take_the_whole_history_to_the_new_name(b: &dyn Backend) {
    // GIVEN a repository's history under its old name, and what a store holding it under the new name reads
    let reference = b.store().await;
    reference.apply_changes(&history("acme/api-next")).await.unwrap();
    let expected = seen(reference.as_ref(), "acme/api-next").await;
    assert!(expected.iter().any(|l| l.starts_with("metric job")), "the reference reads every kind: {expected:?}");
    let s = b.store().await;
    s.apply_changes(&history("acme/api")).await.unwrap();
    // WHEN the repository is renamed
    let report = s.apply_changes(&[moved("acme/api", "acme/api-next", 30)]).await.unwrap();
    // THEN the move changed the store
    assert_eq!(report, ApplyReport { applied: 1, skipped: 0 });
    // AND everything reads under the new name exactly as if it had always been there
    assert_eq!(seen(s.as_ref(), "acme/api-next").await, expected);
    // AND the old name filters to the same answers (canonical names in the results; snapshots keep the name asked)
    let by_alias: Vec<String> =
        expected.iter().map(|l| l.replace("snapshot acme/api-next", "snapshot acme/api")).collect();
    assert_eq!(seen(s.as_ref(), "acme/api").await, by_alias);
    // AND the repository is listed and tracked once, under its new name
    let repos = walk(10, async |pg| s.list_repos(&pg).await.unwrap()).await;
    assert_eq!(repos.iter().map(|r| r.full_name.as_str()).collect::<Vec<_>>(), ["acme/api-next"]);
    assert_eq!((repos[0].private, repos[0].branches.len()), (Some(true), 1));
    assert_eq!(s.tracked().await.unwrap().repos, [repo("acme/api-next")]);
    // AND metrics over every repository show one repository
    let all = s.metric_pulls(&MetricsFilter::window(t(-100), t(100))).await.unwrap();
    assert_eq!(all.iter().map(|m| m.repo.as_str()).collect::<Vec<_>>(), ["acme/api-next"]);
}

async fn a_move_merges_with_what_the_new_name_holds_newest_wins(b: &dyn Backend) {
    // GIVEN pull request #1 under both names: older under the old name, newer under the new one,
    // and #2 newer under the old name
    let s = b.store().await;
    s.apply_changes(&[
        pr("acme/old", 1, PrState::Open, "alice", 0, 5),
        pr("acme/new", 1, PrState::Merged, "alice", 0, 9),
        pr("acme/old", 2, PrState::Closed, "bob", 0, 8),
        pr("acme/new", 2, PrState::Open, "bob", 0, 3),
        branch("acme/old", "main", Some("old-head"), false, 2),
        branch("acme/new", "main", Some("new-head"), false, 7),
    ])
    .await
    .unwrap();
    // WHEN the old name moves to the new one
    s.apply_changes(&[moved("acme/old", "acme/new", 10)]).await.unwrap();
    // THEN each entity keeps its newer version, whichever name it was under
    let filter = PullFilter { repo: Some(repo("acme/new")), ..Default::default() };
    let mut pulls: Vec<_> = walk(10, async |pg| s.list_pulls(&filter, &pg).await.unwrap())
        .await
        .into_iter()
        .map(|p| (p.repo.to_string(), p.number, p.state.as_str()))
        .collect();
    pulls.sort();
    assert_eq!(pulls, [("acme/new".into(), 1, "merged"), ("acme/new".into(), 2, "closed")]);
    let snap = &s.repo_summaries(&[snapshot("acme/new", None)]).await.unwrap()[0];
    assert_eq!(snap.branches, [("main".to_owned(), "new-head".to_owned())]);
}

async fn writes_under_an_old_name_land_on_the_new_one(b: &dyn Backend) {
    // GIVEN a repository moved away from a name the store never heard of
    let s = b.store().await;
    s.apply_changes(&[moved("acme/ghost", "acme/real", 1)]).await.unwrap();
    assert!(s.tracked().await.unwrap().repos.is_empty(), "an unknown name's move only records the alias");
    // WHEN late (or redelivered) events for the old name arrive, in one batch and one by one
    s.apply_changes(&[
        pr("acme/ghost", 7, PrState::Open, "alice", 0, 2),
        run("acme/ghost", 71, "queued", "alice", 1, 1),
    ])
    .await
    .unwrap();
    s.apply_changes(&[review("acme/ghost", 7, 77, "bob", ReviewState::Approved, 3)]).await.unwrap();
    // THEN they are stored under the new name only
    let got = s.get_pull(&repo("acme/real"), 7).await.unwrap().expect("under the new name");
    assert_eq!((got.pull.repo.as_str(), got.reviews.len()), ("acme/real", 1));
    let runs = walk(10, async |pg| s.list_workflow_runs(None, &pg).await.unwrap()).await;
    assert_eq!(runs.iter().map(|r| r.run.repo.as_str()).collect::<Vec<_>>(), ["acme/real"]);
    let all = walk(10, async |pg| s.list_pulls(&PullFilter::default(), &pg).await.unwrap()).await;
    assert_eq!(all.iter().map(|p| p.repo.as_str()).collect::<Vec<_>>(), ["acme/real"]);
}

async fn moves_chain_return_and_repeat_without_changing_more(b: &dyn Backend) {
    // GIVEN a -> b, then b -> c
    let s = b.store().await;
    s.apply_changes(&history("acme/a")).await.unwrap();
    s.apply_changes(&[moved("acme/a", "acme/b", 10)]).await.unwrap();
    s.apply_changes(&[pr("acme/b", 2, PrState::Open, "dave", 11, 11)]).await.unwrap();
    s.apply_changes(&[moved("acme/b", "acme/c", 20)]).await.unwrap();
    // THEN both old names answer for c
    let expected = seen(s.as_ref(), "acme/c").await;
    assert!(expected.iter().any(|l| l.starts_with("pull acme/c #2")), "{expected:?}");
    for old in ["acme/a", "acme/b"] {
        let got = seen(s.as_ref(), old).await;
        assert_eq!(got[..got.len() - 2], expected[..expected.len() - 2], "{old} filters to acme/c");
    }
    // WHEN both moves are applied again (redelivered), and a later write came in between
    s.apply_changes(&[pr("acme/c", 3, PrState::Open, "erin", 21, 21)]).await.unwrap();
    let before = seen(s.as_ref(), "acme/c").await;
    let again = s.apply_changes(&[moved("acme/a", "acme/b", 10), moved("acme/b", "acme/c", 20)]).await.unwrap();
    // THEN nothing more changes
    assert_eq!(again, ApplyReport { applied: 0, skipped: 2 });
    assert_eq!(seen(s.as_ref(), "acme/c").await, before);
    assert_eq!(s.tracked().await.unwrap().repos, [repo("acme/c")]);
    // WHEN c moves back to a
    s.apply_changes(&[moved("acme/c", "acme/a", 30)]).await.unwrap();
    // THEN a is the repository again, c and b are its aliases
    let back = seen(s.as_ref(), "acme/a").await;
    assert!(back.iter().any(|l| l.starts_with("pull acme/a #3")), "{back:?}");
    assert_eq!(seen(s.as_ref(), "acme/c").await[..back.len() - 2], back[..back.len() - 2]);
    assert_eq!(seen(s.as_ref(), "acme/b").await[..back.len() - 2], back[..back.len() - 2]);
    assert_eq!(s.tracked().await.unwrap().repos, [repo("acme/a")]);
    // AND the first move, redelivered once more, changes nothing
    let stale = s.apply_changes(&[moved("acme/a", "acme/b", 10)]).await.unwrap();
    assert_eq!(stale, ApplyReport { applied: 0, skipped: 1 });
    assert_eq!(seen(s.as_ref(), "acme/a").await, back);
}

async fn a_new_repository_taking_an_old_name_keeps_its_own_history(b: &dyn Backend) {
    // GIVEN acme/a (GitHub's id 4242, the id `moved` carries) with pull request #1, renamed to acme/b
    let s = b.store().await;
    s.apply_changes(&[repository_with_id("acme/a", 4242, 1), pr("acme/a", 1, PrState::Open, "alice", 1, 1)])
        .await
        .unwrap();
    s.apply_changes(&[moved("acme/a", "acme/b", 10)]).await.unwrap();
    // WHEN a new repository (id 777) is created as acme/a, with its own pull request #1 and a run
    s.apply_changes(&[
        repository_with_id("acme/a", 777, 20),
        pr("acme/a", 1, PrState::Merged, "carol", 20, 21),
        run("acme/a", 91, "completed", "carol", 20, 21),
    ])
    .await
    .unwrap();
    // THEN each name reads its own repository's history
    let author = async |name: &str, n: u64| {
        s.get_pull(&repo(name), n).await.unwrap().map(|p| (p.pull.repo.to_string(), p.pull.author.clone()))
    };
    assert_eq!(author("acme/a", 1).await, Some(("acme/a".into(), Some("carol".into()))));
    assert_eq!(author("acme/b", 1).await, Some(("acme/b".into(), Some("alice".into()))));
    let repos = walk(10, async |pg| s.list_repos(&pg).await.unwrap()).await;
    let mut names: Vec<&str> = repos.iter().map(|r| r.full_name.as_str()).collect();
    names.sort();
    assert_eq!(names, ["acme/a", "acme/b"]);
    assert_eq!(s.tracked().await.unwrap().repos, [repo("acme/a"), repo("acme/b")]);
    let of_a = PullFilter { repo: Some(repo("acme/a")), ..Default::default() };
    let pulls = walk(10, async |pg| s.list_pulls(&of_a, &pg).await.unwrap()).await;
    assert_eq!(pulls.iter().map(|p| (p.repo.as_str(), p.number)).collect::<Vec<_>>(), [("acme/a", 1)]);
    let runs = walk(10, async |pg| s.list_workflow_runs(Some(&repo("acme/a")), &pg).await.unwrap()).await;
    assert_eq!(runs.iter().map(|r| r.run.id).collect::<Vec<_>>(), [91]);
    // WHEN a late delivery of the renamed repository still names acme/a (id 4242: its pull request #2)
    s.apply_changes(&[repository_with_id("acme/a", 4242, 9), pr("acme/a", 2, PrState::Open, "alice", 9, 9)])
        .await
        .unwrap();
    // THEN it lands on acme/b
    assert_eq!(author("acme/b", 2).await, Some(("acme/b".into(), Some("alice".into()))));
    assert_eq!(author("acme/a", 2).await, None);
    // WHEN a write without an id names acme/a THEN it is the repository stored there
    s.apply_changes(&[pr("acme/a", 3, PrState::Open, "carol", 22, 22)]).await.unwrap();
    assert_eq!(author("acme/a", 3).await, Some(("acme/a".into(), Some("carol".into()))));
    assert_eq!(author("acme/b", 3).await, None);
    // WHEN the rename is redelivered
    let again = s.apply_changes(&[moved("acme/a", "acme/b", 10)]).await.unwrap();
    // THEN it changes nothing: the new repository's history stays under acme/a
    assert_eq!(again, ApplyReport { applied: 0, skipped: 1 });
    assert_eq!(author("acme/a", 1).await, Some(("acme/a".into(), Some("carol".into()))));
    assert_eq!(author("acme/b", 1).await, Some(("acme/b".into(), Some("alice".into()))));
}

async fn deliveries_keep_their_names_and_count_for_the_new_one(b: &dyn Backend) {
    // GIVEN a delivery for the old name, then a delivery whose change is the move
    let s = b.store().await;
    let old = claim("1", "d-old", "pull_request", Some("acme/old"), None, 1);
    assert_eq!(s.claim_delivery(&old).await.unwrap(), Claim::Claimed);
    s.complete_delivery(&old.key, &[pr("acme/old", 1, PrState::Open, "alice", 0, 1)], &outcome(DeliveryStatus::Stored))
        .await
        .unwrap();
    let mv = claim("1", "d-move", "repository", Some("acme/new"), None, 2);
    assert_eq!(s.claim_delivery(&mv).await.unwrap(), Claim::Claimed);
    // WHEN the move's delivery completes
    let report = s
        .complete_delivery(&mv.key, &[moved("acme/old", "acme/new", 2)], &outcome(DeliveryStatus::Stored))
        .await
        .unwrap();
    assert_eq!(report.applied, 1);
    // THEN the ledger still says which name each delivery came with
    let filter = DeliveryFilter { repo: Some(repo("acme/old")), ..Default::default() };
    let listed = walk(10, async |pg| s.list_deliveries(&filter, &pg).await.unwrap()).await;
    assert_eq!(listed.iter().map(|d| d.delivery_id.as_str()).collect::<Vec<_>>(), ["d-old"]);
    // AND tracking and the newest delivery per repository name the repository once, by its new name
    assert_eq!(s.tracked().await.unwrap().repos, [repo("acme/new")]);
    let last = s.last_deliveries().await.unwrap();
    assert_eq!(last.iter().map(|r| (r.repo.as_str(), r.last_received_at)).collect::<Vec<_>>(), [("acme/new", t(2))]);
}

/// DynamoDB only: a move cut short (its alias written, its items not yet
/// re-keyed) is finished by applying it again, as a retried delivery does.
#[cfg(feature = "dynamodb")]
mod dynamodb_moves {
    use std::sync::Arc;

    use aws_sdk_dynamodb::types::AttributeValue;
    use octoscope::adapters::aws::dynamodb::{DynamoStore, create_table};
    use octoscope::ports::*;

    use super::{Backend, history, moved, seen};

    #[tokio::test]
    async fn a_move_cut_short_after_its_alias_is_finished_by_applying_it_again() {
        // GIVEN what a store holding the history under the new name reads
        let reference = super::Dynamo.store().await;
        reference.apply_changes(&history("acme/api-next")).await.unwrap();
        let expected = seen(reference.as_ref(), "acme/api-next").await;
        // AND a store whose move stopped right after writing its alias item
        let client = super::dynamo_client().await;
        let table = octoscope_testkit::moto::unique("octoscope");
        create_table(&client, &table).await.unwrap();
        let s: Arc<dyn Store> = Arc::new(DynamoStore::new(client.clone(), table.clone()));
        s.apply_changes(&history("acme/api")).await.unwrap();
        mark_moving(&client, &table, "acme/api", "acme/api-next").await;
        put_alias(&client, &table, None).await;
        assert_ne!(seen(s.as_ref(), "acme/api-next").await, expected, "the items have not moved yet");
        // WHEN the move is applied again
        let report = s.apply_changes(&[moved("acme/api", "acme/api-next", 30)]).await.unwrap();
        // THEN it finishes: everything reads under the new name as if it had always been there
        assert_eq!(report.applied, 1);
        assert_eq!(seen(s.as_ref(), "acme/api-next").await, expected);
        // AND a third time changes nothing
        let again = s.apply_changes(&[moved("acme/api", "acme/api-next", 30)]).await.unwrap();
        assert_eq!((again.applied, again.skipped), (0, 1));
    }

    /// The alias item a move writes first: acme/api now acme/api-next (with GitHub's id, if given).
    async fn put_alias(client: &aws_sdk_dynamodb::Client, table: &str, id: Option<i64>) {
        let text = |v: &str| AttributeValue::S(v.to_owned());
        let mut put = client
            .put_item()
            .table_name(table)
            .item("pk", text("ALIAS#acme/api"))
            .item("sk", text("_"))
            .item("alias", text("acme/api"))
            .item("canonical", text("acme/api-next"))
            .item("moved_at", text("2030-03-04T09:30:00.000Z"))
            .item("gsi1pk", text("ALIASES#acme/api-next"))
            .item("gsi1sk", text("acme/api"));
        if let Some(id) = id {
            put = put.item("id", AttributeValue::N(id.to_string()));
        }
        put.send().await.unwrap();
    }

    /// A table whose store knows the repository acme/api (GitHub id 4242) and its pull request 1.
    async fn known_repository() -> (aws_sdk_dynamodb::Client, String, Arc<dyn Store>) {
        let client = super::dynamo_client().await;
        let table = octoscope_testkit::moto::unique("octoscope");
        create_table(&client, &table).await.unwrap();
        let s: Arc<dyn Store> = Arc::new(DynamoStore::new(client.clone(), table.clone()));
        s.apply_changes(&delivery("acme/api", 1)).await.unwrap();
        (client, table, s)
    }

    /// What a move writes before its alias (`moves.rs`, `MOVING`): the repository item it leaves is marked.
    async fn mark_moving(client: &aws_sdk_dynamodb::Client, table: &str, from: &str, to: &str) {
        client
            .update_item()
            .table_name(table)
            .key("pk", AttributeValue::S(format!("REPO#{from}")))
            .key("sk", AttributeValue::S("REPO".into()))
            .update_expression("SET moving_to = :to")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":to", AttributeValue::S(to.into()))
            .send()
            .await
            .unwrap();
    }

    /// A delivery's changes: its repository (with GitHub's id) and a pull request of it.
    fn delivery(name: &str, number: u64) -> Vec<octoscope::domain::Change> {
        use octoscope::domain::{Change, PrState, Repository};
        vec![
            Change::Repository(Repository {
                full_name: super::repo(name),
                id: Some(4242),
                default_branch: Some("main".into()),
                private: Some(false),
                archived: Some(false),
                deleted: false,
                version: Some(super::t(1)),
                activity_at: Some(super::t(1)),
            }),
            super::pr(name, number, PrState::Open, "alice", 1, 1),
        ]
    }

    /// Whether the table holds pull request `number` under `name` itself (not through an alias).
    async fn stored_under(client: &aws_sdk_dynamodb::Client, table: &str, name: &str, number: u64) -> bool {
        let item = client
            .get_item()
            .table_name(table)
            .key("pk", AttributeValue::S(format!("REPO#{name}")))
            .key("sk", AttributeValue::S(format!("PR#{number:020}")))
            .consistent_read(true)
            .send()
            .await
            .unwrap();
        item.item.is_some()
    }

    #[tokio::test]
    async fn a_delivery_naming_the_old_name_while_its_move_is_under_way_is_written_under_the_new_one() {
        // GIVEN a repository (GitHub id 4242) known under acme/api
        let (client, table, s) = known_repository().await;
        // AND its move to acme/api-next under way: the item marked, the alias written, nothing re-keyed yet
        mark_moving(&client, &table, "acme/api", "acme/api-next").await;
        put_alias(&client, &table, Some(4242)).await;
        // WHEN a delivery still names the old name, with the repository's id
        s.apply_changes(&delivery("acme/api", 2)).await.unwrap();
        // THEN what it carries is written under the new name, nothing more under the old one
        assert!(stored_under(&client, &table, "acme/api-next", 2).await);
        assert!(!stored_under(&client, &table, "acme/api", 2).await);
        // AND the move, applied, finishes with both pull requests under the new name
        s.apply_changes(&[moved("acme/api", "acme/api-next", 30)]).await.unwrap();
        assert!(stored_under(&client, &table, "acme/api-next", 1).await);
        assert!(!stored_under(&client, &table, "acme/api", 1).await);
    }

    #[tokio::test]
    async fn a_repository_holding_its_name_is_written_there_whatever_an_alias_of_it_says() {
        // GIVEN a repository (GitHub id 4242) under acme/api, unmarked, beside an alias item of acme/api
        // naming the same id (a state a move leaves only while it is under way, and then marked)
        let (client, table, s) = known_repository().await;
        put_alias(&client, &table, Some(4242)).await;
        // WHEN a delivery names acme/api with that id
        s.apply_changes(&delivery("acme/api", 2)).await.unwrap();
        // THEN the repository item decides, not the alias: the delivery is written under acme/api
        // (the mark, not the alias, is what sends a delivery to a move's target while it runs)
        assert!(stored_under(&client, &table, "acme/api", 2).await);
        assert!(!stored_under(&client, &table, "acme/api-next", 2).await);
    }
}
