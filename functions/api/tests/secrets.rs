//! Secrets never leak, AWS mode: the webhook and api functions on moto, their
//! secrets in SSM SecureString parameters, with every tracing event of every
//! target (the AWS SDK's, hyper's, the functions') captured at TRACE. Webhook
//! deliveries are signed with each of two rotated secrets, a wrong one and
//! none; the API is called with each of two tokens, wrong ones and none; a
//! token parameter holding a refused value is read. Every log line and every
//! answer (status, headers, body) is then scanned for each secret: raw, hex,
//! and base64 at any byte offset.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

use aws_config::SdkConfig;
use axum::Router;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use lambda_http::request::LambdaRequest;
use lambda_http::{Adapter, Context, LambdaEvent, Service as _};
use octoscope::adapters::aws::dynamodb::create_table;
use octoscope::config::aws::{ApiConfig, WebhookConfig};
use octoscope_testkit::moto::{MotoServer, archive_stream, secure_parameter, unique};
use serde_json::{Value, json};

const GET: &str = include_str!("fixtures/apigw-v2-get-health.json");
const POST_WEBHOOK: &str = include_str!("../../webhook/tests/fixtures/apigw-v2-post-webhook.json");

const WEBHOOK_NEW: &str = "whsec-AWSNEWcanary-3e1d7c9b5a";
const WEBHOOK_OLD: &str = "whsec-AWSOLDcanary-6f4a2c8e0d";
const WEBHOOK_WRONG: &str = "whsec-AWSWRONGcanary-1b3d5f";
const API_A: &str = "apitok-AWSAcanary-9d8c7b6a5f4e";
const API_B: &str = "apitok-AWSBcanary-4e5f6a7b8c9d";
const API_SHORT: &str = "apitok-AWSAcanary-9d8c7b6a5f4";
const API_WRONG: &str = "apitok-AWSWcanary-0a0b0c0d0e0f";
const REFUSED_TOKEN: &str = "tokAWScanary-7";

/// Every tracing event, formatted, as the functions would print them.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// The raw value, its hex, and its base64 (standard, URL-safe) as it shows
/// inside any longer base64 text: at each byte offset, the characters that
/// depend on the value alone.
fn needles(value: &str) -> Vec<String> {
    let mut out = vec![value.to_owned(), hex::encode(value)];
    for offset in 0..3usize {
        let mut padded = vec![0u8; offset];
        padded.extend_from_slice(value.as_bytes());
        let (first, last) = ((offset * 8).div_ceil(6), padded.len() * 8 / 6);
        for text in [STANDARD.encode(&padded), URL_SAFE_NO_PAD.encode(&padded)] {
            out.push(text[first..last].to_owned());
        }
    }
    out
}

fn leaks(what: &str, text: &str) -> Vec<String> {
    let secrets = [WEBHOOK_NEW, WEBHOOK_OLD, WEBHOOK_WRONG, API_A, API_B, API_SHORT, API_WRONG, REFUSED_TOKEN];
    let mut found = Vec::new();
    for secret in secrets {
        for needle in needles(secret) {
            if let Some(at) = text.find(&needle) {
                let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
                let line: String = text[start..].lines().next().unwrap_or_default().chars().take(300).collect();
                found.push(format!("{secret} ({needle:?}) in {what}: {line}"));
            }
        }
    }
    found
}

/// One invocation as the Lambda runtime makes it; the whole answer as text, and its status.
async fn invoke(app: &Router, event: Value) -> (u64, String) {
    let request: LambdaRequest = serde_json::from_value(event).unwrap();
    let response = Adapter::from(app.clone()).call(LambdaEvent::new(request, Context::default())).await.unwrap();
    let response = serde_json::to_value(response).unwrap();
    (response["statusCode"].as_u64().unwrap(), response.to_string())
}

fn delivery(event: &str, body: &[u8], signature: Option<String>) -> Value {
    let mut e: Value = serde_json::from_str(POST_WEBHOOK).unwrap();
    e["headers"]["x-github-event"] = json!(event);
    e["body"] = json!(String::from_utf8(body.to_vec()).unwrap());
    e["headers"]["content-length"] = json!(body.len().to_string());
    e["headers"]["x-github-delivery"] = json!(uuid::Uuid::new_v4().to_string());
    match signature {
        Some(sig) => e["headers"]["x-hub-signature-256"] = json!(sig),
        None => {
            e["headers"].as_object_mut().unwrap().remove("x-hub-signature-256");
        }
    }
    e
}

fn get(path: &str, authorization: Option<String>) -> Value {
    let mut e: Value = serde_json::from_str(GET).unwrap();
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    e["rawPath"] = json!(path);
    e["requestContext"]["http"]["path"] = json!(path);
    e["rawQueryString"] = json!(query);
    let params: HashMap<&str, &str> = query.split('&').filter_map(|p| p.split_once('=')).collect();
    e["queryStringParameters"] = json!(params);
    if let Some(a) = authorization {
        e["headers"]["authorization"] = json!(a);
    }
    e
}

