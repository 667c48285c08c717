//! Configuration, read once at start. Every error names the variable at fault
//! and says why, so a bad config is refused before anything listens.

use std::fmt;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::domain::RepoName;
use crate::ports::Tracked;

#[cfg(feature = "aws")]
pub mod aws;
pub mod local;

pub use local::*;

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

/// How Octoscope authenticates to GitHub's API.
#[derive(Clone, PartialEq, Eq)]
pub enum GitHubCredentials {
    /// `GITHUB_TOKEN`: a personal access token or an installation token.
    Token(String),
    /// `GITHUB_APP_ID` + `GITHUB_APP_PRIVATE_KEY` (PEM text) or `GITHUB_APP_PRIVATE_KEY_PATH`,
    /// optionally `GITHUB_APP_INSTALLATION_ID`.
    App { app_id: u64, private_key_pem: String, installation_id: Option<u64> },
}

impl fmt::Debug for GitHubCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Token(_) => f.write_str("Token(redacted)"),
            Self::App { app_id, installation_id, .. } => {
                write!(f, "App {{ app_id: {app_id}, installation_id: {installation_id:?}, private key redacted }}")
            }
        }
    }
}

/// GitHub API settings and what to track, for `check`, `backfill` and the
/// scheduled check of `serve`.
#[derive(Debug, Clone)]
pub struct GitHubSettings {
    /// `GITHUB_API_URL`: `https://api.github.com` by default; `https://HOST/api/v3` on Enterprise Server.
    pub api_url: String,
    pub credentials: GitHubCredentials,
    /// `OCTOSCOPE_REPOS` and `OCTOSCOPE_ORGS` (comma-separated).
    pub tracked: Tracked,
}

impl GitHubSettings {
    /// None when no credentials are configured (completeness checks are then off).
    pub fn load(env: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, ConfigError> {
        let set = |k: &str| env(k).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let api_url = set("GITHUB_API_URL").unwrap_or_else(|| "https://api.github.com".to_owned());
        if !(api_url.starts_with("https://") || api_url.starts_with("http://")) {
            return Err(ConfigError::new(
                "GITHUB_API_URL",
                "expected an http(s) URL, e.g. https://github.example.com/api/v3",
            ));
        }
        let mut tracked = Tracked::default();
        for r in set("OCTOSCOPE_REPOS").unwrap_or_default().split(',').map(str::trim).filter(|r| !r.is_empty()) {
            tracked.repos.push(RepoName::parse(r).map_err(|e| ConfigError::new("OCTOSCOPE_REPOS", e.to_string()))?);
        }
        for o in set("OCTOSCOPE_ORGS").unwrap_or_default().split(',').map(str::trim).filter(|o| !o.is_empty()) {
            if !o.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                return Err(ConfigError::new("OCTOSCOPE_ORGS", format!("{o:?} is not an organisation login")));
            }
            tracked.orgs.push(o.to_owned());
        }
        let credentials = match (set("GITHUB_TOKEN"), set("GITHUB_APP_ID")) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::new("GITHUB_TOKEN", "set either GITHUB_TOKEN or GITHUB_APP_ID, not both"));
            }
            (Some(token), None) => GitHubCredentials::Token(token),
            (None, Some(id)) => {
                let app_id =
                    id.parse().map_err(|_| ConfigError::new("GITHUB_APP_ID", "expected the app's numeric id"))?;
                let private_key_pem = match (set("GITHUB_APP_PRIVATE_KEY"), set("GITHUB_APP_PRIVATE_KEY_PATH")) {
                    (Some(pem), _) => pem.replace("\\n", "\n"),
                    (None, Some(path)) => std::fs::read_to_string(&path).map_err(|e| {
                        ConfigError::new("GITHUB_APP_PRIVATE_KEY_PATH", format!("cannot read {path}: {e}"))
                    })?,
                    (None, None) => {
                        return Err(ConfigError::new(
                            "GITHUB_APP_PRIVATE_KEY",
                            "required with GITHUB_APP_ID (or GITHUB_APP_PRIVATE_KEY_PATH)",
                        ));
                    }
                };
                if !private_key_pem.contains("PRIVATE KEY") {
                    return Err(ConfigError::new("GITHUB_APP_PRIVATE_KEY", "expected a PEM private key"));
                }
                let installation_id = set("GITHUB_APP_INSTALLATION_ID")
                    .map(|v| v.parse().map_err(|_| ConfigError::new("GITHUB_APP_INSTALLATION_ID", "expected a number")))
                    .transpose()?;
                GitHubCredentials::App { app_id, private_key_pem, installation_id }
            }
            (None, None) => {
                if !tracked.repos.is_empty() || !tracked.orgs.is_empty() {
                    return Err(ConfigError::new(
                        "GITHUB_TOKEN",
                        "OCTOSCOPE_REPOS/OCTOSCOPE_ORGS need GitHub credentials: set GITHUB_TOKEN or a GitHub App",
                    ));
                }
                return Ok(None);
            }
        };
        Ok(Some(Self { api_url, credentials, tracked }))
    }

    /// How long GitHub keeps a hook's deliveries for redelivery: 3 days on
    /// GitHub.com (and GHE.com), 7 days on GitHub Enterprise Server.
    pub fn redelivery_window(&self) -> chrono::TimeDelta {
        let rest = self.api_url.split_once("://").map_or(self.api_url.as_str(), |(_, r)| r);
        let host = rest.split(['/', ':']).next().unwrap_or_default().to_ascii_lowercase();
        if host == "api.github.com" || host.ends_with(".ghe.com") {
            chrono::TimeDelta::days(3)
        } else {
            chrono::TimeDelta::days(7)
        }
    }
}

