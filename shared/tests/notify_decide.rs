//! Deciding notifications on SQLite, through the real ingest path: exactly
//! one notification per rule and transition whether a delivery arrives
//! twice, is redelivered, or the resync finds the same transition later;
//! none from `replay`; late transitions only within the window; `broke` and
//! `recovered` from the previous run on the branch.

use std::sync::Arc;

use chrono::{TimeDelta, Utc};
use octoscope::adapters::clock::SystemClock;
use octoscope::adapters::sqlite::{SqliteArchive, SqliteStore};
use octoscope::domain::*;
use octoscope::ports::{ChangeSink, NotificationLog, PageRequest, ReadModel, RuleStore};
use octoscope::services::notify::decide::{CachedRules, Decider, DecidingLedger, DecidingSink};
use octoscope::services::{IngestService, Ingested, WebhookRequest, replay};
use octoscope::webhook::{WebhookSecrets, sign};
use serde_json::{Value, json};

const SECRET: &str = "notify-decide-secret";

fn fixture(event: &str, name: &str) -> Value {
    let path = format!("{}/tests/fixtures/github-webhooks/api.github.com/{event}/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

/// An enabled rule sending to a webhook, made at `at`.
fn webhook_rule(event: RuleEvent, filters: RuleFilters, at: Timestamp) -> Rule {
    Rule {
        id: RuleId::generate(),
        event,
        filters,
        target: TargetSpec::Webhook { url: "https://receiver.example/hook".into() },
        secrets: TargetSecrets::generate(),
        created_at: at,
        updated_at: at,
        disabled: None,
    }
}

struct World {
    _dir: tempfile::TempDir,
    store: Arc<SqliteStore>,
    archive: Arc<SqliteArchive>,
    decider: Arc<Decider>,
    ingest: IngestService,
}

impl World {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(&dir.path().join("octoscope.db")).unwrap());
        let archive = Arc::new(SqliteArchive::open(&dir.path().join("archive.db")).unwrap());
        let decider = Arc::new(Decider::new(store.clone(), store.clone(), store.clone(), Arc::new(SystemClock)));
        let ledger = Arc::new(DecidingLedger::new(store.clone(), decider.clone()));
        let ingest =
            IngestService::new(ledger, archive.clone(), Arc::new(SystemClock), WebhookSecrets::parse(SECRET).unwrap());
        Self { _dir: dir, store, archive, decider, ingest }
    }

    async fn rule(&self, event: RuleEvent, filters: RuleFilters) -> RuleId {
        let rule = webhook_rule(event, filters, Utc::now() - TimeDelta::seconds(1));
        self.store.put_rule(&rule).await.unwrap();
        rule.id
    }

    async fn deliver(&self, event: &str, delivery: &str, body: &Value) -> Ingested {
        let body = serde_json::to_vec(body).unwrap();
        let signature = sign(SECRET, &body);
        self.ingest
            .ingest(WebhookRequest {
                event: Some(event),
                delivery: Some(delivery),
                hook_id: Some("1"),
                signature: Some(signature.as_bytes()),
                content_type: Some("application/json"),
                body: &body,
            })
            .await
            .unwrap()
    }

    async fn notes(&self) -> Vec<Notification> {
        let page = self.store.list_notifications(&NotificationFilter::default(), &PageRequest::first(500)).await;
        page.unwrap().items
    }
}

fn merged_pull(number: u64, merged_at: &str) -> Value {
    let mut p = fixture("pull_request", "closed.payload.json");
    p["number"] = json!(number);
    p["pull_request"]["number"] = json!(number);
    p["pull_request"]["merged"] = json!(true);
    p["pull_request"]["merged_at"] = json!(merged_at);
    p["pull_request"]["closed_at"] = json!(merged_at);
    p["pull_request"]["updated_at"] = json!(merged_at);
    p
}

