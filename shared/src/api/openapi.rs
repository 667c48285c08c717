//! The OpenAPI 3.1 document of the Router, generated from its handlers, their
//! parameter sets and the views they answer with ([`openapi_json`]).
//! `shared/docs/openapi.json` is its committed copy (`make openapi` writes it;
//! `shared/tests/openapi.rs` fails when they differ), the dashboard's types are
//! generated from that copy, and `GET /api/openapi.json` serves that copy,
//! compiled in: the generator (utoipa's builders for every path and schema)
//! then stays out of the servers, the API Lambda's zip among them (its size
//! budget, shared/docs/aws.md).

use std::sync::LazyLock;

use axum::extract::RawQuery;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use utoipa::OpenApi;

use super::query::{self, Query};
use super::{ApiError, ErrorBody, metrics, notify, read, search, webhook};
use crate::read::*;
use crate::services::metrics::{CI_GROUPS, DORA_GROUPS, GroupBy, PULL_GROUPS};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Octoscope API",
        description = "GitHub engineering analytics from webhooks. JSON; times are ISO-8601 UTC. An unknown or repeated query parameter or a bad value is a 400 {\"error\": …}; a cursor this server did not issue reads as the end of its list, a metrics window with since at or after until as the empty window at until, and a window longer than 3660 days as its last 3660 days. With API tokens configured, every /api/* call needs Authorization: Bearer <token>; without them (a loopback server), a write (POST, PUT, DELETE) with a body must be Content-Type: application/json (415) and one with an Origin header must come from this server's own origin (403). Metric definitions: shared/docs/metrics.md. Generated from the code (shared/src/api/); shared/docs/openapi.json is the committed copy, checked against it by shared/tests/openapi.rs."
    ),
    servers((url = "http://127.0.0.1:8080")),
    security(("bearer" = []), ()),
    paths(
        webhook::webhook,
        read::health,
        read::repos,
        read::pulls,
        read::pull,
        read::teams,
        read::commits,
        read::workflow_runs,
        read::deliveries,
        read::integrity,
        search::search,
        metrics::metrics_pulls,
        metrics::metrics_ci,
        metrics::metrics_dora,
        metrics::metrics_health,
        notify::list_rules,
        notify::create_rule,
        notify::get_rule,
        notify::put_rule,
        notify::delete_rule,
        notify::test_rule,
        notify::rotate_secret,
        notify::notifications,
        notify::notification,
        openapi,
    ),
    components(schemas(ErrorBody, PullDetail, DataHealth))
)]
pub struct ApiDoc;

/// The document as `/api/openapi.json` serves it: the committed copy of the
/// generated one (equal byte for byte while the tests pass).
pub const SERVED: &str = include_str!("../../docs/openapi.json");

/// The document generated from the code, as `shared/docs/openapi.json` keeps it.
pub fn openapi_json() -> &'static str {
    static DOC: LazyLock<String> = LazyLock::new(|| {
        let mut doc = serde_json::to_value(ApiDoc::openapi()).expect("the OpenAPI document serialises");
        contract(&mut doc);
        serde_json::to_string_pretty(&doc).expect("JSON serialises") + "\n"
    });
    &DOC
}

/// This description
#[utoipa::path(get, path = "/api/openapi.json", responses((status = 200, description = "OK", content_type = "application/json", body = Object)))]
pub(super) async fn openapi(RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    Query::parse(q, [])?;
    Ok(([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], SERVED).into_response())
}

