//! The HTTP side: one gate for every request (counter, credentials, injected
//! faults, rate limit, ETag) and the handlers of the endpoints served.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::body::{Body, to_bytes};
use axum::extract::{MatchedPath, Path, Query, Request, State as AxState};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::{Bucket, Fault, Outgoing, State};

type St = AxState<Arc<State>>;

/// The endpoints at the root (like api.github.com) and under `/api/v3` with
/// GraphQL at `/api/graphql` (like GitHub Enterprise Server).
pub(crate) fn router(state: Arc<State>) -> Router {
    let rest = rest_routes(state.clone());
    Router::new()
        .route("/graphql", post(graphql))
        .route("/api/graphql", post(graphql))
        .route_layer(middleware::from_fn_with_state(state.clone(), gate))
        .merge(rest.clone())
        .nest("/api/v3", rest)
        .with_state(state)
}

fn rest_routes(state: Arc<State>) -> Router<Arc<State>> {
    let mut router = Router::new();
    // A repository's endpoints by name and, as GitHub serves them too, by id.
    for repo in ["/repos/{owner}/{repo}", "/repositories/{repo_id}"] {
        router = router
            .route(&format!("{repo}/actions/runs"), get(workflow_runs))
            .route(&format!("{repo}/actions/runs/{{run_id}}/jobs"), get(workflow_jobs))
            .route(&format!("{repo}/deployments"), get(deployments))
            .route(&format!("{repo}/deployments/{{deployment_id}}/statuses"), get(deployment_statuses))
            .route(&format!("{repo}/hooks"), get(repo_hooks))
            .route(&format!("{repo}/hooks/{{hook}}/deliveries"), get(repo_deliveries))
            .route(&format!("{repo}/hooks/{{hook}}/deliveries/{{id}}/attempts"), post(repo_redeliver))
            .route(&format!("{repo}/dispatches"), post(dispatch));
    }
    router
        .route("/orgs/{org}/hooks", get(org_hooks))
        .route("/orgs/{org}/hooks/{hook}/deliveries", get(org_deliveries))
        .route("/orgs/{org}/hooks/{hook}/deliveries/{id}/attempts", post(org_redeliver))
        .route("/app/installations", get(app_installations))
        .route("/app/installations/{id}", get(app_installation))
        .route("/app/installations/{id}/access_tokens", post(mint_installation_token))
        .route_layer(middleware::from_fn_with_state(state, gate))
}

/// A JWT of the installed app: RS256 with the test key, unexpired, `iss` = the app id.
fn app_jwt_valid(st: &State, token: &str) -> bool {
    static PUBLIC: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let public = PUBLIC.get_or_init(|| {
        octoscope::adapters::github::jwt::AppKey::from_pem(crate::TEST_APP_PRIVATE_KEY)
            .expect("the test app key parses")
            .public_key_der()
            .to_vec()
    });
    match octoscope::adapters::github::jwt::verify(token, public, Utc::now()) {
        Ok(claims) => {
            let iss = &claims["iss"];
            iss.as_u64() == Some(st.config.app.app_id) || iss.as_str() == Some(&st.config.app.app_id.to_string())
        }
        Err(_) => false,
    }
}

/// The unexpired installation token this is.
fn minted_token(st: &State, token: &str) -> Option<crate::MintedToken> {
    let now = Utc::now();
    st.installation_tokens.lock().expect("token lock").iter().find(|t| t.token == token && t.expires_at > now).cloned()
}

/// The installation whose unexpired token this is.
fn installation_of_token(st: &State, token: &str) -> Option<u64> {
    minted_token(st, token).map(|t| t.installation)
}

/// Who sent a request: the budget it is charged to (`token`, an
/// installation's account login, or `app`) and, for an installation that
/// sees only its own account's repositories, that account.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub budget: String,
    pub sees: Option<String>,
    /// An installation token narrowed to these repositories (ids).
    pub repositories: Option<Vec<i64>>,
    /// What the caller may do (an installation token's permissions); None: anything.
    pub permissions: Option<std::collections::BTreeMap<String, String>>,
}

impl Caller {
    fn anyone(budget: &str) -> Self {
        Self { budget: budget.to_owned(), sees: None, repositories: None, permissions: None }
    }

    /// Whether the caller holds `permission` at `level` or above.
    fn may(&self, permission: &str, level: &str) -> bool {
        self.permissions.as_ref().is_none_or(|p| p.get(permission).map_or(0, |l| level_rank(l)) >= level_rank(level))
    }
}

fn installation_json(st: &State, id: u64, login: &str) -> Value {
    let world = st.world();
    json!({
        "id": id, "app_id": st.config.app.app_id, "target_type": "Organization", "target_id": world.org.id,
        "account": { "login": login, "id": world.org.id, "type": "Organization" },
        "repository_selection": "all", "permissions": st.config.app.permissions, "events": ["*"],
        "access_tokens_url": format!("{}/app/installations/{id}/access_tokens", st.base_url)
    })
}

async fn app_installations(AxState(st): St, Query(q): Query<HashMap<String, String>>) -> Response {
    let per_page = per_page(&q).unwrap_or(30);
    let page = q.get("page").and_then(|p| p.parse::<usize>().ok()).unwrap_or(1).max(1);
    let all: Vec<Value> = st.installations().iter().map(|(id, login)| installation_json(&st, *id, login)).collect();
    Json(all.into_iter().skip((page - 1) * per_page).take(per_page).collect::<Vec<_>>()).into_response()
}

async fn app_installation(AxState(st): St, Path(id): Path<u64>) -> Response {
    match st.installations().into_iter().find(|(i, _)| *i == id) {
        Some((id, login)) => Json(installation_json(&st, id, &login)).into_response(),
        None => message(StatusCode::NOT_FOUND, "Not Found"),
    }
}

