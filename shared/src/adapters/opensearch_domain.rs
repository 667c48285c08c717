//! The search domain's endpoint resolved by the domain's name (feature
//! `opensearch-resolve`: aws-sdk-opensearch, linked only by the functions
//! that resolve: the indexer and the batch job; the api and integrity-check
//! are given `OCTOSCOPE_SEARCH_ENDPOINT` by Terraform).

use anyhow::{Context as _, anyhow};

use crate::ports::SearchError;

/// The search domain's HTTPS endpoint: given, or resolved by the domain's
/// name with the OpenSearch Service control plane (`DescribeDomain`; a VPC
/// domain's `vpc` endpoint).
pub async fn endpoint(
    sdk: &aws_config::SdkConfig,
    target: &crate::config::aws::SearchEndpoint,
) -> Result<String, SearchError> {
    use crate::config::aws::SearchEndpoint;
    let name = match target {
        SearchEndpoint::Url(url) => return Ok(url.clone()),
        SearchEndpoint::Domain(name) => name,
    };
    let out = aws_sdk_opensearch::Client::new(sdk)
        .describe_domain()
        .domain_name(name)
        .send()
        .await
        .with_context(|| format!("describing the OpenSearch domain {name}"))
        .map_err(SearchError::Unavailable)?;
    let status = out
        .domain_status()
        .ok_or_else(|| SearchError::Internal(anyhow!("DescribeDomain of {name} answered without a domain status")))?;
    let host = status
        .endpoint()
        .or_else(|| status.endpoints().and_then(|e| e.get("vpc")).map(String::as_str))
        .ok_or_else(|| SearchError::Unavailable(anyhow!("the OpenSearch domain {name} has no endpoint yet")))?;
    Ok(if host.starts_with("https://") || host.starts_with("http://") {
        host.to_owned()
    } else {
        format!("https://{host}")
    })
}
