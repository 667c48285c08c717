//! Configuration, read once at start. Every error names the variable at fault
//! and says why, so a bad config is refused before anything listens.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::webhook::WebhookSecrets;

/// GitHub's own cap on a webhook payload.
pub const DEFAULT_MAX_BODY_BYTES: usize = 25 * 1024 * 1024;
/// API tokens shorter than this are refused: they would be guessable.
pub const MIN_TOKEN_LEN: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}: {why}")]
pub struct ConfigError {
    pub var: &'static str,
    pub why: String,
}

impl ConfigError {
    pub fn new(var: &'static str, why: impl Into<String>) -> Self {
        Self { var, why: why.into() }
    }
}

/// Bearer tokens for `/api/*`. Only their SHA-256 digests are kept, and a
/// presented token is compared with each in constant time.
#[derive(Clone, Default)]
pub struct ApiTokens {
    digests: Vec<[u8; 32]>,
}

impl fmt::Debug for ApiTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiTokens({} token(s), redacted)", self.digests.len())
    }
}

impl ApiTokens {
    /// Comma-separated tokens, each at least [`MIN_TOKEN_LEN`] characters.
    pub fn parse(list: &str) -> Result<Self, ConfigError> {
        let mut digests = Vec::new();
        for token in list.split(',').map(str::trim) {
            if token.len() < MIN_TOKEN_LEN {
                return Err(ConfigError::new(
                    "OCTOSCOPE_API_TOKENS",
                    format!("every token needs at least {MIN_TOKEN_LEN} characters (tokens are comma-separated)"),
                ));
            }
            digests.push(Sha256::digest(token.as_bytes()).into());
        }
        Ok(Self { digests })
    }

    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }

    pub fn accepts(&self, presented: &str) -> bool {
        let d: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        self.digests.iter().fold(false, |ok, known| ok | bool::from(known.ct_eq(&d)))
    }
}

/// Where the webhook secret came from (said at start, never the secret itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    Environment,
    File { path: PathBuf, created: bool },
}

/// Everything `octoscope serve` needs, validated.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub max_body_bytes: usize,
    pub secrets: WebhookSecrets,
    pub secret_source: SecretSource,
    pub api_tokens: ApiTokens,
}

impl ServeConfig {
    /// Build from the command line's `listen` and `data_dir` and the
    /// environment (`env` looks a variable up; the process environment in production).
    pub fn load(
        listen: SocketAddr,
        data_dir: PathBuf,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let api_tokens = match env("OCTOSCOPE_API_TOKENS").filter(|s| !s.trim().is_empty()) {
            Some(list) => ApiTokens::parse(&list)?,
            None => ApiTokens::default(),
        };
        if api_tokens.is_empty() && !listen.ip().is_loopback() {
            return Err(ConfigError::new(
                "OCTOSCOPE_API_TOKENS",
                format!(
                    "required when listening on {listen}, which is not a loopback address: the API would be open to the network"
                ),
            ));
        }
        let max_body_bytes = match env("OCTOSCOPE_MAX_BODY_BYTES") {
            Some(v) => {
                v.trim().parse::<usize>().ok().filter(|n| (1024..=100 * 1024 * 1024).contains(n)).ok_or_else(|| {
                    ConfigError::new("OCTOSCOPE_MAX_BODY_BYTES", "expected a number of bytes from 1024 to 104857600")
                })?
            }
            None => DEFAULT_MAX_BODY_BYTES,
        };
        let (secrets, secret_source) = match env("GITHUB_WEBHOOK_SECRET") {
            Some(list) => (
                WebhookSecrets::parse(&list).map_err(|e| ConfigError::new("GITHUB_WEBHOOK_SECRET", e.to_string()))?,
                SecretSource::Environment,
            ),
            None => secret_from_file(&data_dir)?,
        };
        Ok(Self { listen, data_dir, max_body_bytes, secrets, secret_source, api_tokens })
    }
}

