//! The batch job decides what its resync finds: a branch move whose webhook
//! was lost is a `late` notification in the table's outbox (`NOTE#` items)
//! after the job, as `octoscope check` decides it on one machine.

use std::sync::Arc;

use octoscope::adapters::aws::dynamodb::{DynamoStore, create_table};
use octoscope::adapters::clock::SystemClock;
use octoscope::adapters::github::{GitHubClient, GitHubConfig};
use octoscope::config::GitHubCredentials;
use octoscope::domain::*;
use octoscope::ports::*;
use octoscope::services::notify::decide::Decider;
use octoscope_batch_job::{Outcome, run_deciding};
use octoscope_fakehub::{Commit, FakeHub, OrgSpec};
use octoscope_testkit::moto::{MotoServer, unique};

/// A job as the dispatcher records it (and its lock, taken for the job).
async fn queued(store: &dyn Store, target: &Target, kinds: Vec<GapKind>) -> String {
    let id = format!("resync-{}-{target}", unique("late"));
    let now = chrono::Utc::now();
    let job = ResyncJob { id: id.clone(), target: target.clone(), kinds, watermark: None };
    store.save_job(&JobRecord::queued(&job, now)).await.unwrap();
    assert!(store.try_lock(&target.to_string(), &id, now, chrono::TimeDelta::minutes(15)).await.unwrap());
    id
}

/// The rule's notifications, newest first.
async fn notes(store: &DynamoStore, rule: &RuleId) -> Vec<Notification> {
    let filter = NotificationFilter { rule: Some(rule.clone()), status: None };
    store.list_notifications(&filter, &PageRequest::first(10)).await.unwrap().items
}

#[tokio::test(flavor = "multi_thread")]
async fn a_branch_move_found_by_the_resync_is_a_late_pending_notification_once() {
    // GIVEN a repository on the fake GitHub, a table, and a rule on its default branch's moves (made an hour ago)
    let hub = FakeHub::start(OrgSpec { repos: 1, pulls: 2, teams: 0, members: 2, runs: 0, ..OrgSpec::default() })
        .await
        .unwrap();
    let (repo, branch, old_head) = {
        let org = hub.org();
        let r = &org.repos[0];
        (r.full_name(), r.default_branch.clone(), r.branches[0].head_sha.clone())
    };
    let sdk = MotoServer::shared().sdk_config().await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let table = unique("octoscope");
    create_table(&client, &table).await.unwrap();
    let dynamo = Arc::new(DynamoStore::new(client, table));
    let store: Arc<dyn Store> = dynamo.clone();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let created = chrono::Utc::now() - chrono::TimeDelta::hours(1);
    let rule = Rule {
        id: RuleId::generate(),
        event: RuleEvent::BranchMoved,
        filters: RuleFilters {
            repo: Some(RepoName::parse(&repo).unwrap()),
            branch: Some(branch.clone()),
            ..RuleFilters::default()
        },
        target: TargetSpec::Webhook { url: "https://receiver.invalid/hook".into() },
        secrets: TargetSecrets::generate(),
        created_at: created,
        updated_at: created,
        disabled: None,
    };
    dynamo.put_rule(&rule).await.unwrap();
    let decider = Arc::new(Decider::new(dynamo.clone(), dynamo.clone(), dynamo.clone(), clock.clone()));
    let github = Arc::new(
        GitHubClient::new(GitHubConfig::new(hub.url.clone(), GitHubCredentials::Token(hub.token().to_owned())))
            .await
            .unwrap(),
    );
    let target = Target::Repo(RepoName::parse(&repo).unwrap());

    // AND the branches as a first resync found them: a branch the store never had is no news
    let first = queued(store.as_ref(), &target, vec![GapKind::Branches]).await;
    let done = run_deciding(store.clone(), github.clone(), clock.clone(), &first, Some(decider.clone())).await;
    assert!(matches!(done, Ok(Outcome::Done(_))), "{done:?}");
    assert!(notes(&dynamo, &rule.id).await.is_empty(), "{:#?}", notes(&dynamo, &rule.id).await);

    // WHEN a push lands on GitHub, its webhook never arrives, and a resync job of the branches runs
    let new_head = "feedface".repeat(5);
    let now = chrono::Utc::now();
    hub.update(|org| {
        let r = &mut org.repos[0];
        r.commits.push(Commit {
            sha: new_head.clone(),
            message: "Hotfix pushed while webhooks were down".into(),
            author_name: "Developer".into(),
            author_login: None,
            committed_at: now,
        });
        r.branches[0].head_sha = new_head.clone();
        r.branches[0].pushed_at = now;
        r.pushed_at = now;
    });
    let job = queued(store.as_ref(), &target, vec![GapKind::Branches]).await;
    let done = run_deciding(store.clone(), github.clone(), clock.clone(), &job, Some(decider.clone())).await;
    assert!(matches!(done, Ok(Outcome::Done(_))), "{done:?}");

    // THEN the move is one pending notification, marked late, from the head the store had to the new one
    let found = notes(&dynamo, &rule.id).await;
    assert_eq!(found.len(), 1, "{found:#?}");
    let note = &found[0];
    assert_eq!((note.event, note.status, note.late), (RuleEvent::BranchMoved, NotificationStatus::Pending, true));
    assert_eq!(note.data["after"], new_head.as_str(), "{note:#?}");
    assert_eq!(note.data["before"], old_head.as_str(), "{note:#?}");

    // AND a job that finds it again (a retried task) decides nothing new
    let again = queued(store.as_ref(), &target, vec![GapKind::Branches]).await;
    let done = run_deciding(store.clone(), github, clock, &again, Some(decider)).await;
    assert!(matches!(done, Ok(Outcome::Done(_))), "{done:?}");
    assert_eq!(notes(&dynamo, &rule.id).await.len(), 1);
}
