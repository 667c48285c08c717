//! The webhook function: `POST /webhook` from API Gateway's HTTP API, through
//! the same verify → ledger → archive → normalise → store path as
//! `octoscope serve` (the shared axum Router), into DynamoDB and S3.
//!
//! It answers 5xx only when the delivery was not durably recorded (a
//! retryable store, archive or secret failure): GitHub then shows it as
//! failed, and the integrity check has it redelivered.

use std::sync::Arc;

use axum::Router;
use octoscope::adapters::aws::dynamodb::DynamoStore;
use octoscope::adapters::aws::s3::S3Archive;
use octoscope::adapters::aws::ssm::{SecretParameter, SsmWebhookSecrets};
use octoscope::adapters::clock::SystemClock;
use octoscope::api::{WebhookState, webhook_router};
use octoscope::config::aws::WebhookConfig;
use octoscope::ports::WebhookSecretSource;
use octoscope::services::IngestService;

/// Where the raw archive's objects go in the bucket.
pub const ARCHIVE_PREFIX: &str = "raw/";

/// The clients the function is built from (built once, at init).
pub struct Clients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub s3: aws_sdk_s3::Client,
    pub ssm: aws_sdk_ssm::Client,
}

impl Clients {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self { dynamodb: aws_sdk_dynamodb::Client::new(sdk), s3: s3_client(sdk), ssm: aws_sdk_ssm::Client::new(sdk) }
    }
}

/// S3 by path (`endpoint/bucket/key`) when the endpoint is overridden (a
/// local AWS such as moto serves no virtual hosts); AWS's default otherwise.
fn s3_client(sdk: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    let path_style = sdk.endpoint_url().is_some();
    aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(sdk).force_path_style(path_style).build())
}

/// The function's Router: `POST /webhook` only (every other path is a JSON 404).
/// Reads the secret once, so that a missing or unreadable parameter refuses
/// the start with a message naming it (and the first request is warm).
pub async fn app(config: &WebhookConfig, clients: Clients) -> anyhow::Result<Router> {
    let store = Arc::new(DynamoStore::new(clients.dynamodb, &config.table));
    let archive = Arc::new(S3Archive::new(clients.s3, &config.archive_bucket, ARCHIVE_PREFIX));
    let secrets = Arc::new(SsmWebhookSecrets::new(SecretParameter::new(clients.ssm, &config.secret_param)));
    secrets
        .secrets()
        .await
        .map_err(|e| anyhow::anyhow!("GITHUB_WEBHOOK_SECRET_PARAM: {}", octoscope::error::error_chain(&e)))?;
    let ingest = IngestService::with_secret_source(store, archive, Arc::new(SystemClock), secrets);
    Ok(webhook_router(WebhookState { ingest: Arc::new(ingest), max_body_bytes: config.max_body_bytes }))
}
