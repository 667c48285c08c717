//! A secret in SSM Parameter Store (a `SecureString`), read with decryption
//! and cached for a while: a warm Lambda does not call SSM per request, and a
//! rotated value is picked up within the TTL without a cold start.
//!
//! The value is a [`SecretValue`]: no `Display`, a redacted `Debug`, and
//! errors name the parameter, never its value. [`SsmWebhookSecrets`] is the
//! webhook's secret list read this way.
//!
//! `GetParameter` is one request of SSM's JSON protocol (`POST /`,
//! `x-amz-target: AmazonSSM.GetParameter`), sent by [`SsmClient`] on the
//! SDK's own HTTPS client and SigV4-signed for `ssm` (`adapters/opensearch_http.rs`,
//! which the OpenSearch adapter uses too), not with `aws-sdk-ssm`: that
//! client is ~135 KiB of code in each function that reads a secret
//! (shared/docs/aws.md, the zip budget). Like the SDK it makes up to three
//! attempts when SSM throttles, answers 5xx or cannot be reached.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use tokio::sync::Mutex;

use crate::adapters::opensearch_http::{Answer, Http, Method};

use crate::adapters::clock::SystemClock;
use crate::domain::Timestamp;
use crate::error::SecretUnavailable;
use crate::ports::{Clock, WebhookSecretSource};
use crate::webhook::WebhookSecrets;

/// How long a read value is used before SSM is asked again.
pub const DEFAULT_TTL: chrono::TimeDelta = chrono::TimeDelta::minutes(5);
/// How long past its TTL a cached value is still used while SSM cannot be
/// reached (throttling, an outage): the webhook keeps verifying meanwhile.
pub const DEFAULT_STALE_GRACE: chrono::TimeDelta = chrono::TimeDelta::hours(1);

/// A secret's text. It cannot be printed: `Debug` says `SecretValue(redacted)`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(Arc<str>);

impl SecretValue {
    /// The secret itself: pass it on (e.g. to `WebhookSecrets::parse`), never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue(redacted)")
    }
}

/// A failure to read a secret; it names the parameter, never a value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("SSM parameter {name} does not exist (or is not visible to this role)")]
    NotFound { name: String },
    #[error("SSM parameter {name} could not be read for now")]
    Unavailable {
        name: String,
        #[source]
        source: anyhow::Error,
    },
    #[error("SSM parameter {name} could not be read")]
    Failed {
        name: String,
        #[source]
        source: anyhow::Error,
    },
}

impl SecretError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }
}

/// Where a secret's value comes from (a port, so the cache is testable alone).
#[async_trait]
pub trait SecretSource: Send + Sync {
    async fn fetch(&self, name: &str) -> Result<SecretValue, SecretError>;
}

/// SSM's `GetParameter`, as the SDK client would send it: to the SDK
/// configuration's endpoint (`AWS_ENDPOINT_URL`: tests) or
/// `https://ssm.<region>.amazonaws.com`, signed with its credentials.
#[derive(Clone)]
pub struct SsmClient(Arc<Result<Http, Arc<dyn std::error::Error + Send + Sync>>>);

