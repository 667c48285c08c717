//! Adapters: one real implementation of each port per mode.

#[cfg(feature = "aws")]
pub mod aws;
pub mod clock;
#[cfg(feature = "github")]
pub mod github;
pub mod local;
#[cfg(feature = "notify")]
pub mod notify_http;
#[cfg(feature = "opensearch")]
pub mod opensearch;
#[cfg(feature = "opensearch-resolve")]
pub mod opensearch_domain;
// SigV4-signed requests on the SDK's HTTPS client: OpenSearch's, and SSM's
// GetParameter (the secret reader).
#[cfg(any(feature = "opensearch", feature = "ssm"))]
#[cfg_attr(not(feature = "opensearch"), allow(dead_code))]
pub(crate) mod opensearch_http;
#[cfg(any(feature = "sqlite", feature = "dynamodb"))]
pub(crate) mod repo_moves;
pub mod rollups_from_rows;
#[cfg(feature = "sqlite")]
pub mod sqlite;