#[tokio::test]
async fn one_notification_per_rule_and_merge_however_often_it_is_told() {
    // GIVEN a rule on merges into Codertocat/Hello-World, and one on another repository
    let w = World::new();
    let repo = RepoName::parse("Codertocat/Hello-World").unwrap();
    let rule =
        w.rule(RuleEvent::PullRequestMerged, RuleFilters { repo: Some(repo.clone()), ..Default::default() }).await;
    let other = RepoName::parse("acme/other").unwrap();
    w.rule(RuleEvent::PullRequestMerged, RuleFilters { repo: Some(other), ..Default::default() }).await;
    // (GitHub's example payload is from 2019: a webhook says it happens now, whatever its timestamps)
    let body = merged_pull(2, "2019-05-15T15:20:33Z");

    // WHEN the merge arrives, THEN one notification for the matching rule
    assert!(matches!(w.deliver("pull_request", "d-1", &body).await, Ingested::Stored { .. }));
    let notes = w.notes().await;
    assert_eq!(notes.len(), 1, "{notes:?}");
    let n = &notes[0];
    assert_eq!((n.rule_id.clone(), n.event, n.late), (rule.clone(), RuleEvent::PullRequestMerged, false));
    assert_eq!(n.transition_key, "pull_request.merged:Codertocat/Hello-World#2");
    assert_eq!(n.data["url"], "https://github.com/Codertocat/Hello-World/pull/2");
    assert_eq!(n.status, NotificationStatus::Pending);

    // AND the same delivery again, a redelivery under a new id, and the resync finding the merge: still one
    assert!(matches!(w.deliver("pull_request", "d-1", &body).await, Ingested::Duplicate(_)));
    assert!(matches!(w.deliver("pull_request", "d-2", &body).await, Ingested::Stored { .. }));
    let sink = DecidingSink::new(w.store.clone(), w.decider.clone());
    let now = Utc::now();
    let mut pull = w.store.get_pull(&repo, 2).await.unwrap().unwrap().pull;
    pull.merged_at = Some(now);
    sink.apply_changes(&[Change::pull_request(pull)]).await.unwrap();
    assert_eq!(w.notes().await.len(), 1);

    // AND a `labeled` event of another merged pull request is not news of its merge
    let mut labeled = merged_pull(3, "2019-05-15T15:20:33Z");
    labeled["action"] = json!("labeled");
    w.deliver("pull_request", "d-3", &labeled).await;
    assert_eq!(w.notes().await.len(), 1);

    // AND replay (into a store that has the rules) decides nothing
    let report = replay::replay(w.store.clone(), w.archive.clone(), |_| {}).await.unwrap();
    assert_eq!(report.deliveries, 3);
    assert_eq!(w.notes().await.len(), 1);
}

#[tokio::test]
async fn late_transitions_fire_within_the_window_after_the_rule_and_not_for_skip_late() {
    // GIVEN two merge rules, one of them skipping late transitions
    let w = World::new();
    let keep = w.rule(RuleEvent::PullRequestMerged, RuleFilters::default()).await;
    w.rule(RuleEvent::PullRequestMerged, RuleFilters { skip_late: true, ..Default::default() }).await;
    let sink = DecidingSink::new(w.store.clone(), w.decider.clone());
    let repo = RepoName::parse("acme/api").unwrap();
    let pull = |number: u64, merged_at: Timestamp| PullRequest {
        repo: repo.clone(),
        number,
        id: None,
        title: format!("pull {number}"),
        state: PrState::Closed,
        draft: false,
        author: Some("dev".into()),
        created_at: merged_at - TimeDelta::hours(1),
        updated_at: merged_at,
        closed_at: Some(merged_at),
        merged_at: Some(merged_at),
        additions: None,
        deletions: None,
        changed_files: None,
        commits: None,
        labels: vec![],
        requested_reviewers: vec![],
        requested_teams: vec![],
        base_ref: Some("main".into()),
        head_ref: Some("f".into()),
        head_sha: None,
        body: None,
    };
    // WHEN the resync finds a merge made just now, one made 3 days ago, and one before the rules existed
    let now = Utc::now();
    sink.apply_changes(&[
        Change::pull_request(pull(1, now)),
        Change::pull_request(pull(2, now - TimeDelta::days(3))),
        Change::pull_request(pull(3, now - TimeDelta::minutes(5))),
    ])
    .await
    .unwrap();
    // THEN only the fresh one fires, marked late, and only for the rule that takes late ones
    let notes = w.notes().await;
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!((notes[0].rule_id.clone(), notes[0].late), (keep, true));
    assert_eq!(notes[0].transition_key, "pull_request.merged:acme/api#1");
}