/// Why the client could not be built, kept whole for every read that needs it.
#[derive(Debug, thiserror::Error)]
#[error("the SSM client")]
struct Unbuilt(#[source] Arc<dyn std::error::Error + Send + Sync>);

/// The JSON protocol's operation (the IAM action `ssm:GetParameter`:
/// terraform/tests/test_agreement.py reads it here).
const GET_PARAMETER: &str = "AmazonSSM.GetParameter";
/// Attempts per read (the SDK's standard retry: 3), and each one's time limit.
const ATTEMPTS: u32 = 3;
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest wait before the second attempt; doubled before each next one.
const BACKOFF: Duration = Duration::from_millis(200);

/// The wait after failed attempt `attempt` (1, 2, …): "full jitter", a
/// random part of [`BACKOFF`] × 2^(attempt − 1), as the SDK's standard retry
/// does, so that functions started together by one burst do not retry
/// together either.
fn backoff(attempt: u32) -> Duration {
    (BACKOFF * 2u32.pow(attempt.saturating_sub(1).min(16))).mul_f64(fastrand::f64())
}

impl SsmClient {
    /// The client for `sdk`'s region, endpoint and credentials. A
    /// configuration without a region or credentials is an error at the
    /// first read, naming the parameter.
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        let http = ssm_endpoint(sdk)
            .and_then(|base| Http::for_service(&base, Some(sdk), "ssm", ATTEMPT_TIMEOUT))
            .map_err(|e| Arc::from(Box::<dyn std::error::Error + Send + Sync>::from(e)));
        Self(Arc::new(http))
    }

    fn http(&self) -> anyhow::Result<&Http> {
        self.0.as_ref().as_ref().map_err(|e| anyhow::Error::new(Unbuilt(Arc::clone(e))))
    }
}

impl fmt::Debug for SsmClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SsmClient")
    }
}

/// The SDK configuration's endpoint, else SSM's regional one.
fn ssm_endpoint(sdk: &aws_config::SdkConfig) -> anyhow::Result<String> {
    if let Some(url) = sdk.endpoint_url() {
        return Ok(url.to_owned());
    }
    let region = sdk.region().ok_or_else(|| anyhow::anyhow!("AWS region for SSM: none configured"))?;
    let domain = if region.as_ref().starts_with("cn-") { "amazonaws.com.cn" } else { "amazonaws.com" };
    Ok(format!("https://ssm.{region}.{domain}"))
}

/// `GetParameter` with decryption.
pub struct SsmSource(pub SsmClient);

#[async_trait]
impl SecretSource for SsmSource {
    async fn fetch(&self, name: &str) -> Result<SecretValue, SecretError> {
        let http = self.0.http().map_err(|source| SecretError::Failed { name: name.to_owned(), source })?;
        let mut attempt = 1;
        loop {
            match get_parameter(http, name).await {
                Err(e) if e.is_retryable() && attempt < ATTEMPTS => {
                    tokio::time::sleep(backoff(attempt)).await;
                    attempt += 1;
                }
                done => return done,
            }
        }
    }
}

/// One attempt.
async fn get_parameter(http: &Http, name: &str) -> Result<SecretValue, SecretError> {
    tracing::trace!(parameter = name, "SSM GetParameter");
    let body = serde_json::json!({ "Name": name, "WithDecryption": true }).to_string().into_bytes();
    let headers = [("x-amz-target", GET_PARAMETER)];
    match http.send_with(Method::Post, "/", "application/x-amz-json-1.1", &headers, Some(body)).await {
        // Not sent, no answer, or no answer within the attempt's time.
        Err(source) => Err(SecretError::Unavailable { name: name.to_owned(), source }),
        Ok(answer) => read_answer(name, &answer),
    }
}

