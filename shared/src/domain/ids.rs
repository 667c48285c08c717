//! Parsed identifiers: a repository name, GitHub's delivery headers. Each
//! has a `parse()` that refuses bad input, so the rest of the code never
//! handles an unchecked value.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A point in time, always UTC. GitHub's timestamps have second precision.
pub type Timestamp = DateTime<Utc>;

/// A value that did not parse into one of the domain's identifiers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {value:?} is not valid: {why}")]
pub struct ParseError {
    pub what: &'static str,
    pub value: String,
    pub why: &'static str,
}

impl ParseError {
    pub(crate) fn new(what: &'static str, value: &str, why: &'static str) -> Self {
        // Bound what we echo back: the value may be hostile input.
        let value = value.chars().take(80).collect();
        Self { what, value, why }
    }
}

fn valid_segment(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 100
        && s != "."
        && s != ".."
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// `OWNER/NAME` of a repository, as GitHub spells it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
#[cfg_attr(feature = "api", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "api", schema(value_type = String, example = "octo-org/octo-repo"))]
pub struct RepoName(String);

impl RepoName {
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let Some((owner, name)) = s.split_once('/') else {
            return Err(ParseError::new("repository", s, "expected OWNER/NAME"));
        };
        if !valid_segment(owner) || !valid_segment(name) {
            return Err(ParseError::new(
                "repository",
                s,
                "owner and name are 1-100 characters of letters, digits, '-', '_' and '.'",
            ));
        }
        Ok(Self(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn owner(&self) -> &str {
        self.0.split_once('/').map(|(o, _)| o).unwrap_or_default()
    }
    pub fn name(&self) -> &str {
        self.0.split_once('/').map(|(_, n)| n).unwrap_or_default()
    }
}

impl FromStr for RepoName {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}
impl TryFrom<String> for RepoName {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}
impl From<RepoName> for String {
    fn from(r: RepoName) -> String {
        r.0
    }
}
impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! header_token {
    ($(#[$doc:meta])* $name:ident, $what:literal, $max:literal, $extra:pat) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[cfg_attr(feature = "api", derive(utoipa::ToSchema))]
        #[cfg_attr(feature = "api", schema(value_type = String))]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn parse(s: &str) -> Result<Self, ParseError> {
                if s.is_empty() || s.len() > $max {
                    return Err(ParseError::new($what, s, concat!("expected 1-", stringify!($max), " characters")));
                }
                if !s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, $extra)) {
                    return Err(ParseError::new($what, s, "contains characters GitHub never sends here"));
                }
                Ok(Self(s.to_owned()))
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

header_token!(
    /// `X-GitHub-Delivery`: a GUID per delivery, kept by GitHub's redeliveries.
    DeliveryId, "X-GitHub-Delivery", 100, b'-' | b'_'
);
header_token!(
    /// `X-GitHub-Hook-ID`: which webhook configuration sent the delivery.
    HookId, "X-GitHub-Hook-ID", 40, b'-' | b'_'
);
header_token!(
    /// `X-GitHub-Event`: the event type, e.g. `pull_request`.
    EventName, "X-GitHub-Event", 64, b'_' | b'-' | b'.'
);

impl HookId {
    /// Deliveries without `X-GitHub-Hook-ID` (older GitHub Enterprise Server
    /// versions) share this hook id in the ledger.
    pub fn unknown() -> Self {
        Self("0".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_names_parse_and_refuse() {
        // GIVEN well-formed and malformed names WHEN parsed THEN only OWNER/NAME passes
        let r = RepoName::parse("Codertocat/Hello-World").unwrap();
        assert_eq!((r.owner(), r.name()), ("Codertocat", "Hello-World"));
        for bad in ["", "a", "a/", "/b", "a/b/c", "a b/c", "a/..", "a/b?x=1"] {
            assert!(RepoName::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn header_tokens_refuse_hostile_values() {
        assert!(DeliveryId::parse("72d3162e-cc78-11e3-81ab-4c9367dc0958").is_ok());
        assert!(DeliveryId::parse("").is_err());
        assert!(DeliveryId::parse("a\nb").is_err());
        assert!(DeliveryId::parse(&"x".repeat(101)).is_err());
        assert!(HookId::parse("109948940").is_ok());
        assert!(EventName::parse("pull_request").is_ok());
        assert!(EventName::parse("pull request").is_err());
    }

    #[test]
    fn parse_error_names_the_field_and_bounds_the_echo() {
        let e = RepoName::parse(&"x".repeat(500)).unwrap_err();
        assert!(e.to_string().starts_with("repository"));
        assert!(e.to_string().len() < 250);
    }
}
