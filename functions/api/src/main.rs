//! `api`: wiring only. Config and clients once at init, then the shared
//! Router on the Lambda runtime (API Gateway HTTP API events).

use anyhow::Context as _;
use octoscope::config::NotifyConfig;
use octoscope::config::aws::ApiConfig;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    octoscope::adapters::aws::init_logging();
    let env = |k: &str| std::env::var(k).ok();
    let config = ApiConfig::load(env).context("configuration refused")?;
    // OCTOSCOPE_NOTIFY_ALLOW_PRIVATE: which targets a rule may name.
    let notify = NotifyConfig::load(env).context("configuration refused")?;
    let sdk = octoscope::adapters::aws::lambda_sdk_config();
    let app = octoscope_api::app_with(&config, &notify, octoscope_api::Clients::new(&sdk)).await?;
    lambda_http::run(app).await
}
