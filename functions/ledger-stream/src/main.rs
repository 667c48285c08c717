//! `ledger-stream`: wiring only. Config and the client once at init, then the
//! handler on the Lambda runtime (DynamoDB stream batches, partial failures);
//! with `OCTOSCOPE_NOTIFY_QUEUE_URL`, new notifications go to that queue.

#![recursion_limit = "256"]

use anyhow::Context as _;
use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::streams::DynamoDbEventResponse;
use lambda_runtime::{LambdaEvent, service_fn};
use octoscope::adapters::aws::dynamodb::DynamoStore;
use octoscope::config::aws::LedgerStreamConfig;
use octoscope_ledger_stream::{NotificationQueue, handle_with};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    octoscope::adapters::aws::init_logging();
    let config = LedgerStreamConfig::load(|k| std::env::var(k).ok()).context("configuration refused")?;
    let sdk = octoscope::adapters::aws::lambda_sdk_config();
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), &config.table);
    let queue = config.notify_queue_url.map(|url| NotificationQueue::new(aws_sdk_sqs::Client::new(&sdk), url));
    let (store, queue) = (&store, queue.as_ref());
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Event>| async move {
        Ok::<DynamoDbEventResponse, lambda_runtime::Error>(handle_with(store, queue, event.payload).await)
    }))
    .await
}