async fn webhook_function(sdk: &SdkConfig, table: &str) -> Router {
    let bucket = unique("octoscope-archive");
    aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(sdk).force_path_style(true).build())
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    let rotated = format!("{WEBHOOK_NEW},{WEBHOOK_OLD}");
    let env = HashMap::from([
        ("OCTOSCOPE_TABLE", table.to_owned()),
        ("OCTOSCOPE_ARCHIVE_STREAM", archive_stream(sdk, &bucket, "batched/").await.unwrap()),
        ("GITHUB_WEBHOOK_SECRET_PARAM", secure_parameter(sdk, "webhook-secret", &rotated).await.unwrap()),
    ]);
    let config = WebhookConfig::load(|k| env.get(k).cloned()).unwrap();
    octoscope_webhook::app(&config, octoscope_webhook::Clients::new(sdk)).await.unwrap()
}

async fn api_function(sdk: &SdkConfig, table: &str, tokens: &str) -> anyhow::Result<Router> {
    let env = HashMap::from([
        ("OCTOSCOPE_TABLE", table.to_owned()),
        ("OCTOSCOPE_API_TOKENS_PARAM", secure_parameter(sdk, "api-tokens", tokens).await.unwrap()),
    ]);
    let config = ApiConfig::load(|k| env.get(k).cloned()).unwrap();
    octoscope_api::app(&config, octoscope_api::Clients::new(sdk)).await
}

#[tokio::test(flavor = "multi_thread")]
async fn no_secret_of_the_functions_reaches_a_log_line_or_an_answer_at_trace_level() {
    // GIVEN every tracing event of every target captured at TRACE
    let logs = Logs::default();
    let sink = logs.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .init();
    let mut answers: Vec<String> = Vec::new();

    // AND the webhook function with two secrets in its parameter, the api function with two tokens in its own
    let sdk = MotoServer::shared().sdk_config().await;
    let table = unique("octoscope");
    create_table(&aws_sdk_dynamodb::Client::new(&sdk), &table).await.unwrap();
    let webhook = webhook_function(&sdk, &table).await;
    let api = api_function(&sdk, &table, &format!("{API_A},{API_B}")).await.unwrap();

    // WHEN deliveries arrive signed with the new secret, the old one, a wrong one, and unsigned
    for (event, name) in [("pull_request", "opened.payload.json"), ("pull_request_review", "submitted.payload.json")] {
        let body = octoscope_testkit::fixture(event, name);
        for (sig, ok) in [
            (Some(octoscope_testkit::sign(WEBHOOK_NEW, &body)), true),
            (Some(octoscope_testkit::sign(WEBHOOK_OLD, &body)), true),
            (Some(octoscope_testkit::sign(WEBHOOK_WRONG, &body)), false),
            (Some(format!("sha256={WEBHOOK_NEW}")), false),
            (None, false),
        ] {
            let (status, answer) = invoke(&webhook, delivery(event, &body, sig)).await;
            assert_eq!((200..300).contains(&status), ok, "{event}: {answer}");
            answers.push(answer);
        }
    }

    // AND the API is called with each token, wrong ones, another scheme and none
    for path in ["/api/health", "/api/pulls?state=all", "/api/deliveries", "/api/repos", "/api/nope"] {
        for (auth, ok) in [
            (Some(format!("Bearer {API_A}")), true),
            (Some(format!("Bearer {API_B}")), true),
            (Some(format!("Bearer {API_SHORT}")), false),
            (Some(format!("Bearer {API_A}0")), false),
            (Some(format!("Bearer {API_WRONG}")), false),
            (Some(format!("Basic {}", STANDARD.encode(format!("u:{API_A}")))), false),
            (None, false),
        ] {
            let (status, answer) = invoke(&api, get(path, auth)).await;
            assert_eq!(status != 401, ok, "{path}: {answer}");
            answers.push(answer);
        }
    }

    // AND a token parameter holding a refused value stops the start, naming the variable
    let refused = api_function(&sdk, &table, &format!("{API_A},{REFUSED_TOKEN}")).await.unwrap_err();
    let refused = format!("{refused:#} / {refused:?}");
    assert!(refused.contains("OCTOSCOPE_API_TOKENS_PARAM"), "{refused}");
    answers.push(refused);

    // THEN the SDK's, hyper's and the functions' own trace lines were captured
    let logs = logs.text();
    assert!(logs.contains("TRACE") && logs.contains("GetParameter"), "trace lines of the SSM reads were captured");
    // AND none of them, and no answer, holds a secret in any form
    let mut found = leaks("the logs", &logs);
    for a in &answers {
        found.extend(leaks("an answer", a));
    }
    eprintln!("scanned {} log lines and {} answers", logs.lines().count(), answers.len());
    assert!(found.is_empty(), "{} leak(s):\n{}", found.len(), found.join("\n"));
}

#[test]
fn the_scanner_finds_a_planted_secret_in_each_form() {
    for planted in [
        format!("DEBUG body: {{\"Value\":\"{WEBHOOK_NEW},{WEBHOOK_OLD}\"}}"),
        format!("authorization: Basic {}", STANDARD.encode(format!("x:{API_B}"))),
        URL_SAFE_NO_PAD.encode(format!("yz{API_A}")),
        hex::encode(REFUSED_TOKEN),
    ] {
        assert!(!leaks("a planted line", &planted).is_empty(), "{planted}");
    }
    assert!(leaks("a clean line", "INFO webhook stored delivery=1; Bearer apitok-AWSZcanary-000000").is_empty());
}
