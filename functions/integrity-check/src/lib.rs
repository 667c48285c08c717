//! The integrity-check function: on its EventBridge schedule, compare GitHub
//! with the store (batched GraphQL counts, watermarks, branch heads, teams),
//! ask GitHub to redeliver failed webhook deliveries, and send every gap to
//! the SQS gap queue for the dispatcher. With a search index configured, it
//! also compares the index with the table (at most every
//! [`SEARCH_CHECK_INTERVAL`]: a Scan of the table) and reindexes what differs.
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
use octoscope::adapters::opensearch::{OpenSearchIndex, endpoint};
use octoscope::config::aws::{IntegrityConfig, SearchConfig, resolve_github};
use octoscope::ports::{Clock, Store};
use octoscope::services::integrity::IntegrityService;
use octoscope::services::search_check::{ScannedStore, SearchCheck};
use serde::Serialize;

/// The search index is compared with the table at most this often: each
/// comparison reads every item of the table once (shared/docs/search.md).
pub const SEARCH_CHECK_INTERVAL: chrono::TimeDelta = chrono::TimeDelta::hours(6);

/// The clients the function is built from (built once, at init).
pub struct Clients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub ssm: aws_sdk_ssm::Client,
    /// What the search index's requests are signed with.
    pub sdk: aws_config::SdkConfig,
}

impl Clients {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self {
            dynamodb: aws_sdk_dynamodb::Client::new(sdk),
            sqs: aws_sdk_sqs::Client::new(sdk),
            ssm: aws_sdk_ssm::Client::new(sdk),
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
    let url = endpoint(sdk, &search.endpoint).await.context("the search domain's endpoint")?;
    let index = Arc::new(OpenSearchIndex::at(sdk, &url, &search.index).context("the search index")?);
    let scanned = Arc::new(ScannedStore::new(store.clone(), store.clone(), index.clone(), index.clone()));
    Ok(SearchCheck::new(scanned.clone(), index, scanned).with_interval(SEARCH_CHECK_INTERVAL))
}

/// The check, wired: the store, GitHub (credential read from SSM), the queue.
pub async fn service(
    config: &IntegrityConfig,
    env: &impl Fn(&str) -> Option<String>,
    clients: Clients,
) -> anyhow::Result<IntegrityService> {
    let (settings, github) = resolve_github(&config.github, env, clients.ssm).await?;
    let github = Arc::new(GitHubClient::new(github).await.context("connecting to GitHub")?);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let dynamo = Arc::new(DynamoStore::new(clients.dynamodb, &config.table));
    let store: Arc<dyn Store> = dynamo.clone();
    let queue = Arc::new(SqsGapQueue::new(clients.sqs, &config.queue_url, store.clone(), clock.clone()));
    let window = settings.redelivery_window();
    let service = IntegrityService::new(store, github.clone(), github, queue, clock, settings.tracked)
        .with_redelivery_window(window);
    Ok(match &config.search {
        None => service,
        Some(search) => service.with_search(search_check(search, &clients.sdk, &dynamo).await?),
    })
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
}

/// The Lambda handler: one check per scheduled event.
pub async fn handle(service: &IntegrityService, event: EventBridgeEvent) -> anyhow::Result<Summary> {
    tracing::info!(event = event.id.as_deref().unwrap_or("-"), detail_type = event.detail_type, "integrity check");
    let run = service.check(false).await.context("integrity check")?;
    let summary = Summary {
        check_id: run.id,
        repos_compared: run.repos_compared,
        orgs_compared: run.orgs_compared,
        gaps: run.gaps.len(),
        redelivered: run.redelivered,
        github_requests: run.requests,
        search_drift: run.search.as_ref().map(|s| s.drift.len()),
    };
    if let Some(e) = run.search.as_ref().and_then(|s| s.error.as_deref()) {
        tracing::warn!(error = e, "the search index was not compared");
    }
    tracing::info!(?summary, "integrity check done");
    Ok(summary)
}
