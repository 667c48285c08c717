//! The integrity-check function: on its EventBridge schedule, compare GitHub
//! with the store (batched GraphQL counts, watermarks, branch heads, teams),
//! ask GitHub to redeliver failed webhook deliveries, and send every gap to
//! the SQS gap queue for the dispatcher. With a search index configured, it
//! also compares the index with the table (at most every
//! [`SEARCH_CHECK_INTERVAL`]: a Scan of the table) and reindexes what differs.
//!
//! After each check, notifications (shared/docs/notifications.md): the
//! scheduled rules are evaluated (`review.pickup_breached`,
//! `ci.queue_time_regressed`, over the table's metric rows) and what the
//! check found is announced (`integrity.gaps_found`, and `resync.failed` for
//! the resync jobs recorded failed within the late window), as `serve`'s
//! completeness loop does. They are decided into the table's `NOTE#` items
//! (the outbox: the stream carries them to the notification queue). A
//! failure there is logged and never fails the check.
//!
//! A failed check is an invocation error: EventBridge's asynchronous
//! invocation retries it, and the check is recorded with its error either way.

use std::sync::Arc;

use anyhow::Context as _;
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use octoscope::adapters::aws::dynamodb::DynamoStore;
use octoscope::adapters::aws::sqs::SqsGapQueue;
use octoscope::adapters::clock::SystemClock;
use octoscope::adapters::github::GitHubClient;
use octoscope::adapters::opensearch::{OpenSearchIndex, given_endpoint};
use octoscope::config::NotifyConfig;
use octoscope::config::aws::{IntegrityConfig, SearchConfig, resolve_github};
use octoscope::domain::{CheckRun, JobState};
use octoscope::error::error_chain;
use octoscope::ports::{Clock, JobStore, PageRequest, Store};
use octoscope::services::integrity::IntegrityService;
use octoscope::services::notify::decide::Decider;
use octoscope::services::search_check::{ScannedStore, SearchCheck};
use serde::Serialize;

/// The search index is compared with the table at most this often: each
/// comparison reads every item of the table once (shared/docs/search.md).
pub const SEARCH_CHECK_INTERVAL: chrono::TimeDelta = chrono::TimeDelta::hours(6);

/// The clients the function is built from (built once, at init).
pub struct Clients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub ssm: octoscope::adapters::aws::ssm::SsmClient,
    /// What the search index's requests are signed with.
    pub sdk: aws_config::SdkConfig,
}

impl Clients {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self {
            dynamodb: aws_sdk_dynamodb::Client::new(sdk),
            sqs: aws_sdk_sqs::Client::new(sdk),
            ssm: octoscope::adapters::aws::ssm::SsmClient::new(sdk),
            sdk: sdk.clone(),
        }
    }
}

/// The search index against the table: censuses and repair by a Scan of the
/// table's searchable items, the index's by aggregations.
async fn search_check(
    search: &SearchConfig,
    sdk: &aws_config::SdkConfig,
    store: &Arc<DynamoStore>,
) -> anyhow::Result<SearchCheck> {
    // Given by Terraform (OCTOSCOPE_SEARCH_ENDPOINT): the check links no
    // resolver of a domain's name (aws-sdk-opensearch, for the zip's size).
    let url = given_endpoint(&search.endpoint).context("the search domain's endpoint")?;
    let index = Arc::new(OpenSearchIndex::at(sdk, &url, &search.index).context("the search index")?);
    let scanned = Arc::new(ScannedStore::new(store.clone(), store.clone(), index.clone(), index.clone()));
    Ok(SearchCheck::new(scanned.clone(), index, scanned).with_interval(SEARCH_CHECK_INTERVAL))
}

/// Resync jobs read (newest first) for failures to announce.
pub const FAILED_JOBS_READ: usize = 100;

/// The check and what announces its findings.
pub struct Check {
    pub integrity: IntegrityService,
    pub notify: Notifications,
}

/// The notifications decided after each check, over the table.
pub struct Notifications {
    decider: Arc<Decider>,
    store: Arc<DynamoStore>,
    clock: Arc<dyn Clock>,
}

impl Notifications {
    pub fn new(store: Arc<DynamoStore>, clock: Arc<dyn Clock>, late_window: chrono::TimeDelta) -> Self {
        let decider =
            Decider::new(store.clone(), store.clone(), store.clone(), clock.clone()).with_late_window(late_window);
        Self { decider: Arc::new(decider), store, clock }
    }

