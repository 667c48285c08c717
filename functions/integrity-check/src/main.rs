//! `integrity-check`: wiring only. Config, the GitHub credential and the
//! clients once at init, then the handler on the Lambda runtime (EventBridge
//! scheduled events).

use anyhow::Context as _;
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use lambda_runtime::{LambdaEvent, service_fn};
use octoscope::config_aws::IntegrityConfig;
use octoscope_integrity_check::{Clients, handle, service};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let env = |k: &str| std::env::var(k).ok();
    let config = IntegrityConfig::load(env).context("configuration refused")?;
    let sdk = octoscope::adapters::aws::lambda_sdk_config();
    let service = service(&config, &env, Clients::new(&sdk)).await?;
    let service = &service;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<EventBridgeEvent>| async move {
        handle(service, event.payload).await.map_err(|e| lambda_runtime::Error::from(format!("{e:#}")))
    }))
    .await
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