/// `POST /app/installations/{id}/access_tokens`, with GitHub's optional body
/// narrowing the token: `repositories` (names on the installation's
/// account; one that is not there is a 422) and `permissions` (each at most
/// what the app is granted, else a 422).
async fn mint_installation_token(AxState(st): St, Path(id): Path<u64>, body: axum::body::Bytes) -> Response {
    let installations = st.installations();
    let Some((_, account)) = installations.iter().find(|(i, _)| *i == id) else {
        return message(StatusCode::NOT_FOUND, "Not Found");
    };
    let asked: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        match serde_json::from_slice(&body) {
            Ok(v @ Value::Object(_)) => v,
            _ => return message(StatusCode::BAD_REQUEST, "Problems parsing JSON"),
        }
    };
    let granted = &st.config.app.permissions;
    let permissions = match asked.get("permissions") {
        None => granted.clone(),
        Some(Value::Object(p)) => {
            let mut narrowed = std::collections::BTreeMap::new();
            for (name, level) in p {
                let level = level.as_str().unwrap_or_default();
                let has = granted.get(name).map_or(0, |g| level_rank(g));
                if level_rank(level) == 0 || level_rank(level) > has {
                    return message(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "The permissions requested are not granted to this installation.",
                    );
                }
                narrowed.insert(name.clone(), level.to_owned());
            }
            narrowed
        }
        Some(_) => {
            return message(StatusCode::UNPROCESSABLE_ENTITY, "Invalid request.\n\n\"permissions\" is not an object.");
        }
    };
    let repositories = match asked.get("repositories") {
        None => None,
        Some(Value::Array(names)) => {
            let world = st.world();
            let mut ids = Vec::new();
            for name in names {
                let repo = name.as_str().and_then(|n| {
                    world
                        .org
                        .repos
                        .iter()
                        .find(|r| r.owner.eq_ignore_ascii_case(account) && r.name.eq_ignore_ascii_case(n))
                });
                let Some(repo) = repo else {
                    return message(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "There is at least one repository that does not exist or is not accessible to the parent installation.",
                    );
                };
                ids.push(repo.id);
            }
            Some(ids)
        }
        Some(_) => {
            return message(StatusCode::UNPROCESSABLE_ENTITY, "Invalid request.\n\n\"repositories\" is not an array.");
        }
    };
    let ttl = chrono::Duration::from_std(st.config.app.token_ttl).unwrap_or_default();
    let expires = Utc::now() + ttl;
    let minted = {
        let mut tokens = st.installation_tokens.lock().expect("token lock");
        let minted = crate::MintedToken {
            token: format!("ghs_fakehub_{}", tokens.len() + 1),
            expires_at: expires,
            installation: id,
            repositories,
            permissions,
        };
        tokens.push(minted.clone());
        minted
    };
    let selection = if minted.repositories.is_some() { "selected" } else { "all" };
    let body = json!({
        "token": minted.token, "expires_at": ts(expires), "repository_selection": selection,
        "permissions": minted.permissions,
    });
    (StatusCode::CREATED, Json(body)).into_response()
}

/// `read` < `write` < `admin`; anything else 0.
pub(crate) fn level_rank(level: &str) -> u8 {
    match level {
        "read" => 1,
        "write" => 2,
        "admin" => 3,
        _ => 0,
    }
}

/// The account that owns what a REST path is about (`/repos/{owner}/{repo}/...`
/// resolved to the repository's owner now, `/repositories/{id}/...`,
/// `/orgs/{org}/...`); None for other paths.
fn owner_of_path(world: &crate::World, path: &str) -> Option<String> {
    let path = path.strip_prefix("/api/v3").unwrap_or(path);
    let mut parts = path.trim_start_matches('/').split('/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("repos"), Some(owner), Some(name)) => {
            let asked = format!("{owner}/{name}");
            Some(world.org.resolve(&asked).map_or_else(|| owner.to_owned(), |i| world.org.repos[i].owner.clone()))
        }
        (Some("repositories"), Some(id), _) => {
            let id = id.parse::<i64>().ok()?;
            world.org.repo_by_id(id).map(|r| r.owner.clone())
        }
        (Some("orgs"), Some(org), _) => Some(org.to_owned()),
        _ => None,
    }
}

/// The permission (GitHub's name) and level a REST request needs, for the
/// endpoints whose permission is more than metadata; None for the others.
fn permission_for(method: &Method, path: &str) -> Option<(&'static str, &'static str)> {
    let path = path.strip_prefix("/api/v3").unwrap_or(path);
    let level = if *method == Method::GET || *method == Method::HEAD { "read" } else { "write" };
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        ["repos", _, _, "actions", ..] | ["repositories", _, "actions", ..] => Some(("actions", "read")),
        ["repos", _, _, "deployments", ..] | ["repositories", _, "deployments", ..] => Some(("deployments", "read")),
        ["repos", _, _, "hooks", ..] | ["repositories", _, "hooks", ..] => Some(("repository_hooks", level)),
        ["orgs", _, "hooks", ..] => Some(("organization_hooks", level)),
        ["orgs", _, "teams", ..] | ["orgs", _, "members", ..] => Some(("members", "read")),
        _ => None,
    }
}

/// The id of the repository a REST path is about (`/repos/{owner}/{repo}/...`
/// under its name now or a former one, `/repositories/{id}/...`); None for other paths.
fn repo_id_of_path(world: &crate::World, path: &str) -> Option<i64> {
    let path = path.strip_prefix("/api/v3").unwrap_or(path);
    let mut parts = path.trim_start_matches('/').split('/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("repos"), Some(owner), Some(name)) => {
            world.org.resolve(&format!("{owner}/{name}")).map(|i| world.org.repos[i].id)
        }
        (Some("repositories"), Some(id), _) => id.parse().ok(),
        _ => None,
    }
}

/// The repository a REST path names: its position in the organisation's
/// repositories and the path its endpoints are under (`/repos/{owner}/{name}`
/// or `/repositories/{id}`, as asked).
struct Located {
    pos: usize,
    full: String,
    api: String,
}

type Params = HashMap<String, String>;