fn run(id: i64, number: i64, conclusion: &str, minutes_ago: i64) -> Value {
    let mut p = fixture("workflow_run", "completed.payload.json");
    let at = (Utc::now() - TimeDelta::minutes(minutes_ago)).to_rfc3339();
    let r = &mut p["workflow_run"];
    r["id"] = json!(id);
    r["run_number"] = json!(number);
    r["conclusion"] = json!(conclusion);
    r["created_at"] = json!(at);
    r["updated_at"] = json!(at);
    r["run_started_at"] = json!(at);
    p
}

#[tokio::test]
async fn a_failed_run_after_a_success_broke_the_branch_and_the_next_success_recovers_it() {
    // GIVEN rules on failed and recovered runs of `master`, and one on `release/*`
    let w = World::new();
    let on = |b: &str| RuleFilters { branch: Some(b.into()), ..Default::default() };
    w.rule(RuleEvent::WorkflowRunFailed, on("master")).await;
    w.rule(RuleEvent::WorkflowRunRecovered, on("master")).await;
    w.rule(RuleEvent::WorkflowRunFailed, on("release/*")).await;
    // WHEN a run succeeds, the next fails, the next succeeds (and the last arrives twice)
    w.deliver("workflow_run", "r-1", &run(101, 1, "success", 30)).await;
    assert!(w.notes().await.is_empty(), "a first success recovers nothing");
    w.deliver("workflow_run", "r-2", &run(102, 2, "failure", 20)).await;
    w.deliver("workflow_run", "r-3", &run(103, 3, "success", 10)).await;
    w.deliver("workflow_run", "r-4", &run(103, 3, "success", 10)).await;
    // THEN one failure, `broke`, and one recovery
    let mut notes = w.notes().await;
    notes.sort_by_key(|n| n.event.as_str());
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert_eq!(notes[0].event, RuleEvent::WorkflowRunFailed);
    assert_eq!(notes[0].data["broke"], true);
    assert_eq!(notes[0].data["previous_conclusion"], "success");
    assert_eq!(notes[1].event, RuleEvent::WorkflowRunRecovered);
    assert_eq!(notes[1].data["previous_conclusion"], "failure");
    // AND a failure after a failure has not `broke` the branch
    w.deliver("workflow_run", "r-5", &run(104, 4, "failure", 5)).await;
    w.deliver("workflow_run", "r-6", &run(105, 5, "failure", 1)).await;
    let fails: Vec<_> = w.notes().await.into_iter().filter(|n| n.data["run_id"] == 105).collect();
    assert_eq!(fails.len(), 1);
    assert_eq!(fails[0].data["broke"], false);
}

#[tokio::test]
async fn a_push_moves_its_branch_with_before_after_and_commits() {
    // GIVEN a rule on `main`
    let w = World::new();
    w.rule(RuleEvent::BranchMoved, RuleFilters { branch: Some("main".into()), ..Default::default() }).await;
    let mut push = fixture("push", "with-new-branch.payload.json");
    push["ref"] = json!("refs/heads/main");
    let after = push["after"].as_str().unwrap().to_owned();
    let repo = push["repository"]["full_name"].as_str().unwrap().to_owned();
    // WHEN the push arrives, and a second push moves it again
    w.deliver("push", "p-1", &push).await;
    let mut next = push.clone();
    next["before"] = json!(after);
    next["after"] = json!("1111111111111111111111111111111111111111");
    next["head_commit"]["id"] = json!("1111111111111111111111111111111111111111");
    next["commits"] = json!([next["head_commit"].clone()]);
    next["repository"]["pushed_at"] = json!(push["repository"]["pushed_at"].as_i64().map(|t| t + 60));
    w.deliver("push", "p-2", &next).await;
    // THEN two moves; the second says where from (the head the store held)
    let mut notes = w.notes().await;
    notes.sort_by_key(|n| n.created_at);
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert_eq!(notes[1].transition_key, format!("branch.moved:{repo}:main:1111111111111111111111111111111111111111"));
    assert_eq!(notes[1].data["before"], json!(after));
    assert_eq!(notes[1].data["branch"], "main");
    assert_eq!(notes[1].data["commits"].as_array().map(Vec::len), Some(1));
}