/// The value from a `GetParameter` answer, or the error it says. The
/// answer's body is quoted only when it is an error (it holds no value then).
fn read_answer(name: &str, answer: &Answer) -> Result<SecretValue, SecretError> {
    #[derive(Deserialize)]
    struct Output {
        #[serde(rename = "Parameter")]
        parameter: Option<Parameter>,
    }
    #[derive(Deserialize)]
    struct Parameter {
        #[serde(rename = "Value")]
        value: Option<String>,
    }
    let failed = |why: &str| SecretError::Failed { name: name.to_owned(), source: anyhow::anyhow!("{why}") };
    if answer.is_success() {
        // A serde error could quote the value: say only what was wrong.
        let output: Output = serde_json::from_slice(&answer.body)
            .map_err(|_| failed("GetParameter answered a body that is not its JSON"))?;
        let value =
            output.parameter.and_then(|p| p.value).ok_or_else(|| failed("GetParameter answered without a value"))?;
        return Ok(SecretValue(Arc::from(value)));
    }
    // `{"__type": …, "message": …}` (AWS spells it `message` or `Message`; moto both).
    let fault: serde_json::Value = serde_json::from_slice(&answer.body).unwrap_or_default();
    let field = |k: &str| fault.get(k).and_then(|v| v.as_str()).unwrap_or_default();
    let kind = field("__type");
    // `com.amazonaws.ssm#ParameterNotFound`, or `ParameterNotFound:<detail>`.
    let code = kind.rsplit('#').next().unwrap_or_default();
    let code = code.split(':').next().unwrap_or_default();
    if code == "ParameterNotFound" {
        return Err(SecretError::NotFound { name: name.to_owned() });
    }
    let status = answer.status;
    let detail = match (kind, field("message"), field("Message")) {
        ("", _, _) => answer.text().chars().take(200).collect(),
        (_, "", m) | (_, m, _) => m.to_owned(),
    };
    let source = anyhow::anyhow!("GetParameter answered {status} {code}: {detail}");
    if status >= 500 || status == 429 || super::THROTTLING.contains(&code) {
        Err(SecretError::Unavailable { name: name.to_owned(), source })
    } else {
        Err(SecretError::Failed { name: name.to_owned(), source })
    }
}

/// One SSM parameter's value, cached for a TTL.
pub struct SecretParameter {
    name: String,
    source: Arc<dyn SecretSource>,
    clock: Arc<dyn Clock>,
    ttl: chrono::TimeDelta,
    stale_grace: chrono::TimeDelta,
    cached: Mutex<Option<(SecretValue, Timestamp)>>,
}

impl fmt::Debug for SecretParameter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretParameter").field("name", &self.name).field("ttl", &self.ttl).finish_non_exhaustive()
    }
}

impl SecretParameter {
    /// The parameter `name` (e.g. `/octoscope/prod/webhook-secret`), read
    /// through `client`, cached for [`DEFAULT_TTL`].
    pub fn new(client: SsmClient, name: impl Into<String>) -> Self {
        Self::with_source(Arc::new(SsmSource(client)), name)
    }

    pub fn with_source(source: Arc<dyn SecretSource>, name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            source,
            clock: Arc::new(SystemClock),
            ttl: DEFAULT_TTL,
            stale_grace: DEFAULT_STALE_GRACE,
            cached: Mutex::new(None),
        }
    }

    pub fn with_ttl(mut self, ttl: chrono::TimeDelta) -> Self {
        self.ttl = ttl;
        self
    }

    /// How long past the TTL a value is still served while SSM is unreachable.
    pub fn with_stale_grace(mut self, grace: chrono::TimeDelta) -> Self {
        self.stale_grace = grace;
        self
    }

    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The value: the cached one while it is fresh, else read again. Callers
    /// wait on one read at a time (no stampede on expiry).
    pub async fn get(&self) -> Result<SecretValue, SecretError> {
        let mut cached = self.cached.lock().await;
        let now = self.clock.now();
        if let Some((value, read_at)) = cached.as_ref()
            && now < *read_at + self.ttl
        {
            return Ok(value.clone());
        }
        match self.source.fetch(&self.name).await {
            Ok(value) => {
                *cached = Some((value.clone(), now));
                Ok(value)
            }
            Err(e) if e.is_retryable() => match cached.as_ref() {
                Some((value, read_at)) if now < *read_at + self.ttl + self.stale_grace => {
                    tracing::warn!(parameter = self.name, error = ?e, "SSM unavailable; using the cached value a while longer");
                    Ok(value.clone())
                }
                _ => Err(e),
            },
            Err(e) => Err(e),
        }
    }

    /// Forget the cached value (the next `get` reads SSM).
    pub async fn invalidate(&self) {
        *self.cached.lock().await = None;
    }
}

/// The webhook secrets from an SSM parameter (cached with a TTL by
/// [`SecretParameter`]), parsed again only when the value changes.
pub struct SsmWebhookSecrets {
    param: SecretParameter,
    parsed: std::sync::Mutex<Option<(SecretValue, Arc<WebhookSecrets>)>>,
}

