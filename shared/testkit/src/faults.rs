//! A fault-injecting HTTP proxy for the AWS drills: it stands between the SDK
//! clients under test and moto (or any upstream, such as the ECS proxy) and,
//! by rules, answers some requests with a fault instead of (or after)
//! passing them on.
//!
//! A request is named by its operation: the part of `X-Amz-Target` after the
//! dot (`PutItem`, `PutRecord`, `RunTask`: DynamoDB, Firehose, ECS, SSM, SQS's
//! JSON protocol), else the `Action=` of a Query-protocol form body, else
//! `<METHOD> <path>` (S3). A [`Rule`] picks requests by operation and by
//! strings their body contains, skips the first `skip` it picks, then injects
//! its [`Fault`] into the next `times` (or every one after, or each with a
//! probability drawn from a seeded generator, so a run is repeatable).
//! Every request is logged ([`FaultProxy::seen`]) with the fault it got.
//!
//! Faults: DynamoDB's throttling answers (HTTP 400 with the JSON `__type`
//! the SDK reads), a 500 or 503, a connection closed without an answer
//! *before* passing the request on (nothing happened) or *after* (it took
//! effect, the client saw a failure), and a delay before passing it on
//! (longer than the client's attempt timeout: the client gives up, the
//! request still lands, late).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt as _, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};

/// What a rule does to a request it picks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fault {
    /// 400 `ProvisionedThroughputExceededException` (DynamoDB).
    ProvisionedThroughputExceeded,
    /// 400 `ThrottlingException`.
    Throttling,
    /// This status (500, 503) with a JSON error body; the request is not passed on.
    Status(u16),
    /// Close the connection without answering; the request is not passed on.
    DropBefore,
    /// Pass the request on, then close the connection without answering:
    /// it took effect, and the client does not know.
    DropAfter,
    /// Wait this long, then pass the request on and answer (even if the
    /// client gave up meanwhile: the request lands late).
    Delay(Duration),
}

impl Fault {
    /// Every kind, as the drills run them (`delay` for [`Fault::Delay`]).
    pub fn all(delay: Duration) -> [Fault; 7] {
        [
            Fault::ProvisionedThroughputExceeded,
            Fault::Throttling,
            Fault::Status(500),
            Fault::Status(503),
            Fault::DropBefore,
            Fault::DropAfter,
            Fault::Delay(delay),
        ]
    }
}

/// Which requests get a fault, and how many of them.
#[derive(Debug, Clone)]
pub struct Rule {
    op: String,
    contains: Vec<String>,
    fault: Fault,
    skip: usize,
    times: Option<usize>,
    probability: Option<f64>,
    picked: usize,
    injected: usize,
}

impl Rule {
    /// Requests of operation `op` (`"*"`: every request); by default the first one only.
    pub fn on(op: &str, fault: Fault) -> Self {
        Self {
            op: op.to_owned(),
            contains: Vec::new(),
            fault,
            skip: 0,
            times: Some(1),
            probability: None,
            picked: 0,
            injected: 0,
        }
    }

    /// Only requests whose body contains `text` (all of them, when called again).
    pub fn containing(mut self, text: &str) -> Self {
        self.contains.push(text.to_owned());
        self
    }

    /// Let the first `n` picked requests through.
    pub fn skip(mut self, n: usize) -> Self {
        self.skip = n;
        self
    }

    /// Inject into `n` picked requests (after the skipped ones), then stop.
    pub fn times(mut self, n: usize) -> Self {
        self.times = Some(n);
        self
    }

    /// Inject into every picked request (after the skipped ones).
    pub fn always(mut self) -> Self {
        self.times = None;
        self
    }

    /// Inject into each picked request with probability `p` (the proxy's seeded generator).
    pub fn with_probability(mut self, p: f64) -> Self {
        self.times = None;
        self.probability = Some(p);
        self
    }

    fn picks(&self, op: &str, body: &str) -> bool {
        (self.op == "*" || self.op == op) && self.contains.iter().all(|c| body.contains(c.as_str()))
    }
}

