//! AWS-mode configuration: what each Lambda function and the batch job read
//! from their environment, validated once at init. Every error names the
//! variable at fault and says why, so a bad deployment is refused at start.
//!
//! Secrets never travel in the environment: a variable names an SSM
//! Parameter Store parameter (a `SecureString`), and the function reads it.
//! The names here are the contract with `terraform/` (its agreement test
//! looks for each one in this file and the function crates).

use std::time::Duration;

use crate::config::{ConfigError, DEFAULT_MAX_BODY_BYTES, GitHubSettings};

/// The largest request a Lambda function can be invoked with (6 MB,
/// synchronous invocation): a bigger webhook never reaches the function.
pub const LAMBDA_MAX_BODY_BYTES: usize = 6 * 1024 * 1024;

/// How long a secret read from Parameter Store is trusted before it is read
/// again (a rotation is picked up within this time).
pub const SECRET_TTL: Duration = Duration::from_secs(300);

fn set(env: &impl Fn(&str) -> Option<String>, var: &str) -> Option<String> {
    env(var).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

fn required(env: &impl Fn(&str) -> Option<String>, var: &'static str, what: &str) -> Result<String, ConfigError> {
    set(env, var).ok_or_else(|| ConfigError::new(var, format!("required: {what}")))
}

/// An SSM parameter name: `name`, `/path/name` or an ARN.
fn parameter(env: &impl Fn(&str) -> Option<String>, var: &'static str, what: &str) -> Result<String, ConfigError> {
    let name = required(env, var, what)?;
    let ok = name.starts_with("arn:")
        || name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'.' | b'-'));
    if !ok {
        return Err(ConfigError::new(var, "expected an SSM parameter name (letters, digits, / _ . -) or ARN"));
    }
    Ok(name)
}

/// `OCTOSCOPE_TABLE`: the DynamoDB table every function shares.
fn table(env: &impl Fn(&str) -> Option<String>) -> Result<String, ConfigError> {
    let name = required(env, "OCTOSCOPE_TABLE", "the DynamoDB table name")?;
    let ok = (3..=255).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if !ok {
        return Err(ConfigError::new("OCTOSCOPE_TABLE", "expected a DynamoDB table name (3-255 of A-Z a-z 0-9 _ - .)"));
    }
    Ok(name)
}

/// `OCTOSCOPE_ARCHIVE_STREAM`: a Firehose delivery stream name (not an ARN).
fn stream(env: &impl Fn(&str) -> Option<String>) -> Result<String, ConfigError> {
    let var = "OCTOSCOPE_ARCHIVE_STREAM";
    let name = required(env, var, "the Firehose delivery stream of the raw archive")?;
    let ok = (1..=64).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if !ok {
        return Err(ConfigError::new(var, "expected a Firehose delivery stream name (1-64 of A-Z a-z 0-9 _ - .)"));
    }
    Ok(name)
}

fn list(env: &impl Fn(&str) -> Option<String>, var: &str) -> Vec<String> {
    set(env, var).unwrap_or_default().split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

/// The webhook function: `POST /webhook` into the store and the raw archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    /// `OCTOSCOPE_TABLE`
    pub table: String,
    /// `OCTOSCOPE_ARCHIVE_STREAM`: the Firehose delivery stream the raw
    /// archive is written through (it batches deliveries into S3 objects).
    pub archive_stream: String,
    /// `GITHUB_WEBHOOK_SECRET_PARAM`: the SSM parameter holding the secret
    /// (comma-separated secrets during a rotation).
    pub secret_param: String,
    /// `OCTOSCOPE_MAX_BODY_BYTES`, at most [`LAMBDA_MAX_BODY_BYTES`] (the default).
    pub max_body_bytes: usize,
}

impl WebhookConfig {
    pub fn load(env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let max_body_bytes = match set(&env, "OCTOSCOPE_MAX_BODY_BYTES") {
            Some(v) => {
                v.parse::<usize>().ok().filter(|n| (1024..=LAMBDA_MAX_BODY_BYTES).contains(n)).ok_or_else(|| {
                    ConfigError::new(
                        "OCTOSCOPE_MAX_BODY_BYTES",
                        format!(
                            "expected a number of bytes from 1024 to {LAMBDA_MAX_BODY_BYTES} (Lambda's request limit)"
                        ),
                    )
                })?
            }
            None => LAMBDA_MAX_BODY_BYTES.min(DEFAULT_MAX_BODY_BYTES),
        };
        Ok(Self {
            table: table(&env)?,
            archive_stream: stream(&env)?,
            secret_param: parameter(&env, "GITHUB_WEBHOOK_SECRET_PARAM", "the SSM parameter of the webhook secret")?,
            max_body_bytes,
        })
    }
}

/// How the api function authenticates `/api/*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiAuth {
    /// `OCTOSCOPE_API_AUTH=gateway`: API Gateway's authorizer already did.
    Gateway,
    /// Bearer tokens from the SSM parameter `OCTOSCOPE_API_TOKENS_PARAM`
    /// (comma-separated, each at least 16 characters).
    Tokens { param: String },
}