/// Find the repository of `/repos/{owner}/{repo}/...` or `/repositories/{repo_id}/...`.
/// A former name (renamed or transferred) is answered as GitHub does: `301
/// Moved Permanently` (`307` for other methods than GET) to the same path
/// under `/repositories/{id}`, query kept.
fn locate(
    st: &State,
    world: &crate::World,
    p: &Params,
    method: &Method,
    uri: &axum::http::Uri,
    matched: &MatchedPath,
) -> Result<Located, Box<Response>> {
    let org = &world.org;
    if let Some(id) = p.get("repo_id") {
        let pos = id.parse::<i64>().ok().and_then(|id| org.repos.iter().position(|r| r.id == id));
        let pos = pos.ok_or_else(|| Box::new(message(StatusCode::NOT_FOUND, "Not Found")))?;
        return Ok(Located { pos, full: org.repos[pos].full_name(), api: format!("/repositories/{id}") });
    }
    let asked = format!("{}/{}", p.get("owner").map_or("", String::as_str), p.get("repo").map_or("", String::as_str));
    let pos = org.resolve(&asked).ok_or_else(|| Box::new(message(StatusCode::NOT_FOUND, "Not Found")))?;
    let r = &org.repos[pos];
    if r.full_name().eq_ignore_ascii_case(&asked) {
        return Ok(Located { pos, full: r.full_name(), api: format!("/repos/{}", r.full_name()) });
    }
    // `{prefix}/repos/{owner}/{repo}{rest}` -> `{prefix}/repositories/{id}{rest}`; the prefix
    // (`/api/v3` or none) is the matched route's, `uri` being the path under it.
    let prefix = matched.as_str().split_once("/repos/").map_or("", |(prefix, _)| prefix);
    let path = uri.path();
    let after = path.split_once("/repos/").map_or(path, |(_, after)| after);
    let rest = after.splitn(3, '/').nth(2).map(|r| format!("/{r}")).unwrap_or_default();
    let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
    let location = format!("{}{prefix}/repositories/{}{rest}{query}", st.base_url, r.id);
    let status = if *method == Method::GET { StatusCode::MOVED_PERMANENTLY } else { StatusCode::TEMPORARY_REDIRECT };
    let body =
        json!({ "message": "Moved Permanently", "url": location, "documentation_url": "https://docs.github.com/rest" });
    let mut resp = (status, Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Err(Box::new(resp))
}

fn message(status: StatusCode, text: &str) -> Response {
    (status, Json(json!({ "message": text, "documentation_url": "https://docs.github.com/rest" }))).into_response()
}

fn rate_headers(headers: &mut HeaderMap, limit: u64, remaining: u64, reset_at: DateTime<Utc>, resource: &str) {
    // The reset is announced in whole seconds, rounded up so that it is never early.
    let reset = reset_at.timestamp() + i64::from(reset_at.timestamp_subsec_nanos() > 0);
    for (name, value) in [
        ("x-ratelimit-limit", limit.to_string()),
        ("x-ratelimit-remaining", remaining.to_string()),
        ("x-ratelimit-reset", reset.to_string()),
        ("x-ratelimit-used", (limit - remaining).to_string()),
        ("x-ratelimit-resource", resource.to_owned()),
    ] {
        headers.insert(name, HeaderValue::from_str(&value).expect("ASCII header"));
    }
}

/// Every request passes here: counted, authenticated, maybe faulted, charged
/// to its rate-limit bucket, and given an ETag.
async fn gate(AxState(st): St, matched: Option<MatchedPath>, req: Request, next: Next) -> Response {
    let now_serving = st.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    st.max_in_flight.fetch_max(now_serving, Ordering::SeqCst);
    if !st.config.latency.is_zero() {
        tokio::time::sleep(st.config.latency).await;
    }
    let response = serve(&st, matched, req, next).await;
    st.in_flight.fetch_sub(1, Ordering::SeqCst);
    response
}

async fn serve(st: &Arc<State>, matched: Option<MatchedPath>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = matched.map(|m| m.as_str().to_owned()).unwrap_or_else(|| req.uri().path().to_owned());
    st.count(format!("{method} {path}"));

    let presented = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let token = presented.strip_prefix("Bearer ").or_else(|| presented.strip_prefix("token ")).unwrap_or_default();
    let caller = if path.starts_with("/app/") || path.starts_with("/api/v3/app/") {
        app_jwt_valid(st, token).then(|| Caller::anyone("app"))
    } else if token == st.config.token {
        Some(Caller::anyone(crate::TOKEN_BUDGET))
    } else {
        minted_token(st, token).and_then(|minted| {
            let installations = st.installations();
            let several = installations.len() > 1;
            let (_, login) = installations.into_iter().find(|(i, _)| *i == minted.installation)?;
            Some(Caller {
                sees: several.then(|| login.clone()),
                budget: login,
                repositories: minted.repositories,
                permissions: Some(minted.permissions),
            })
        })
    };
    let Some(caller) = caller else {
        return message(StatusCode::UNAUTHORIZED, "Bad credentials");
    };
    if caller.budget != "app" {
        *st.by_budget.lock().expect("budget lock").entry(caller.budget.clone()).or_default() += 1;
    }
    let budget = caller.budget.to_ascii_lowercase();
    let mut req = req;
    req.extensions_mut().insert(caller.clone());

    let resource: &'static str = if path.ends_with("/graphql") { "graphql" } else { "core" };
    let limit = st.config.rate_limit.limit;
    let window = chrono::Duration::from_std(st.config.rate_limit.window).unwrap_or_default();
    let now = Utc::now();
    let (remaining, reset_at) = {
        let mut buckets = st.buckets.lock().expect("bucket lock");
        let b = buckets
            .entry((budget.clone(), resource))
            .or_insert_with(|| Bucket { remaining: limit, reset_at: now + window });
        if now >= b.reset_at {
            *b = Bucket { remaining: limit, reset_at: now + window };
        }
        (b.remaining, b.reset_at)
    };

    let fault = {
        let mut f = st.faults.lock().expect("fault lock");
        f.queue.pop_front().or_else(|| {
            let roll = f.rng.f64();
            if roll < f.faults.server_error_share {
                Some(Fault::ServerError(502))
            } else if roll < f.faults.server_error_share + f.faults.secondary_limit_share {
                let status = if f.rng.bool() { 403 } else { 429 };
                Some(Fault::SecondaryLimit { status, retry_after_secs: Some(st.config.retry_after_secs) })
            } else {
                None
            }
        })
    };
    match fault {
        Some(Fault::Stall(pause)) => tokio::time::sleep(pause).await,
        Some(Fault::ServerError(code)) => {
            let mut r = (StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_GATEWAY), "Server Error").into_response();
            rate_headers(r.headers_mut(), limit, remaining, reset_at, resource);
            return r;
        }
        Some(Fault::SecondaryLimit { status, retry_after_secs }) => {
            let mut r = message(
                StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN),
                "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
            );
            if let Some(secs) = retry_after_secs {
                r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            rate_headers(r.headers_mut(), limit, remaining, reset_at, resource);
            return r;
        }
        None => {}
    }

    if remaining == 0 {
        // REST refuses with 403; GraphQL answers 200 with a RATE_LIMITED error, as GitHub
        // documents (or 403 too, if so configured).
        let text = "API rate limit exceeded for user ID 1.";
        let mut r = if resource == "graphql" && st.config.rate_limit.graphql_refusal_status == 200 {
            Json(json!({ "errors": [{ "type": "RATE_LIMITED", "message": text }] })).into_response()
        } else {
            message(StatusCode::FORBIDDEN, text)
        };
        rate_headers(r.headers_mut(), limit, 0, reset_at, resource);
        return r;
    }
    let remaining = {
        let mut buckets = st.buckets.lock().expect("bucket lock");
        let b = buckets.get_mut(&(budget.clone(), resource)).expect("created above");
        b.remaining = b.remaining.saturating_sub(1);
        b.remaining
    };

    // An installation sees only its own account's repositories and organisation
    // (a dispatch answers for itself: 404 for an unknown repository, 403 for another's).
    let dispatching = method == Method::POST && path.ends_with("/dispatches");
    if let Some(sees) = &caller.sees
        && resource == "core"
        && !dispatching
    {
        let owner = owner_of_path(&st.world(), req.uri().path());
        if owner.is_some_and(|o| !o.eq_ignore_ascii_case(sees)) {
            let what = format!("{method} {}", req.uri().path());
            st.foreign.lock().expect("foreign lock").push((caller.budget.clone(), what));
            let mut r = message(StatusCode::NOT_FOUND, "Not Found");
            rate_headers(r.headers_mut(), limit, remaining, reset_at, resource);
            return r;
        }
    }

    // A token narrowed to some repositories sees no other (GitHub: 404).
    if let Some(ids) = &caller.repositories
        && resource == "core"
        && !dispatching
        && repo_id_of_path(&st.world(), req.uri().path()).is_some_and(|id| !ids.contains(&id))
    {
        let mut r = message(StatusCode::NOT_FOUND, "Not Found");
        rate_headers(r.headers_mut(), limit, remaining, reset_at, resource);
        return r;
    }

    // An installation token may do on REST only what its permissions cover
    // (after the repository checks: GitHub answers 404 for what the token cannot see).
    if let Some((permission, level)) = permission_for(&method, req.uri().path())
        && !dispatching
        && !caller.may(permission, level)
    {
        let mut r = message(StatusCode::FORBIDDEN, "Resource not accessible by integration");
        rate_headers(r.headers_mut(), limit, remaining, reset_at, resource);
        return r;
    }

    let if_none_match = req.headers().get(header::IF_NONE_MATCH).cloned();
    let response = next.run(req).await;
    let (mut parts, body) = response.into_parts();
    let mut remaining = remaining;
    let body = if method == Method::GET && parts.status == StatusCode::OK {
        let bytes = to_bytes(body, usize::MAX).await.unwrap_or_default();
        let etag = format!("\"{}\"", hex::encode(Sha256::digest(&bytes)));
        if if_none_match.as_ref().and_then(|v| v.to_str().ok()).is_some_and(|v| etag_matches(v, &etag)) {
            st.count(format!("304 {method} {path}"));
            // A conditional request that hits costs nothing, as on GitHub.
            let mut buckets = st.buckets.lock().expect("bucket lock");
            if let Some(b) = buckets.get_mut(&(budget.clone(), resource)) {
                b.remaining = (b.remaining + 1).min(limit);
                remaining = b.remaining;
            }
            parts.status = StatusCode::NOT_MODIFIED;
            parts.headers.insert(header::ETAG, HeaderValue::from_str(&etag).expect("hex"));
            Body::empty()
        } else {
            parts.headers.insert(header::ETAG, HeaderValue::from_str(&etag).expect("hex"));
            Body::from(bytes)
        }
    } else {
        body
    };
    rate_headers(&mut parts.headers, limit, remaining, reset_at, resource);
    Response::from_parts(parts, body)
}

