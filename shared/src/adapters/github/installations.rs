//! Which budget a request is spent from. A token is one budget. A GitHub App
//! has one per installation: each installation (one account: an organisation
//! or a user) has its own tokens, its own rate limit and its own concurrency
//! cap, and sees only the repositories of its account. So every request about
//! a repository or an organisation goes through the installation on its owner
//! (logins compared case-insensitively); an owner without one is a
//! [`GitHubError::NotInstalled`] for that request alone.

use std::collections::BTreeMap;

use http::Method;
use octocrab::Octocrab;

use super::jwt::AppKey;
use super::transport::{self, Transport};
use crate::domain::InstallationRequests;
use crate::ports::{GitHubError, RateBudget};

/// One budget: its name (the installation's account login, or
/// [`InstallationRequests::TOKEN`]) and the transport that spends it.
pub(crate) struct Route {
    pub name: String,
    pub transport: Transport,
}

pub(crate) enum Routes {
    /// A token, or the one installation `GITHUB_APP_INSTALLATION_ID` names:
    /// every request goes through it, whoever the owner.
    One(Box<Route>),
    /// Every installation of the app, by its account login (lowercase).
    ByOwner(BTreeMap<String, Route>),
}

impl Routes {
    /// The transport for requests about `owner`'s repositories or organisation.
    pub fn of(&self, owner: &str) -> Result<&Transport, GitHubError> {
        match self {
            Self::One(route) => Ok(&route.transport),
            Self::ByOwner(routes) => routes
                .get(&owner.to_ascii_lowercase())
                .map(|r| &r.transport)
                .ok_or_else(|| GitHubError::NotInstalled { owner: owner.to_owned() }),
        }
    }

    /// More than one budget: one can be spent while the others read on.
    pub fn several(&self) -> bool {
        matches!(self, Self::ByOwner(routes) if routes.len() > 1)
    }

    fn all(&self) -> Box<dyn Iterator<Item = &Route> + '_> {
        match self {
            Self::One(route) => Box::new(std::iter::once(route.as_ref())),
            Self::ByOwner(routes) => Box::new(routes.values()),
        }
    }

    /// Every budget together: requests summed; the lowest `remaining` (and
    /// its limit and reset), the one to worry about.
    pub fn budget(&self) -> RateBudget {
        let mut total = RateBudget::default();
        for route in self.all() {
            let b = route.transport.budget();
            total.requests += b.requests;
            if b.remaining.is_some() && (total.remaining.is_none() || b.remaining < total.remaining) {
                (total.remaining, total.limit, total.reset_at) = (b.remaining, b.limit, b.reset_at);
            }
        }
        total
    }

    /// Requests per budget name; budgets that sent none are left out.
    pub fn requests(&self) -> InstallationRequests {
        self.all().map(|r| (r.name.clone(), r.transport.budget().requests)).filter(|&(_, n)| n > 0).collect()
    }

    /// Budget names, for logs (never a secret).
    pub fn names(&self) -> Vec<&str> {
        self.all().map(|r| r.name.as_str()).collect()
    }
}

/// An installation of the app, as `GET /app/installations` lists it.
#[derive(Debug, Clone, serde::Deserialize)]
pub(crate) struct Installation {
    pub id: u64,
    pub account: Account,
    /// What the installation is granted: `read`, `write` or `admin` by
    /// permission name (GitHub's names: `pull_requests`, `contents`, …).
    #[serde(default)]
    pub permissions: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone, serde::Deserialize)]
pub(crate) struct Account {
    pub login: String,
}

/// Installations listed per page (GitHub's most).
const PER_PAGE: usize = 100;

/// Every installation of the app (`GET /app/installations`, paged, as the app).
pub(crate) async fn installations(
    client: &Octocrab,
    key: &AppKey,
    app_id: u64,
) -> Result<Vec<Installation>, GitHubError> {
    let mut out = Vec::new();
    for page in 1u32.. {
        let path = format!("/app/installations?per_page={PER_PAGE}&page={page}");
        let listed: Vec<Installation> =
            transport::app_request(client, key, app_id, Method::GET, &path, None, "listing the app's installations")
                .await?;
        let last = listed.len() < PER_PAGE;
        out.extend(listed);
        if last {
            break;
        }
    }
    if out.is_empty() {
        return Err(GitHubError::Forbidden("the GitHub App is not installed on any account".into()));
    }
    Ok(out)
}

/// The installation `id` names (`GET /app/installations/{id}`, as the app).
pub(crate) async fn installation(
    client: &Octocrab,
    key: &AppKey,
    app_id: u64,
    id: u64,
) -> Result<Installation, GitHubError> {
    let path = format!("/app/installations/{id}");
    transport::app_request(client, key, app_id, Method::GET, &path, None, "reading the app's installation").await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_owner_without_an_installation_is_named_in_its_error() {
        let routes = Routes::ByOwner(BTreeMap::new());
        let err = routes.of("Elsewhere").err().expect("no installation");
        assert!(!err.is_retryable());
        assert!(err.to_string().contains("not installed on Elsewhere"), "{err}");
    }
}
