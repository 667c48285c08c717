//! `repository_dispatch` credentials as a GitHub App ([`DispatchTokens`]):
//! the installation token of the installation on the target repository's
//! owner. An app may be installed on several accounts (one per
//! organisation), each installation's tokens reaching only its own account's
//! repositories, so the owner picks the installation (logins compared
//! case-insensitively), as for the GitHub adapter's reads (`installations`).
//! With `GITHUB_APP_INSTALLATION_ID` that one installation is used for every
//! owner.
//!
//! Nothing is asked of GitHub until a dispatch needs it (so `serve` starts
//! while GitHub is unreachable): the installations are listed on first use,
//! and again when an owner has none (the app may have been installed since;
//! at most once a minute) or minting failed; each installation's token is
//! minted when first needed and kept until five minutes before it expires.
//! A dispatch that needs the app installed on the repository's owner, with
//! the Contents write permission.
//!
//! Tokens and the app's JWT are never logged and never in an error: errors
//! say what was asked and GitHub's message.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::Utc;
use http::Method;
use octocrab::Octocrab;
use octocrab::secrecy::{ExposeSecret as _, SecretString};

use super::installations;
use super::jwt::AppKey;
use super::transport::app_request;
use crate::domain::Timestamp;
use crate::ports::GitHubError;
use crate::services::notify::send::DispatchTokens;

/// A token is used until this long before it expires (as the GitHub adapter's).
const RENEW_BEFORE: chrono::TimeDelta = chrono::TimeDelta::minutes(5);
/// An owner without an installation lists the installations again at most this often.
pub const RELIST_EVERY: Duration = Duration::from_secs(60);

/// Installation tokens of a GitHub App for `repository_dispatch`, per owner.
pub struct AppDispatchTokens {
    app_id: u64,
    key: Arc<AppKey>,
    /// `GITHUB_APP_INSTALLATION_ID`: this installation for every owner.
    installation_id: Option<u64>,
    /// The REST base, without credentials: the app's requests carry its JWT.
    client: Octocrab,
    state: tokio::sync::Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    /// Installation ids by account login (lowercase), and when they were listed.
    installations: Option<(BTreeMap<String, u64>, Instant)>,
    /// Each installation's token and its expiry.
    tokens: HashMap<u64, (SecretString, Timestamp)>,
}

impl std::fmt::Debug for AppDispatchTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppDispatchTokens")
            .field("app_id", &self.app_id)
            .field("installation_id", &self.installation_id)
            .finish_non_exhaustive()
    }
}

impl AppDispatchTokens {
    /// The app `app_id` with its private key, at the REST base `api_url`;
    /// `installation_id`: that installation for every owner. Makes no
    /// request; a private key that is not an RSA PEM key is an error.
    pub fn new(
        api_url: &str,
        app_id: u64,
        private_key_pem: &str,
        installation_id: Option<u64>,
    ) -> Result<Self, GitHubError> {
        let key = AppKey::from_pem(private_key_pem)
            .map_err(|e| GitHubError::Forbidden(format!("the GitHub App private key is not an RSA PEM key: {e}")))?;
        let client = super::crab(api_url.trim_end_matches('/'))?;
        Ok(Self {
            app_id,
            key: Arc::new(key),
            installation_id,
            client,
            state: tokio::sync::Mutex::new(Cache::default()),
        })
    }

    /// The installation on `owner`.
    async fn installation_of(&self, cache: &mut Cache, owner: &str) -> Result<u64, GitHubError> {
        if let Some(id) = self.installation_id {
            return Ok(id);
        }
        let login = owner.to_ascii_lowercase();
        if let Some((by_owner, listed)) = &cache.installations {
            if let Some(id) = by_owner.get(&login) {
                return Ok(*id);
            }
            if listed.elapsed() < RELIST_EVERY {
                return Err(GitHubError::NotInstalled { owner: owner.to_owned() });
            }
        }
        let listed = installations::installations(&self.client, &self.key, self.app_id).await?;
        let by_owner: BTreeMap<String, u64> =
            listed.into_iter().map(|i| (i.account.login.to_ascii_lowercase(), i.id)).collect();
        tracing::debug!(installations = ?by_owner.keys().collect::<Vec<_>>(), "the GitHub App's installations, for repository_dispatch");
        let found = by_owner.get(&login).copied();
        cache.installations = Some((by_owner, Instant::now()));
        found.ok_or_else(|| GitHubError::NotInstalled { owner: owner.to_owned() })
    }

    /// A token of installation `id`: the cached one unless it expires within
    /// [`RENEW_BEFORE`], else a new one.
    async fn token_of(&self, cache: &mut Cache, id: u64) -> Result<SecretString, GitHubError> {
        if let Some((token, expires_at)) = cache.tokens.get(&id)
            && *expires_at - Utc::now() > RENEW_BEFORE
        {
            return Ok(token.clone());
        }
        #[derive(serde::Deserialize)]
        struct Minted {
            token: String,
            expires_at: Timestamp,
        }
        let path = format!("/app/installations/{id}/access_tokens");
        let what = "minting an installation token for repository_dispatch";
        let minted: Minted = match app_request(&self.client, &self.key, self.app_id, Method::POST, &path, what).await {
            Ok(m) => m,
            Err(e) => {
                // The installation may be gone: list them again next time.
                cache.tokens.remove(&id);
                if self.installation_id.is_none() {
                    cache.installations = None;
                }
                return Err(e);
            }
        };
        let token = SecretString::from(minted.token);
        cache.tokens.insert(id, (token.clone(), minted.expires_at));
        tracing::debug!(installation = id, expires_at = %minted.expires_at, "installation token minted for repository_dispatch");
        Ok(token)
    }
}

#[async_trait]
impl DispatchTokens for AppDispatchTokens {
    async fn token(&self, owner: &str) -> anyhow::Result<String> {
        let mut cache = self.state.lock().await;
        let id = self.installation_of(&mut cache, owner).await?;
        let token = self.token_of(&mut cache, id).await?;
        Ok(token.expose_secret().to_owned())
    }
}
