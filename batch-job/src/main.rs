//! `batch-job`: the Fargate task. Wiring only: config, the GitHub credential
//! (from SSM) and the clients, then one job; the exit code says how it ended
//! (`octoscope_batch_job::exit`).

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use octoscope::adapters::aws::dynamodb::DynamoStore;
use octoscope::adapters::aws::ssm::SsmClient;
use octoscope::adapters::clock::SystemClock;
use octoscope::adapters::github::GitHubClient;
use octoscope::adapters::opensearch::{OpenSearchIndex, endpoint};
use octoscope::config::NotifyConfig;
use octoscope::config::aws::SearchConfig;
use octoscope::config::aws::{BatchJobConfig, resolve_github};
use octoscope::ports::GitHubSource;
use octoscope::ports::{Clock, Store};
use octoscope::services::indexer::{IndexerService, REINDEX_JOB};
use octoscope::services::notify::decide::Decider;
use octoscope_batch_job::{UPGRADE_JOB, exit, fail_before_start, run_deciding, upgrade_exit};

#[tokio::main]
async fn main() -> ExitCode {
    octoscope::adapters::aws::init_logging();
    let env = |k: &str| std::env::var(k).ok();
    let config = match BatchJobConfig::load(env) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("configuration refused: {e}");
            return code(exit::BAD_INPUT);
        }
    };
    // OCTOSCOPE_NOTIFY_LATE_WINDOW_HOURS: how old a transition the resync finds may be and still fire.
    let notify = match NotifyConfig::load(env) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("configuration refused: {e}");
            return code(exit::BAD_INPUT);
        }
    };
    let sdk = octoscope::adapters::aws::sdk_config().await;
    let dynamo = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), &config.table);
    if config.job_id == UPGRADE_JOB {
        let result = dynamo.upgrade().await;
        match &result {
            Ok(done) => tracing::info!(?done, "the table is upgraded"),
            Err(e) => tracing::error!(error = octoscope::error::error_chain(e), "the upgrade failed"),
        }
        return code(upgrade_exit(&result));
    }
    if config.job_id == REINDEX_JOB
        && let Some(search) = &config.search
    {
        return code(reindex(dynamo, &sdk, search).await);
    }
    let dynamo = Arc::new(dynamo);
    let store: Arc<dyn Store> = dynamo.clone();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    // What the resync finds is decided `late` into the table's NOTE# items (the outbox).
    let decider =
        Decider::new(dynamo.clone(), dynamo.clone(), dynamo, clock.clone()).with_late_window(notify.late_window);
    let github = match connect(&config, &env, SsmClient::new(&sdk)).await {
        Ok(g) => g,
        Err(e) => {
            tracing::error!(job = config.job_id, error = %format!("{e:#}"), "the job cannot start");
            fail_before_start(store.as_ref(), clock.as_ref(), &config.job_id, &e).await;
            return code(exit::FAILED);
        }
    };
    match run_deciding(store, github, clock, &config.job_id, Some(Arc::new(decider))).await {
        Ok(_) => code(exit::OK),
        Err(e) => {
            let chain = octoscope::error::error_chain(&e);
            tracing::error!(job = config.job_id, retryable = e.is_retryable(), error = chain, "the job failed");
            code(e.exit_code())
        }
    }
}

/// The reindex job: the search index built once, then the store walked into it.
async fn reindex(dynamo: DynamoStore, sdk: &aws_config::SdkConfig, search: &SearchConfig) -> i32 {
    let index = async {
        let url = endpoint(sdk, &search.endpoint).await?;
        let index = OpenSearchIndex::at(sdk, &url, &search.index)?;
        index.ensure_index().await?;
        Ok::<_, octoscope::ports::SearchError>(index)
    };
    let index = match index.await {
        Ok(i) => i,
        Err(e) => {
            tracing::error!(error = octoscope::error::error_chain(&e), "the search index cannot be reached");
            return if e.is_retryable() { exit::RETRYABLE } else { exit::FAILED };
        }
    };
    let store = Arc::new(dynamo);
    let service = IndexerService::new(store.clone(), Arc::new(index));
    octoscope_batch_job::reindex(&service, store.as_ref(), store.as_ref(), &SystemClock).await
}

async fn connect(
    config: &BatchJobConfig,
    env: &impl Fn(&str) -> Option<String>,
    ssm: SsmClient,
) -> anyhow::Result<Arc<dyn GitHubSource>> {
    let (_, github) = resolve_github(&config.github, env, ssm).await?;
    Ok(Arc::new(GitHubClient::new(github).await.context("connecting to GitHub")?))
}

fn code(c: i32) -> ExitCode {
    ExitCode::from(u8::try_from(c).unwrap_or(1))
}
