//! `octoscope serve`'s configuration (one machine).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::{ApiTokens, ConfigError, DEFAULT_MAX_BODY_BYTES, NotifyConfig};
use crate::webhook::WebhookSecrets;

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
    /// Notifications: targets, retries, the late window.
    pub notify: NotifyConfig,
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
        let notify = NotifyConfig::load(&env)?;
        Ok(Self { listen, data_dir, max_body_bytes, secrets, secret_source, api_tokens, notify })
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