impl SsmWebhookSecrets {
    pub fn new(param: SecretParameter) -> Self {
        Self { param, parsed: std::sync::Mutex::new(None) }
    }
}

#[async_trait]
impl WebhookSecretSource for SsmWebhookSecrets {
    async fn secrets(&self) -> Result<Arc<WebhookSecrets>, SecretUnavailable> {
        let value = self.param.get().await.map_err(|e| SecretUnavailable(e.into()))?;
        let mut parsed = self.parsed.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((seen, secrets)) = parsed.as_ref()
            && *seen == value
        {
            return Ok(secrets.clone());
        }
        // A bad value is a deployment error; retryable, so that fixing the
        // parameter lets GitHub's redelivery through.
        let secrets = Arc::new(WebhookSecrets::parse(value.expose()).map_err(|e| {
            SecretUnavailable(
                anyhow::Error::new(e)
                    .context(format!("SSM parameter {} does not hold a webhook secret list", self.param.name())),
            )
        })?);
        *parsed = Some((value, secrets.clone()));
        Ok(secrets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::clock::ManualClock;
    use chrono::{TimeZone as _, Utc};

    /// Answers from a script: a value, or an error.
    struct Script(std::sync::Mutex<Vec<Result<&'static str, bool>>>);

    #[async_trait]
    impl SecretSource for Script {
        async fn fetch(&self, name: &str) -> Result<SecretValue, SecretError> {
            let next = self.0.lock().unwrap().remove(0);
            match next {
                Ok(v) => Ok(SecretValue(Arc::from(v))),
                Err(true) => Err(SecretError::Unavailable { name: name.into(), source: anyhow::anyhow!("throttled") }),
                Err(false) => Err(SecretError::NotFound { name: name.into() }),
            }
        }
    }

    #[test]
    fn retries_wait_a_random_part_of_a_doubling_backoff() {
        for attempt in 1..=3 {
            let cap = BACKOFF * 2u32.pow(attempt - 1);
            let waits: Vec<Duration> = (0..200).map(|_| backoff(attempt)).collect();
            assert!(waits.iter().all(|w| *w <= cap), "attempt {attempt}: a wait above {cap:?}");
            // Spread over the range, not one fixed value.
            assert!(waits.iter().any(|w| *w < cap / 4) && waits.iter().any(|w| *w > cap * 3 / 4), "{waits:?}");
        }
    }

    #[tokio::test]
    async fn an_outage_serves_the_expired_value_for_the_grace_only() {
        // GIVEN a value read at 0, a 5-minute TTL and a 1-hour grace, then SSM unreachable
        let t0 = Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap();
        let clock = Arc::new(ManualClock::new(t0));
        let source = Arc::new(Script(std::sync::Mutex::new(vec![Ok("s1"), Err(true), Err(true), Err(false)])));
        let secret = SecretParameter::with_source(source, "/p")
            .with_ttl(chrono::TimeDelta::minutes(5))
            .with_stale_grace(chrono::TimeDelta::hours(1))
            .with_clock(clock.clone());
        assert_eq!(secret.get().await.unwrap().expose(), "s1");
        // WHEN it expires during the outage THEN the old value is still served
        clock.set(t0 + chrono::TimeDelta::minutes(30));
        assert_eq!(secret.get().await.unwrap().expose(), "s1");
        // AND past TTL + grace the outage is an error
        clock.set(t0 + chrono::TimeDelta::minutes(66));
        assert!(secret.get().await.unwrap_err().is_retryable());
        // AND a parameter that is gone is an error at once, whatever is cached
        clock.set(t0 + chrono::TimeDelta::minutes(67));
        assert!(matches!(secret.get().await.unwrap_err(), SecretError::NotFound { .. }));
    }

    fn answer(status: u16, body: &str) -> Answer {
        Answer { status, body: body.as_bytes().to_vec() }
    }

    #[test]
    fn get_parameter_answers_are_read_as_values_or_typed_errors() {
        // A value
        let ok =
            read_answer("/p", &answer(200, r#"{"Parameter":{"Name":"/p","Type":"SecureString","Value":"hunter2"}}"#));
        assert_eq!(ok.unwrap().expose(), "hunter2");
        // A missing parameter: a clear, permanent error
        let e = read_answer("/p", &answer(400, r#"{"__type":"ParameterNotFound","message":""}"#)).unwrap_err();
        assert!(matches!(e, SecretError::NotFound { .. }) && !e.is_retryable(), "{e:?}");
        // Access denied: permanent, naming the parameter and why
        let denied = r#"{"__type":"com.amazon.coral.service#AccessDeniedException","Message":"User: arn:aws:sts::1:assumed-role/r is not authorized to perform: ssm:GetParameter"}"#;
        let e = read_answer("/octoscope/api-tokens", &answer(400, denied)).unwrap_err();
        assert!(matches!(e, SecretError::Failed { .. }) && !e.is_retryable(), "{e:?}");
        assert!(crate::error::error_chain(&e).contains("/octoscope/api-tokens"), "{e}");
        assert!(format!("{e:#?}").contains("AccessDeniedException"), "{e:?}");
        // Throttling, 429 and 5xx: retryable
        for (status, body) in [
            (400, r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#),
            (429, "Too Many Requests"),
            (500, r#"{"__type":"InternalServerError"}"#),
            (503, "<html>unavailable</html>"),
        ] {
            let e = read_answer("/p", &answer(status, body)).unwrap_err();
            assert!(e.is_retryable(), "{status} {body}: {e:?}");
        }
        // A success without a value, or not JSON: an error that quotes nothing of the body
        for body in [r#"{"Parameter":{"Name":"/p"}}"#, r#"{"Parameter":{"Value":["hunter2"]}}"#] {
            let e = read_answer("/p", &answer(200, body)).unwrap_err();
            assert!(!e.is_retryable() && !format!("{e:?}").contains("hunter2"), "{e:?}");
        }
    }

    #[tokio::test]
    async fn a_client_without_a_region_fails_each_read_naming_the_parameter_and_why() {
        let source = SsmSource(SsmClient::new(&aws_config::SdkConfig::builder().build()));
        let e = source.fetch("/octoscope/api-tokens").await.unwrap_err();
        assert!(matches!(e, SecretError::Failed { .. }) && !e.is_retryable(), "{e:?}");
        let chain = crate::error::error_chain(&e);
        assert!(
            chain.contains("/octoscope/api-tokens") && chain.contains("AWS region for SSM: none configured"),
            "{chain}"
        );
    }

    #[test]
    fn the_endpoint_is_the_configured_one_or_ssm_of_the_region() {
        let sdk = |region: &str, url: Option<&str>| {
            let mut b = aws_config::SdkConfig::builder().region(aws_config::Region::new(region.to_owned()));
            b.set_endpoint_url(url.map(str::to_owned));
            b.build()
        };
        assert_eq!(ssm_endpoint(&sdk("eu-west-1", None)).unwrap(), "https://ssm.eu-west-1.amazonaws.com");
        assert_eq!(ssm_endpoint(&sdk("cn-north-1", None)).unwrap(), "https://ssm.cn-north-1.amazonaws.com.cn");
        assert_eq!(ssm_endpoint(&sdk("us-east-1", Some("http://127.0.0.1:5000"))).unwrap(), "http://127.0.0.1:5000");
        assert!(ssm_endpoint(&aws_config::SdkConfig::builder().build()).is_err());
    }

    #[test]
    fn a_secret_does_not_print() {
        let v = SecretValue(Arc::from("hunter2"));
        assert_eq!(format!("{v:?}"), "SecretValue(redacted)");
        let e = SecretError::NotFound { name: "/x/secret".into() };
        assert!(e.to_string().contains("/x/secret"));
        assert!(!e.is_retryable());
    }
}
