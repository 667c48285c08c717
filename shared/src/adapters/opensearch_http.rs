//! The HTTP requests of the OpenSearch adapter on the AWS SDK's own HTTPS
//! client (hyper 1 + rustls with ring, `aws-smithy-http-client`, already
//! linked by every function) and SigV4 (`aws-sigv4`, already linked by the
//! SDK), for the service `es`. It replaced the `opensearch` crate and
//! reqwest (their own HTTP stack, ~250 KiB of code in each function with
//! search: shared/docs/aws.md, the zip budget). The adapter sends four
//! kinds of request: `HEAD /<index>`, `PUT /<index>`, `POST /<index>/_bulk`
//! and `POST /<index>/_search`.
//!
//! The SSM secret reader (`adapters::aws::ssm`) sends its one request,
//! `GetParameter`, on the same client signed for the service `ssm`, instead
//! of linking `aws-sdk-ssm` (~135 KiB of code: the zip budget).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_http_client::Connector;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::HttpConnector;
use aws_smithy_runtime_api::client::identity::Identity;
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_types::body::SdkBody;
use http_body_util::BodyExt as _;

/// An HTTP method the adapter sends (each is the IAM action
/// `es:ESHttp<Method>` on the index: terraform/tests/test_agreement.py).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Method {
    Head,
    Put,
    Post,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Method::Head => "HEAD",
            Method::Put => "PUT",
            Method::Post => "POST",
        }
    }
}

/// An answer: its status and body.
pub(super) struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json<T: serde::de::DeserializeOwned>(&self) -> anyhow::Result<T> {
        serde_json::from_slice(&self.body).context("the answer is not the JSON expected")
    }
}

/// Who signs the requests: the SDK's credentials and region.
#[derive(Clone)]
struct Signer {
    credentials: SharedCredentialsProvider,
    region: String,
    /// The SigV4 service name: `es`, `ssm`.
    service: &'static str,
}

/// OpenSearch at one base URL (`https://…` or a loopback `http://…`).
#[derive(Clone)]
pub(super) struct Http {
    connector: Arc<Connector>,
    base: String,
    signer: Option<Signer>,
    timeout: Duration,
}

impl Http {
    /// Requests unsigned (a local engine) unless `sdk` is given: then
    /// signed with SigV4 for the service `es` with its credentials and region.
    pub fn new(base: &str, sdk: Option<&aws_config::SdkConfig>, timeout: Duration) -> anyhow::Result<Self> {
        Self::for_service(base, sdk, "es", timeout)
    }

    /// The same for another AWS service: requests signed for `service`
    /// (the SigV4 name, `ssm`) when `sdk` is given.
    pub fn for_service(
        base: &str,
        sdk: Option<&aws_config::SdkConfig>,
        service: &'static str,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        let parsed: http::Uri = base.parse().with_context(|| format!("{service} URL {base:?}"))?;
        match (parsed.scheme_str(), parsed.host()) {
            (Some("https" | "http"), Some(h)) if !h.is_empty() => {}
            _ => return Err(anyhow!("{service} URL {base:?}: expected http(s)://host")),
        }
        let signer = match sdk {
            None => None,
            Some(sdk) => Some(Signer {
                credentials: sdk
                    .credentials_provider()
                    .with_context(|| format!("AWS credentials for {service}: none configured"))?,
                region: sdk.region().with_context(|| format!("AWS region for {service}: none configured"))?.to_string(),
                service,
            }),
        };
        let connector = Connector::builder().tls_provider(tls::Provider::Rustls(CryptoMode::Ring)).build();
        Ok(Self { connector: Arc::new(connector), base: base.trim_end_matches('/').to_owned(), signer, timeout })
    }

    /// Send `method path` (`path` starts with `/` and may hold a query) with
    /// a JSON body (or none), within the timeout.
    pub async fn send(&self, method: Method, path: &str, body: Option<Vec<u8>>) -> anyhow::Result<Answer> {
        self.send_with(method, path, "application/json", &[], body).await
    }

