//! `api`: wiring only. Config and clients once at init, then the shared
//! Router on the Lambda runtime (API Gateway HTTP API events).

use anyhow::Context as _;
use octoscope::config::aws::ApiConfig;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    octoscope::adapters::aws::init_logging();
    let config = ApiConfig::load(|k| std::env::var(k).ok()).context("configuration refused")?;
    let sdk = octoscope::adapters::aws::lambda_sdk_config();
    let app = octoscope_api::app(&config, octoscope_api::Clients::new(&sdk)).await?;
    lambda_http::run(app).await
}
