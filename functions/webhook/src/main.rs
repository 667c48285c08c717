//! `webhook`: wiring only. Config and clients once at init, then the shared
//! Router on the Lambda runtime (API Gateway HTTP API events).

use anyhow::Context as _;
use octoscope::config_aws::WebhookConfig;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    init_tracing();
    let config = WebhookConfig::load(|k| std::env::var(k).ok()).context("configuration refused")?;
    let sdk = octoscope::adapters::aws::sdk_config().await;
    let app = octoscope_webhook::app(&config, octoscope_webhook::Clients::new(&sdk)).await?;
    lambda_http::run(app).await
}

/// Plain lines to CloudWatch (which stamps the time), filtered by `RUST_LOG`.
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt().with_env_filter(filter).with_ansi(false).without_time().with_target(false).init();
}
