//! AWS mode: the SDK configuration every AWS adapter shares, and the one rule
//! for which SDK errors are worth retrying.
//!
//! The HTTPS client is the SDK's current one (hyper 1 + rustls 0.23), with ring
//! for crypto, set explicitly. `AWS_ENDPOINT_URL` is honoured everywhere:
//! tests point it at a moto server, production leaves it unset. The
//! per-service `AWS_ENDPOINT_URL_<SERVICE>` is honoured only where the SDK's
//! own loader builds the configuration ([`sdk_config`]: the batch job); the
//! functions' [`lambda_sdk_config`] and the SSM client
//! (`ssm.rs`) read `AWS_ENDPOINT_URL` alone.

#[cfg(any(feature = "firehose", feature = "s3"))]
pub mod archive_record;
#[cfg(feature = "dynamodb")]
pub mod dynamodb;
#[cfg(feature = "ecs")]
pub mod ecs;
#[cfg(feature = "firehose")]
pub mod firehose;
pub mod pricing;
#[cfg(feature = "s3")]
pub mod s3;
#[cfg(feature = "s3")]
pub mod s3_batched;
#[cfg(feature = "sqs")]
pub mod sqs;
#[cfg(feature = "ssm")]
pub mod ssm;

use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::{Builder, tls};

/// Load the SDK configuration from the environment (region, credentials,
/// endpoint overrides), with the crate's HTTPS client and the SDK's standard
/// retry (3 attempts, exponential backoff with jitter, throttling aware).
pub async fn sdk_config() -> SdkConfig {
    loader().load().await
}

/// The same, with an explicit endpoint (tests against a local AWS).
pub async fn sdk_config_with_endpoint(endpoint: &str) -> SdkConfig {
    loader().endpoint_url(endpoint).load().await
}

/// The configuration loader with the crate's HTTPS client, to set more
/// before loading (a region, credentials: tests against a local AWS).
pub fn config_loader() -> aws_config::ConfigLoader {
    loader()
}

fn loader() -> aws_config::ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest()).http_client(https())
}

fn https() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    Builder::new().tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::Ring)).build_https()
}

/// The SDK configuration inside a Lambda function, from what the Lambda
/// runtime puts in the environment: the region (`AWS_REGION`), the execution
/// role's credentials (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
/// `AWS_SESSION_TOKEN`), and `AWS_ENDPOINT_URL` when set (tests). The same
/// HTTPS client, retry and timeouts as [`sdk_config`], but without the
/// provider chain (profiles, SSO, STS web identity, container and instance
/// metadata): a function never needs them, and leaving them unreferenced
/// keeps them (and the STS client) out of each function's zip.
pub fn lambda_sdk_config() -> SdkConfig {
    use aws_config::environment::EnvironmentVariableCredentialsProvider;
    use aws_credential_types::provider::SharedCredentialsProvider;
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let mut config = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(https())
        .credentials_provider(SharedCredentialsProvider::new(EnvironmentVariableCredentialsProvider::new()))
        .time_source(aws_smithy_async::time::SharedTimeSource::default())
        .retry_config(aws_config::retry::RetryConfig::standard());
    config.set_sleep_impl(aws_smithy_async::rt::sleep::default_async_sleep());
    config.set_region(var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION")).map(aws_config::Region::new));
    config.set_endpoint_url(var("AWS_ENDPOINT_URL"));
    config.build()
}

/// Logging for the functions and the batch job: plain lines on stdout (which
/// CloudWatch stamps with the time), filtered by `RUST_LOG` read as targets
/// (`info`, `octoscope=debug,warn`; no regex engine linked), `info` when unset
/// or unreadable.
pub fn init_logging() {
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| v.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::INFO));
    let log = tracing_subscriber::fmt::layer().with_ansi(false).without_time().with_target(false);
    tracing_subscriber::registry().with(log).with(filter).init();
}

/// Whether an SDK error, after the SDK's own retries, may still go away:
/// throttling, a 5xx, a timeout or a connection that could not be made. A
/// 4xx that is not throttling (a missing table, access denied, a bad request)
/// will not.
pub fn is_retryable<E, R>(err: &aws_smithy_runtime_api::client::result::SdkError<E, R>) -> bool
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata,
    R: HttpStatus,
{
    use aws_smithy_runtime_api::client::result::SdkError;
    match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => true,
        SdkError::ServiceError(e) => {
            let status = e.raw().status_code();
            let code = e.err().code().unwrap_or_default();
            status >= 500 || status == 429 || THROTTLING.contains(&code)
        }
        _ => false,
    }
}

/// Error codes AWS uses for "slow down" (the SDK's own list, plus SQS's and
/// DynamoDB's own names for it).
const THROTTLING: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
    "ThrottlingError",
];

/// The HTTP status of a raw response, whatever its type.
pub trait HttpStatus {
    fn status_code(&self) -> u16;
}

impl HttpStatus for aws_smithy_runtime_api::http::Response {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}