/// Whether an `If-None-Match` value (a list of ETags, weak or strong, or `*`) names `etag`.
fn etag_matches(if_none_match: &str, etag: &str) -> bool {
    if_none_match.split(',').map(str::trim).any(|t| t == "*" || t.trim_start_matches("W/") == etag)
}

#[derive(serde::Deserialize)]
struct GraphqlRequest {
    query: String,
    #[serde(default)]
    variables: Value,
}

async fn graphql(
    AxState(st): St,
    axum::Extension(caller): axum::Extension<Caller>,
    Json(req): Json<GraphqlRequest>,
) -> Response {
    let (remaining, reset) = {
        let buckets = st.buckets.lock().expect("bucket lock");
        buckets
            .get(&(caller.budget.to_ascii_lowercase(), "graphql"))
            .map(|b| (b.remaining, b.reset_at))
            .unwrap_or((st.config.rate_limit.limit, Utc::now()))
    };
    let access = crate::graphql::Access {
        sees: caller.sees.as_deref(),
        repositories: caller.repositories.as_deref(),
        permissions: caller.permissions.as_ref(),
        page_cap: st.config.page_cap,
    };
    let world = st.world();
    let budget = (st.config.rate_limit.limit, remaining, reset);
    let answer = {
        // Null nodes are spent by the requests that hold them, one request at a time.
        let mut nulls = st.null_nodes.lock().expect("null node lock");
        if nulls.is_empty() {
            drop(nulls);
            crate::graphql::execute(&world.org, &world.index, &req.query, &req.variables, budget, &[], access)
        } else {
            let active: Vec<crate::graphql::NullNode> = nulls.iter().map(|(n, _)| n.clone()).collect();
            let answer =
                crate::graphql::execute(&world.org, &world.index, &req.query, &req.variables, budget, &active, access);
            for &k in &answer.nulled {
                nulls[k].1 = nulls[k].1.saturating_sub(1);
            }
            nulls.retain(|(_, times)| *times > 0);
            answer
        }
    };
    st.count(format!("graphql {}", answer.operation));
    if !answer.foreign.is_empty() {
        let mut foreign = st.foreign.lock().expect("foreign lock");
        foreign.extend(answer.foreign.iter().map(|what| (caller.budget.clone(), what.clone())));
    }
    Json(answer.body).into_response()
}