/// What the annotations cannot say, said once for every operation.
fn contract(doc: &mut Value) {
    // Every /api call: bearer when tokens are set; the same error answers.
    doc["components"]["securitySchemes"] = json!({ "bearer": { "type": "http", "scheme": "bearer", "description": "one of OCTOSCOPE_API_TOKENS, when set" } });
    let error = |description: &str| json!({ "description": description, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } });
    doc["components"]["responses"] = json!({
        "BadRequest": error("an unknown or repeated query parameter, or a value the parameter's schema does not allow"),
        "Unauthorized": error("missing or invalid bearer token"),
        "Unavailable": error("the store is busy or unreachable; try again"),
        "Internal": error("internal error"),
        "Forbidden": error("a write from another origin, on a server without API tokens"),
        "UnsupportedMediaType": error("a write whose body is not Content-Type: application/json, on a server without API tokens"),
    });
    let paths = doc["paths"].as_object_mut().expect("paths");
    for (path, item) in paths.iter_mut() {
        for (method, op) in item.as_object_mut().into_iter().flatten() {
            // One API, no grouping: no tags; an operation without parameters lists none.
            let fields = op.as_object_mut().expect("operation");
            fields.remove("tags");
            if !fields.get("parameters").is_some_and(Value::is_array) {
                fields.insert("parameters".to_owned(), json!([]));
            }
            if path == "/webhook" {
                // GitHub signs; no bearer token.
                op["security"] = json!([]);
                continue;
            }
            let write = matches!(method.as_str(), "post" | "put" | "delete");
            let responses = op["responses"].as_object_mut().expect("responses");
            for (status, name) in [
                ("400", "BadRequest"),
                ("401", "Unauthorized"),
                ("403", "Forbidden"),
                ("415", "UnsupportedMediaType"),
                ("503", "Unavailable"),
                ("500", "Internal"),
            ] {
                if matches!(status, "403" | "415") && !write {
                    continue;
                }
                // `/api/health` takes any query.
                if (status == "400" && path == "/api/health") || responses.contains_key(status) {
                    continue;
                }
                responses.insert(status.to_owned(), json!({ "$ref": format!("#/components/responses/{name}") }));
            }
            let groups = match path.as_str() {
                "/api/metrics/pulls" => PULL_GROUPS,
                "/api/metrics/ci" => CI_GROUPS,
                "/api/metrics/dora" => DORA_GROUPS,
                _ => &[],
            };
            for param in op["parameters"].as_array_mut().into_iter().flatten() {
                // An optional query parameter given empty (`?repo=`) is one not given.
                if param["in"] == "query" && param["required"] != json!(true) {
                    param["allowEmptyValue"] = json!(true);
                }
                match param["name"].as_str() {
                    Some("group_by") => {
                        let values: Vec<&str> = groups.iter().copied().map(GroupBy::as_str).collect();
                        param["schema"] = json!({ "type": ["string", "null"], "enum": values });
                    }
                    // What `parse_time` reads: an RFC 3339 time or a date.
                    Some("since" | "until") => {
                        param["schema"] = json!({ "anyOf": [{ "type": "string", "format": "date-time" }, { "type": "string", "format": "date" }] });
                    }
                    // What `RepoName::parse` accepts; empty is no filter where the parameter is optional.
                    Some("repo") => {
                        let required = param["required"] == json!(true);
                        param["schema"]["pattern"] = json!(if required { query::REPO } else { query::REPO_OR_EMPTY });
                    }
                    Some("owner" | "name") => param["schema"]["pattern"] = json!(query::SEGMENT),
                    // A pull request number: what the stores can hold.
                    Some("number") => param["schema"]["maximum"] = json!(i64::MAX),
                    _ => {}
                }
            }
        }
    }
    // A repository name in a response is one `RepoName::parse` accepted.
    doc["components"]["schemas"]["RepoName"]["pattern"] = json!(query::REPO);
    // Every property of every object the API sends is present (null when
    // empty), except the metrics' parts that only a parameter asks for
    // (`interval`, `compare=previous`, `top`): absent without it.
    for schema in doc["components"]["schemas"].as_object_mut().expect("schemas").values_mut() {
        require_all(schema);
    }
    // What a rule's body may be: written out, the server's checks as JSON Schema.
    doc["components"]["schemas"]["RuleInput"] = notify::rule_input_schema();
    doc["components"]["schemas"]["TargetInput"] = notify::target_input_schema(notify::URL);
}

/// Metric response fields present only when a parameter asks for them.
const ASKED_FOR: &[&str] = &["series", "previous", "interval", "previous_window", "slowest_first_reviews", "stale"];

fn require_all(schema: &mut Value) {
    if let Some(obj) = schema.as_object_mut() {
        if let Some(props) = obj.get("properties").and_then(Value::as_object) {
            let names: Vec<Value> =
                props.keys().filter(|k| !ASKED_FOR.contains(&k.as_str())).cloned().map(Value::String).collect();
            obj.insert("required".to_owned(), Value::Array(names));
        }
        for v in obj.values_mut() {
            require_all(v);
        }
    } else if let Some(arr) = schema.as_array_mut() {
        arr.iter_mut().for_each(require_all);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_document_is_built() {
        assert!(super::openapi_json().contains("\"openapi\": \"3.1.0\""));
    }
}