    /// The same with the body's `content_type` and more `headers` (an AWS
    /// JSON protocol's `x-amz-target`), signed with them.
    pub async fn send_with(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> anyhow::Result<Answer> {
        let uri = format!("{}{path}", self.base);
        let body = body.unwrap_or_default();
        let mut request = http::Request::builder().method(method.as_str()).uri(&uri);
        if !body.is_empty() {
            request = request.header(http::header::CONTENT_TYPE, content_type);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let mut request = request.body(body).with_context(|| format!("the request {} {uri}", method.as_str()))?;
        if let Some(signer) = &self.signer {
            signer.sign(&mut request).await?;
        }
        let request = HttpRequest::try_from(request.map(SdkBody::from)).context("the request to send")?;
        let call = async {
            let response = self.connector.call(request).await.map_err(|e| anyhow!(e))?;
            let status = response.status().as_u16();
            let body = response.into_body().collect().await.map_err(|e| anyhow!(e))?.to_bytes().to_vec();
            Ok::<_, anyhow::Error>(Answer { status, body })
        };
        tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| anyhow!("no answer within {:?}", self.timeout))?
            .with_context(|| format!("{} {path}", method.as_str()))
    }
}

impl Signer {
    /// SigV4 for the service (`es`), as the `opensearch` crate's `aws-auth`
    /// signed: the body's SHA-256 in `x-amz-content-sha256` (which
    /// OpenSearch Serverless requires), the signature in the headers.
    async fn sign(&self, request: &mut http::Request<Vec<u8>>) -> anyhow::Result<()> {
        let credentials = self
            .credentials
            .provide_credentials()
            .await
            .with_context(|| format!("AWS credentials for {}", self.service))?;
        let expiry = credentials.expiry();
        let identity = Identity::new(credentials, expiry);
        let mut settings = SigningSettings::default();
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .name(self.service)
            .region(&self.region)
            .time(std::time::SystemTime::now())
            .settings(settings)
            .build()
            .context("SigV4 parameters")?
            .into();
        let uri = request.uri().to_string();
        let headers = request
            .headers()
            .iter()
            .map(|(k, v)| v.to_str().map(|v| (k.as_str(), v)))
            .collect::<Result<Vec<_>, _>>()
            .context("a header that is not text")?;
        let signable = SignableRequest::new(
            request.method().as_str(),
            &uri,
            headers.into_iter(),
            SignableBody::Bytes(request.body()),
        )
        .context("the request to sign")?;
        let (instructions, _) = sign(signable, &params).context("signing the request")?.into_parts();
        instructions.apply_to_request_http1x(request);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_credential_types::Credentials;

    #[tokio::test]
    async fn a_request_to_aws_is_signed_for_es_with_the_body_hash_and_a_local_one_is_not() {
        // GIVEN an SDK configuration with credentials and a region
        let sdk = aws_config::SdkConfig::builder()
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                "AKIDEXAMPLE",
                "secret",
                None,
                None,
                "t",
            )))
            .region(aws_config::Region::new("eu-west-1"))
            .build();
        let http =
            Http::new("https://search-x.eu-west-1.es.amazonaws.com", Some(&sdk), Duration::from_secs(1)).unwrap();
        let mut request = http::Request::builder()
            .method("POST")
            .uri("https://search-x.eu-west-1.es.amazonaws.com/i/_search")
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(b"{}".to_vec())
            .unwrap();
        // WHEN it is signed THEN SigV4 for es in eu-west-1, the body's SHA-256 in x-amz-content-sha256
        http.signer.as_ref().unwrap().sign(&mut request).await.unwrap();
        let h = request.headers();
        let auth = h["authorization"].to_str().unwrap();
        assert!(auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"), "{auth}");
        assert!(auth.contains("/eu-west-1/es/aws4_request"), "{auth}");
        assert!(auth.contains("x-amz-content-sha256"), "{auth}");
        assert_eq!(
            h["x-amz-content-sha256"],
            "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a" // sha256("{}")
        );
        assert!(h.contains_key("x-amz-date"));
        // AND without an SDK configuration nothing signs
        assert!(Http::new("http://127.0.0.1:9200", None, Duration::from_secs(1)).unwrap().signer.is_none());
        // AND a URL without a host is refused
        assert!(Http::new("https://", None, Duration::from_secs(1)).is_err());
    }
}
