//! The webhook function: `POST /webhook` from API Gateway's HTTP API, through
//! the same verify → ledger → archive → normalise → store path as
//! `octoscope serve` (the shared axum Router), into DynamoDB, the raw body
//! through a Firehose delivery stream that batches it into S3.
//!
//! It answers 5xx only when the delivery was not durably recorded (a
//! retryable store, archive or secret failure): GitHub then shows it as
//! failed, and the integrity check has it redelivered.
//!
//! Notifications are decided here, before the delivery is recorded
//! ([`DecidingLedger`]): each one a conditional create of a `NOTE#` item in
//! the table (the durable outbox), so a 2xx never acknowledges a delivery
//! whose notifications are not kept. Sending is not this function's: the
//! table's stream carries each new `NOTE#` item to ledger-stream, which
//! forwards it to the notification queue, and the notifier sends it
//! (shared/docs/notifications.md, "On AWS"). No SQS client here.

use std::sync::Arc;

use axum::Router;
use octoscope::adapters::aws::dynamodb::DynamoStore;
use octoscope::adapters::aws::firehose::FirehoseArchive;
use octoscope::adapters::aws::ssm::{SecretParameter, SsmClient, SsmWebhookSecrets};
use octoscope::adapters::clock::SystemClock;
use octoscope::api::{WebhookState, webhook_router};
use octoscope::config::aws::WebhookConfig;
use octoscope::ports::{Clock, RuleStore, WebhookSecretSource};
use octoscope::services::IngestService;
use octoscope::services::notify::decide::{CachedRules, Decider, DecidingLedger};

/// How long the rules read for deciding are kept before they are read
/// again: a delivery does not read them each time (one `Query` per event a
/// rule may listen for), and a rule created, changed or removed through the
/// API applies to deliveries within this time.
pub const RULES_TTL: std::time::Duration = std::time::Duration::from_secs(60);

/// The clients the function is built from (built once, at init).
pub struct Clients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub firehose: aws_sdk_firehose::Client,
    pub ssm: SsmClient,
}

impl Clients {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self {
            dynamodb: aws_sdk_dynamodb::Client::new(sdk),
            firehose: aws_sdk_firehose::Client::new(sdk),
            ssm: SsmClient::new(sdk),
        }
    }
}

/// The function's Router: `POST /webhook` only (every other path is a JSON 404).
/// Reads the secret once, so that a missing or unreadable parameter refuses
/// the start with a message naming it (and the first request is warm).
pub async fn app(config: &WebhookConfig, clients: Clients) -> anyhow::Result<Router> {
    let store = Arc::new(DynamoStore::new(clients.dynamodb, &config.table).with_stream_derivation());
    let archive = Arc::new(FirehoseArchive::new(clients.firehose, &config.archive_stream));
    let secrets = Arc::new(SsmWebhookSecrets::new(SecretParameter::new(clients.ssm, &config.secret_param)));
    secrets
        .secrets()
        .await
        .map_err(|e| anyhow::anyhow!("GITHUB_WEBHOOK_SECRET_PARAM: {}", octoscope::error::error_chain(&e)))?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let rules: Arc<dyn RuleStore> = Arc::new(CachedRules::new(store.clone(), RULES_TTL));
    let decider = Arc::new(Decider::new(rules, store.clone(), store.clone(), clock.clone()));
    let ledger = Arc::new(DecidingLedger::new(store, decider));
    let ingest = IngestService::with_secret_source(ledger, archive, clock, secrets);
    Ok(webhook_router(WebhookState { ingest: Arc::new(ingest), max_body_bytes: config.max_body_bytes }))
}