    /// Resync jobs recorded `failed` within the late window (a notification's
    /// key names the job: a failure seen by several checks is announced once).
    async fn failed_jobs(&self) -> anyhow::Result<Vec<(String, String)>> {
        let since = self.clock.now() - self.decider.late_window();
        let jobs = self.store.list_jobs(&PageRequest::first(FAILED_JOBS_READ)).await?;
        Ok(jobs
            .items
            .into_iter()
            .filter(|j| j.state == JobState::Failed && j.finished_at.is_some_and(|at| at >= since))
            .map(|j| (j.id, j.error.unwrap_or_default()))
            .collect())
    }

    /// Decide the scheduled rules and the check's findings; how many
    /// notifications were new. Failures are logged, never returned.
    pub async fn after_check(&self, run: Option<&CheckRun>) -> usize {
        let mut decided = 0;
        match self.decider.evaluate_scheduled(self.store.as_ref(), self.store.as_ref()).await {
            Ok(n) => decided += n,
            Err(e) => {
                tracing::warn!(error = %error_chain(&e), "scheduled rules failed; evaluated again after the next check")
            }
        }
        let failed = match self.failed_jobs().await {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "could not read the failed resync jobs");
                Vec::new()
            }
        };
        let none;
        let run = match run {
            Some(r) => r,
            None if failed.is_empty() => return decided,
            // The check failed: the failed jobs are still announced (no gaps to announce).
            None => {
                let now = self.clock.now();
                none = CheckRun {
                    id: String::new(),
                    started_at: now,
                    finished_at: now,
                    repos_compared: 0,
                    orgs_compared: 0,
                    gaps: Vec::new(),
                    redelivered: 0,
                    requests: 0,
                    requests_by_installation: Default::default(),
                    dry_run: true,
                    verified: Vec::new(),
                    error: None,
                    search: None,
                };
                &none
            }
        };
        match self.decider.integrity_findings(run, &failed).await {
            Ok(n) => decided += n,
            Err(e) => tracing::warn!(error = %error_chain(&e), "could not decide the check's notifications"),
        }
        decided
    }
}

/// The check, wired: the store, GitHub (credential read from SSM), the
/// queue, and the notifications (`OCTOSCOPE_NOTIFY_LATE_WINDOW_HOURS`: how
/// far back failed resync jobs are announced).
pub async fn service(
    config: &IntegrityConfig,
    env: &impl Fn(&str) -> Option<String>,
    clients: Clients,
) -> anyhow::Result<Check> {
    let notify = NotifyConfig::load(env)?;
    let (settings, github) = resolve_github(&config.github, env, clients.ssm).await?;
    let github = Arc::new(GitHubClient::new(github).await.context("connecting to GitHub")?);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let dynamo = Arc::new(DynamoStore::new(clients.dynamodb, &config.table));
    let store: Arc<dyn Store> = dynamo.clone();
    let queue = Arc::new(SqsGapQueue::new(clients.sqs, &config.queue_url, store.clone(), clock.clone()));
    let window = settings.redelivery_window();
    let service = IntegrityService::new(store, github.clone(), github, queue, clock.clone(), settings.tracked)
        .with_redelivery_window(window);
    let integrity = match &config.search {
        None => service,
        Some(search) => service.with_search(search_check(search, &clients.sdk, &dynamo).await?),
    };
    Ok(Check { integrity, notify: Notifications::new(dynamo, clock, notify.late_window) })
}

/// What one check did: the function's answer (and its log line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub check_id: String,
    pub repos_compared: u64,
    pub orgs_compared: u64,
    pub gaps: usize,
    pub redelivered: u64,
    pub github_requests: u64,
    /// Scopes where the search index differs from the table (None: not compared in this check).
    pub search_drift: Option<usize>,
    /// New notifications decided after the check (scheduled rules, its findings).
    pub notifications: usize,
}

/// The Lambda handler: one check per scheduled event.
pub async fn handle(check: &Check, event: EventBridgeEvent) -> anyhow::Result<Summary> {
    tracing::info!(event = event.id.as_deref().unwrap_or("-"), detail_type = event.detail_type, "integrity check");
    let run = match check.integrity.check(false).await {
        Ok(run) => run,
        Err(e) => {
            check.notify.after_check(None).await;
            return Err(e.context("integrity check"));
        }
    };
    let notifications = check.notify.after_check(Some(&run)).await;
    let summary = Summary {
        check_id: run.id,
        repos_compared: run.repos_compared,
        orgs_compared: run.orgs_compared,
        gaps: run.gaps.len(),
        redelivered: run.redelivered,
        github_requests: run.requests,
        search_drift: run.search.as_ref().map(|s| s.drift.len()),
        notifications,
    };
    if let Some(e) = run.search.as_ref().and_then(|s| s.error.as_deref()) {
        tracing::warn!(error = e, "the search index was not compared");
    }
    tracing::info!(?summary, "integrity check done");
    Ok(summary)
}