/// Without `GITHUB_WEBHOOK_SECRET`, the secret lives in `DATA_DIR/webhook-secret`
/// (created once, random, readable by the owner only), so a newcomer's
/// `make run` works and the secret is never printed.
pub fn secret_from_file(data_dir: &Path) -> Result<(WebhookSecrets, SecretSource), ConfigError> {
    let path = data_dir.join("webhook-secret");
    let fail = |why: String| ConfigError::new("GITHUB_WEBHOOK_SECRET", why);
    let created = !path.exists();
    if created {
        let mut bytes = [0u8; 24];
        getrandom::fill(&mut bytes).map_err(|e| fail(format!("not set, and no random source to create one: {e}")))?;
        std::fs::create_dir_all(data_dir)
            .map_err(|e| fail(format!("not set, and {} cannot be created: {e}", data_dir.display())))?;
        write_private(&path, hex::encode(bytes).as_bytes())
            .map_err(|e| fail(format!("not set, and {} cannot be written: {e}", path.display())))?;
    }
    let text = std::fs::read_to_string(&path)
        .map_err(|e| fail(format!("not set, and {} cannot be read: {e}", path.display())))?;
    let secrets = WebhookSecrets::parse(text.trim()).map_err(|e| fail(format!("{}: {e}", path.display())))?;
    Ok((secrets, SecretSource::File { path, created }))
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts.open(path)?.write_all(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn non_loopback_without_tokens_is_refused_naming_the_variable() {
        // GIVEN a public listen address and no tokens WHEN loading THEN the error names OCTOSCOPE_API_TOKENS
        let dir = tempfile::tempdir().unwrap();
        let err = ServeConfig::load(
            "0.0.0.0:8080".parse().unwrap(),
            dir.path().into(),
            env(&[("GITHUB_WEBHOOK_SECRET", "s")]),
        )
        .unwrap_err();
        assert_eq!(err.var, "OCTOSCOPE_API_TOKENS");
        assert!(err.to_string().contains("0.0.0.0:8080"));
        let ok = ServeConfig::load(
            "0.0.0.0:8080".parse().unwrap(),
            dir.path().into(),
            env(&[("GITHUB_WEBHOOK_SECRET", "s"), ("OCTOSCOPE_API_TOKENS", "a-token-of-enough-length")]),
        )
        .unwrap();
        assert!(ok.api_tokens.accepts("a-token-of-enough-length"));
        assert!(!ok.api_tokens.accepts("a-token-of-enough-lengtH"));
    }

    #[test]
    fn bad_values_are_refused_naming_the_variable() {
        let dir = tempfile::tempdir().unwrap();
        let l = "127.0.0.1:0".parse().unwrap();
        let cases = [
            ("OCTOSCOPE_API_TOKENS", "short"),
            ("OCTOSCOPE_MAX_BODY_BYTES", "lots"),
            ("OCTOSCOPE_MAX_BODY_BYTES", "10"),
            ("GITHUB_WEBHOOK_SECRET", "a,,b"),
        ];
        for (var, value) in cases {
            let err = ServeConfig::load(l, dir.path().into(), env(&[(var, value)])).unwrap_err();
            assert_eq!(err.var, var, "{var}={value}");
        }
    }

    #[test]
    fn a_missing_secret_is_created_once_in_the_data_dir_and_kept_private() {
        let dir = tempfile::tempdir().unwrap();
        let l = "127.0.0.1:0".parse().unwrap();
        let first = ServeConfig::load(l, dir.path().into(), env(&[])).unwrap();
        assert!(matches!(first.secret_source, SecretSource::File { created: true, .. }));
        let second = ServeConfig::load(l, dir.path().into(), env(&[])).unwrap();
        assert!(matches!(second.secret_source, SecretSource::File { created: false, .. }));
        let secret = std::fs::read_to_string(dir.path().join("webhook-secret")).unwrap();
        let sig = crate::webhook::sign(secret.trim(), b"{}");
        assert!(second.secrets.verify(Some(sig.as_bytes()), b"{}").is_ok());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("webhook-secret")).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "the secret file must not be readable by others");
        }
    }
}