/// The api function: the read API over the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiConfig {
    /// `OCTOSCOPE_TABLE`
    pub table: String,
    pub auth: ApiAuth,
    /// The search index `/api/search` reads (None: a deployment without
    /// search, whose `/api/search` answers 501): at an endpoint given
    /// (`OCTOSCOPE_SEARCH_ENDPOINT`; [`SearchConfig::load_given`]).
    pub search: Option<SearchConfig>,
}

impl ApiConfig {
    pub fn load(env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let auth = match set(&env, "OCTOSCOPE_API_AUTH").as_deref() {
            Some("gateway") => ApiAuth::Gateway,
            None | Some("tokens") => ApiAuth::Tokens {
                param: parameter(
                    &env,
                    "OCTOSCOPE_API_TOKENS_PARAM",
                    "the SSM parameter of the API's bearer tokens (or OCTOSCOPE_API_AUTH=gateway)",
                )?,
            },
            Some(other) => {
                return Err(ConfigError::new(
                    "OCTOSCOPE_API_AUTH",
                    format!("expected gateway or tokens, not {:?}", other.chars().take(40).collect::<String>()),
                ));
            }
        };
        Ok(Self { table: table(&env)?, auth, search: SearchConfig::load_given(&env)? })
    }
}

/// GitHub credentials by SSM parameter name, plus what to track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GitHubParams {
    /// `GITHUB_TOKEN_PARAM`: a personal access or installation token.
    Token { param: String },
    /// `GITHUB_APP_ID`, optional `GITHUB_APP_INSTALLATION_ID`, and
    /// `GITHUB_APP_PRIVATE_KEY_PARAM` (the PEM key).
    App { app_id: String, installation_id: Option<String>, key_param: String },
}

impl GitHubParams {
    pub fn load(env: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        match (set(env, "GITHUB_TOKEN_PARAM"), set(env, "GITHUB_APP_ID")) {
            (Some(_), Some(_)) => {
                Err(ConfigError::new("GITHUB_TOKEN_PARAM", "set either GITHUB_TOKEN_PARAM or GITHUB_APP_ID, not both"))
            }
            (Some(_), None) => Ok(Self::Token {
                param: parameter(env, "GITHUB_TOKEN_PARAM", "the SSM parameter of the GitHub token")?,
            }),
            (None, Some(app_id)) => {
                if app_id.parse::<u64>().is_err() {
                    return Err(ConfigError::new("GITHUB_APP_ID", "expected the app's numeric id"));
                }
                let installation_id = set(env, "GITHUB_APP_INSTALLATION_ID");
                if installation_id.as_deref().is_some_and(|i| i.parse::<u64>().is_err()) {
                    return Err(ConfigError::new("GITHUB_APP_INSTALLATION_ID", "expected a number"));
                }
                let key_param = parameter(
                    env,
                    "GITHUB_APP_PRIVATE_KEY_PARAM",
                    "with GITHUB_APP_ID, the SSM parameter of the app's PEM private key",
                )?;
                Ok(Self::App { app_id, installation_id, key_param })
            }
            (None, None) => Err(ConfigError::new(
                "GITHUB_TOKEN_PARAM",
                "GitHub credentials are required: GITHUB_TOKEN_PARAM, or GITHUB_APP_ID with GITHUB_APP_PRIVATE_KEY_PARAM",
            )),
        }
    }

    /// The one SSM parameter to read.
    pub fn parameter(&self) -> &str {
        match self {
            Self::Token { param } => param,
            Self::App { key_param, .. } => key_param,
        }
    }

    /// The settings, with `secret` the value of [`Self::parameter`]; the
    /// rest (`GITHUB_API_URL`, `OCTOSCOPE_ORGS`, `OCTOSCOPE_REPOS`) from `env`,
    /// validated as on one machine.
    pub fn settings(&self, env: &impl Fn(&str) -> Option<String>, secret: &str) -> Result<GitHubSettings, ConfigError> {
        let resolved = |k: &str| -> Option<String> {
            match (self, k) {
                (Self::Token { .. }, "GITHUB_TOKEN") => Some(secret.to_owned()),
                (Self::App { .. }, "GITHUB_APP_PRIVATE_KEY") => Some(secret.to_owned()),
                (Self::App { app_id, .. }, "GITHUB_APP_ID") => Some(app_id.clone()),
                (Self::App { installation_id, .. }, "GITHUB_APP_INSTALLATION_ID") => installation_id.clone(),
                (_, "GITHUB_API_URL" | "OCTOSCOPE_ORGS" | "OCTOSCOPE_REPOS") => env(k),
                _ => None,
            }
        };
        let rename = |e: ConfigError| match e.var {
            "GITHUB_TOKEN" => ConfigError::new("GITHUB_TOKEN_PARAM", format!("the parameter's value: {}", e.why)),
            "GITHUB_APP_PRIVATE_KEY" => {
                ConfigError::new("GITHUB_APP_PRIVATE_KEY_PARAM", format!("the parameter's value: {}", e.why))
            }
            _ => e,
        };
        GitHubSettings::load(resolved)
            .map_err(rename)?
            .ok_or_else(|| ConfigError::new("GITHUB_TOKEN_PARAM", "the parameter is empty"))
    }
}