fn open_pull(repo: &RepoName, number: u64, hours_ago: i64, draft: bool) -> PullRequest {
    let at = Utc::now() - TimeDelta::hours(hours_ago);
    PullRequest {
        repo: repo.clone(),
        number,
        id: None,
        title: format!("pull {number}"),
        state: PrState::Open,
        draft,
        author: Some("author".into()),
        created_at: at,
        updated_at: at,
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
        head_ref: Some(format!("f{number}")),
        head_sha: None,
        body: None,
    }
}

#[tokio::test]
async fn scheduled_rules_fire_once_per_breach() {
    // GIVEN pickup rules at 24 h (the default) and 48 h, and a queue-time rule at 60 s for `linux`
    let w = World::new();
    let day = w.rule(RuleEvent::ReviewPickupBreached, RuleFilters::default()).await;
    let two = w.rule(RuleEvent::ReviewPickupBreached, RuleFilters { hours: Some(48), ..Default::default() }).await;
    let queue = w
        .rule(
            RuleEvent::CiQueueTimeRegressed,
            RuleFilters { threshold_seconds: Some(60), label: Some("linux".into()), ..Default::default() },
        )
        .await;
    let repo = RepoName::parse("acme/api").unwrap();
    // AND open pull requests: 30 h old without review, 30 h old draft, 30 h old reviewed by someone
    // else, 3 h old, 50 h old without review
    let reviewed = open_pull(&repo, 3, 30, false);
    let mut changes = vec![
        Change::pull_request(open_pull(&repo, 1, 30, false)),
        Change::pull_request(open_pull(&repo, 2, 30, true)),
        Change::pull_request(reviewed.clone()),
        Change::pull_request(open_pull(&repo, 4, 3, false)),
        Change::pull_request(open_pull(&repo, 5, 50, false)),
        Change::Review(Review {
            repo: repo.clone(),
            pr_number: 3,
            id: 33,
            author: Some("reviewer".into()),
            state: ReviewState::Commented,
            submitted_at: Some(reviewed.created_at + TimeDelta::hours(1)),
            commit_id: None,
            body: None,
        }),
    ];
    // AND jobs of the last hour: `linux` queued 10, 200 and 300 s; `macos` queued 500 s
    for (id, label, queued) in [(1, "linux", 10), (2, "linux", 200), (3, "linux", 300), (4, "macos", 500)] {
        let created = Utc::now() - TimeDelta::minutes(30);
        changes.push(Change::WorkflowJob(WorkflowJob {
            repo: repo.clone(),
            id,
            run_id: 9,
            name: format!("job {id}"),
            workflow_name: Some("ci".into()),
            head_branch: Some("main".into()),
            status: RunStatus::Completed,
            conclusion: Some("success".into()),
            labels: vec![label.into()],
            runner_name: None,
            runner_group: None,
            os: None,
            created_at: Some(created),
            started_at: Some(created + TimeDelta::seconds(queued)),
            completed_at: Some(created + TimeDelta::seconds(queued + 60)),
        }));
    }
    w.store.apply_changes(&changes).await.unwrap();

    // WHEN the scheduled rules are evaluated, twice
    w.decider.evaluate_scheduled(w.store.as_ref(), w.store.as_ref()).await.unwrap();
    w.decider.evaluate_scheduled(w.store.as_ref(), w.store.as_ref()).await.unwrap();

    // THEN #1 and #5 breach the 24 h rule, #5 the 48 h rule, `linux`'s p90 (300 s) the queue rule: once each
    let mut got: Vec<(RuleId, String)> = w.notes().await.into_iter().map(|n| (n.rule_id, n.transition_key)).collect();
    got.sort();
    let mut want = vec![
        (day.clone(), "review.pickup_breached:acme/api#1:24h".to_owned()),
        (day, "review.pickup_breached:acme/api#5:24h".to_owned()),
        (two, "review.pickup_breached:acme/api#5:48h".to_owned()),
    ];
    let hour = Utc::now().format("%Y-%m-%dT%H");
    want.push((queue, format!("ci.queue_time_regressed:linux:{hour}:60s")));
    want.sort();
    assert_eq!(got, want);
}

