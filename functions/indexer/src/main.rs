//! `indexer`: wiring only. Config, the clients and the index once at init,
//! then the handler on the Lambda runtime (DynamoDB stream batches, partial
//! failures).

#![recursion_limit = "256"]

use std::sync::Arc;

use anyhow::Context as _;
use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::streams::DynamoDbEventResponse;
use lambda_runtime::{LambdaEvent, service_fn};
use octoscope::adapters::aws::dynamodb::DynamoStore;
use octoscope::adapters::opensearch::{OpenSearchIndex, endpoint};
use octoscope::config::aws::IndexerConfig;
use octoscope::services::indexer::IndexerService;
use octoscope_indexer::handle;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    octoscope::adapters::aws::init_logging();
    let config = IndexerConfig::load(|k| std::env::var(k).ok()).context("configuration refused")?;
    let sdk = octoscope::adapters::aws::lambda_sdk_config();
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), &config.table);
    let url = endpoint(&sdk, &config.search.endpoint).await.context("the search domain's endpoint")?;
    let index = OpenSearchIndex::at(&sdk, &url, &config.search.index).context("the search index")?;
    index.ensure_index().await.context("creating the search index")?;
    let service = IndexerService::new(Arc::new(store), Arc::new(index));
    let service = &service;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Event>| async move {
        Ok::<DynamoDbEventResponse, lambda_runtime::Error>(handle(service, event.payload).await)
    }))
    .await
}