/// Notifications' settings (shared/docs/notifications.md), on one machine and on AWS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyConfig {
    /// `OCTOSCOPE_NOTIFY_ALLOW_PRIVATE=1`: targets may be `http://` and on
    /// private or loopback addresses (tests, on-premises receivers). Link-local
    /// and cloud metadata addresses stay refused.
    pub allow_private: bool,
    /// `OCTOSCOPE_NOTIFY_ATTEMPTS` (1–20, default 6): attempts per notification.
    pub attempts: u32,
    /// `OCTOSCOPE_NOTIFY_HORIZON_SECONDS` (60–604800, default 7200): about
    /// how long the attempts spread over.
    pub horizon: std::time::Duration,
    /// `OCTOSCOPE_NOTIFY_LATE_WINDOW_HOURS` (1–720, default 24): how old a
    /// transition the integrity check finds may be and still fire.
    pub late_window: chrono::TimeDelta,
    /// `OCTOSCOPE_PUBLIC_URL`: the dashboard's address, for links in messages.
    pub public_url: Option<String>,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        Self {
            allow_private: false,
            attempts: 6,
            horizon: std::time::Duration::from_secs(2 * 3600),
            late_window: chrono::TimeDelta::hours(24),
            public_url: None,
        }
    }
}

impl NotifyConfig {
    pub fn load(env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let d = Self::default();
        let number = |var: &'static str, lo: u64, hi: u64, default: u64| -> Result<u64, ConfigError> {
            match env(var).filter(|v| !v.trim().is_empty()) {
                None => Ok(default),
                Some(v) => v
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|n| (lo..=hi).contains(n))
                    .ok_or_else(|| ConfigError::new(var, format!("expected a whole number from {lo} to {hi}"))),
            }
        };
        let allow_private = match env("OCTOSCOPE_NOTIFY_ALLOW_PRIVATE").as_deref().map(str::trim) {
            None | Some("" | "0" | "false") => false,
            Some("1" | "true") => true,
            Some(_) => return Err(ConfigError::new("OCTOSCOPE_NOTIFY_ALLOW_PRIVATE", "expected 1 or 0")),
        };
        let public_url = match env("OCTOSCOPE_PUBLIC_URL").filter(|v| !v.trim().is_empty()) {
            None => None,
            Some(v) => {
                let v = v.trim().trim_end_matches('/').to_owned();
                if !(v.starts_with("https://") || v.starts_with("http://")) || v.chars().any(char::is_whitespace) {
                    return Err(ConfigError::new("OCTOSCOPE_PUBLIC_URL", "expected an http(s):// address"));
                }
                Some(v)
            }
        };
        Ok(Self {
            allow_private,
            attempts: number("OCTOSCOPE_NOTIFY_ATTEMPTS", 1, 20, u64::from(d.attempts))? as u32,
            horizon: std::time::Duration::from_secs(number(
                "OCTOSCOPE_NOTIFY_HORIZON_SECONDS",
                60,
                604_800,
                d.horizon.as_secs(),
            )?),
            late_window: chrono::TimeDelta::hours(number("OCTOSCOPE_NOTIFY_LATE_WINDOW_HOURS", 1, 720, 24)? as i64),
            public_url,
        })
    }
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
    fn notify_settings_are_refused_naming_the_variable() {
        assert_eq!(NotifyConfig::load(env(&[])).unwrap(), NotifyConfig::default());
        for (var, value) in [
            ("OCTOSCOPE_NOTIFY_ALLOW_PRIVATE", "yes please"),
            ("OCTOSCOPE_NOTIFY_ATTEMPTS", "0"),
            ("OCTOSCOPE_NOTIFY_HORIZON_SECONDS", "ten"),
            ("OCTOSCOPE_NOTIFY_LATE_WINDOW_HOURS", "9999"),
            ("OCTOSCOPE_PUBLIC_URL", "javascript:alert(1)"),
        ] {
            assert_eq!(NotifyConfig::load(env(&[(var, value)])).unwrap_err().var, var);
        }
        let c = NotifyConfig::load(env(&[("OCTOSCOPE_NOTIFY_ALLOW_PRIVATE", "1"), ("OCTOSCOPE_NOTIFY_ATTEMPTS", "3")]))
            .unwrap();
        assert!(c.allow_private);
        assert_eq!(c.attempts, 3);
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
    fn a_presented_token_is_accepted_only_when_it_is_a_whole_configured_token() {
        // GIVEN two tokens (compared as SHA-256 digests, in constant time, against every token)
        let tokens = ApiTokens::parse("first-token-0123456789, second-token-abcdef").unwrap();
        // WHEN each is presented THEN it passes
        assert!(tokens.accepts("first-token-0123456789"));
        assert!(tokens.accepts("second-token-abcdef"));
        // AND a prefix, a longer token, one differing in its last or first byte, or none, fails
        for wrong in [
            "first-token-012345678",
            "first-token-0123456789X",
            "first-token-0123456780",
            "Eirst-token-0123456789",
            "first-token-0123456789,second-token-abcdef",
            "",
        ] {
            assert!(!tokens.accepts(wrong), "{wrong:?} must be refused");
        }
        // AND the configured values are neither kept nor printed
        assert!(!format!("{tokens:?}").contains("token-"), "{tokens:?}");
    }

    #[test]
    fn a_refused_token_list_does_not_echo_its_tokens() {
        for list in ["short-secret", "a-long-enough-secret-token,,", "a-long-enough-secret-token, tiny"] {
            let err = ApiTokens::parse(list).unwrap_err().to_string();
            assert!(!err.contains("secret") && !err.contains("tiny"), "{err}");
        }
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
    fn github_settings_validate_and_redact() {
        assert!(GitHubSettings::load(env(&[])).unwrap().is_none());
        let s = GitHubSettings::load(env(&[("GITHUB_TOKEN", "ghp_secret"), ("OCTOSCOPE_REPOS", "a/b, c/d")]))
            .unwrap()
            .unwrap();
        assert_eq!(s.tracked.repos.len(), 2);
        assert!(!format!("{s:?}").contains("ghp_secret"));
        for (pairs, var) in [
            (&[("OCTOSCOPE_REPOS", "a/b")][..], "GITHUB_TOKEN"),
            (&[("GITHUB_TOKEN", "t"), ("OCTOSCOPE_REPOS", "nope")], "OCTOSCOPE_REPOS"),
            (&[("GITHUB_TOKEN", "t"), ("GITHUB_API_URL", "ftp://x")], "GITHUB_API_URL"),
            (&[("GITHUB_APP_ID", "12")], "GITHUB_APP_PRIVATE_KEY"),
            (&[("GITHUB_APP_ID", "x")], "GITHUB_APP_ID"),
        ] {
            assert_eq!(GitHubSettings::load(env(pairs)).unwrap_err().var, var);
        }
    }

    #[test]
    fn enterprise_server_keeps_deliveries_longer_than_github_com() {
        let window = |url: &str| {
            GitHubSettings::load(env(&[("GITHUB_TOKEN", "t"), ("GITHUB_API_URL", url)]))
                .unwrap()
                .unwrap()
                .redelivery_window()
                .num_days()
        };
        assert_eq!(window("https://api.github.com"), 3);
        assert_eq!(window("https://API.GitHub.com/"), 3);
        assert_eq!(window("https://api.octo.ghe.com"), 3, "GHE.com is GitHub's cloud");
        assert_eq!(window("https://github.example.com/api/v3"), 7);
        assert_eq!(window("http://127.0.0.1:8080/api/v3"), 7);
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
