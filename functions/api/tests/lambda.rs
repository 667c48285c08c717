//! The api function end to end on moto: what the webhook function stored is
//! what a GET through API Gateway's HTTP API (v2) event answers.

use std::collections::HashMap;

use aws_config::SdkConfig;
use axum::Router;
use lambda_http::request::LambdaRequest;
use lambda_http::{Adapter, Context, LambdaEvent, Service as _};
use octoscope::adapters::aws::dynamodb::create_table;
use octoscope::config::aws::{ApiConfig, WebhookConfig};
use octoscope_testkit::moto::{MotoServer, StreamReader, secure_parameter, unique};
use serde_json::{Value, json};

const GET_PULLS: &str = include_str!("fixtures/apigw-v2-get-pulls.json");
const POST_WEBHOOK: &str = include_str!("../../webhook/tests/fixtures/apigw-v2-post-webhook.json");
const SECRET: &str = "a-webhook-secret-for-the-api-tests";
const TOKEN: &str = "an-api-token-of-enough-length";

async fn aws() -> SdkConfig {
    MotoServer::shared().sdk_config().await
}

async fn parameter(sdk: &SdkConfig, value: &str) -> String {
    secure_parameter(sdk, "param", value).await.unwrap()
}

async fn invoke(app: &Router, event: Value) -> (u64, Value) {
    let request: LambdaRequest = serde_json::from_value(event).unwrap();
    let response = Adapter::from(app.clone()).call(LambdaEvent::new(request, Context::default())).await.unwrap();
    let response = serde_json::to_value(response).unwrap();
    let body = response["body"].as_str().unwrap_or("null");
    (response["statusCode"].as_u64().unwrap(), serde_json::from_str(body).unwrap_or(json!(body)))
}

fn get(path: &str, query: &str, token: Option<&str>) -> Value {
    let mut e: Value = serde_json::from_str(GET_PULLS).unwrap();
    e["rawPath"] = json!(path);
    e["requestContext"]["http"]["path"] = json!(path);
    e["rawQueryString"] = json!(query);
    let params: HashMap<String, String> = form_pairs(query);
    e["queryStringParameters"] = json!(params);
    match token {
        Some(t) => e["headers"]["authorization"] = json!(format!("Bearer {t}")),
        None => {
            e["headers"].as_object_mut().unwrap().remove("authorization");
        }
    }
    e
}

fn form_pairs(query: &str) -> HashMap<String, String> {
    query.split('&').filter_map(|p| p.split_once('=')).map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
}

/// A table with one pull request in it, stored by the webhook function.
async fn table_with_a_pull_request(sdk: &SdkConfig) -> String {
    let table = unique("octoscope");
    create_table(&aws_sdk_dynamodb::Client::new(sdk), &table).await.unwrap();
    let bucket = unique("octoscope-archive");
    aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(sdk).force_path_style(true).build())
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    let env = HashMap::from([
        ("OCTOSCOPE_TABLE", table.clone()),
        ("OCTOSCOPE_ARCHIVE_STREAM", octoscope_testkit::moto::archive_stream(sdk, &bucket, "batched/").await.unwrap()),
        ("GITHUB_WEBHOOK_SECRET_PARAM", parameter(sdk, SECRET).await),
    ]);
    let config = WebhookConfig::load(|k| env.get(k).cloned()).unwrap();
    let webhook = octoscope_webhook::app(&config, octoscope_webhook::Clients::new(sdk)).await.unwrap();
    let body = octoscope_testkit::fixture("pull_request", "opened.payload.json");
    let mut e: Value = serde_json::from_str(POST_WEBHOOK).unwrap();
    e["body"] = json!(String::from_utf8(body.clone()).unwrap());
    e["headers"]["x-github-delivery"] = json!(uuid::Uuid::new_v4().to_string());
    e["headers"]["x-hub-signature-256"] = json!(octoscope_testkit::sign(SECRET, &body));
    let (status, answer) = invoke(&webhook, e).await;
    assert_eq!(status, 200, "{answer}");
    // Delivery listings and counts: the table's stream through the ledger-stream handler, as on AWS.
    let store = octoscope::adapters::aws::dynamodb::DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), &table);
    let mut stream = StreamReader::of_table(&MotoServer::shared().endpoint, &table).await.unwrap();
    loop {
        let event: aws_lambda_events::event::dynamodb::Event =
            serde_json::from_value(stream.next_batch(100).await.unwrap()).unwrap();
        if event.records.is_empty() {
            break;
        }
        let response = octoscope_ledger_stream::handle(&store, event).await;
        assert!(response.batch_item_failures.is_empty(), "{response:?}");
    }
    table
}

