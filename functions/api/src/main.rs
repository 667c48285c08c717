//! `api`: wiring only. Config and clients once at init, then the shared
//! Router on the Lambda runtime (API Gateway HTTP API events).

use anyhow::Context as _;
use octoscope::config_aws::ApiConfig;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    init_tracing();
    let config = ApiConfig::load(|k| std::env::var(k).ok()).context("configuration refused")?;
    let sdk = octoscope::adapters::aws::lambda_sdk_config();
    let app = octoscope_api::app(&config, octoscope_api::Clients::new(&sdk)).await?;
    lambda_http::run(app).await
}

/// Plain lines to CloudWatch (which stamps the time), filtered by `RUST_LOG`.
fn init_tracing() {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| v.parse::<tracing_subscriber::filter::Targets>().ok())
        .unwrap_or_else(|| tracing_subscriber::filter::Targets::new().with_default(tracing::Level::INFO));
    let log = tracing_subscriber::fmt::layer().with_ansi(false).without_time().with_target(false);
    tracing_subscriber::registry().with(log).with(filter).init();
}
