//! `notifier`: wiring only. Config, the GitHub credential (when configured)
//! and the clients once at init, then the handler on the Lambda runtime (SQS
//! events, partial batch responses).

use std::sync::Arc;

use anyhow::Context as _;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{LambdaEvent, service_fn};
use octoscope::adapters::aws::dynamodb::DynamoStore;
use octoscope::adapters::clock::SystemClock;
use octoscope::adapters::notify_http::sender;
use octoscope::config::aws::{NotifierConfig, resolve_github};
use octoscope_notifier::{Notifier, handle};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    octoscope::adapters::aws::init_logging();
    let env = |k: &str| std::env::var(k).ok();
    let config = NotifierConfig::load(env).context("configuration refused")?;
    let sdk = octoscope::adapters::aws::lambda_sdk_config();
    let github = match &config.github {
        Some(params) => Some(
            resolve_github(params, &env, octoscope::adapters::aws::ssm::SsmClient::new(&sdk))
                .await
                .context("the GitHub credential for repository_dispatch")?
                .0,
        ),
        None => None,
    };
    let store = Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), &config.table));
    let sender = sender(store.clone(), store.clone(), &config.notify, github.as_ref())?;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let notifier = Notifier::new(store, sender, sqs, &config.queue_url, Arc::new(SystemClock));
    let notifier = &notifier;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<SqsBatchResponse, lambda_runtime::Error>(handle(notifier, event.payload).await)
    }))
    .await
}
