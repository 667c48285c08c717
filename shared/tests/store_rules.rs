//! The store's rules on SQLite on disk: last-writer-wins in any order, set
//! tombstones, and the delivery ledger's claims.

use chrono::{Duration, TimeZone, Utc};
use octoscope::adapters::sqlite::SqliteStore;
use octoscope::domain::*;
use octoscope::ports::store::*;
use octoscope::ports::{Claim, PageRequest, PullFilter};

fn t(min: i64) -> Timestamp {
    Utc.with_ymd_and_hms(2024, 3, 1, 9, 0, 0).unwrap() + Duration::minutes(min)
}

fn store() -> (SqliteStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    (SqliteStore::open(&dir.path().join("s.db")).unwrap(), dir)
}

fn repo() -> RepoName {
    RepoName::parse("acme/api").unwrap()
}

fn member(org: &str, slug: &str, login: &str, present: bool, at: Timestamp) -> Change {
    Change::TeamMember {
        org: org.into(),
        team_slug: slug.into(),
        member: Membership { login: login.into(), role: None, present, version: at },
    }
}

fn team(at: Timestamp) -> Change {
    Change::Team(Team {
        org: "acme".into(),
        slug: "core".into(),
        id: Some(1),
        name: "Core".into(),
        description: None,
        privacy: None,
        parent_slug: None,
        deleted: false,
        version: at,
    })
}

/// Apply `changes` one write at a time in every order of `order`s, and check each ends the same.
async fn same_in_any_order<T: PartialEq + std::fmt::Debug>(
    changes: &[Change],
    orders: &[&[usize]],
    read: impl for<'a> Fn(&'a SqliteStore) -> std::pin::Pin<Box<dyn std::future::Future<Output = T> + 'a>>,
) -> T {
    let mut first = None;
    for order in orders {
        let (s, _dir) = store();
        for &i in *order {
            s.apply_changes(std::slice::from_ref(&changes[i])).await.unwrap();
        }
        let got = read(&s).await;
        match &first {
            None => first = Some(got),
            Some(f) => assert_eq!(&got, f, "order {order:?}"),
        }
    }
    first.unwrap()
}

#[tokio::test]
async fn team_membership_is_order_proof_with_tombstones() {
    // GIVEN alice added at 1, removed at 3; bob added at 2
    let changes = [
        team(t(0)),
        member("acme", "core", "alice", true, t(1)),
        member("acme", "core", "bob", true, t(2)),
        member("acme", "core", "alice", false, t(3)),
    ];
    // WHEN applied in several orders THEN members are [bob] each time: a late "added" cannot resurrect alice
    let members = same_in_any_order(&changes, &[&[0, 1, 2, 3], &[0, 3, 2, 1], &[3, 1, 0, 2], &[2, 3, 1, 0]], |s| {
        Box::pin(
            async move { s.list_teams(Some("acme"), &PageRequest::first(10)).await.unwrap().items[0].members.clone() },
        )
    })
    .await;
    assert_eq!(members, ["bob"]);
}

#[tokio::test]
async fn branch_heads_and_deletions_are_order_proof() {
    let b = |sha: Option<&str>, deleted, at| {
        Change::Branch(Branch {
            repo: repo(),
            name: "feature".into(),
            head_sha: sha.map(Into::into),
            deleted,
            version: at,
        })
    };
    let repo_seen = Change::Repository(Repository {
        full_name: repo(),
        id: None,
        default_branch: Some("main".into()),
        private: None,
        archived: None,
        deleted: false,
        version: Some(t(0)),
        activity_at: Some(t(0)),
    });
    // pushed a1 at 1, created (no sha) at 1, pushed b2 at 2, deleted at 5
    let changes =
        [repo_seen, b(Some("a1"), false, t(1)), b(None, false, t(1)), b(Some("b2"), false, t(2)), b(None, true, t(5))];
    let branches = same_in_any_order(&changes, &[&[0, 1, 2, 3, 4], &[0, 4, 3, 2, 1], &[4, 0, 2, 1, 3]], |s| {
        Box::pin(async move { s.list_repos(&PageRequest::first(10)).await.unwrap().items[0].branches.clone() })
    })
    .await;
    assert!(branches.is_empty(), "deleted last: {branches:?}");
    // Without the deletion, the newest push is the head whatever the order.
    let heads = same_in_any_order(&changes[..4], &[&[0, 1, 2, 3], &[0, 3, 2, 1], &[0, 2, 3, 1]], |s| {
        Box::pin(async move { s.list_repos(&PageRequest::first(10)).await.unwrap().items[0].branches.clone() })
    })
    .await;
    assert_eq!(heads[0].head_sha.as_deref(), Some("b2"));
}