/// GitHub settings with the credential read from SSM (`GetParameter`, with
/// decryption), and the client configuration for them: what the
/// integrity-check function and the batch job do at init.
#[cfg(all(feature = "ssm", feature = "github"))]
pub async fn resolve_github(
    params: &GitHubParams,
    env: &impl Fn(&str) -> Option<String>,
    ssm: crate::adapters::aws::ssm::SsmClient,
) -> Result<(GitHubSettings, crate::adapters::github::GitHubConfig), ConfigError> {
    use crate::adapters::github::GitHubConfig;
    let var = match params {
        GitHubParams::Token { .. } => "GITHUB_TOKEN_PARAM",
        GitHubParams::App { .. } => "GITHUB_APP_PRIVATE_KEY_PARAM",
    };
    let value = crate::adapters::aws::ssm::SecretParameter::new(ssm, params.parameter())
        .get()
        .await
        .map_err(|e| ConfigError::new(var, crate::error::error_chain(&e)))?;
    let settings = params.settings(env, value.expose())?;
    let config = GitHubConfig::of(&settings);
    Ok((settings, config))
}

/// The integrity-check function: compare GitHub with the store, queue gaps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrityConfig {
    /// `OCTOSCOPE_TABLE`
    pub table: String,
    /// `OCTOSCOPE_GAP_QUEUE_URL`: the SQS queue gaps go to.
    pub queue_url: String,
    pub github: GitHubParams,
    /// The search index the check compares with the store
    /// (`OCTOSCOPE_SEARCH_ENDPOINT`, `OCTOSCOPE_SEARCH_INDEX`;
    /// [`SearchConfig::load_given`]); None: no search, nothing compared.
    pub search: Option<SearchConfig>,
}

impl IntegrityConfig {
    pub fn load(env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let queue_url = required(&env, "OCTOSCOPE_GAP_QUEUE_URL", "the SQS queue URL of the gaps")?;
        if !(queue_url.starts_with("https://") || queue_url.starts_with("http://")) {
            return Err(ConfigError::new("OCTOSCOPE_GAP_QUEUE_URL", "expected an SQS queue URL (https://...)"));
        }
        // Checked here, so that a bad value is refused before any parameter is read.
        GitHubSettings::load(|k| match k {
            "GITHUB_API_URL" | "OCTOSCOPE_ORGS" | "OCTOSCOPE_REPOS" => env(k),
            "GITHUB_TOKEN" => Some("placeholder".to_owned()),
            _ => None,
        })?;
        Ok(Self {
            table: table(&env)?,
            queue_url,
            github: GitHubParams::load(&env)?,
            search: SearchConfig::load_given(&env)?,
        })
    }
}

/// Where and what the dispatcher runs as resync tasks (the ECS launcher's settings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcsConfig {
    /// `OCTOSCOPE_ECS_CLUSTER`: cluster name or ARN.
    pub cluster: String,
    /// `OCTOSCOPE_ECS_TASK_DEFINITION`: family (latest ACTIVE revision), family:revision or ARN.
    pub task_definition: String,
    /// `OCTOSCOPE_ECS_CONTAINER`: the container that gets `OCTOSCOPE_JOB_ID`.
    pub container: String,
    /// `OCTOSCOPE_ECS_SUBNETS` (comma-separated, at least one).
    pub subnets: Vec<String>,
    /// `OCTOSCOPE_ECS_SECURITY_GROUPS` (comma-separated).
    pub security_groups: Vec<String>,
    /// `OCTOSCOPE_ECS_ASSIGN_PUBLIC_IP`: true/false (default false). Public
    /// subnets without a NAT need a public IP to reach GitHub and AWS.
    pub assign_public_ip: bool,
}

/// An SQS queue URL in `var` (https; http for a local endpoint such as moto).
fn queue_url(env: &impl Fn(&str) -> Option<String>, var: &'static str, what: &str) -> Result<String, ConfigError> {
    let url = required(env, var, what)?;
    if !(url.starts_with("https://") || url.starts_with("http://")) || url.chars().any(char::is_whitespace) {
        return Err(ConfigError::new(var, "expected an SQS queue URL (https://...)"));
    }
    Ok(url)
}

/// The ledger-stream function: the table's stream → delivery listings and
/// counts, and new notifications to the notification queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerStreamConfig {
    /// `OCTOSCOPE_TABLE`
    pub table: String,
    /// `OCTOSCOPE_NOTIFY_QUEUE_URL`: where each new notification (a `NOTE#`
    /// item inserted) is sent; None: nothing is forwarded.
    pub notify_queue_url: Option<String>,
}

impl LedgerStreamConfig {
    pub fn load(env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let notify_queue_url = match set(&env, "OCTOSCOPE_NOTIFY_QUEUE_URL") {
            Some(_) => Some(queue_url(&env, "OCTOSCOPE_NOTIFY_QUEUE_URL", "the notification queue")?),
            None => None,
        };
        Ok(Self { table: table(&env)?, notify_queue_url })
    }
}