#[tokio::test]
async fn a_check_with_gaps_and_a_failed_resync_are_announced_once() {
    let w = World::new();
    w.rule(RuleEvent::IntegrityGapsFound, RuleFilters::default()).await;
    w.rule(RuleEvent::ResyncFailed, RuleFilters::default()).await;
    let now = Utc::now();
    let mut run = CheckRun {
        id: "check-1".into(),
        started_at: now,
        finished_at: now,
        repos_compared: 1,
        orgs_compared: 0,
        gaps: vec![Gap {
            target: Target::Repo(RepoName::parse("acme/api").unwrap()),
            kind: GapKind::Pulls,
            watermark: None,
            reason: "3 pull requests differ".into(),
        }],
        redelivered: 0,
        requests: 4,
        requests_by_installation: Default::default(),
        dry_run: false,
        verified: vec![],
        error: None,
        search: None,
    };
    let failed = vec![("job-1".to_owned(), "GitHub answered 502".to_owned())];
    w.decider.integrity_findings(&run, &failed).await.unwrap();
    w.decider.integrity_findings(&run, &failed).await.unwrap();
    // A dry run's gaps are not announced (nothing was repaired yet; the real check will be).
    run.id = "check-2".into();
    run.dry_run = true;
    w.decider.integrity_findings(&run, &[]).await.unwrap();
    let mut keys: Vec<String> = w.notes().await.into_iter().map(|n| n.transition_key).collect();
    keys.sort();
    assert_eq!(keys, ["integrity.gaps_found:check-1", "resync.failed:job-1"]);
}

#[tokio::test]
async fn cached_rules_apply_their_own_writes_at_once_and_others_after_the_ttl() {
    let w = World::new();
    let ttl = std::time::Duration::from_millis(300);
    let cached = CachedRules::new(w.store.clone(), ttl);
    let ids = |rules: Vec<Rule>| rules.into_iter().map(|r| r.id).collect::<Vec<_>>();
    // GIVEN no rule for merges, asked once (the empty answer is now cached)
    assert!(cached.rules_for(RuleEvent::PullRequestMerged).await.unwrap().is_empty());
    // WHEN a rule is written by another writer (the store itself, as `octoscope rules` would)
    let other = w.rule(RuleEvent::PullRequestMerged, RuleFilters::default()).await;
    // THEN the cache does not see it within its TTL, and does after it
    assert!(cached.rules_for(RuleEvent::PullRequestMerged).await.unwrap().is_empty());
    tokio::time::sleep(ttl + std::time::Duration::from_millis(50)).await;
    assert_eq!(ids(cached.rules_for(RuleEvent::PullRequestMerged).await.unwrap()), vec![other.clone()]);
    // WHEN a rule is written through the cache THEN the next question sees it at once
    let mine = webhook_rule(RuleEvent::PullRequestMerged, RuleFilters::default(), Utc::now());
    cached.put_rule(&mine).await.unwrap();
    assert_eq!(
        ids(cached.rules_for(RuleEvent::PullRequestMerged).await.unwrap()),
        vec![other.clone(), mine.id.clone()]
    );
    // and disabling or removing through it takes effect at once too
    cached.disable_rule(&other, "410 Gone").await.unwrap();
    assert_eq!(ids(cached.rules_for(RuleEvent::PullRequestMerged).await.unwrap()), vec![mine.id.clone()]);
    assert!(cached.delete_rule(&mine.id).await.unwrap());
    assert!(cached.rules_for(RuleEvent::PullRequestMerged).await.unwrap().is_empty());
}
