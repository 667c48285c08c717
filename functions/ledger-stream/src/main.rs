//! `ledger-stream`: wiring only. Config and the client once at init, then the
//! handler on the Lambda runtime (DynamoDB stream batches, partial failures;
//! the scheduled settle of the rollup cells); with
//! `OCTOSCOPE_NOTIFY_QUEUE_URL`, new notifications go to that queue.

#![recursion_limit = "256"]

use anyhow::Context as _;
use lambda_runtime::{LambdaEvent, service_fn};
use octoscope::adapters::aws::dynamodb::DynamoStore;
use octoscope::config::aws::LedgerStreamConfig;
use octoscope_ledger_stream::{NotificationQueue, invoke};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    octoscope::adapters::aws::init_logging();
    let config = LedgerStreamConfig::load(|k| std::env::var(k).ok()).context("configuration refused")?;
    let sdk = octoscope::adapters::aws::lambda_sdk_config();
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), &config.table);
    let queue = config.notify_queue_url.map(|url| NotificationQueue::new(aws_sdk_sqs::Client::new(&sdk), url));
    let (store, queue) = (&store, queue.as_ref());
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        invoke(store, queue, event.payload, &event.context).await.map_err(lambda_runtime::Error::from)
    }))
    .await
}