/// One request the proxy received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub op: String,
    pub body: String,
    pub fault: Option<Fault>,
}

struct State {
    upstream: String,
    client: reqwest::Client,
    rules: Mutex<Vec<Rule>>,
    seen: Mutex<Vec<Seen>>,
    rng: Mutex<fastrand::Rng>,
}

/// The proxy, listening on a free loopback port for as long as the test's runtime runs.
#[derive(Clone)]
pub struct FaultProxy {
    /// `http://127.0.0.1:PORT`: the endpoint to give the SDK clients.
    pub url: String,
    state: Arc<State>,
}

impl FaultProxy {
    /// A proxy to `upstream` (`http://host:port`), its generator seeded with 0.
    pub async fn start(upstream: &str) -> anyhow::Result<Self> {
        Self::start_seeded(upstream, 0).await
    }

    pub async fn start_seeded(upstream: &str, seed: u64) -> anyhow::Result<Self> {
        let state = Arc::new(State {
            upstream: upstream.trim_end_matches('/').to_owned(),
            client: crate::http().pool_max_idle_per_host(0).build()?,
            rules: Mutex::new(Vec::new()),
            seen: Mutex::new(Vec::new()),
            rng: Mutex::new(fastrand::Rng::with_seed(seed)),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let serving = state.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = serving.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| answer(state.clone(), req));
                    // An injected drop ends the connection with an error: that is the point.
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self { url, state })
    }

    /// Add a rule; the first rule that picks a request and still has a fault to give decides.
    pub fn add(&self, rule: Rule) -> &Self {
        self.state.rules.lock().expect("rules").push(rule);
        self
    }

    /// Remove every rule: from now on everything passes.
    pub fn clear(&self) {
        self.state.rules.lock().expect("rules").clear();
    }

    /// How many faults the rules injected so far.
    pub fn injected(&self) -> usize {
        self.state.rules.lock().expect("rules").iter().map(|r| r.injected).sum()
    }

    /// Every request received, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().expect("log").clone()
    }

    /// Forget the log (rules stay).
    pub fn forget(&self) {
        self.state.seen.lock().expect("log").clear();
    }

    /// Requests of `op` received (`"*"`: all).
    pub fn count(&self, op: &str) -> usize {
        self.seen().iter().filter(|s| op == "*" || s.op == op).count()
    }

    /// The fault for this request, if a rule picks it.
    fn decide(&self, op: &str, body: &str) -> Option<Fault> {
        let mut rules = self.state.rules.lock().expect("rules");
        for rule in rules.iter_mut().filter(|r| r.picks(op, body)) {
            rule.picked += 1;
            if rule.picked <= rule.skip {
                continue;
            }
            let inject = match (rule.times, rule.probability) {
                (_, Some(p)) => self.state.rng.lock().expect("rng").f64() < p,
                (Some(n), None) => rule.injected < n,
                (None, None) => true,
            };
            if inject {
                rule.injected += 1;
                return Some(rule.fault);
            }
        }
        None
    }
}

/// The connection is closed without an answer.
#[derive(Debug, thiserror::Error)]
#[error("connection dropped by the fault proxy")]
struct Dropped;

