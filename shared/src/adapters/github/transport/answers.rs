//! GraphQL answers and errors, and how failures are classified.

use super::*;

/// Whether a GraphQL answer is a RATE_LIMITED error (checked cheaply first:
/// most answers are data only).
pub(super) fn graphql_rate_limited(body: &[u8]) -> bool {
    const MARK: &[u8] = b"RATE_LIMITED";
    if !body.windows(MARK.len()).any(|w| w == MARK) {
        return false;
    }
    serde_json::from_slice::<GraphqlAnswer<serde::de::IgnoredAny>>(body)
        .ok()
        .and_then(|a| a.errors)
        .is_some_and(|errors| errors.iter().any(|e| e.kind.as_deref() == Some("RATE_LIMITED")))
}

/// GitHub's JSON error `message`, or the start of the body.
pub(super) fn error_message(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct E {
        message: String,
    }
    serde_json::from_slice::<E>(body)
        .map(|e| e.message)
        .unwrap_or_else(|_| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned())
}

pub(super) fn operation_name(query: &str) -> String {
    query
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("query "))
        .and_then(|rest| rest.split(['(', ' ', '{']).next())
        .unwrap_or("GraphQL query")
        .to_owned()
}

#[derive(serde::Deserialize)]
pub(super) struct GraphqlAnswer<T> {
    pub(super) data: Option<T>,
    pub(super) errors: Option<Vec<GraphqlError>>,
}

/// One entry of a GraphQL answer's `errors`.
#[derive(Debug, Clone, serde::Deserialize)]
pub(crate) struct GraphqlError {
    pub message: String,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Where in `data` the error is (field names and list indexes).
    #[serde(default)]
    pub path: Vec<PathSegment>,
}

/// A step of a GraphQL error's `path`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(untagged)]
pub(crate) enum PathSegment {
    Index(usize),
    Field(String),
}

impl GraphqlError {
    /// Whether this error is about the item at `prefix` (or inside it).
    pub fn is_under(&self, prefix: &[PathSegment]) -> bool {
        self.path.len() >= prefix.len() && self.path[..prefix.len()] == *prefix
    }

    /// The error as a `Skipped` reason: its type and message.
    pub fn reason(&self) -> String {
        match &self.kind {
            Some(kind) => format!("{kind}: {}", self.message),
            None => self.message.clone(),
        }
    }
}

/// Map an octocrab failure outside a plain request (e.g. minting a token).
pub(crate) fn classify_octocrab(e: octocrab::Error, what: &str) -> GitHubError {
    match &e {
        octocrab::Error::GitHub { source, .. } => {
            let status = source.status_code;
            let msg = format!("{what}: {}", source.message);
            if status.is_server_error() {
                GitHubError::Unavailable(anyhow::Error::new(e).context(what.to_owned()))
            } else if status == StatusCode::NOT_FOUND {
                GitHubError::NotFound(msg)
            } else {
                GitHubError::Forbidden(msg)
            }
        }
        octocrab::Error::Hyper { .. } | octocrab::Error::Service { .. } => {
            GitHubError::Unavailable(anyhow::Error::new(e).context(what.to_owned()))
        }
        _ => GitHubError::Protocol(anyhow::Error::new(e).context(what.to_owned())),
    }
}