/// The notifier function: notifications from the notification queue, each
/// sent once per delivery of its message (shared/docs/notifications.md, "On AWS").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifierConfig {
    /// `OCTOSCOPE_TABLE`
    pub table: String,
    /// `OCTOSCOPE_NOTIFY_QUEUE_URL`: the queue the messages come from (a
    /// retry's backoff is its message's visibility timeout).
    pub queue_url: String,
    /// `OCTOSCOPE_NOTIFY_*`, `OCTOSCOPE_PUBLIC_URL`, as on one machine.
    pub notify: crate::config::NotifyConfig,
    /// GitHub credentials for `repository_dispatch` targets
    /// (`GITHUB_TOKEN_PARAM`, or `GITHUB_APP_ID` with
    /// `GITHUB_APP_PRIVATE_KEY_PARAM`); None: such targets fail.
    pub github: Option<GitHubParams>,
}

impl NotifierConfig {
    pub fn load(env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let queue_url = queue_url(&env, "OCTOSCOPE_NOTIFY_QUEUE_URL", "the notification queue's URL")?;
        let github = if set(&env, "GITHUB_TOKEN_PARAM").is_some() || set(&env, "GITHUB_APP_ID").is_some() {
            // Checked here, so that a bad value is refused before any parameter is read.
            GitHubSettings::load(|k| match k {
                "GITHUB_API_URL" | "OCTOSCOPE_ORGS" | "OCTOSCOPE_REPOS" => env(k),
                "GITHUB_TOKEN" => Some("placeholder".to_owned()),
                _ => None,
            })?;
            Some(GitHubParams::load(&env)?)
        } else {
            None
        };
        Ok(Self { table: table(&env)?, queue_url, notify: crate::config::NotifyConfig::load(&env)?, github })
    }
}

/// Where the search index's OpenSearch domain is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchEndpoint {
    /// `OCTOSCOPE_SEARCH_DOMAIN`: an Amazon OpenSearch Service domain, its
    /// endpoint resolved by name at init (`DescribeDomain`).
    Domain(String),
    /// `OCTOSCOPE_SEARCH_ENDPOINT`: the endpoint itself, `https://…` (or
    /// `http://` on a loopback address, for a local engine).
    Url(String),
}

/// The search index on OpenSearch (shared/docs/search.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchConfig {
    pub endpoint: SearchEndpoint,
    /// `OCTOSCOPE_SEARCH_INDEX` (default `octoscope-search`).
    pub index: String,
}

/// The index name used when `OCTOSCOPE_SEARCH_INDEX` is not set.
pub const DEFAULT_SEARCH_INDEX: &str = "octoscope-search";

impl SearchConfig {
    /// The search index, or None when neither `OCTOSCOPE_SEARCH_DOMAIN` nor
    /// `OCTOSCOPE_SEARCH_ENDPOINT` is set (a deployment without search).
    pub fn load_optional(env: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, ConfigError> {
        let endpoint = match (set(&env, "OCTOSCOPE_SEARCH_DOMAIN"), set(&env, "OCTOSCOPE_SEARCH_ENDPOINT")) {
            (None, None) => return Ok(None),
            (Some(_), Some(_)) => {
                return Err(ConfigError::new(
                    "OCTOSCOPE_SEARCH_ENDPOINT",
                    "set either OCTOSCOPE_SEARCH_DOMAIN or OCTOSCOPE_SEARCH_ENDPOINT, not both",
                ));
            }
            (Some(domain), None) => {
                // Amazon OpenSearch Service domain names: 3-28 of a-z 0-9 -, starting with a letter.
                let ok = (3..=28).contains(&domain.len())
                    && domain.starts_with(|c: char| c.is_ascii_lowercase())
                    && domain.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
                if !ok {
                    return Err(ConfigError::new(
                        "OCTOSCOPE_SEARCH_DOMAIN",
                        "expected an OpenSearch domain name (3-28 of a-z 0-9 -, starting with a letter)",
                    ));
                }
                SearchEndpoint::Domain(domain)
            }
            (None, Some(url)) => {
                let loopback = ["http://127.0.0.1:", "http://127.0.0.1/", "http://localhost:", "http://[::1]:"]
                    .iter()
                    .any(|p| url.starts_with(p));
                let https =
                    url.strip_prefix("https://").is_some_and(|h| !h.is_empty() && !h.contains(char::is_whitespace));
                if !(https || loopback) {
                    return Err(ConfigError::new(
                        "OCTOSCOPE_SEARCH_ENDPOINT",
                        "expected an https:// URL (http:// only on a loopback address)",
                    ));
                }
                SearchEndpoint::Url(url.trim_end_matches('/').to_owned())
            }
        };
        let index = set(&env, "OCTOSCOPE_SEARCH_INDEX").unwrap_or_else(|| DEFAULT_SEARCH_INDEX.to_owned());
        // OpenSearch index names: lowercase, none of \ / * ? " < > | , # : or space, not starting with - _ +.
        let ok = (1..=255).contains(&index.len())
            && !index.starts_with(['-', '_', '+'])
            && index != "."
            && index != ".."
            && index.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.'));
        if !ok {
            return Err(ConfigError::new(
                "OCTOSCOPE_SEARCH_INDEX",
                "expected an OpenSearch index name (a-z 0-9 - _ ., not starting with - or _)",
            ));
        }
        Ok(Some(Self { endpoint, index }))
    }

    /// As [`load_optional`](Self::load_optional), for a function built
    /// without the domain resolver (octoscope-core's `opensearch` without
    /// `opensearch-resolve`: the api and integrity-check, for their zip's
    /// size): the endpoint must be given, and `OCTOSCOPE_SEARCH_DOMAIN` is
    /// refused at init, saying why and what to set instead.
    pub fn load_given(env: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, ConfigError> {
        let search = Self::load_optional(&env)?;
        if let Some(Self { endpoint: SearchEndpoint::Domain(_), .. }) = search {
            return Err(ConfigError::new(
                "OCTOSCOPE_SEARCH_DOMAIN",
                "this function does not resolve a domain's name (built without aws-sdk-opensearch, for its \
                 size): set OCTOSCOPE_SEARCH_ENDPOINT to the domain's https:// endpoint instead",
            ));
        }
        Ok(search)
    }
}

/// The indexer function: the table's stream → the OpenSearch search index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexerConfig {
    /// `OCTOSCOPE_TABLE`
    pub table: String,
    pub search: SearchConfig,
}

impl IndexerConfig {
    pub fn load(env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let table = table(&env)?;
        let search = SearchConfig::load_optional(&env)?.ok_or_else(|| {
            ConfigError::new(
                "OCTOSCOPE_SEARCH_DOMAIN",
                "required: the OpenSearch domain (or OCTOSCOPE_SEARCH_ENDPOINT)",
            )
        })?;
        Ok(Self { table, search })
    }
}

/// The dispatcher function: gaps from SQS → one ECS task per target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DispatcherConfig {
    /// `OCTOSCOPE_TABLE`
    pub table: String,
    pub ecs: EcsConfig,
}