fn per_page(q: &HashMap<String, String>) -> Result<usize, &'static str> {
    match q.get("per_page").map(|p| p.parse::<usize>()) {
        None => Ok(30),
        Some(Ok(n)) if (1..=100).contains(&n) => Ok(n),
        _ => Err("per_page must be 1..100"),
    }
}

fn link(st: &State, path: &str, params: &[(&str, String)]) -> HeaderValue {
    let query: String = params.iter().map(|(k, v)| format!("{k}={}", urlencode(v))).collect::<Vec<_>>().join("&");
    HeaderValue::from_str(&format!("<{}{path}?{query}>; rel=\"next\"", st.base_url)).expect("ASCII link")
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A time bound of GitHub's date-filter syntax.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Bound {
    at: DateTime<Utc>,
    inclusive: bool,
}

/// GitHub's date filter (`created=`): `>=T`, `>T`, `<=T`, `<T`, `T1..T2` (either
/// side `*` for open), or a bare `T`; each T an ISO 8601 time or a date. A bare
/// date as an upper bound takes in its whole day, as GitHub's search does.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
struct DateFilter {
    from: Option<Bound>,
    to: Option<Bound>,
}

impl DateFilter {
    fn parse(raw: &str) -> Result<Self, &'static str> {
        let raw = raw.trim();
        let lower = |s: &str, inclusive: bool| -> Result<Option<Bound>, &'static str> {
            Ok(match point(s)? {
                None => None,
                // `>DATE` starts after the whole day.
                Some((at, true)) if !inclusive => Some(Bound { at: at + chrono::Duration::days(1), inclusive: true }),
                Some((at, _)) => Some(Bound { at, inclusive }),
            })
        };
        let upper = |s: &str, inclusive: bool| -> Result<Option<Bound>, &'static str> {
            Ok(match point(s)? {
                None => None,
                // `<=DATE` ends with the day: before the next midnight.
                Some((at, true)) if inclusive => Some(Bound { at: at + chrono::Duration::days(1), inclusive: false }),
                Some((at, _)) => Some(Bound { at, inclusive }),
            })
        };
        if let Some(rest) = raw.strip_prefix(">=") {
            Ok(Self { from: lower(rest, true)?, to: None })
        } else if let Some(rest) = raw.strip_prefix('>') {
            Ok(Self { from: lower(rest, false)?, to: None })
        } else if let Some(rest) = raw.strip_prefix("<=") {
            Ok(Self { from: None, to: upper(rest, true)? })
        } else if let Some(rest) = raw.strip_prefix('<') {
            Ok(Self { from: None, to: upper(rest, false)? })
        } else if let Some((a, b)) = raw.split_once("..") {
            Ok(Self { from: lower(a, true)?, to: upper(b, true)? })
        } else {
            Ok(Self { from: lower(raw, true)?, to: upper(raw, true)? })
        }
    }

    fn contains(&self, t: DateTime<Utc>) -> bool {
        self.from.is_none_or(|b| if b.inclusive { t >= b.at } else { t > b.at })
            && self.to.is_none_or(|b| if b.inclusive { t <= b.at } else { t < b.at })
    }
}

/// One side of a date filter: None for `*`, else the time and whether it was a bare date.
fn point(s: &str) -> Result<Option<(DateTime<Utc>, bool)>, &'static str> {
    // A `+` of an offset that was not percent-encoded arrives as a space.
    let s = s.trim().replace(' ', "+");
    let s = s.as_str();
    if s == "*" {
        return Ok(None);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(Some((t.with_timezone(&Utc), false)));
    }
    // ISO 8601 without seconds or offset (`2024-01-01T10:00`, `2024-01-01T10:00:00`): UTC.
    for format in ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, format) {
            return Ok(Some((t.and_utc(), false)));
        }
    }
    match chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        Ok(d) => Ok(d.and_hms_opt(0, 0, 0).map(|t| (t.and_utc(), true))),
        Err(_) => Err("created is not a date filter (>=T, >T, <=T, <T, T1..T2)"),
    }
}

/// How far a filtered list of workflow runs reaches, as on GitHub.
const FILTERED_RUNS_CAP: usize = 1000;

fn page_number(q: &HashMap<String, String>) -> usize {
    q.get("page").and_then(|p| p.parse().ok()).unwrap_or(1).max(1)
}

/// A `rel="next"` link to `page + 1` with the request's other parameters, when more items follow.
fn next_link(st: &State, resp: &mut Response, path: &str, q: &HashMap<String, String>, per_page: usize, page: usize) {
    let mut params: Vec<(&str, String)> = q
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "page" | "per_page"))
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    params.sort();
    params.push(("per_page", per_page.to_string()));
    params.push(("page", (page + 1).to_string()));
    resp.headers_mut().insert(header::LINK, link(st, path, &params));
}