#[tokio::test(flavor = "multi_thread")]
async fn a_get_answers_what_the_webhook_stored_to_a_bearer_of_a_token() {
    // GIVEN a pull request stored by the webhook function, and the api function with a token parameter
    let sdk = aws().await;
    let table = table_with_a_pull_request(&sdk).await;
    let env = HashMap::from([("OCTOSCOPE_TABLE", table), ("OCTOSCOPE_API_TOKENS_PARAM", parameter(&sdk, TOKEN).await)]);
    let config = ApiConfig::load(|k| env.get(k).cloned()).unwrap();
    let app = octoscope_api::app(&config, octoscope_api::Clients::new(&sdk)).await.unwrap();

    // WHEN the dashboard asks for the repository's pull requests
    let (status, page) = invoke(&app, serde_json::from_str(GET_PULLS).unwrap()).await;
    assert_eq!(status, 401, "the fixture's token is not a configured one: {page}");
    let (status, page) = invoke(&app, get("/api/pulls", "repo=Codertocat/Hello-World&state=all", Some(TOKEN))).await;

    // THEN it gets the pull request the webhook stored
    assert_eq!(status, 200, "{page}");
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{page}");
    assert_eq!(items[0]["number"], 2);
    assert_eq!(items[0]["repo"], "Codertocat/Hello-World");
    let (status, detail) = invoke(&app, get("/api/pulls/Codertocat/Hello-World/2", "", Some(TOKEN))).await;
    assert_eq!((status, &detail["number"]), (200, &json!(2)), "{detail}");
    let (status, deliveries) = invoke(&app, get("/api/deliveries", "", Some(TOKEN))).await;
    assert_eq!((status, deliveries["items"][0]["status"].as_str()), (200, Some("stored")), "{deliveries}");

    // AND without a token it is refused; the webhook path is not served here
    let (status, _) = invoke(&app, get("/api/pulls", "", None)).await;
    assert_eq!(status, 401);
    let (status, _) = invoke(&app, get("/webhook", "", Some(TOKEN))).await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn with_gateway_auth_no_token_is_asked_and_a_bad_token_parameter_refuses_the_start() {
    let sdk = aws().await;
    let table = table_with_a_pull_request(&sdk).await;
    // GIVEN OCTOSCOPE_API_AUTH=gateway WHEN a request comes without a token THEN it is answered
    let env = HashMap::from([("OCTOSCOPE_TABLE", table.clone()), ("OCTOSCOPE_API_AUTH", "gateway".to_owned())]);
    let app = octoscope_api::app(&ApiConfig::load(|k| env.get(k).cloned()).unwrap(), octoscope_api::Clients::new(&sdk))
        .await
        .unwrap();
    let (status, health) = invoke(&app, get("/api/health", "", None)).await;
    assert_eq!((status, health["status"].as_str()), (200, Some("ok")), "{health}");

    // GIVEN a token parameter holding a short token WHEN the function starts THEN it is refused, naming the variable
    let env =
        HashMap::from([("OCTOSCOPE_TABLE", table), ("OCTOSCOPE_API_TOKENS_PARAM", parameter(&sdk, "short").await)]);
    let err = octoscope_api::app(&ApiConfig::load(|k| env.get(k).cloned()).unwrap(), octoscope_api::Clients::new(&sdk))
        .await
        .unwrap_err();
    let said = format!("{err:#}");
    assert!(said.contains("OCTOSCOPE_API_TOKENS_PARAM") && !said.contains("short"), "{said}");
}

#[tokio::test(flavor = "multi_thread")]
async fn search_reads_the_index_the_configuration_names_and_answers_501_without_one() {
    use octoscope::adapters::opensearch::OpenSearchIndex;
    use octoscope::domain::{DocKind, RepoName, SearchDoc};
    use octoscope::ports::SearchIndex;
    use octoscope_testkit::osmem::OsmemServer;
    let sdk = aws().await;
    let table = table_with_a_pull_request(&sdk).await;
    let osmem = &OsmemServer::shared().url;
    // GIVEN an index holding one document (as the indexer function writes it)
    let name = unique("octoscope-search");
    let index = OpenSearchIndex::new(osmem, &name).unwrap().refreshing();
    index.ensure_index().await.unwrap();
    let doc = SearchDoc {
        key: "pr:acme/api#7".into(),
        kind: DocKind::Pr,
        repo: Some(RepoName::parse("acme/api").unwrap()),
        author: Some("alice".into()),
        state: Some("open".into()),
        created_at: None,
        version: "2026-11-02T10:00:00Z".into(),
        title: "Rate limiter for the gateway".into(),
        body: String::new(),
        extra: String::new(),
    };
    index.index(&[doc]).await.unwrap();
    let configured = |index: &str| {
        HashMap::from([
            ("OCTOSCOPE_TABLE", table.clone()),
            ("OCTOSCOPE_API_AUTH", "gateway".to_owned()),
            ("OCTOSCOPE_SEARCH_ENDPOINT", osmem.clone()),
            ("OCTOSCOPE_SEARCH_INDEX", index.to_owned()),
        ])
    };
    // WHEN the api function, configured with that index, is asked
    let env = configured(&name);
    let app = octoscope_api::app(&ApiConfig::load(|k| env.get(k).cloned()).unwrap(), octoscope_api::Clients::new(&sdk))
        .await
        .unwrap();
    let (status, found) = invoke(&app, get("/api/search", "q=limiter%20repo:acme/api", None)).await;
    // THEN it answers from the index
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["total"], 1, "{found}");
    assert_eq!(found["items"][0]["key"], "pr:acme/api#7", "{found}");
    // AND a bad query is the caller's 400
    let (status, refused) = invoke(&app, get("/api/search", "q=repo:a%20repo:b", None)).await;
    assert_eq!(status, 400, "{refused}");

    // WHEN its index does not exist yet (the indexer has not started) THEN nothing matches, no error
    let env = configured(&unique("never-created"));
    let app = octoscope_api::app(&ApiConfig::load(|k| env.get(k).cloned()).unwrap(), octoscope_api::Clients::new(&sdk))
        .await
        .unwrap();
    let (status, found) = invoke(&app, get("/api/search", "q=limiter", None)).await;
    assert_eq!((status, &found["total"]), (200, &json!(0)), "{found}");

    // WHEN no search is configured THEN /api/search says so with a 501
    let env = HashMap::from([("OCTOSCOPE_TABLE", table.clone()), ("OCTOSCOPE_API_AUTH", "gateway".to_owned())]);
    let app = octoscope_api::app(&ApiConfig::load(|k| env.get(k).cloned()).unwrap(), octoscope_api::Clients::new(&sdk))
        .await
        .unwrap();
    let (status, answer) = invoke(&app, get("/api/search", "q=limiter", None)).await;
    assert_eq!(status, 501, "{answer}");
}

