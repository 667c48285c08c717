//! The notification ports' contract (`RuleStore`, `NotificationSink`,
//! `NotificationLog`, `TransitionFacts`): one set of tests, run against every
//! adapter: SQLite on disk, and DynamoDB on a local moto server (feature
//! `dynamodb`). Each test takes a [`Backend`] that makes fresh, empty stores,
//! and speaks only the ports, so both adapters must give the same answers.

use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use async_trait::async_trait;
use chrono::{Duration, TimeZone, Utc};
use octoscope::domain::*;
use octoscope::ports::*;

/// Everything a store holding notifications is.
trait NotifyStore: Store + RuleStore + NotificationSink + NotificationLog + TransitionFacts {}
impl<T: Store + RuleStore + NotificationSink + NotificationLog + TransitionFacts + ?Sized> NotifyStore for T {}

/// Makes fresh, empty stores of one adapter.
#[async_trait]
trait Backend: Send + Sync {
    async fn store(&self) -> Arc<dyn NotifyStore>;
}

struct Sqlite(Mutex<Vec<tempfile::TempDir>>);

#[async_trait]
impl Backend for Sqlite {
    async fn store(&self) -> Arc<dyn NotifyStore> {
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
    async fn store(&self) -> Arc<dyn NotifyStore> {
        use aws_sdk_dynamodb::config::{Credentials, Region};
        use octoscope::adapters::aws::dynamodb::{DynamoStore, create_table};
        let endpoint = &octoscope_testkit::moto::MotoServer::shared().endpoint;
        let sdk = octoscope::adapters::aws::sdk_config_with_endpoint(endpoint).await;
        let conf = aws_sdk_dynamodb::config::Builder::from(&sdk)
            .region(Region::new(octoscope_testkit::moto::REGION))
            .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
            .build();
        let client = aws_sdk_dynamodb::Client::from_conf(conf);
        let table = octoscope_testkit::moto::unique("octoscope");
        create_table(&client, &table).await.expect("create table");
        Arc::new(DynamoStore::new(client, table))
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
    rules_are_put_fetched_listed_replaced_and_deleted,
    rules_for_an_event_leave_out_other_events_and_disabled_targets,
    a_notification_is_kept_once_however_often_it_is_enqueued,
    take_due_respects_the_due_time_and_the_lease,
    attempts_decide_what_follows_and_are_kept_in_order,
    a_gone_target_disables_its_rule,
    the_log_is_newest_first_paged_and_filtered,
    rule_stats_count_by_status_since_a_time,
    garbage_cursors_are_refused,
    transition_facts_read_what_the_store_applied,
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

fn rule(event: RuleEvent, created: i64) -> Rule {
    Rule {
        id: RuleId::generate(),
        event,
        filters: RuleFilters { repo: Some(repo("acme/api")), branch: Some("main".into()), ..RuleFilters::default() },
        target: TargetSpec::Webhook { url: "https://hooks.example.com/octoscope".into() },
        secrets: TargetSecrets::generate(),
        created_at: t(created),
        updated_at: t(created),
        disabled: None,
    }
}

fn transition(key: &str, occurred: i64) -> Transition {
    Transition {
        event: RuleEvent::PullRequestMerged,
        key: key.into(),
        repo: Some(repo("acme/api")),
        branch: Some("main".into()),
        author: Some("alice".into()),
        environment: None,
        occurred_at: t(occurred),
        late: false,
        data: serde_json::json!({"number": 42, "title": "Speed up", "url": "https://github.com/acme/api/pull/42"}),
    }
}

/// A pending notification of `key` for `rule`, decided (and due) at `created`.
fn note(rule: &RuleId, key: &str, created: i64) -> Notification {
    Notification::decide(rule, &transition(key, created - 1), t(created))
}

fn attempt(n: &Notification, number: u32, at: i64, status: Option<u16>) -> Attempt {
    Attempt {
        notification_id: n.id.clone(),
        number,
        at: t(at),
        status_code: status,
        latency_ms: 120 + u64::from(number),
        excerpt: format!("answer {number}"),
    }
}

fn ids(notes: &[Notification]) -> Vec<NotificationId> {
    notes.iter().map(|n| n.id.clone()).collect()
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

const LEASE: StdDuration = StdDuration::from_secs(60);

// Rules.

async fn rules_are_put_fetched_listed_replaced_and_deleted(b: &dyn Backend) {
    // GIVEN three rules created at 0, 1, 2, one of them a Slack rule without secrets
    let s = b.store().await;
    let (a, mut b1, c) =
        (rule(RuleEvent::BranchMoved, 0), rule(RuleEvent::PullRequestMerged, 1), rule(RuleEvent::Test, 2));
    let c = Rule {
        target: TargetSpec::Slack { url: "https://hooks.slack.com/services/x".into() },
        secrets: TargetSecrets::default(),
        filters: RuleFilters { skip_late: true, hours: Some(4), ..RuleFilters::default() },
        ..c
    };
    for r in [&c, &a, &b1] {
        s.put_rule(r).await.unwrap();
    }
    // WHEN each is fetched THEN it reads back whole, secrets included
    for r in [&a, &b1, &c] {
        assert_eq!(s.get_rule(&r.id).await.unwrap().as_ref(), Some(r));
    }
    assert_eq!(s.get_rule(&RuleId::generate()).await.unwrap(), None);
    // WHEN listed a page of two at a time THEN oldest first, every one once
    let all = walk(2, async |p| s.list_rules(&p).await.unwrap()).await;
    assert_eq!(all.iter().map(|r| r.id.clone()).collect::<Vec<_>>(), [a.id.clone(), b1.id.clone(), c.id.clone()]);
    assert!(s.list_rules(&page(2)).await.unwrap().next_cursor.is_some());
    // WHEN a rule is put again with its id THEN it is replaced
    b1.target = TargetSpec::RepositoryDispatch { repo: repo("acme/ops"), event_type: Some("deploy".into()) };
    b1.secrets = b1.secrets.rotated();
    b1.updated_at = t(9);
    s.put_rule(&b1).await.unwrap();
    assert_eq!(s.get_rule(&b1.id).await.unwrap(), Some(b1.clone()));
    assert_eq!(s.list_rules(&page(10)).await.unwrap().items.len(), 3);
    // WHEN deleted THEN gone, and a second delete says there was none
    assert!(s.delete_rule(&a.id).await.unwrap());
    assert!(!s.delete_rule(&a.id).await.unwrap());
    assert_eq!(s.get_rule(&a.id).await.unwrap(), None);
    let left = s.list_rules(&page(10)).await.unwrap();
    assert_eq!(left.items.iter().map(|r| r.id.clone()).collect::<Vec<_>>(), [b1.id, c.id]);
    assert_eq!(left.next_cursor, None);
}

async fn rules_for_an_event_leave_out_other_events_and_disabled_targets(b: &dyn Backend) {
    // GIVEN two merge rules, a push rule, and a merge rule whose target is disabled
    let s = b.store().await;
    let (m1, m2, push, off) = (
        rule(RuleEvent::PullRequestMerged, 0),
        rule(RuleEvent::PullRequestMerged, 1),
        rule(RuleEvent::BranchMoved, 2),
        rule(RuleEvent::PullRequestMerged, 3),
    );
    for r in [&m1, &m2, &push, &off] {
        s.put_rule(r).await.unwrap();
    }
    s.disable_rule(&off.id, "410 Gone").await.unwrap();
    // WHEN the rules for merges are asked for THEN only the two enabled merge rules
    let got: Vec<_> = s.rules_for(RuleEvent::PullRequestMerged).await.unwrap().into_iter().map(|r| r.id).collect();
    assert_eq!(got, [m1.id.clone(), m2.id.clone()]);
    assert_eq!(s.rules_for(RuleEvent::BranchMoved).await.unwrap(), [push]);
    assert!(s.rules_for(RuleEvent::DeploymentFailed).await.unwrap().is_empty());
    // AND the disabled rule still reads back, with its reason
    assert_eq!(s.get_rule(&off.id).await.unwrap().unwrap().disabled.as_deref(), Some("410 Gone"));
}

// The outbox and the work list.

async fn a_notification_is_kept_once_however_often_it_is_enqueued(b: &dyn Backend) {
    // GIVEN a rule and two notifications of it
    let s = b.store().await;
    let r = rule(RuleEvent::PullRequestMerged, 0);
    let (n1, n2) = (note(&r.id, "pull_request.merged:acme/api#1", 1), note(&r.id, "pull_request.merged:acme/api#2", 2));
    // WHEN enqueued THEN both are new
    assert_eq!(s.enqueue(&[n1.clone(), n2.clone()]).await.unwrap(), 2);
    // WHEN the same transition is decided again later (a redelivery, a resync) THEN nothing is new
    let again = Notification { late: true, created_at: t(30), next_attempt_at: Some(t(30)), ..n1.clone() };
    assert_eq!(s.enqueue(std::slice::from_ref(&again)).await.unwrap(), 0);
    assert!(!s.admit(&again).await.unwrap());
    // AND the kept one is left as it was
    assert_eq!(s.get_notification(&n1.id).await.unwrap(), Some(n1.clone()));
    let log = s.list_notifications(&NotificationFilter::default(), &page(10)).await.unwrap();
    assert_eq!(ids(&log.items), [n2.id.clone(), n1.id.clone()]);
    // WHEN one arrives from a queue THEN it is admitted once
    let n3 = note(&r.id, "pull_request.merged:acme/api#3", 3);
    assert!(s.admit(&n3).await.unwrap());
    assert!(!s.admit(&n3).await.unwrap());
    assert_eq!(s.enqueue(&[n3.clone(), n2.clone()]).await.unwrap(), 0);
    assert_eq!(s.get_notification(&n3.id).await.unwrap(), Some(n3));
    assert_eq!(s.get_notification(&NotificationId::derive(&r.id, "nothing")).await.unwrap(), None);
}

async fn take_due_respects_the_due_time_and_the_lease(b: &dyn Backend) {
    // GIVEN notifications due at 5, 1, 3 and one due at 20
    let s = b.store().await;
    let r = rule(RuleEvent::PullRequestMerged, 0);
    let (n5, n1, n3, n20) = (note(&r.id, "k5", 5), note(&r.id, "k1", 1), note(&r.id, "k3", 3), note(&r.id, "k20", 20));
    assert_eq!(s.enqueue(&[n5.clone(), n1.clone(), n3.clone(), n20.clone()]).await.unwrap(), 4);
    // WHEN taken at 10, two at most THEN the two oldest due ones
    assert_eq!(ids(&s.take_due(t(10), LEASE, 2).await.unwrap()), [n1.id.clone(), n3.id.clone()]);
    // WHEN taken again within their lease THEN only the one left that is due
    assert_eq!(ids(&s.take_due(t(10), LEASE, 10).await.unwrap()), std::slice::from_ref(&n5.id));
    assert!(s.take_due(t(10), LEASE, 10).await.unwrap().is_empty());
    // WHEN the lease has run out THEN they are taken again (a sender that crashed)
    let later = t(10) + Duration::seconds(61);
    assert_eq!(ids(&s.take_due(later, LEASE, 10).await.unwrap()), [n1.id.clone(), n3.id.clone(), n5.id.clone()]);
    // WHEN it is time for the last, after that lease too THEN all four, oldest first; within the lease none
    let all = [n1.id.clone(), n3.id.clone(), n5.id.clone(), n20.id.clone()];
    assert_eq!(ids(&s.take_due(t(21), LEASE, 10).await.unwrap()), all);
    assert!(s.take_due(t(21) + Duration::seconds(59), LEASE, 10).await.unwrap().is_empty());
    // WHEN one is delivered THEN it is never due again
    s.record_attempt(&attempt(&n1, 1, 22, Some(200)), &AfterAttempt::Delivered).await.unwrap();
    assert_eq!(ids(&s.take_due(t(60), LEASE, 10).await.unwrap()), [n3.id, n5.id, n20.id]);
}

async fn attempts_decide_what_follows_and_are_kept_in_order(b: &dyn Backend) {
    // GIVEN a pending notification, taken by a sender
    let s = b.store().await;
    let r = rule(RuleEvent::PullRequestMerged, 0);
    let n = note(&r.id, "k", 1);
    s.enqueue(std::slice::from_ref(&n)).await.unwrap();
    assert_eq!(s.take_due(t(1), LEASE, 10).await.unwrap().len(), 1);
    // WHEN the first attempt gets a 503 and a retry at 10
    s.record_attempt(&attempt(&n, 1, 2, Some(503)), &AfterAttempt::Retry(t(10))).await.unwrap();
    // THEN it is pending, due at 10, with one attempt and its error; the lease is released
    let got = s.get_notification(&n.id).await.unwrap().unwrap();
    assert_eq!((got.status, got.attempts, got.next_attempt_at), (NotificationStatus::Pending, 1, Some(t(10))));
    assert!(got.last_error.as_deref().unwrap().contains("503"), "{:?}", got.last_error);
    assert!(s.take_due(t(9), LEASE, 10).await.unwrap().is_empty());
    assert_eq!(ids(&s.take_due(t(10), LEASE, 10).await.unwrap()), std::slice::from_ref(&n.id));
    // WHEN the second gets no answer and a retry at 30, the third a 200
    s.record_attempt(&attempt(&n, 2, 11, None), &AfterAttempt::Retry(t(30))).await.unwrap();
    s.record_attempt(&attempt(&n, 2, 11, None), &AfterAttempt::Retry(t(30))).await.unwrap();
    s.record_attempt(&attempt(&n, 3, 31, Some(200)), &AfterAttempt::Delivered).await.unwrap();
    // THEN it is delivered after three attempts, and no longer due
    let got = s.get_notification(&n.id).await.unwrap().unwrap();
    assert_eq!((got.status, got.attempts, got.next_attempt_at), (NotificationStatus::Delivered, 3, None));
    assert!(s.take_due(t(100), LEASE, 10).await.unwrap().is_empty());
    // WHEN a late attempt reports a failure THEN the notification is not changed, the attempt still logged
    s.record_attempt(&attempt(&n, 4, 32, Some(500)), &AfterAttempt::Failed("HTTP 500".into())).await.unwrap();
    assert_eq!(s.get_notification(&n.id).await.unwrap().unwrap(), got);
    // AND the attempts read back in order, each whole, a repeated one kept once
    let want = vec![
        attempt(&n, 1, 2, Some(503)),
        attempt(&n, 2, 11, None),
        attempt(&n, 3, 31, Some(200)),
        attempt(&n, 4, 32, Some(500)),
    ];
    assert_eq!(s.attempts(&n.id).await.unwrap(), want);

    // GIVEN another notification WHEN its attempt fails for good THEN it is failed with the reason
    let m = note(&r.id, "m", 1);
    s.enqueue(std::slice::from_ref(&m)).await.unwrap();
    s.record_attempt(&attempt(&m, 1, 2, Some(400)), &AfterAttempt::Failed("HTTP 400: bad payload".into()))
        .await
        .unwrap();
    let got = s.get_notification(&m.id).await.unwrap().unwrap();
    assert_eq!((got.status, got.attempts, got.next_attempt_at), (NotificationStatus::Failed, 1, None));
    assert_eq!(got.last_error.as_deref(), Some("HTTP 400: bad payload"));
    assert!(s.take_due(t(100), LEASE, 10).await.unwrap().is_empty());
    assert_eq!(s.attempts(&m.id).await.unwrap(), [attempt(&m, 1, 2, Some(400))]);
    assert!(s.attempts(&NotificationId::derive(&r.id, "none")).await.unwrap().is_empty());
    // AND the rule is still enabled
    s.put_rule(&r).await.unwrap();
    assert_eq!(s.rules_for(RuleEvent::PullRequestMerged).await.unwrap().len(), 1);
}

async fn a_gone_target_disables_its_rule(b: &dyn Backend) {
    // GIVEN two merge rules, each with a pending notification
    let s = b.store().await;
    let (gone, kept) = (rule(RuleEvent::PullRequestMerged, 0), rule(RuleEvent::PullRequestMerged, 1));
    s.put_rule(&gone).await.unwrap();
    s.put_rule(&kept).await.unwrap();
    let (n, other) = (note(&gone.id, "k", 2), note(&kept.id, "k", 2));
    assert_eq!(s.enqueue(&[n.clone(), other.clone()]).await.unwrap(), 2);
    // WHEN the first's target answers 410 Gone
    let reason = "the target answered 410 Gone";
    s.record_attempt(&attempt(&n, 1, 3, Some(410)), &AfterAttempt::DisableTarget(reason.into())).await.unwrap();
    // THEN its notification failed, its rule is disabled with the reason, and no longer fires
    let got = s.get_notification(&n.id).await.unwrap().unwrap();
    assert_eq!((got.status, got.last_error.as_deref()), (NotificationStatus::Failed, Some(reason)));
    assert_eq!(s.get_rule(&gone.id).await.unwrap().unwrap().disabled.as_deref(), Some(reason));
    let active: Vec<_> = s.rules_for(RuleEvent::PullRequestMerged).await.unwrap().into_iter().map(|r| r.id).collect();
    assert_eq!(active, std::slice::from_ref(&kept.id));
    // AND the other rule's notification is untouched
    assert_eq!(s.get_notification(&other.id).await.unwrap(), Some(other));
}

// The log.

async fn the_log_is_newest_first_paged_and_filtered(b: &dyn Backend) {
    // GIVEN two rules: 7 notifications of the first, 4 of the second, interleaved in time;
    // two of them at the same moment, and some delivered or failed
    let s = b.store().await;
    let (r1, r2) = (rule(RuleEvent::PullRequestMerged, 0), rule(RuleEvent::BranchMoved, 0));
    let mut notes = Vec::new();
    for i in 0..11 {
        let r = if i % 3 == 2 { &r2 } else { &r1 };
        notes.push(note(&r.id, &format!("k{i}"), 1 + i.min(9)));
    }
    assert_eq!(s.enqueue(&notes).await.unwrap(), 11);
    for (i, n) in notes.iter().enumerate() {
        let next = match i % 4 {
            0 => AfterAttempt::Delivered,
            1 => AfterAttempt::Failed("HTTP 404".into()),
            _ => continue,
        };
        s.record_attempt(&attempt(n, 1, 20, Some(200)), &next).await.unwrap();
    }
    let newest_first = |mut v: Vec<Notification>| {
        v.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        ids(&v)
    };
    // WHEN the whole log is walked three at a time THEN newest first (ties by id), each once
    let all = walk(3, async |p| s.list_notifications(&NotificationFilter::default(), &p).await.unwrap()).await;
    assert_eq!(ids(&all), newest_first(notes.clone()));
    // AND each reads as it stands now
    let delivered = all.iter().filter(|n| n.status == NotificationStatus::Delivered).count();
    assert_eq!(delivered, 3);
    // WHEN filtered by rule, by status, and by both THEN only those, in the same order, paged
    let of =
        |rule: Option<&RuleId>, status: Option<NotificationStatus>| NotificationFilter { rule: rule.cloned(), status };
    let cases = [
        of(Some(&r1.id), None),
        of(Some(&r2.id), None),
        of(None, Some(NotificationStatus::Pending)),
        of(None, Some(NotificationStatus::Failed)),
        of(Some(&r1.id), Some(NotificationStatus::Delivered)),
    ];
    for f in cases {
        let got = walk(2, async |p| s.list_notifications(&f, &p).await.unwrap()).await;
        let want: Vec<_> = all
            .iter()
            .filter(|n| f.rule.as_ref().is_none_or(|r| &n.rule_id == r) && f.status.is_none_or(|st| n.status == st))
            .cloned()
            .collect();
        assert!(!want.is_empty(), "{f:?}");
        assert_eq!(ids(&got), ids(&want), "{f:?}");
    }
    let none = of(Some(&RuleId::generate()), None);
    assert_eq!(s.list_notifications(&none, &page(5)).await.unwrap(), Page { items: vec![], next_cursor: None });
}

async fn rule_stats_count_by_status_since_a_time(b: &dyn Backend) {
    // GIVEN a rule's notifications: at 1 delivered; at 5 two delivered, one failed, two pending;
    // and another rule's at 5
    let s = b.store().await;
    let (r, other) = (rule(RuleEvent::PullRequestMerged, 0), rule(RuleEvent::PullRequestMerged, 0));
    let mut notes = vec![note(&r.id, "old", 1), note(&other.id, "x", 5)];
    notes.extend((0..5).map(|i| note(&r.id, &format!("k{i}"), 5)));
    s.enqueue(&notes).await.unwrap();
    for (n, next) in [
        (&notes[0], AfterAttempt::Delivered),
        (&notes[1], AfterAttempt::Delivered),
        (&notes[2], AfterAttempt::Delivered),
        (&notes[3], AfterAttempt::Delivered),
        (&notes[4], AfterAttempt::DisableTarget("gone".into())),
        (&notes[5], AfterAttempt::Retry(t(50))),
    ] {
        s.record_attempt(&attempt(n, 1, 6, None), &next).await.unwrap();
    }
    // WHEN counted since 5 THEN two delivered, one failed, two pending
    let want = RuleStats { delivered: 2, failed: 1, pending: 2 };
    assert_eq!(s.rule_stats(&r.id, t(5)).await.unwrap(), want);
    // WHEN since 0 THEN the older one counts too; since 6, nothing
    assert_eq!(s.rule_stats(&r.id, t(0)).await.unwrap(), RuleStats { delivered: 3, ..want });
    assert_eq!(s.rule_stats(&r.id, t(6)).await.unwrap(), RuleStats::default());
    assert_eq!(s.rule_stats(&other.id, t(0)).await.unwrap(), RuleStats { delivered: 1, failed: 0, pending: 0 });
}

async fn garbage_cursors_are_refused(b: &dyn Backend) {
    // GIVEN a cursor no list returned WHEN either list is asked for it THEN BadCursor
    let s = b.store().await;
    for cursor in ["!!not-a-cursor!!".to_owned(), encode_cursor(&(1, 2, 3))] {
        let bad = PageRequest { limit: 5, cursor: Some(cursor) };
        let e = s.list_rules(&bad).await.err();
        assert!(matches!(e, Some(StoreError::BadCursor)), "{e:?}");
        let e = s.list_notifications(&NotificationFilter::default(), &bad).await.err();
        assert!(matches!(e, Some(StoreError::BadCursor)), "{e:?}");
    }
}

// What the decider reads.

fn wf_run(
    repo_name: &str,
    id: i64,
    workflow: i64,
    branch: &str,
    status: &str,
    conclusion: Option<&str>,
    created: i64,
) -> WorkflowRun {
    WorkflowRun {
        repo: repo(repo_name),
        id,
        name: Some("CI".into()),
        workflow_id: Some(workflow),
        head_branch: Some(branch.into()),
        head_sha: Some(format!("sha{id}")),
        event: Some("push".into()),
        status: RunStatus::parse(status),
        conclusion: conclusion.map(Into::into),
        run_number: Some(id),
        run_attempt: Some(1),
        actor: Some("alice".into()),
        created_at: t(created),
        run_started_at: Some(t(created)),
        updated_at: t(created + 5),
    }
}

async fn transition_facts_read_what_the_store_applied(b: &dyn Backend) {
    // GIVEN, applied the usual way: branches main (head b2 after a1) and gone (deleted);
    // runs of workflow 1 on main: success at 0, failure at 10, success at 20 (id 3), one in progress at 15;
    // a failure at 12 of workflow 2 and one at 13 of workflow 1 on another branch and another repository;
    // a team with alice (bob added, then removed)
    let s = b.store().await;
    let branch = |name: &str, sha: Option<&str>, deleted: bool, at: i64| {
        Change::Branch(Branch {
            repo: repo("acme/api"),
            name: name.into(),
            head_sha: sha.map(Into::into),
            deleted,
            version: t(at),
        })
    };
    let member = |login: &str, present: bool, at: i64| Change::TeamMember {
        org: "acme".into(),
        team_slug: "core".into(),
        member: Membership { login: login.into(), role: None, present, version: t(at) },
    };
    let runs = [
        wf_run("acme/api", 1, 1, "main", "completed", Some("success"), 0),
        wf_run("acme/api", 2, 1, "main", "completed", Some("failure"), 10),
        wf_run("acme/api", 3, 1, "main", "completed", Some("success"), 20),
        wf_run("acme/api", 4, 1, "main", "in_progress", None, 15),
        wf_run("acme/api", 5, 2, "main", "completed", Some("cancelled"), 12),
        wf_run("acme/api", 6, 1, "dev", "completed", Some("cancelled"), 13),
        wf_run("acme/web", 7, 1, "main", "completed", Some("cancelled"), 14),
    ];
    let mut changes = vec![
        branch("main", Some("a1"), false, 0),
        branch("main", Some("b2"), false, 1),
        branch("gone", Some("c3"), false, 0),
        branch("gone", None, true, 2),
        member("alice", true, 0),
        member("bob", true, 0),
        member("bob", false, 1),
    ];
    changes.extend(runs.iter().cloned().map(Change::WorkflowRun));
    s.apply_changes(&changes).await.unwrap();
    // WHEN a branch's head is asked for THEN the newest one; a deleted or unknown branch has none
    assert_eq!(s.branch_head(&repo("acme/api"), "main").await.unwrap().as_deref(), Some("b2"));
    assert_eq!(s.branch_head(&repo("acme/api"), "gone").await.unwrap(), None);
    assert_eq!(s.branch_head(&repo("acme/api"), "nope").await.unwrap(), None);
    assert_eq!(s.branch_head(&repo("acme/web"), "main").await.unwrap(), None);
    // WHEN the previous conclusion of a run is asked for THEN that of the newest completed run
    // of its workflow on its branch and repository created before it
    let previous = async |r: &WorkflowRun| s.previous_conclusion(r).await.unwrap();
    assert_eq!(previous(&runs[2]).await.as_deref(), Some("failure"), "run 3: run 2, not the unfinished 4");
    assert_eq!(previous(&runs[1]).await.as_deref(), Some("success"));
    assert_eq!(previous(&runs[0]).await, None, "the first run has none");
    let next = wf_run("acme/api", 8, 1, "main", "completed", Some("failure"), 30);
    assert_eq!(previous(&next).await.as_deref(), Some("success"), "a run not yet stored: run 3");
    // AND the same run asked again (a redelivery of a completed run) is not its own previous
    let same_time = WorkflowRun { id: 9, ..runs[2].clone() };
    assert_eq!(previous(&runs[2]).await.as_deref(), Some("failure"));
    assert_eq!(previous(&same_time).await.as_deref(), Some("failure"), "created with run 3, not after it");
    assert_eq!(previous(&runs[5]).await, None, "another branch");
    assert_eq!(previous(&runs[4]).await, None, "another workflow");
    assert_eq!(previous(&runs[6]).await, None, "another repository");
    // WHEN team membership is asked for THEN present members only
    assert!(s.is_team_member("acme", "core", "alice").await.unwrap());
    assert!(!s.is_team_member("acme", "core", "bob").await.unwrap());
    assert!(!s.is_team_member("acme", "other", "alice").await.unwrap());
    assert!(!s.is_team_member("other", "core", "alice").await.unwrap());
}
