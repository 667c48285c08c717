//! `integrity-check`: wiring only. Config, the GitHub credential and the
//! clients once at init, then the handler on the Lambda runtime (EventBridge
//! scheduled events).

use anyhow::Context as _;
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use lambda_runtime::{LambdaEvent, service_fn};
use octoscope::config::aws::IntegrityConfig;
use octoscope_integrity_check::{Clients, handle, service};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    octoscope::adapters::aws::init_logging();
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
