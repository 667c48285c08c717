//! The integrity-check function end to end: a real-shaped EventBridge
//! scheduled event; GitHub is the fake (a ground-truth organisation), the
//! store, the queue and the token parameter are on moto.

use std::collections::{BTreeSet, HashMap};

use aws_config::SdkConfig;
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use octoscope::adapters::aws::dynamodb::create_table;
use octoscope::adapters::aws::sqs::GapMessage;
use octoscope::config::aws::IntegrityConfig;
use octoscope::domain::{GapKind, Target};
use octoscope_fakehub::{FakeHub, OrgSpec};
use octoscope_integrity_check::{Clients, handle, service};
use octoscope_testkit::moto::{MotoServer, secure_parameter, unique};

const SCHEDULED: &str = include_str!("fixtures/eventbridge-scheduled.json");

async fn aws() -> SdkConfig {
    MotoServer::shared().sdk_config().await
}

/// Every message on the queue (received, not deleted: they stay in flight).
async fn drain(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<GapMessage> {
    let mut all = Vec::new();
    loop {
        let out = sqs.receive_message().queue_url(url).max_number_of_messages(10).send().await.unwrap();
        if out.messages().is_empty() {
            return all;
        }
        all.extend(out.messages().iter().map(|m| GapMessage::parse(m.body().unwrap()).unwrap()));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_scheduled_check_of_an_empty_store_queues_one_gap_message_per_difference_once() {
    // GIVEN a ground-truth organisation on the fake GitHub, an empty table, a gap queue, a token parameter
    let hub =
        FakeHub::start(OrgSpec { repos: 3, pulls: 20, teams: 2, members: 6, ..OrgSpec::default() }).await.unwrap();
    let (org, repos) = {
        let o = hub.org();
        (o.login.clone(), o.repos.iter().map(|r| r.full_name()).collect::<Vec<_>>())
    };
    let sdk = aws().await;
    let table = unique("octoscope");
    create_table(&aws_sdk_dynamodb::Client::new(&sdk), &table).await.unwrap();
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let queue_url = sqs.create_queue().queue_name(unique("gaps")).send().await.unwrap().queue_url().unwrap().to_owned();
    let param = secure_parameter(&sdk, "github-token", hub.token()).await.unwrap();
    let env: HashMap<&str, String> = HashMap::from([
        ("OCTOSCOPE_TABLE", table),
        ("OCTOSCOPE_GAP_QUEUE_URL", queue_url.clone()),
        ("GITHUB_TOKEN_PARAM", param),
        ("GITHUB_API_URL", hub.url.clone()),
        ("OCTOSCOPE_ORGS", org.clone()),
        ("OCTOSCOPE_REPOS", repos.join(",")),
    ]);
    let env = move |k: &str| env.get(k).cloned();
    let config = IntegrityConfig::load(&env).unwrap();
    let check = service(&config, &env, Clients::new(&sdk)).await.unwrap();
    let event: EventBridgeEvent = serde_json::from_str(SCHEDULED).unwrap();

    // WHEN the schedule fires
    let summary = handle(&check, event.clone()).await.unwrap();

    // THEN every repository and the organisation were compared, and each difference is one message
    assert_eq!((summary.repos_compared, summary.orgs_compared), (3, 1), "{summary:?}");
    let messages = drain(&sqs, &queue_url).await;
    assert_eq!(messages.len(), summary.gaps, "{summary:?}");
    let queued: BTreeSet<(String, GapKind)> = messages.iter().map(|m| (m.gap.target.to_string(), m.gap.kind)).collect();
    for repo in &repos {
        let target = Target::Repo(octoscope::domain::RepoName::parse(repo).unwrap()).to_string();
        assert!(queued.contains(&(target, GapKind::Pulls)), "{queued:?}");
    }
    assert!(queued.contains(&(Target::Org(org).to_string(), GapKind::Teams)), "{queued:?}");

    // WHEN it fires again before the dispatcher took them THEN the gaps are found again but not queued twice
    let again = handle(&check, event).await.unwrap();
    assert_eq!(again.gaps, summary.gaps);
    assert!(drain(&sqs, &queue_url).await.is_empty(), "pending gaps are not sent twice");
}

#[tokio::test(flavor = "multi_thread")]
async fn with_a_search_index_the_check_reindexes_what_the_index_lacks_then_waits_its_interval() {
    use octoscope::adapters::aws::dynamodb::DynamoStore;
    use octoscope::adapters::opensearch::OpenSearchIndex;
    use octoscope::domain::*;
    use octoscope::ports::{ChangeSink, PageRequest, SearchIndex};

    // GIVEN a table holding pull requests no indexer ever saw, an empty search index, and GitHub
    let hub = FakeHub::start(OrgSpec { repos: 1, pulls: 2, teams: 1, members: 2, ..OrgSpec::default() }).await.unwrap();
    let sdk = aws().await;
    let table = unique("octoscope");
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    create_table(&dynamodb, &table).await.unwrap();
    let at = chrono::DateTime::parse_from_rfc3339("2026-10-01T09:00:00Z").unwrap().to_utc();
    let pulls: Vec<Change> = (1..=3u64)
        .map(|n| {
            Change::pull_request(PullRequest {
                repo: RepoName::parse("acme/api").unwrap(),
                number: n,
                id: Some(n as i64),
                title: format!("Speed up the parser, part {n}"),
                state: PrState::Open,
                draft: false,
                author: Some("alice".into()),
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
                base_ref: None,
                head_ref: None,
                head_sha: None,
                body: None,
            })
        })
        .collect();
    DynamoStore::new(dynamodb, &table).apply_changes(&pulls).await.unwrap();
    let osmem = octoscope_testkit::osmem::OsmemServer::shared();
    let name = unique("octoscope-search");
    let index = OpenSearchIndex::new(&osmem.url, &name).unwrap().refreshing();
    index.ensure_index().await.unwrap();
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let queue_url = sqs.create_queue().queue_name(unique("gaps")).send().await.unwrap().queue_url().unwrap().to_owned();
    let param = secure_parameter(&sdk, "github-token", hub.token()).await.unwrap();
    let env: HashMap<&str, String> = HashMap::from([
        ("OCTOSCOPE_TABLE", table),
        ("OCTOSCOPE_GAP_QUEUE_URL", queue_url),
        ("GITHUB_TOKEN_PARAM", param),
        ("GITHUB_API_URL", hub.url.clone()),
        ("OCTOSCOPE_SEARCH_ENDPOINT", osmem.url.clone()),
        ("OCTOSCOPE_SEARCH_INDEX", name),
    ]);
    let env = move |k: &str| env.get(k).cloned();
    let config = IntegrityConfig::load(&env).unwrap();
    let check = service(&config, &env, Clients::new(&sdk)).await.unwrap();
    let event: EventBridgeEvent = serde_json::from_str(SCHEDULED).unwrap();

    // WHEN the schedule fires THEN the one scope the index lacks drifts, and is reindexed
    let summary = handle(&check, event.clone()).await.unwrap();
    assert_eq!(summary.search_drift, Some(1), "{summary:?}");
    let found =
        index.search(&SearchQuery::parse("parser repo:acme/api").unwrap(), &PageRequest::first(10)).await.unwrap();
    assert_eq!(found.total, 3);

    // WHEN it fires again within the interval THEN the index is not compared again (a Scan saved)
    let again = handle(&check, event).await.unwrap();
    assert_eq!(again.search_drift, None, "{again:?}");
}

/// A rule kept as the api function keeps it, created `ago` before now.
async fn rule(
    store: &octoscope::adapters::aws::dynamodb::DynamoStore,
    event: octoscope::domain::RuleEvent,
    ago: chrono::TimeDelta,
) -> octoscope::domain::RuleId {
    use octoscope::domain::*;
    use octoscope::ports::RuleStore;
    let at = chrono::Utc::now() - ago;
    let rule = Rule {
        id: RuleId::generate(),
        event,
        filters: RuleFilters::default(),
        target: TargetSpec::Webhook { url: "https://receiver.invalid/hook".into() },
        secrets: TargetSecrets::generate(),
        created_at: at,
        updated_at: at,
        disabled: None,
    };
    store.put_rule(&rule).await.unwrap();
    rule.id
}

#[tokio::test(flavor = "multi_thread")]
async fn a_check_that_finds_gaps_decides_a_pending_notification_for_a_gaps_rule_and_one_per_failed_resync() {
    use octoscope::adapters::aws::dynamodb::DynamoStore;
    use octoscope::domain::*;
    use octoscope::ports::{JobStore, NotificationLog, PageRequest};
    // GIVEN an organisation on the fake GitHub, an empty table (so the check finds gaps), and rules on
    // integrity.gaps_found and resync.failed, and a resync job the batch job recorded failed
    let hub = FakeHub::start(OrgSpec { repos: 1, pulls: 3, teams: 0, members: 2, ..OrgSpec::default() }).await.unwrap();
    let (org, repos) = {
        let o = hub.org();
        (o.login.clone(), o.repos.iter().map(|r| r.full_name()).collect::<Vec<_>>())
    };
    let sdk = aws().await;
    let table = unique("octoscope");
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    create_table(&client, &table).await.unwrap();
    let store = DynamoStore::new(client, &table);
    let gaps_rule = rule(&store, RuleEvent::IntegrityGapsFound, chrono::TimeDelta::hours(1)).await;
    let failed_rule = rule(&store, RuleEvent::ResyncFailed, chrono::TimeDelta::hours(1)).await;
    let target = Target::Repo(RepoName::parse(&repos[0]).unwrap());
    let job = ResyncJob { id: unique("resync"), target, kinds: vec![GapKind::Pulls], watermark: None };
    let now = chrono::Utc::now();
    store.save_job(&JobRecord::queued(&job, now).failed(now, "GitHub answered 401")).await.unwrap();
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let queue_url = sqs.create_queue().queue_name(unique("gaps")).send().await.unwrap().queue_url().unwrap().to_owned();
    let param = secure_parameter(&sdk, "github-token", hub.token()).await.unwrap();
    let env: HashMap<&str, String> = HashMap::from([
        ("OCTOSCOPE_TABLE", table),
        ("OCTOSCOPE_GAP_QUEUE_URL", queue_url.clone()),
        ("GITHUB_TOKEN_PARAM", param),
        ("GITHUB_API_URL", hub.url.clone()),
        ("OCTOSCOPE_ORGS", org),
        ("OCTOSCOPE_REPOS", repos.join(",")),
    ]);
    let env = move |k: &str| env.get(k).cloned();
    let config = IntegrityConfig::load(&env).unwrap();
    let check = service(&config, &env, Clients::new(&sdk)).await.unwrap();
    let event: EventBridgeEvent = serde_json::from_str(SCHEDULED).unwrap();

    // WHEN the schedule fires
    let summary = handle(&check, event.clone()).await.unwrap();

    // THEN the check found gaps, and the gaps rule has one pending notification naming the check
    assert!(summary.gaps > 0, "{summary:?}");
    assert_eq!(summary.notifications, 2, "{summary:?}");
    let of = |rule: &RuleId| NotificationFilter { rule: Some(rule.clone()), status: None };
    let notes = store.list_notifications(&of(&gaps_rule), &PageRequest::first(10)).await.unwrap().items;
    assert_eq!(notes.len(), 1, "{notes:#?}");
    assert_eq!(notes[0].status, NotificationStatus::Pending);
    assert_eq!(notes[0].event, RuleEvent::IntegrityGapsFound);
    assert_eq!(notes[0].transition_key, format!("integrity.gaps_found:{}", summary.check_id));
    assert_eq!(notes[0].data["gaps"], summary.gaps);
    // AND the failed resync job is announced once
    let notes = store.list_notifications(&of(&failed_rule), &PageRequest::first(10)).await.unwrap().items;
    assert_eq!(notes.len(), 1, "{notes:#?}");
    assert_eq!(notes[0].transition_key, format!("resync.failed:{}", job.id));
    assert_eq!(notes[0].status, NotificationStatus::Pending);

    // WHEN the schedule fires again THEN its own check is announced, the failed job not a second time
    let again = handle(&check, event).await.unwrap();
    assert_eq!(again.notifications, 1, "{again:?}");
    let notes = store.list_notifications(&of(&failed_rule), &PageRequest::first(10)).await.unwrap().items;
    assert_eq!(notes.len(), 1, "{notes:#?}");
}
