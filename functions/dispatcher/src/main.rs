//! `dispatcher`: wiring only. Config and clients once at init, then the
//! handler on the Lambda runtime (SQS events, partial batch responses).

use std::sync::Arc;

use anyhow::Context as _;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{LambdaEvent, service_fn};
use octoscope::adapters::aws::dynamodb::DynamoStore;
use octoscope::adapters::aws::ecs::EcsLauncher;
use octoscope::adapters::clock::SystemClock;
use octoscope::config::aws::DispatcherConfig;
use octoscope::ports::Store;
use octoscope::services::dispatch::DispatchService;
use octoscope_dispatcher::handle;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    octoscope::adapters::aws::init_logging();
    let config = DispatcherConfig::load(|k| std::env::var(k).ok()).context("configuration refused")?;
    let sdk = octoscope::adapters::aws::lambda_sdk_config();
    let store: Arc<dyn Store> = Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), &config.table));
    let launcher = Arc::new(EcsLauncher::new(aws_sdk_ecs::Client::new(&sdk), config.ecs));
    let dispatcher = DispatchService::new(store.clone(), store, launcher, Arc::new(SystemClock));
    let dispatcher = &dispatcher;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<SqsBatchResponse, lambda_runtime::Error>(handle(dispatcher, event.payload).await)
    }))
    .await
}