#[tokio::test]
async fn workflow_runs_only_move_forward() {
    let run = |status: &str, at, started: Option<Timestamp>| {
        Change::WorkflowRun(WorkflowRun {
            repo: repo(),
            id: 7,
            name: Some("CI".into()),
            workflow_id: Some(1),
            head_branch: Some("main".into()),
            head_sha: None,
            event: Some("push".into()),
            status: RunStatus::parse(status),
            conclusion: (status == "completed").then(|| "success".into()),
            run_number: Some(1),
            run_attempt: Some(1),
            actor: None,
            created_at: t(0),
            run_started_at: started,
            updated_at: at,
        })
    };
    let changes = [run("queued", t(0), None), run("in_progress", t(2), Some(t(2))), run("completed", t(9), Some(t(2)))];
    let runs = same_in_any_order(&changes, &[&[0, 1, 2], &[2, 1, 0], &[1, 2, 0], &[2, 0, 1]], |s| {
        Box::pin(async move { s.list_workflow_runs(None, &PageRequest::first(10)).await.unwrap().items })
    })
    .await;
    assert_eq!(runs[0].run.status.as_str(), "completed");
    assert_eq!((runs[0].queue_seconds, runs[0].duration_seconds), (Some(120), Some(420)));
}

#[tokio::test]
async fn a_stale_write_is_reported_as_skipped() {
    let (s, _dir) = store();
    let r1 = s.apply_changes(&[member("acme", "core", "alice", true, t(5))]).await.unwrap();
    let r2 = s.apply_changes(&[member("acme", "core", "alice", false, t(1))]).await.unwrap();
    assert_eq!((r1.applied, r2.applied, r2.skipped), (1, 0, 1));
}

fn claim(delivery: &str, at: Timestamp) -> DeliveryClaim {
    DeliveryClaim {
        key: DeliveryKey { hook_id: HookId::parse("1").unwrap(), delivery_id: DeliveryId::parse(delivery).unwrap() },
        event: EventName::parse("push").unwrap(),
        action: None,
        repo: Some(repo()),
        org: Some("acme".into()),
        received_at: at,
        body_bytes: 10,
    }
}

#[tokio::test]
async fn the_ledger_claims_once_and_lets_a_crashed_claim_be_retried_after_its_lease() {
    let (s, _dir) = store();
    let c = claim("d-1", t(0));
    assert_eq!(s.claim_delivery(&c).await.unwrap(), Claim::Claimed);
    // A concurrent repeat while the first is in flight is a duplicate.
    assert_eq!(s.claim_delivery(&c).await.unwrap(), Claim::Duplicate(DeliveryStatus::Pending));
    // The process died before completing: a redelivery after the lease is claimed again.
    assert_eq!(s.claim_delivery(&claim("d-1", t(2))).await.unwrap(), Claim::Claimed);
    let outcome = DeliveryOutcome { status: DeliveryStatus::Stored, reason: None, changes: 0 };
    s.complete_delivery(&c.key, &[], &outcome).await.unwrap();
    // Once stored, never again, however late.
    assert_eq!(s.claim_delivery(&claim("d-1", t(600))).await.unwrap(), Claim::Duplicate(DeliveryStatus::Stored));
    // A released claim (archive or store failed) is free at once.
    let d2 = claim("d-2", t(0));
    assert_eq!(s.claim_delivery(&d2).await.unwrap(), Claim::Claimed);
    s.release_delivery(&d2.key).await.unwrap();
    assert_eq!(s.claim_delivery(&d2).await.unwrap(), Claim::Claimed);
}

#[tokio::test]
async fn pull_requests_from_review_events_fill_in_but_never_erase_sizes() {
    let (s, _dir) = store();
    let pr = |at, additions: Option<i64>, title: &str| {
        Change::pull_request(PullRequest {
            repo: repo(),
            number: 1,
            id: Some(1),
            title: title.into(),
            state: PrState::Open,
            draft: false,
            author: Some("alice".into()),
            created_at: t(0),
            updated_at: at,
            closed_at: None,
            merged_at: None,
            additions,
            deletions: additions,
            changed_files: None,
            commits: None,
            labels: vec![],
            requested_reviewers: vec!["bob".into()],
            requested_teams: vec![],
            base_ref: None,
            head_ref: None,
            head_sha: None,
            body: None,
        })
    };
    s.apply_changes(&[pr(t(1), Some(10), "first")]).await.unwrap();
    s.apply_changes(&[pr(t(2), None, "second")]).await.unwrap();
    let p = &s.list_pulls(&PullFilter::default(), &PageRequest::first(5)).await.unwrap().items[0];
    assert_eq!((p.title.as_str(), p.additions), ("second", Some(10)));
    assert_eq!(p.requested_reviewers, ["bob"]);
}