async fn answer(state: Arc<State>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Dropped> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map_err(|_| Dropped)?.to_bytes();
    let text = String::from_utf8_lossy(&body).into_owned();
    let op = operation(&parts, &text);
    let proxy = FaultProxy { url: String::new(), state: state.clone() };
    let fault = proxy.decide(&op, &text);
    state.seen.lock().expect("log").push(Seen { op: op.clone(), body: text, fault });
    match fault {
        None => forward(&state, &parts, body).await,
        Some(Fault::ProvisionedThroughputExceeded) => Ok(error(
            400,
            "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
            "The level of configured provisioned throughput for the table was exceeded (injected).",
        )),
        Some(Fault::Throttling) => {
            Ok(error(400, "com.amazon.coral.availability#ThrottlingException", "Rate exceeded (injected)."))
        }
        Some(Fault::Status(503)) => Ok(error(503, "ServiceUnavailable", "Service unavailable (injected).")),
        Some(Fault::Status(code)) => Ok(error(code, "InternalServerError", "Internal server error (injected).")),
        Some(Fault::DropBefore) => Err(Dropped),
        Some(Fault::DropAfter) => {
            let _ = forward(&state, &parts, body).await;
            Err(Dropped)
        }
        Some(Fault::Delay(d)) => {
            // In its own task, so that the request lands even when the client gave up.
            let (state, parts) = (state.clone(), parts.clone());
            let late = tokio::spawn(async move {
                tokio::time::sleep(d).await;
                forward(&state, &parts, body).await
            });
            late.await.map_err(|_| Dropped)?
        }
    }
}

/// The operation a request calls (see the module's doc).
fn operation(parts: &hyper::http::request::Parts, body: &str) -> String {
    if let Some(target) = parts.headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
        return target.rsplit('.').next().unwrap_or(target).to_owned();
    }
    if let Some(action) = body.split('&').find_map(|kv| kv.strip_prefix("Action=")) {
        return action.to_owned();
    }
    format!("{} {}", parts.method, parts.uri.path())
}

/// An AWS JSON-protocol error answer.
fn error(status: u16, kind: &str, message: &str) -> Response<Full<Bytes>> {
    let body = serde_json::json!({ "__type": kind, "message": message }).to_string();
    Response::builder()
        .status(status)
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amzn-requestid", uuid::Uuid::new_v4().to_string())
        .header("x-amzn-errortype", kind.rsplit('#').next().unwrap_or(kind))
        .body(Full::new(Bytes::from(body)))
        .expect("a valid response")
}

/// Pass the request to the upstream and its answer back; an upstream that
/// cannot be reached is a dropped connection.
async fn forward(
    state: &State,
    parts: &hyper::http::request::Parts,
    body: Bytes,
) -> Result<Response<Full<Bytes>>, Dropped> {
    let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let method = reqwest::Method::from_bytes(parts.method.as_str().as_bytes()).map_err(|_| Dropped)?;
    let mut request = state.client.request(method, format!("{}{path}", state.upstream));
    for (k, v) in &parts.headers {
        if k != "host" && k != "content-length" && k != "connection" {
            request = request.header(k.as_str(), v.as_bytes());
        }
    }
    let upstream = request.body(body).send().await.map_err(|_| Dropped)?;
    let mut response = Response::builder().status(upstream.status().as_u16());
    for (k, v) in upstream.headers() {
        if k != "content-length" && k != "transfer-encoding" && k != "connection" {
            response = response.header(k.as_str(), v.as_bytes());
        }
    }
    let body = upstream.bytes().await.map_err(|_| Dropped)?;
    response.body(Full::new(body)).map_err(|_| Dropped)
}

/// SDK settings for drills: the product's client and retry policy
/// ([`octoscope::adapters::aws::config_loader`]: 3 attempts), pointed at
/// `endpoint` (the proxy), with a short backoff and an attempt timeout of
/// `attempt_timeout`, so that a drill of many faults runs in seconds and a
/// [`Fault::Delay`] longer than it times the attempt out.
pub async fn sdk_config(endpoint: &str, attempt_timeout: Duration) -> aws_config::SdkConfig {
    use aws_config::retry::RetryConfig;
    use aws_config::timeout::TimeoutConfig;
    octoscope::adapters::aws::config_loader()
        .endpoint_url(endpoint)
        .region(aws_config::Region::new(crate::moto::REGION))
        .credentials_provider(aws_credential_types::Credentials::new("testing", "testing", None, None, "moto"))
        .retry_config(RetryConfig::standard().with_initial_backoff(Duration::from_millis(10)))
        .timeout_config(TimeoutConfig::builder().operation_attempt_timeout(attempt_timeout).build())
        .load()
        .await
}