async fn workflow_runs(
    AxState(st): St,
    method: Method,
    uri: axum::http::Uri,
    matched: MatchedPath,
    Path(p): Path<Params>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let world = st.world();
    let at = match locate(&st, &world, &p, &method, &uri, &matched) {
        Ok(at) => at,
        Err(moved) => return *moved,
    };
    let (r, full) = (&world.org.repos[at.pos], &at.full);
    let created = q.get("created").map(|c| DateFilter::parse(c)).transpose();
    let (per_page, created) = match (per_page(&q), created) {
        (Ok(n), Ok(c)) => (n, c),
        (Err(e), _) | (_, Err(e)) => return message(StatusCode::UNPROCESSABLE_ENTITY, e),
    };
    let page = page_number(&q);
    let mut runs: Vec<_> = r.runs.iter().filter(|w| created.is_none_or(|c| c.contains(w.created_at))).collect();
    runs.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
    let total = runs.len();
    // A filtered list only reaches its first 1,000 runs; `total_count` still says how many match.
    let reach = if created.is_some() { total.min(FILTERED_RUNS_CAP) } else { total };
    let items: Vec<Value> = runs[..reach]
        .iter()
        .skip((page - 1).saturating_mul(per_page))
        .take(per_page)
        .map(|w| {
            let url = format!("{}/repos/{full}/actions/runs/{}", st.base_url, w.id);
            json!({
                "id": w.id, "name": w.name, "node_id": w.node_id, "head_branch": w.head_branch,
                "head_sha": w.head_sha, "path": ".github/workflows/ci.yml", "display_title": w.name,
                "event": w.event, "status": w.status, "conclusion": w.conclusion,
                "workflow_id": w.workflow_id, "check_suite_id": w.id + 1, "check_suite_node_id": format!("CS_{}", w.id + 1),
                "run_number": w.run_number, "run_attempt": w.run_attempt,
                "created_at": ts(w.created_at), "updated_at": ts(w.updated_at), "run_started_at": ts(w.run_started_at),
                "actor": crate::webhooks::user(&w.actor), "triggering_actor": crate::webhooks::user(&w.actor),
                "pull_requests": [],
                "html_url": format!("https://github.com/{full}/actions/runs/{}", w.id),
                "jobs_url": format!("{url}/jobs"), "url": url
            })
        })
        .collect();
    let mut resp = Json(json!({ "total_count": total, "workflow_runs": items })).into_response();
    if page.saturating_mul(per_page) < reach {
        next_link(&st, &mut resp, &format!("{}/actions/runs", at.api), &q, per_page, page);
    }
    resp
}

async fn workflow_jobs(
    AxState(st): St,
    method: Method,
    uri: axum::http::Uri,
    matched: MatchedPath,
    Path(p): Path<Params>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let world = st.world();
    let at = match locate(&st, &world, &p, &method, &uri, &matched) {
        Ok(at) => at,
        Err(moved) => return *moved,
    };
    let (full, run_id) = (&at.full, p.get("run_id").map_or("", String::as_str));
    let Some(run) = run_id.parse().ok().and_then(|id| world.org.repos[at.pos].run(id)) else {
        return message(StatusCode::NOT_FOUND, "Not Found");
    };
    let per_page = match per_page(&q) {
        Ok(n) => n,
        Err(e) => return message(StatusCode::UNPROCESSABLE_ENTITY, e),
    };
    // `latest` (the default): the jobs of the run's latest attempt; `all`: of every attempt.
    let latest_only = match q.get("filter").map(String::as_str) {
        None | Some("latest") => true,
        Some("all") => false,
        Some(_) => return message(StatusCode::UNPROCESSABLE_ENTITY, "filter must be latest or all"),
    };
    let jobs: Vec<_> = run.jobs.iter().filter(|j| !latest_only || j.run_attempt == run.run_attempt).collect();
    let page = page_number(&q);
    let items: Vec<Value> = jobs
        .iter()
        .skip((page - 1).saturating_mul(per_page))
        .take(per_page)
        .map(|j| crate::webhooks::job_json(&st.base_url, full, j))
        .collect();
    let mut resp = Json(json!({ "total_count": jobs.len(), "jobs": items })).into_response();
    if page.saturating_mul(per_page) < jobs.len() {
        next_link(&st, &mut resp, &format!("{}/actions/runs/{run_id}/jobs", at.api), &q, per_page, page);
    }
    resp
}

async fn deployments(
    AxState(st): St,
    method: Method,
    uri: axum::http::Uri,
    matched: MatchedPath,
    Path(p): Path<Params>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let world = st.world();
    let at = match locate(&st, &world, &p, &method, &uri, &matched) {
        Ok(at) => at,
        Err(moved) => return *moved,
    };
    let (r, full) = (&world.org.repos[at.pos], &at.full);
    let per_page = match per_page(&q) {
        Ok(n) => n,
        Err(e) => return message(StatusCode::UNPROCESSABLE_ENTITY, e),
    };
    let keep = |d: &&crate::model::Deployment| {
        q.get("environment").is_none_or(|e| *e == d.environment)
            && q.get("ref").is_none_or(|g| *g == d.git_ref)
            && q.get("sha").is_none_or(|s| *s == d.sha)
            && q.get("task").is_none_or(|t| *t == d.task)
    };
    // Newest first.
    let mut list: Vec<_> = r.deployments.iter().filter(keep).collect();
    list.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
    let page = page_number(&q);
    let items: Vec<Value> = list
        .iter()
        .skip((page - 1).saturating_mul(per_page))
        .take(per_page)
        .map(|d| crate::webhooks::deployment_json(&st.base_url, full, d, d.updated_at))
        .collect();
    let mut resp = Json(Value::Array(items)).into_response();
    if page.saturating_mul(per_page) < list.len() {
        next_link(&st, &mut resp, &format!("{}/deployments", at.api), &q, per_page, page);
    }
    resp
}