impl DispatcherConfig {
    pub fn load(env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let subnets = list(&env, "OCTOSCOPE_ECS_SUBNETS");
        if subnets.is_empty() {
            return Err(ConfigError::new("OCTOSCOPE_ECS_SUBNETS", "required: the task's subnet ids, comma-separated"));
        }
        let assign_public_ip = match set(&env, "OCTOSCOPE_ECS_ASSIGN_PUBLIC_IP").map(|v| v.to_ascii_lowercase()) {
            None => false,
            Some(v) if matches!(v.as_str(), "true" | "enabled" | "1" | "yes") => true,
            Some(v) if matches!(v.as_str(), "false" | "disabled" | "0" | "no") => false,
            Some(_) => return Err(ConfigError::new("OCTOSCOPE_ECS_ASSIGN_PUBLIC_IP", "expected true or false")),
        };
        Ok(Self {
            table: table(&env)?,
            ecs: EcsConfig {
                cluster: required(&env, "OCTOSCOPE_ECS_CLUSTER", "the ECS cluster of the resync tasks")?,
                task_definition: required(&env, "OCTOSCOPE_ECS_TASK_DEFINITION", "the batch job's task definition")?,
                container: required(&env, "OCTOSCOPE_ECS_CONTAINER", "the batch job's container name")?,
                subnets,
                security_groups: list(&env, "OCTOSCOPE_ECS_SECURITY_GROUPS"),
                assign_public_ip,
            },
        })
    }
}

/// The batch job (an ECS task): one resync job, named by `OCTOSCOPE_JOB_ID`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchJobConfig {
    /// `OCTOSCOPE_TABLE`
    pub table: String,
    /// `OCTOSCOPE_JOB_ID`: set per task by the dispatcher's RunTask
    /// (`upgrade` and `reindex` are run by hand).
    pub job_id: String,
    pub github: GitHubParams,
    /// The search index (required by the `reindex` job).
    pub search: Option<SearchConfig>,
}