/// A write through API Gateway's HTTP API (v2): `method` on `path`, a JSON body.
fn write(method: &str, path: &str, body: Option<Value>, token: &str) -> Value {
    let mut e = get(path, "", Some(token));
    e["routeKey"] = json!(format!("{method} /api/{{proxy+}}"));
    e["requestContext"]["routeKey"] = e["routeKey"].clone();
    e["requestContext"]["http"]["method"] = json!(method);
    e["pathParameters"]["proxy"] = json!(path.trim_start_matches("/api/"));
    if let Some(body) = body {
        e["headers"]["content-type"] = json!("application/json");
        e["body"] = json!(body.to_string());
    }
    e
}

#[tokio::test(flavor = "multi_thread")]
async fn rules_are_kept_in_the_table_and_a_test_is_a_pending_notification_in_the_log() {
    use octoscope::config::NotifyConfig;
    // GIVEN the api function on a table, with a token
    let sdk = aws().await;
    let table = unique("octoscope");
    create_table(&aws_sdk_dynamodb::Client::new(&sdk), &table).await.unwrap();
    let env = HashMap::from([
        ("OCTOSCOPE_TABLE", table.clone()),
        ("OCTOSCOPE_API_TOKENS_PARAM", parameter(&sdk, TOKEN).await),
    ]);
    let config = ApiConfig::load(|k| env.get(k).cloned()).unwrap();
    let notify = NotifyConfig::load(|_| None).unwrap();
    let app = octoscope_api::app_with(&config, &notify, octoscope_api::Clients::new(&sdk)).await.unwrap();

    // WHEN a rule is created
    let rule = json!({
        "on": "pull_request.merged",
        "repo": "Codertocat/Hello-World",
        "branch": "main",
        "target": { "type": "webhook", "url": "https://receiver.invalid/hook" },
    });
    let (status, created) = invoke(&app, write("POST", "/api/rules", Some(rule.clone()), TOKEN)).await;
    // THEN it is answered with its signing secret, this once
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("rul_"), "{created}");
    assert!(created["secret"].as_str().is_some_and(|s| s.starts_with("whsec_")), "{created}");

    // AND it is listed (and read) without the secret
    let (status, list) = invoke(&app, get("/api/rules", "", Some(TOKEN))).await;
    assert_eq!(status, 200, "{list}");
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{list}");
    assert_eq!(items[0]["id"], id.as_str());
    assert_eq!(items[0]["on"], "pull_request.merged");
    assert!(items[0].get("secret").is_none_or(Value::is_null), "{list}");
    assert!(!list.to_string().contains("whsec_"), "{list}");
    let (status, one) = invoke(&app, get(&format!("/api/rules/{id}"), "", Some(TOKEN))).await;
    assert_eq!((status, one["id"].as_str()), (200, Some(id.as_str())), "{one}");
    assert!(!one.to_string().contains("whsec_"), "{one}");

    // WHEN a test is asked for
    let (status, queued) = invoke(&app, write("POST", &format!("/api/rules/{id}/test"), None, TOKEN)).await;
    // THEN it is accepted as a pending notification of that rule (a NOTE# item: the stream carries it to the queue)
    assert_eq!(status, 202, "{queued}");
    let note = queued["id"].as_str().unwrap().to_owned();
    assert_eq!(queued["status"], "pending", "{queued}");
    let item = aws_sdk_dynamodb::Client::new(&sdk)
        .get_item()
        .table_name(&table)
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(format!("NOTE#{note}")))
        .key("sk", aws_sdk_dynamodb::types::AttributeValue::S("_".into()))
        .send()
        .await
        .unwrap();
    assert!(item.item.is_some(), "the test is a NOTE# item of the table");

    // AND the log shows it, pending, also filtered by the rule and status
    let (status, log) = invoke(&app, get("/api/notifications", "", Some(TOKEN))).await;
    assert_eq!(status, 200, "{log}");
    assert_eq!(log["items"].as_array().unwrap().len(), 1, "{log}");
    assert_eq!(
        (log["items"][0]["id"].as_str(), log["items"][0]["status"].as_str()),
        (Some(note.as_str()), Some("pending"))
    );
    assert_eq!(log["items"][0]["rule_id"], id.as_str());
    let query = format!("rule={id}&status=pending");
    let (status, mine) = invoke(&app, get("/api/notifications", &query, Some(TOKEN))).await;
    assert_eq!((status, mine["items"].as_array().map(Vec::len)), (200, Some(1)), "{mine}");
    let (status, detail) = invoke(&app, get(&format!("/api/notifications/{note}"), "", Some(TOKEN))).await;
    assert_eq!((status, detail["status"].as_str()), (200, Some("pending")), "{detail}");

    // AND a private target is refused unless OCTOSCOPE_NOTIFY_ALLOW_PRIVATE=1
    let private = json!({ "on": "branch.moved", "target": { "type": "webhook", "url": "http://127.0.0.1:9/hook" } });
    let (status, refused) = invoke(&app, write("POST", "/api/rules", Some(private.clone()), TOKEN)).await;
    assert_eq!(status, 400, "{refused}");
    let allowed = NotifyConfig::load(|k| (k == "OCTOSCOPE_NOTIFY_ALLOW_PRIVATE").then(|| "1".to_owned())).unwrap();
    let app = octoscope_api::app_with(&config, &allowed, octoscope_api::Clients::new(&sdk)).await.unwrap();
    let (status, created) = invoke(&app, write("POST", "/api/rules", Some(private), TOKEN)).await;
    assert_eq!(status, 201, "{created}");

    // AND a rule is deleted
    let (status, _) = invoke(&app, write("DELETE", &format!("/api/rules/{id}"), None, TOKEN)).await;
    assert_eq!(status, 204);
    let (status, _) = invoke(&app, get(&format!("/api/rules/{id}"), "", Some(TOKEN))).await;
    assert_eq!(status, 404);
}
