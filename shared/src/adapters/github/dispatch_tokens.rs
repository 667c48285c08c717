//! `repository_dispatch` credentials as a GitHub App ([`DispatchTokens`]):
//! the installation token of the installation on the target repository's
//! owner. An app may be installed on several accounts (one per
//! organisation), each installation's tokens reaching only its own account's
//! repositories, so the owner picks the installation (logins compared
//! case-insensitively), as for the GitHub adapter's reads (`installations`).
//! With `GITHUB_APP_INSTALLATION_ID` that one installation is used for every
//! owner.
//!
//! Each token is narrowed to what one dispatch needs: minted with
//! `repositories: [the repository]` and `permissions: {contents: write}`
//! (GitHub's least-privilege request body for installation tokens), so a
//! token that escaped could dispatch to, and write the contents of, that one
//! repository only, and read nothing else the app can read. The app needs
//! the Contents write permission on the target repository's owner; a
//! repository outside the installation, or an app without that permission,
//! is GitHub's 422 at minting, which the attempt's log quotes.
//!
//! Nothing is asked of GitHub until a dispatch needs it (so `serve` starts
//! while GitHub is unreachable): the installations are listed on first use,
//! and again when an owner has none (the app may have been installed since;
//! at most once a minute) or minting failed; a repository's token is minted
//! when first needed and kept until five minutes before it expires.
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
use crate::domain::{RepoName, Timestamp};
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
    /// Each repository's token (by installation and lowercase name) and its expiry.
    tokens: HashMap<(u64, String), (SecretString, Timestamp)>,
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

    /// A token of installation `id` for `repo` alone, with the Contents
    /// write permission: the cached one unless it expires within
    /// [`RENEW_BEFORE`], else a new one.
    async fn token_of(&self, cache: &mut Cache, id: u64, repo: &RepoName) -> Result<SecretString, GitHubError> {
        let key = (id, repo.name().to_ascii_lowercase());
        if let Some((token, expires_at)) = cache.tokens.get(&key)
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
        let narrowed = serde_json::json!({ "repositories": [repo.name()], "permissions": { "contents": "write" } });
        let what = format!("minting an installation token for repository_dispatch to {repo}");
        let minted: Minted = match app_request(
            &self.client,
            &self.key,
            self.app_id,
            Method::POST,
            &path,
            Some(&narrowed),
            &what,
        )
        .await
        {
            Ok(m) => m,
            Err(e) => {
                // The installation may be gone: list them again next time.
                cache.tokens.remove(&key);
                if self.installation_id.is_none() {
                    cache.installations = None;
                }
                return Err(e);
            }
        };
        let token = SecretString::from(minted.token);
        cache.tokens.insert(key, (token.clone(), minted.expires_at));
        tracing::debug!(installation = id, %repo, expires_at = %minted.expires_at, "installation token minted for repository_dispatch");
        Ok(token)
    }
}

#[async_trait]
impl DispatchTokens for AppDispatchTokens {
    async fn token(&self, repo: &RepoName) -> anyhow::Result<String> {
        let mut cache = self.state.lock().await;
        let id = self.installation_of(&mut cache, repo.owner()).await?;
        let token = self.token_of(&mut cache, id, repo).await?;
        Ok(token.expose_secret().to_owned())
    }
}