impl BatchJobConfig {
    pub fn load(env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let job_id = required(&env, "OCTOSCOPE_JOB_ID", "the resync job to run (set by the dispatcher)")?;
        if job_id.len() > 512 || job_id.chars().any(char::is_control) {
            return Err(ConfigError::new("OCTOSCOPE_JOB_ID", "expected a job id"));
        }
        let search = SearchConfig::load_optional(&env)?;
        if job_id == "reindex" && search.is_none() {
            return Err(ConfigError::new(
                "OCTOSCOPE_SEARCH_DOMAIN",
                "required by the reindex job: the OpenSearch domain (or OCTOSCOPE_SEARCH_ENDPOINT)",
            ));
        }
        Ok(Self { table: table(&env)?, job_id, github: GitHubParams::load(&env)?, search })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    const WEBHOOK: &[(&str, &str)] = &[
        ("OCTOSCOPE_TABLE", "octoscope"),
        ("OCTOSCOPE_ARCHIVE_STREAM", "octoscope-archive"),
        ("GITHUB_WEBHOOK_SECRET_PARAM", "/octoscope/webhook-secret"),
    ];

    fn without(base: &[(&'static str, &'static str)], var: &str) -> Vec<(&'static str, &'static str)> {
        base.iter().copied().filter(|(k, _)| *k != var).collect()
    }

    #[test]
    fn indexer_config_takes_a_domain_or_an_endpoint_and_names_what_is_wrong() {
        // GIVEN a table and a domain WHEN loading THEN the domain is resolved later, the index defaults
        let c = IndexerConfig::load(env(&[
            ("OCTOSCOPE_TABLE", "octoscope"),
            ("OCTOSCOPE_SEARCH_DOMAIN", "octoscope-search"),
        ]))
        .unwrap();
        assert_eq!(c.search.endpoint, SearchEndpoint::Domain("octoscope-search".into()));
        assert_eq!(c.search.index, DEFAULT_SEARCH_INDEX);
        // AND an endpoint is taken as given, without a trailing slash
        let c = IndexerConfig::load(env(&[
            ("OCTOSCOPE_TABLE", "octoscope"),
            ("OCTOSCOPE_SEARCH_ENDPOINT", "https://search-x.eu-west-1.es.amazonaws.com/"),
            ("OCTOSCOPE_SEARCH_INDEX", "docs-v2"),
        ]))
        .unwrap();
        assert_eq!(c.search.endpoint, SearchEndpoint::Url("https://search-x.eu-west-1.es.amazonaws.com".into()));
        assert_eq!(c.search.index, "docs-v2");
        // AND each refusal names its variable
        let refused = |pairs: &[(&str, &str)]| IndexerConfig::load(env(pairs)).unwrap_err().var;
        assert_eq!(refused(&[("OCTOSCOPE_TABLE", "octoscope")]), "OCTOSCOPE_SEARCH_DOMAIN");
        assert_eq!(refused(&[("OCTOSCOPE_SEARCH_DOMAIN", "octoscope")]), "OCTOSCOPE_TABLE");
        for (var, bad) in [
            ("OCTOSCOPE_SEARCH_DOMAIN", "Octo"),
            ("OCTOSCOPE_SEARCH_DOMAIN", "9lives"),
            ("OCTOSCOPE_SEARCH_ENDPOINT", "http://search.example.com"),
            ("OCTOSCOPE_SEARCH_ENDPOINT", "ftp://x"),
        ] {
            assert_eq!(refused(&[("OCTOSCOPE_TABLE", "octoscope"), (var, bad)]), var, "{var}={bad}");
        }
        assert_eq!(
            refused(&[
                ("OCTOSCOPE_TABLE", "t-1"),
                ("OCTOSCOPE_SEARCH_DOMAIN", "abc"),
                ("OCTOSCOPE_SEARCH_INDEX", "Bad Name")
            ]),
            "OCTOSCOPE_SEARCH_INDEX"
        );
        assert_eq!(
            refused(&[
                ("OCTOSCOPE_TABLE", "t-1"),
                ("OCTOSCOPE_SEARCH_DOMAIN", "abc"),
                ("OCTOSCOPE_SEARCH_ENDPOINT", "https://x")
            ]),
            "OCTOSCOPE_SEARCH_ENDPOINT"
        );
        // AND a loopback engine may be plain http
        assert!(
            SearchConfig::load_optional(env(&[("OCTOSCOPE_SEARCH_ENDPOINT", "http://127.0.0.1:9200")]))
                .unwrap()
                .is_some()
        );
        assert_eq!(SearchConfig::load_optional(env(&[])).unwrap(), None);
    }

    #[test]
    fn webhook_config_loads_and_names_each_missing_or_bad_variable() {
        // GIVEN the full contract WHEN loading THEN every value is taken, the body limit is Lambda's
        let c = WebhookConfig::load(env(WEBHOOK)).unwrap();
        assert_eq!(c.archive_stream, "octoscope-archive");
        assert_eq!(c.max_body_bytes, LAMBDA_MAX_BODY_BYTES);
        // AND each missing variable is named
        for (var, _) in WEBHOOK {
            assert_eq!(WebhookConfig::load(env(&without(WEBHOOK, var))).unwrap_err().var, *var);
        }
        // AND bad values are named
        let mut bad = WEBHOOK.to_vec();
        bad.push(("OCTOSCOPE_MAX_BODY_BYTES", "7000000"));
        assert_eq!(WebhookConfig::load(env(&bad)).unwrap_err().var, "OCTOSCOPE_MAX_BODY_BYTES");
        let bad = [("OCTOSCOPE_TABLE", "a b"), WEBHOOK[1], WEBHOOK[2]];
        assert_eq!(WebhookConfig::load(env(&bad)).unwrap_err().var, "OCTOSCOPE_TABLE");
        let bad = [WEBHOOK[0], WEBHOOK[1], ("GITHUB_WEBHOOK_SECRET_PARAM", "the secret itself!")];
        assert_eq!(WebhookConfig::load(env(&bad)).unwrap_err().var, "GITHUB_WEBHOOK_SECRET_PARAM");
        let arn = "arn:aws:firehose:us-east-1:123456789012:deliverystream/octoscope-archive";
        let bad = [WEBHOOK[0], ("OCTOSCOPE_ARCHIVE_STREAM", arn), WEBHOOK[2]];
        assert_eq!(WebhookConfig::load(env(&bad)).unwrap_err().var, "OCTOSCOPE_ARCHIVE_STREAM");
    }

    #[test]
    fn api_config_needs_a_token_parameter_unless_the_gateway_authenticates() {
        let t = [("OCTOSCOPE_TABLE", "octoscope")];
        assert_eq!(ApiConfig::load(env(&t)).unwrap_err().var, "OCTOSCOPE_API_TOKENS_PARAM");
        let gw = ApiConfig::load(env(&[t[0], ("OCTOSCOPE_API_AUTH", "gateway")])).unwrap();
        assert_eq!(gw.auth, ApiAuth::Gateway);
        let tok = ApiConfig::load(env(&[t[0], ("OCTOSCOPE_API_TOKENS_PARAM", "/o/tokens")])).unwrap();
        assert_eq!(tok.auth, ApiAuth::Tokens { param: "/o/tokens".into() });
        assert_eq!(
            ApiConfig::load(env(&[t[0], ("OCTOSCOPE_API_AUTH", "none")])).unwrap_err().var,
            "OCTOSCOPE_API_AUTH"
        );
        // AND the search domain's endpoint is given; its name alone is refused
        // (the api resolves none: built without aws-sdk-opensearch), saying what to set
        let given = [
            t[0],
            ("OCTOSCOPE_API_AUTH", "gateway"),
            ("OCTOSCOPE_SEARCH_ENDPOINT", "https://search-x.es.amazonaws.com"),
        ];
        let search = ApiConfig::load(env(&given)).unwrap().search.unwrap();
        assert_eq!(search.endpoint, SearchEndpoint::Url("https://search-x.es.amazonaws.com".into()));
        let err = ApiConfig::load(env(&[
            t[0],
            ("OCTOSCOPE_API_AUTH", "gateway"),
            ("OCTOSCOPE_SEARCH_DOMAIN", "octoscope-search"),
        ]))
        .unwrap_err();
        assert_eq!(err.var, "OCTOSCOPE_SEARCH_DOMAIN");
        assert!(err.to_string().contains("OCTOSCOPE_SEARCH_ENDPOINT"), "{err}");
    }

    #[test]
    fn github_params_resolve_through_the_one_machine_rules() {
        // GIVEN a token parameter WHEN its value is resolved THEN the settings carry it and what to track
        let e = env(&[("GITHUB_TOKEN_PARAM", "/o/gh"), ("OCTOSCOPE_ORGS", "acme"), ("GITHUB_API_URL", "http://h")]);
        let p = GitHubParams::load(&e).unwrap();
        assert_eq!(p.parameter(), "/o/gh");
        let s = p.settings(&e, "ghp_x").unwrap();
        assert_eq!(s.tracked.orgs, vec!["acme".to_owned()]);
        assert_eq!(s.api_url, "http://h");
        assert!(matches!(s.credentials, crate::config::GitHubCredentials::Token(ref t) if t == "ghp_x"));
        // AND an app key that is not PEM is refused naming the parameter variable
        let e = env(&[("GITHUB_APP_ID", "12"), ("GITHUB_APP_PRIVATE_KEY_PARAM", "/o/key")]);
        let p = GitHubParams::load(&e).unwrap();
        assert_eq!(p.settings(&e, "not a key").unwrap_err().var, "GITHUB_APP_PRIVATE_KEY_PARAM");
        // AND missing, doubled or bad credentials are named
        for (pairs, var) in [
            (&[][..], "GITHUB_TOKEN_PARAM"),
            (&[("GITHUB_TOKEN_PARAM", "/a"), ("GITHUB_APP_ID", "1")], "GITHUB_TOKEN_PARAM"),
            (&[("GITHUB_APP_ID", "x")], "GITHUB_APP_ID"),
            (&[("GITHUB_APP_ID", "1")], "GITHUB_APP_PRIVATE_KEY_PARAM"),
            (&[("GITHUB_APP_ID", "1"), ("GITHUB_APP_INSTALLATION_ID", "y")], "GITHUB_APP_INSTALLATION_ID"),
        ] {
            assert_eq!(GitHubParams::load(&env(pairs)).unwrap_err().var, var);
        }
    }

    #[test]
    fn integrity_dispatcher_and_batch_configs_name_what_is_wrong() {
        let base = [("OCTOSCOPE_TABLE", "t-1"), ("GITHUB_TOKEN_PARAM", "/gh")];
        let q = ("OCTOSCOPE_GAP_QUEUE_URL", "https://sqs.eu-west-1.amazonaws.com/1/gaps");
        assert_eq!(IntegrityConfig::load(env(&base)).unwrap_err().var, "OCTOSCOPE_GAP_QUEUE_URL");
        assert!(IntegrityConfig::load(env(&[base[0], base[1], q])).is_ok());
        let bad_repos = [base[0], base[1], q, ("OCTOSCOPE_REPOS", "no-slash")];
        assert_eq!(IntegrityConfig::load(env(&bad_repos)).unwrap_err().var, "OCTOSCOPE_REPOS");
        assert_eq!(IntegrityConfig::load(env(&[base[0], base[1], q])).unwrap().search, None);
        // The check is given the search domain's endpoint; a domain's name
        // (which it cannot resolve: no aws-sdk-opensearch) is refused, saying so
        let searched = [base[0], base[1], q, ("OCTOSCOPE_SEARCH_ENDPOINT", "https://search-x.es.amazonaws.com")];
        let search = IntegrityConfig::load(env(&searched)).unwrap().search.unwrap();
        assert_eq!(search.endpoint, SearchEndpoint::Url("https://search-x.es.amazonaws.com".into()));
        let by_name = [base[0], base[1], q, ("OCTOSCOPE_SEARCH_DOMAIN", "octoscope-search")];
        let err = IntegrityConfig::load(env(&by_name)).unwrap_err();
        assert_eq!(err.var, "OCTOSCOPE_SEARCH_DOMAIN");
        assert!(err.to_string().contains("OCTOSCOPE_SEARCH_ENDPOINT"), "{err}");
        let bad_domain = [base[0], base[1], q, ("OCTOSCOPE_SEARCH_DOMAIN", "Not A Domain")];
        assert_eq!(IntegrityConfig::load(env(&bad_domain)).unwrap_err().var, "OCTOSCOPE_SEARCH_DOMAIN");

        let ecs = [
            ("OCTOSCOPE_TABLE", "t-1"),
            ("OCTOSCOPE_ECS_CLUSTER", "c"),
            ("OCTOSCOPE_ECS_TASK_DEFINITION", "octoscope-batch"),
            ("OCTOSCOPE_ECS_CONTAINER", "batch-job"),
            ("OCTOSCOPE_ECS_SUBNETS", "subnet-1, subnet-2"),
            ("OCTOSCOPE_ECS_ASSIGN_PUBLIC_IP", "ENABLED"),
        ];
        let d = DispatcherConfig::load(env(&ecs)).unwrap();
        assert_eq!(d.ecs.subnets, vec!["subnet-1", "subnet-2"]);
        assert!(d.ecs.assign_public_ip && d.ecs.security_groups.is_empty());
        for (var, _) in &ecs[..5] {
            assert_eq!(DispatcherConfig::load(env(&without(&ecs, var))).unwrap_err().var, *var);
        }
        let mut bad = ecs.to_vec();
        bad[5] = ("OCTOSCOPE_ECS_ASSIGN_PUBLIC_IP", "maybe");
        assert_eq!(DispatcherConfig::load(env(&bad)).unwrap_err().var, "OCTOSCOPE_ECS_ASSIGN_PUBLIC_IP");

        assert_eq!(BatchJobConfig::load(env(&base)).unwrap_err().var, "OCTOSCOPE_JOB_ID");
        let b = BatchJobConfig::load(env(&[base[0], base[1], ("OCTOSCOPE_JOB_ID", "resync-1")])).unwrap();
        assert_eq!(b.job_id, "resync-1");
    }

    #[test]
    fn ledger_stream_and_notifier_configs_read_the_notification_queue() {
        let t = ("OCTOSCOPE_TABLE", "t-1");
        let q = ("OCTOSCOPE_NOTIFY_QUEUE_URL", "https://sqs.eu-west-1.amazonaws.com/1/notifications");
        assert_eq!(LedgerStreamConfig::load(env(&[t])).unwrap().notify_queue_url, None);
        assert_eq!(LedgerStreamConfig::load(env(&[t, q])).unwrap().notify_queue_url.as_deref(), Some(q.1));
        let bad = ("OCTOSCOPE_NOTIFY_QUEUE_URL", "notifications");
        assert_eq!(LedgerStreamConfig::load(env(&[t, bad])).unwrap_err().var, "OCTOSCOPE_NOTIFY_QUEUE_URL");

        assert_eq!(NotifierConfig::load(env(&[t])).unwrap_err().var, "OCTOSCOPE_NOTIFY_QUEUE_URL");
        assert_eq!(NotifierConfig::load(env(&[t, bad])).unwrap_err().var, "OCTOSCOPE_NOTIFY_QUEUE_URL");
        assert_eq!(NotifierConfig::load(env(&[q])).unwrap_err().var, "OCTOSCOPE_TABLE");
        let n = NotifierConfig::load(env(&[t, q])).unwrap();
        assert_eq!((n.queue_url.as_str(), n.github, n.notify), (q.1, None, crate::config::NotifyConfig::default()));
        let tuned = [t, q, ("OCTOSCOPE_NOTIFY_ATTEMPTS", "3"), ("OCTOSCOPE_NOTIFY_ALLOW_PRIVATE", "1")];
        let n = NotifierConfig::load(env(&tuned)).unwrap();
        assert_eq!((n.notify.attempts, n.notify.allow_private), (3, true));
        let bad_attempts = [t, q, ("OCTOSCOPE_NOTIFY_ATTEMPTS", "0")];
        assert_eq!(NotifierConfig::load(env(&bad_attempts)).unwrap_err().var, "OCTOSCOPE_NOTIFY_ATTEMPTS");
        let token = [t, q, ("GITHUB_TOKEN_PARAM", "/gh")];
        assert_eq!(
            NotifierConfig::load(env(&token)).unwrap().github,
            Some(GitHubParams::Token { param: "/gh".into() })
        );
        let app_without_key = [t, q, ("GITHUB_APP_ID", "42")];
        assert_eq!(NotifierConfig::load(env(&app_without_key)).unwrap_err().var, "GITHUB_APP_PRIVATE_KEY_PARAM");
        let bad_api = [t, q, ("GITHUB_TOKEN_PARAM", "/gh"), ("GITHUB_API_URL", "not a url")];
        assert_eq!(NotifierConfig::load(env(&bad_api)).unwrap_err().var, "GITHUB_API_URL");
    }
}
