//! The webhook function: `POST /webhook` from API Gateway's HTTP API, through
//! the same verify → ledger → archive → normalise → store path as
//! `octoscope serve` (the shared axum Router), into DynamoDB, the raw body
//! through a Firehose delivery stream that batches it into S3.
//!
//! It answers 5xx only when the delivery was not durably recorded (a
//! retryable store, archive or secret failure): GitHub then shows it as
//! failed, and the integrity check has it redelivered.

use std::sync::Arc;

use axum::Router;
use octoscope::adapters::aws::dynamodb::DynamoStore;
use octoscope::adapters::aws::firehose::FirehoseArchive;
use octoscope::adapters::aws::ssm::{SecretParameter, SsmWebhookSecrets};
use octoscope::adapters::clock::SystemClock;
use octoscope::api::{WebhookState, webhook_router};
use octoscope::config::aws::WebhookConfig;
use octoscope::ports::WebhookSecretSource;
use octoscope::services::IngestService;

/// The clients the function is built from (built once, at init).
pub struct Clients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub firehose: aws_sdk_firehose::Client,
    pub ssm: aws_sdk_ssm::Client,
}

impl Clients {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self {
            dynamodb: aws_sdk_dynamodb::Client::new(sdk),
            firehose: aws_sdk_firehose::Client::new(sdk),
            ssm: aws_sdk_ssm::Client::new(sdk),
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
    let ingest = IngestService::with_secret_source(store, archive, Arc::new(SystemClock), secrets);
    Ok(webhook_router(WebhookState { ingest: Arc::new(ingest), max_body_bytes: config.max_body_bytes }))
}
