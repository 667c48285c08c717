//! A secret in SSM Parameter Store (a `SecureString`), read with decryption
//! and cached for a while: a warm Lambda does not call SSM per request, and a
//! rotated value is picked up within the TTL without a cold start.
//!
//! The value is a [`SecretValue`]: no `Display`, a redacted `Debug`, and
//! errors name the parameter, never its value. [`SsmWebhookSecrets`] is the
//! webhook's secret list read this way.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_ssm::Client;
use aws_sdk_ssm::operation::get_parameter::GetParameterError;
use tokio::sync::Mutex;

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

/// `GetParameter` with decryption.
pub struct SsmSource(pub Client);

#[async_trait]
impl SecretSource for SsmSource {
    async fn fetch(&self, name: &str) -> Result<SecretValue, SecretError> {
        let out = self.0.get_parameter().name(name).with_decryption(true).send().await.map_err(|e| {
            if matches!(e.as_service_error(), Some(GetParameterError::ParameterNotFound(_))) {
                return SecretError::NotFound { name: name.to_owned() };
            }
            let retryable = super::is_retryable(&e);
            // The SDK error holds the request and response, never the value.
            let source = anyhow::Error::new(e);
            if retryable {
                SecretError::Unavailable { name: name.to_owned(), source }
            } else {
                SecretError::Failed { name: name.to_owned(), source }
            }
        })?;
        let value = out.parameter().and_then(|p| p.value()).ok_or_else(|| SecretError::Failed {
            name: name.to_owned(),
            source: anyhow::anyhow!("GetParameter answered without a value"),
        })?;
        Ok(SecretValue(Arc::from(value)))
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
    pub fn new(client: Client, name: impl Into<String>) -> Self {
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

    #[test]
    fn a_secret_does_not_print() {
        let v = SecretValue(Arc::from("hunter2"));
        assert_eq!(format!("{v:?}"), "SecretValue(redacted)");
        let e = SecretError::NotFound { name: "/x/secret".into() };
        assert!(e.to_string().contains("/x/secret"));
        assert!(!e.is_retryable());
    }
}