async fn deployment_statuses(
    AxState(st): St,
    method: Method,
    uri: axum::http::Uri,
    matched: MatchedPath,
    Path(p): Path<Params>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let world = st.world();
    let at = match locate(&st, &world, &p, &method, &uri, &matched) {
        Ok(at) => at,
        Err(moved) => return *moved,
    };
    let (full, id) = (&at.full, p.get("deployment_id").map_or("", String::as_str));
    let Some(d) = id.parse().ok().and_then(|id| world.org.repos[at.pos].deployment(id)) else {
        return message(StatusCode::NOT_FOUND, "Not Found");
    };
    let per_page = match per_page(&q) {
        Ok(n) => n,
        Err(e) => return message(StatusCode::UNPROCESSABLE_ENTITY, e),
    };
    let page = page_number(&q);
    // Newest first.
    let items: Vec<Value> = d
        .statuses
        .iter()
        .rev()
        .skip((page - 1).saturating_mul(per_page))
        .take(per_page)
        .map(|s| crate::webhooks::deployment_status_json(&st.base_url, full, d, s))
        .collect();
    let mut resp = Json(Value::Array(items)).into_response();
    if page.saturating_mul(per_page) < d.statuses.len() {
        next_link(&st, &mut resp, &format!("{}/deployments/{id}/statuses", at.api), &q, per_page, page);
    }
    resp
}

fn hook_json(st: &State, path: &str) -> Value {
    let id = st.config.hook_id;
    json!({
        "type": "Organization", "id": id, "name": "web", "active": true, "events": ["*"],
        "config": { "content_type": "json", "insecure_ssl": "0", "url": "https://octoscope.example/webhook" },
        "updated_at": "2024-01-01T00:00:00Z", "created_at": "2024-01-01T00:00:00Z",
        "url": format!("{}{path}/{id}", st.base_url),
        "ping_url": format!("{}{path}/{id}/pings", st.base_url),
        "deliveries_url": format!("{}{path}/{id}/deliveries", st.base_url)
    })
}

async fn repo_hooks(
    AxState(st): St,
    method: Method,
    uri: axum::http::Uri,
    matched: MatchedPath,
    Path(p): Path<Params>,
) -> Response {
    if let Err(moved) = locate(&st, &st.world(), &p, &method, &uri, &matched) {
        return *moved;
    }
    // The history is delivered by the organisation hook; repositories have none.
    Json(json!([])).into_response()
}

async fn org_hooks(AxState(st): St, Path(org): Path<String>) -> Response {
    if !org.eq_ignore_ascii_case(&st.world().org.login) {
        return message(StatusCode::NOT_FOUND, "Not Found");
    }
    Json(json!([hook_json(&st, &format!("/orgs/{org}/hooks"))])).into_response()
}

async fn repo_deliveries(
    AxState(st): St,
    method: Method,
    uri: axum::http::Uri,
    matched: MatchedPath,
    Path(p): Path<Params>,
) -> Response {
    if let Err(moved) = locate(&st, &st.world(), &p, &method, &uri, &matched) {
        return *moved;
    }
    // Repositories have no hook (see `repo_hooks`).
    message(StatusCode::NOT_FOUND, "Not Found")
}

async fn org_deliveries(
    AxState(st): St,
    Path((org, hook)): Path<(String, u64)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if !org.eq_ignore_ascii_case(&st.world().org.login) || hook != st.config.hook_id {
        return message(StatusCode::NOT_FOUND, "Not Found");
    }
    let per_page = match per_page(&q) {
        Ok(n) => n,
        Err(e) => return message(StatusCode::UNPROCESSABLE_ENTITY, e),
    };
    // Newest first; the cursor is the id of the last delivery of the previous page.
    let before: Option<u64> = q.get("cursor").and_then(|c| c.parse().ok());
    let all = st.deliveries.lock().expect("deliveries lock").clone();
    let mut newest_first: Vec<_> = all.iter().rev().filter(|d| before.is_none_or(|b| d.id < b)).collect();
    let more = newest_first.len() > per_page;
    newest_first.truncate(per_page);
    let items: Vec<Value> = newest_first
        .iter()
        .map(|d| {
            let status = match d.status_code {
                0 => "failed to connect to host".to_owned(),
                200..=299 => "OK".to_owned(),
                code => format!("Invalid HTTP Response: {code}"),
            };
            json!({
                "id": d.id, "guid": d.guid, "delivered_at": ts(d.delivered_at), "redelivery": d.redelivery,
                "duration": 0.01, "status": status, "status_code": d.status_code, "event": d.event, "action": d.action,
                "installation_id": null, "repository_id": null, "throttled_at": null
            })
        })
        .collect();
    let mut resp = Json(Value::Array(items)).into_response();
    if more && let Some(last) = newest_first.last() {
        let params = [("per_page", per_page.to_string()), ("cursor", last.id.to_string())];
        resp.headers_mut().insert(header::LINK, link(&st, &format!("/orgs/{org}/hooks/{hook}/deliveries"), &params));
    }
    resp
}

async fn repo_redeliver(
    AxState(st): St,
    method: Method,
    uri: axum::http::Uri,
    matched: MatchedPath,
    Path(p): Path<Params>,
) -> Response {
    if let Err(moved) = locate(&st, &st.world(), &p, &method, &uri, &matched) {
        return *moved;
    }
    message(StatusCode::NOT_FOUND, "Not Found")
}

