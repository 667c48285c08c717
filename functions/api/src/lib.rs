//! The api function: the read API under `/api` (the same axum Router as
//! `octoscope serve`), over DynamoDB, behind API Gateway's HTTP API.

use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use octoscope::adapters::aws::dynamodb::DynamoStore;
use octoscope::adapters::aws::ssm::{SecretParameter, SsmClient};
use octoscope::adapters::clock::SystemClock;
use octoscope::adapters::opensearch::{OpenSearchIndex, given_endpoint};
use octoscope::api::{ApiState, NotifyApi, api_router};
use octoscope::config::aws::{ApiAuth, ApiConfig};
use octoscope::config::{ApiTokens, NotifyConfig};
use octoscope::ports::SearchIndex;

/// The clients the function is built from (built once, at init).
pub struct Clients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub ssm: SsmClient,
    /// The configuration the search index's requests are signed with.
    pub sdk: aws_config::SdkConfig,
}

impl Clients {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self { dynamodb: aws_sdk_dynamodb::Client::new(sdk), ssm: SsmClient::new(sdk), sdk: sdk.clone() }
    }
}

/// The function's Router with the notification settings' defaults (see [`app_with`]).
pub async fn app(config: &ApiConfig, clients: Clients) -> anyhow::Result<Router> {
    app_with(config, &NotifyConfig::default(), clients).await
}

/// The function's Router: `/api/*` only. The bearer tokens are read from
/// their parameter once, at init (a new token is served by new instances;
/// publish a new version or update the function to roll it at once).
///
/// `/api/rules` and `/api/notifications` work on the table's `RULE#` and
/// `NOTE#` items: a test (`POST /api/rules/{id}/test`) is a pending `NOTE#`
/// item, which the table's stream carries to the notification queue and the
/// notifier function sends. Of `notify`, only `allow_private`
/// (`OCTOSCOPE_NOTIFY_ALLOW_PRIVATE`: which targets a rule may name) is used here.
pub async fn app_with(config: &ApiConfig, notify: &NotifyConfig, clients: Clients) -> anyhow::Result<Router> {
    let tokens = match &config.auth {
        ApiAuth::Gateway => ApiTokens::default(),
        ApiAuth::Tokens { param } => {
            let value = SecretParameter::new(clients.ssm, param)
                .get()
                .await
                .context("OCTOSCOPE_API_TOKENS_PARAM: reading the API tokens")?;
            let tokens = ApiTokens::parse(value.expose()).map_err(|e| {
                anyhow::anyhow!("OCTOSCOPE_API_TOKENS_PARAM: the value of {param} is refused: {}", e.why)
            })?;
            anyhow::ensure!(!tokens.is_empty(), "OCTOSCOPE_API_TOKENS_PARAM: {param} holds no token");
            tokens
        }
    };
    let store = Arc::new(DynamoStore::new(clients.dynamodb, &config.table));
    // The search index the indexer function keeps (shared/docs/search.md);
    // without one, /api/search answers 501.
    let search: Option<Arc<dyn SearchIndex>> = match &config.search {
        None => None,
        Some(s) => {
            // Given by Terraform (OCTOSCOPE_SEARCH_ENDPOINT): the api links no
            // resolver of a domain's name (aws-sdk-opensearch, for the zip's size).
            let url = given_endpoint(&s.endpoint).context("the search domain's endpoint")?;
            Some(Arc::new(OpenSearchIndex::at(&clients.sdk, &url, &s.index).context("the search index")?))
        }
    };
    let notify = NotifyApi {
        rules: store.clone(),
        log: store.clone(),
        sink: store.clone(),
        allow_private: notify.allow_private,
        clock: Arc::new(SystemClock),
    };
    Ok(api_router(ApiState { store, search, tokens, notify: Some(notify) }))
}