/// `POST /repos/{owner}/{repo}/dispatches`: recorded with the token that
/// authorised it, answered `204`. As GitHub: an unknown repository is `404`,
/// an installation token of another account than the repository's owner is
/// `403` (with several installations), a body without an `event_type` of 1 to
/// 100 characters or with a `client_payload` that is not an object of at most
/// 10 top-level keys is `422`.
async fn dispatch(
    AxState(st): St,
    matched: MatchedPath,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(p): Path<Params>,
    req: Request,
) -> Response {
    let (parts, body) = req.into_parts();
    let (method, uri, headers) = (parts.method, parts.uri, parts.headers);
    let body = to_bytes(body, 1 << 20).await.unwrap_or_default();
    let (repo, owner, id) = {
        let world = st.world();
        match locate(&st, &world, &p, &method, &uri, &matched) {
            Ok(at) => (at.full, world.org.repos[at.pos].owner.clone(), world.org.repos[at.pos].id),
            Err(moved) => return *moved,
        }
    };
    if caller.sees.as_ref().is_some_and(|sees| !sees.eq_ignore_ascii_case(&owner)) {
        st.foreign.lock().expect("foreign lock").push((caller.budget.clone(), format!("POST {}", uri.path())));
        return message(StatusCode::FORBIDDEN, "Resource not accessible by integration");
    }
    // A token narrowed to other repositories does not see this one; a
    // dispatch needs the Contents write permission.
    if caller.repositories.as_ref().is_some_and(|ids| !ids.contains(&id)) {
        return message(StatusCode::NOT_FOUND, "Not Found");
    }
    if !caller.may("contents", "write") {
        return message(StatusCode::FORBIDDEN, "Resource not accessible by integration");
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return message(StatusCode::BAD_REQUEST, "Problems parsing JSON");
    };
    let event_type = body["event_type"].as_str().filter(|e| (1..=100).contains(&e.chars().count()));
    let Some(event_type) = event_type else {
        return message(StatusCode::UNPROCESSABLE_ENTITY, "Invalid request.\n\n\"event_type\" wasn't supplied.");
    };
    let client_payload = body.get("client_payload").cloned().unwrap_or_else(|| json!({}));
    if client_payload.as_object().is_none_or(|o| o.len() > 10) {
        return message(StatusCode::UNPROCESSABLE_ENTITY, "client_payload must be an object of at most 10 properties");
    }
    let presented = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let token = presented.strip_prefix("Bearer ").or_else(|| presented.strip_prefix("token ")).unwrap_or_default();
    let installation = installation_of_token(&st, token);
    st.dispatches.lock().expect("dispatch lock").push(crate::Dispatch {
        repo,
        event_type: event_type.to_owned(),
        client_payload,
        token: token.to_owned(),
        installation,
    });
    StatusCode::NO_CONTENT.into_response()
}

/// Send the delivery again, to the same URL with the same GUID, and record
/// the attempt as a redelivery (GitHub queues it; the fake sends before answering).
async fn org_redeliver(AxState(st): St, Path((org, hook, id)): Path<(String, u64, u64)>) -> Response {
    if !org.eq_ignore_ascii_case(&st.world().org.login) || hook != st.config.hook_id {
        return message(StatusCode::NOT_FOUND, "Not Found");
    }
    let Some(d) = st.deliveries.lock().expect("deliveries lock").iter().find(|d| d.id == id).cloned() else {
        return message(StatusCode::NOT_FOUND, "Not Found");
    };
    let secret = st.secret.lock().expect("secret lock").clone();
    let outgoing = Outgoing { url: d.url, event: d.event, action: d.action, guid: d.guid, body: d.body };
    st.deliver(&outgoing, &secret, true).await;
    (StatusCode::ACCEPTED, Json(json!({}))).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn date_filters_read_github_s_syntax() {
        // GIVEN a time exactly on each bound and the instants around it
        let t = at("2024-02-10T12:00:00Z");
        let (before, after) = (t - chrono::Duration::seconds(1), t + chrono::Duration::seconds(1));
        let f = |s: &str| DateFilter::parse(s).unwrap();
        // THEN each operator includes or excludes its bound as GitHub's search does
        assert!(f(">=2024-02-10T12:00:00Z").contains(t) && !f(">=2024-02-10T12:00:00Z").contains(before));
        assert!(!f(">2024-02-10T12:00:00Z").contains(t) && f(">2024-02-10T12:00:00Z").contains(after));
        assert!(f("<=2024-02-10T12:00:00Z").contains(t) && !f("<=2024-02-10T12:00:00Z").contains(after));
        assert!(!f("<2024-02-10T12:00:00Z").contains(t) && f("<2024-02-10T12:00:00Z").contains(before));
        let range = f("2024-02-10T12:00:00Z..2024-02-10T12:00:01Z");
        assert!(range.contains(t) && range.contains(after) && !range.contains(before));
        assert!(f("2024-02-10T12:00:00Z..*").contains(after) && !f("*..2024-02-10T11:59:59Z").contains(t));
        // AND an offset is honoured, and a bare date covers its day
        assert!(f(">=2024-02-10T13:00:00+01:00").contains(t) && !f(">=2024-02-10T13:00:00+01:00").contains(before));
        assert!(
            f("<=2024-02-10").contains(at("2024-02-10T23:59:59Z"))
                && !f("<=2024-02-10").contains(at("2024-02-11T00:00:00Z"))
        );
        assert!(
            !f(">2024-02-10").contains(at("2024-02-10T23:59:59Z"))
                && f(">2024-02-10").contains(at("2024-02-11T00:00:00Z"))
        );
        assert!(f("2024-02-10").contains(t) && !f("2024-02-10").contains(at("2024-02-11T00:00:00Z")));
        // AND an offset's `+` that arrived as a space (not percent-encoded) is still an offset
        assert!(f(">=2024-02-10T13:00:00 01:00").contains(t) && !f(">=2024-02-10T13:00:00 01:00").contains(before));
        // AND nonsense is refused, not guessed
        assert!(DateFilter::parse(">=yesterday").is_err());
        assert!(DateFilter::parse("2024-02-10..soon").is_err());
    }

    #[test]
    fn if_none_match_takes_lists_weak_tags_and_stars() {
        assert!(etag_matches("\"a\"", "\"a\""));
        assert!(etag_matches("W/\"b\", W/\"a\"", "\"a\""));
        assert!(etag_matches("*", "\"a\""));
        assert!(!etag_matches("\"b\"", "\"a\""));
    }
}
