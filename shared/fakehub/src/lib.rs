//! A fake GitHub for tests. NOT product code.
//!
//! [`FakeHub::start`] generates a deterministic organisation ([`Org`], the
//! ground truth) from an [`OrgSpec`] and serves, on `127.0.0.1` and a free
//! port, the GraphQL and REST calls Octoscope's GitHub adapter makes: real
//! cursor pagination, `x-ratelimit-*` headers with a budget that runs out and
//! resets, injectable secondary limits and 5xx, ETags, and a request counter
//! per endpoint. [`FakeHub::send_webhooks`] delivers the organisation's history
//! as signed webhooks, with a share dropped (recorded as failed deliveries that
//! the REST redelivery endpoint really sends), duplicated or reordered, and
//! whole event kinds lost for good ([`WebhookSpec::lost_events`]).
//!
//! The ground truth holds, per repository: branches, pull requests with
//! reviews, workflow runs ([`WorkflowRun`], node id `WFR_<id>`) each with 1 to 4
//! jobs ([`WorkflowJob`]: runner labels, runner, queue time) per attempt (a
//! fifth of the completed runs were re-run: `run_attempt` 2, the failed first
//! attempt's jobs kept, as GitHub keeps them), deployments
//! ([`Deployment`]) with their statuses, and the default branch's linear
//! history ([`Repo::commits`], oldest first, the newest being the branch head);
//! and teams with members. What was added later is drawn from a second random
//! stream, so the rest stays as it was for the same seed.
//!
//! Served:
//! - REST: `GET /repos/{owner}/{repo}/actions/runs` (newest first; `created` in
//!   GitHub's date-filter syntax `>=T`, `>T`, `<=T`, `<T`, `T1..T2`, `*` for an
//!   open side; a filtered list only reaches its first 1,000 runs, like
//!   GitHub's, while `total_count` counts every match),
//!   `GET .../actions/runs/{run_id}/jobs` (`filter=latest`, the default, or `all`),
//!   `GET .../deployments` and `GET .../deployments/{deployment_id}/statuses`
//!   (newest first), hooks, deliveries and redelivery, App installations and
//!   tokens, `POST .../dispatches` (`repository_dispatch`: recorded with the
//!   token that authorised it, [`FakeHub::dispatches`]; `204`, `404` for an
//!   unknown repository or one outside the token's narrowing, `403` for
//!   another account's installation token or one without Contents write). Each `/repos/{owner}/{repo}/...` endpoint is also served as
//!   `/repositories/{id}/...`; under a former name of a repository it answers
//!   `301 Moved Permanently` (`307` for a POST) with `Location:
//!   {url}/repositories/{id}/...` (the rest of the path and the query kept), as
//!   GitHub does after a rename or transfer. Lists page with `per_page`/`page` (deliveries with `cursor`) and a
//!   `Link` `rel="next"`. Every successful GET has an `ETag`; a matching
//!   `If-None-Match` gets 304, spends no budget and is counted again under
//!   `"304 GET /path"`.
//! - GraphQL (fields as GitHub's schema types them): repositories and their pull
//!   requests (reviews, `totalCount`s), branches (`refs`, `ref(qualifiedName:)`,
//!   `defaultBranchRef`), `Commit.history(first, after, since, until)` on the
//!   default branch's commits, `Repository.deployments(orderBy:, environments:)`
//!   with `latestStatus` and `statuses`, `Query.nodes(ids:)`/`node(id:)` for
//!   workflow runs with `checkSuite { checkRuns(filterBy:) }` (their jobs),
//!   organisation teams, members and `repositories(orderBy:)` (the
//!   repositories it owns: one transferred to another account is not listed).
//!   `repository(owner:, name:)` with a former name resolves to the repository
//!   under its new name (`nameWithOwner`, `databaseId`). An id that
//!   resolves to nothing is `null` with a `NOT_FOUND` error; an item made a
//!   null node ([`FakeHub::null_node`]) is `null` with a `FORBIDDEN` error, its
//!   `path` pointing at it.
//! - Webhook history: pull requests, reviews, team membership, pushes (the
//!   default branch's carrying its commits, 1 to 3 per push), workflow runs,
//!   workflow jobs (queued, in progress, completed), deployments and deployment
//!   statuses (created), and `repository` `renamed` / `transferred` for the
//!   moves. Normalised by Octoscope's parser and applied last-writer-wins in
//!   any order, it gives the ground truth.
//!
//! Renames and transfers ([`FakeHub::rename_repo`], [`FakeHub::transfer_repo`])
//! change a repository's name or owner in place (same `id`, same contents) and
//! are kept, timestamped, in [`Repo::moves`]: `*_at` variants place the move
//! anywhere in the history (the plain ones at the current time, so after all
//! of it). In the history each event of the repository carries the name it
//! had at the event's time, and the move itself is a `repository` event
//! (`changes.repository.name.from`, or `changes.owner.from.organization` /
//! `.user`) at the move's time; lose it like any other with
//! `WebhookSpec { lost_events: vec!["repository".into()], .. }`. The
//! organisation's hook stands for an App installed on both accounts of a
//! transfer: it still hears about a repository transferred away (GitHub sends
//! `transferred` to the new owner's installation), its events then carrying no
//! `organization`.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use octoscope_fakehub::{FakeHub, Fault, OrgSpec, WebhookSpec};
//!
//! let hub = FakeHub::start(OrgSpec { repos: 3, pulls: 200, ..OrgSpec::default() }).await?;
//! // Point the adapter at `hub.url` with `hub.token()`; compare what it reads with `hub.org()`.
//! hub.fail_next([Fault::ServerError(502)]);
//! let spec = WebhookSpec { drop_share: 0.1, duplicate_share: 0.05, ..WebhookSpec::default() };
//! let report = hub.send_webhooks("http://127.0.0.1:8080/webhook", &spec).await?;
//! println!("{} events, {} dropped, {:?}", report.events, report.dropped.len(), hub.request_counts());
//! # Ok(()) }
//! ```

pub mod graphql;
pub mod model;
mod server;
pub mod webhooks;

use std::collections::{BTreeMap, VecDeque};
use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};
use std::time::Duration;

use anyhow::Context as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::oneshot;

pub use graphql::NullNode;
pub use model::*;
pub use webhooks::{Event, OVERSIZED_BODY_BYTES};

/// The primary rate limit: `limit` requests per `window`, per resource
/// (`core` for REST, `graphql`), like GitHub's hourly budget.
#[derive(Debug, Clone)]
pub struct RateLimit {
    pub limit: u64,
    pub window: Duration,
    /// How a spent GraphQL budget is refused: 200 with a `RATE_LIMITED`
    /// error (what GitHub documents for GraphQL) or 403 like REST.
    pub graphql_refusal_status: u16,
}

impl RateLimit {
    pub fn new(limit: u64, window: Duration) -> Self {
        Self { limit, window, ..Self::default() }
    }
}

impl Default for RateLimit {
    fn default() -> Self {
        Self { limit: 5000, window: Duration::from_secs(3600), graphql_refusal_status: 200 }
    }
}

/// Faults drawn at random (seeded) for every request.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Share of requests answered 502.
    pub server_error_share: f64,
    /// Share of requests answered with a secondary rate limit (403 or 429 with `Retry-After`).
    pub secondary_limit_share: f64,
    pub seed: u64,
}

/// One fault for the next request ([`FakeHub::fail_next`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer this 5xx status.
    ServerError(u16),
    /// A secondary rate limit: `status` 403 or 429, with `Retry-After` when
    /// `retry_after_secs` is set (GitHub sometimes sends none).
    SecondaryLimit { status: u16, retry_after_secs: Option<u64> },
    /// Hold the request this long before serving it (a client timeout).
    Stall(Duration),
}

/// The private key of the fake's GitHub App (test-only, see `keys/README.md`):
/// JWTs signed with it mint installation tokens.
pub const TEST_APP_PRIVATE_KEY: &str = include_str!("../keys/test-app.private.pem");

/// A GitHub App installed on the organisation. Its JWTs (RS256, signed with
/// [`TEST_APP_PRIVATE_KEY`], `iss` = `app_id`) are accepted on `/app/...`;
/// `POST /app/installations/{id}/access_tokens` mints tokens valid for
/// `token_ttl`, accepted everywhere until they expire.
///
/// With no [`AppSpec::more_installations`], the one installation (on the
/// organisation) stands for an app installed on every account: its tokens
/// read every repository. With more, each installation is on one account and
/// its tokens see only that account's repositories (and organisation): another
/// one's is `404` on REST and `null` with a `NOT_FOUND` error on GraphQL, as
/// GitHub answers, and is counted ([`FakeHub::foreign_reads`]). Each
/// installation (and the personal token) has its own rate-limit budget.
///
/// A token may be narrowed as GitHub's request body allows: `repositories`
/// (names on the installation's account, resolved to ids when minted; any
/// other is a 422) and `permissions` (at most [`AppSpec::permissions`], else
/// a 422). A narrowed token is `404` on REST for every other repository
/// (GraphQL does not check the narrowing), and a dispatch needs
/// `contents: write` ([`FakeHub::minted`] shows what a token carries).
#[derive(Debug, Clone)]
pub struct AppSpec {
    pub app_id: u64,
    /// The installation on the organisation.
    pub installation_id: u64,
    pub token_ttl: Duration,
    /// Installations on other accounts (which own repositories here once
    /// transferred to them: [`FakeHub::transfer_repo`]).
    pub more_installations: Vec<InstallationSpec>,
    /// What every installation of the app is granted (`read`, `write` or
    /// `admin` by permission name); a token minted with `permissions` may
    /// ask for these or less, and an installation token is refused (`403`)
    /// on REST what its permissions do not cover (actions, deployments,
    /// hooks, teams and dispatches; GraphQL is not checked). Default:
    /// metadata, pull_requests, members, actions, checks and deployments
    /// read; contents, repository_hooks and organization_hooks write.
    pub permissions: BTreeMap<String, String>,
}

/// An installation of the app on another account than the organisation.
#[derive(Debug, Clone)]
pub struct InstallationSpec {
    pub id: u64,
    /// The account's login (an organisation or a user).
    pub account: String,
}

impl Default for AppSpec {
    fn default() -> Self {
        Self {
            app_id: 31_337,
            installation_id: 77_001,
            token_ttl: Duration::from_secs(3600),
            more_installations: Vec::new(),
            permissions: [
                ("metadata", "read"),
                ("pull_requests", "read"),
                ("members", "read"),
                ("actions", "read"),
                ("checks", "read"),
                ("deployments", "read"),
                ("contents", "write"),
                ("repository_hooks", "write"),
                ("organization_hooks", "write"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        }
    }
}

/// The budget name of the personal token's requests ([`FakeHub::installation_requests`]).
pub const TOKEN_BUDGET: &str = "token";

#[derive(Debug, Clone)]
pub struct HubConfig {
    /// The GitHub App installed on the organisation.
    pub app: AppSpec,
    /// The bearer token the fake accepts.
    pub token: String,
    pub rate_limit: RateLimit,
    pub faults: Faults,
    /// The id of the organisation webhook that delivers the history.
    pub hook_id: u64,
    /// `Retry-After` of secondary limits drawn from [`Faults`].
    pub retry_after_secs: u64,
    /// Added to every request's service time (to observe concurrency).
    pub latency: Duration,
    /// At most this many nodes on a page of a GraphQL connection, whatever
    /// `first` asks: many pages from few items, where a test needs pages
    /// and not the items' cost (GitHub's `first` is an upper bound too).
    pub page_cap: Option<usize>,
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            app: AppSpec::default(),
            token: "ghp_fakehub_token".into(),
            rate_limit: RateLimit::default(),
            faults: Faults::default(),
            hook_id: 4242,
            retry_after_secs: 1,
            latency: Duration::ZERO,
            page_cap: None,
        }
    }
}

/// How [`FakeHub::send_webhooks`] delivers the history.
#[derive(Debug, Clone)]
pub struct WebhookSpec {
    /// The HMAC-SHA256 secret of `X-Hub-Signature-256`.
    pub secret: String,
    /// Share of events not delivered (recorded as failed deliveries on the hook).
    pub drop_share: f64,
    /// Share of events delivered twice (same `X-GitHub-Delivery`).
    pub duplicate_share: f64,
    /// Share of events moved a few places later than their time says.
    pub reorder_share: f64,
    /// Append one `pull_request` event whose body is over 7 MB.
    pub oversized_event: bool,
    pub seed: u64,
    /// Deliveries in flight at once (1: one after the other, in order).
    pub concurrency: usize,
    /// Events (by `X-GitHub-Event` name, e.g. `"workflow_run"`) lost for good:
    /// neither delivered nor recorded in the hook's delivery log (as if older
    /// than the redelivery window), so only the integrity check's comparison
    /// with GitHub can find them.
    pub lost_events: Vec<String>,
}

impl Default for WebhookSpec {
    fn default() -> Self {
        Self {
            secret: "fakehub-webhook-secret".into(),
            drop_share: 0.0,
            duplicate_share: 0.0,
            reorder_share: 0.0,
            oversized_event: false,
            seed: 7,
            concurrency: 1,
            lost_events: Vec::new(),
        }
    }
}

/// One recorded delivery attempt of the organisation hook (what
/// `GET .../hooks/{id}/deliveries` lists).
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: u64,
    pub guid: String,
    pub event: String,
    pub action: Option<String>,
    pub delivered_at: Time,
    /// The receiver's answer; 0 when the delivery was dropped (never reached it).
    pub status_code: u16,
    pub redelivery: bool,
    pub url: String,
    body: Arc<Vec<u8>>,
}

impl Delivery {
    pub fn body(&self) -> &[u8] {
        &self.body
    }
}

/// What one [`FakeHub::send_webhooks`] did.
#[derive(Debug, Clone, Default)]
pub struct SendReport {
    /// Events of the history the hook knows (the oversized one included, the lost ones not).
    pub events: usize,
    /// Events of the history lost for good ([`WebhookSpec::lost_events`]): never sent nor recorded.
    pub lost: usize,
    /// Requests sent to the receiver (duplicates included).
    pub sent: usize,
    /// Delivery ids (for redelivery) and GUIDs of the dropped events.
    pub dropped: Vec<(u64, String)>,
    /// GUIDs delivered twice.
    pub duplicated: Vec<String>,
    /// Events delivered out of time order.
    pub reordered: usize,
    /// The receiver's status codes and how often each came.
    pub statuses: BTreeMap<u16, usize>,
    /// The GUID of the oversized event, if one was sent.
    pub oversized_guid: Option<String>,
}

pub(crate) struct Bucket {
    pub remaining: u64,
    pub reset_at: Time,
}

pub(crate) struct FaultState {
    pub queue: VecDeque<Fault>,
    pub faults: Faults,
    pub rng: fastrand::Rng,
}

/// One webhook request to send.
#[derive(Clone)]
pub(crate) struct Outgoing {
    pub url: String,
    pub event: String,
    pub action: Option<String>,
    pub guid: String,
    pub body: Arc<Vec<u8>>,
}

/// An installation token the fake minted, and what it may do.
#[derive(Debug, Clone, PartialEq)]
pub struct MintedToken {
    pub token: String,
    pub expires_at: Time,
    pub installation: u64,
    /// The ids of the repositories it is narrowed to (`repositories` in the
    /// request, by name, resolved when minted as GitHub does); None: every
    /// repository of the installation's account.
    pub repositories: Option<Vec<i64>>,
    /// The permissions it carries: those asked for, else the app's.
    pub permissions: BTreeMap<String, String>,
}

/// A `repository_dispatch` the fake received (`POST /repos/{owner}/{repo}/dispatches`).
#[derive(Debug, Clone, PartialEq)]
pub struct Dispatch {
    /// The repository's full name now (`owner/name`).
    pub repo: String,
    pub event_type: String,
    pub client_payload: serde_json::Value,
    /// The bearer token presented (the personal token or an installation's).
    pub token: String,
    /// The installation whose token it is; None for the personal token.
    pub installation: Option<u64>,
}

/// What the server and the handle share.
pub(crate) struct State {
    /// The ground truth; [`FakeHub::update`] changes it.
    pub world: RwLock<World>,
    pub config: HubConfig,
    pub base_url: String,
    pub counters: Mutex<BTreeMap<String, u64>>,
    /// Requests being served now, and the most ever at once.
    pub in_flight: AtomicU64,
    pub max_in_flight: AtomicU64,
    /// Rate-limit buckets by (budget: `token` or an installation's account login, resource).
    pub buckets: Mutex<BTreeMap<(String, &'static str), Bucket>>,
    /// Requests per budget (authenticated ones).
    pub by_budget: Mutex<BTreeMap<String, u64>>,
    /// Reads refused because the installation does not see the repository: (budget, what).
    pub foreign: Mutex<Vec<(String, String)>>,
    pub faults: Mutex<FaultState>,
    pub deliveries: Mutex<Vec<Delivery>>,
    /// Items GraphQL answers as `null`, and for how many more requests that hold them.
    pub null_nodes: Mutex<Vec<(graphql::NullNode, usize)>>,
    /// Installation tokens minted, oldest first.
    pub installation_tokens: Mutex<Vec<MintedToken>>,
    /// `repository_dispatch` events received, oldest first.
    pub dispatches: Mutex<Vec<Dispatch>>,
    /// The secret of the last `send_webhooks`, for redeliveries.
    pub secret: Mutex<String>,
    pub next_delivery: AtomicU64,
    pub client: reqwest::Client,
}

/// The organisation and the orderings its connections need.
pub(crate) struct World {
    pub org: Org,
    pub index: graphql::Index,
}

impl World {
    fn new(org: Org) -> Self {
        let index = graphql::Index::new(&org);
        Self { org, index }
    }
}

/// A read view of the ground truth (see [`FakeHub::org`]).
pub struct OrgView<'a>(RwLockReadGuard<'a, World>);

impl Deref for OrgView<'_> {
    type Target = Org;
    fn deref(&self) -> &Org {
        &self.0.org
    }
}

impl State {
    /// Read the world; never hold the guard across an await.
    pub fn world(&self) -> RwLockReadGuard<'_, World> {
        self.world.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
    pub fn count(&self, key: String) {
        *self.counters.lock().expect("counter lock").entry(key).or_default() += 1;
    }

    /// Every installation: (id, account login); the organisation's first.
    pub fn installations(&self) -> Vec<(u64, String)> {
        let app = &self.config.app;
        let mut out = vec![(app.installation_id, self.world().org.login.clone())];
        out.extend(app.more_installations.iter().map(|i| (i.id, i.account.clone())));
        out
    }

    /// Deliver one body, signed, and record the attempt. Status 0 when the receiver was unreachable.
    pub async fn deliver(&self, o: &Outgoing, secret: &str, redelivery: bool) -> u16 {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
        mac.update(&o.body);
        let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        let hook_id = self.config.hook_id.to_string();
        let org_id = self.world().org.id.to_string();
        let sent = self
            .client
            .post(&o.url)
            .header("content-type", "application/json")
            .header("user-agent", "GitHub-Hookshot/fakehub")
            .header("x-github-event", &o.event)
            .header("x-github-delivery", &o.guid)
            .header("x-github-hook-id", &hook_id)
            .header("x-github-hook-installation-target-type", "organization")
            .header("x-github-hook-installation-target-id", org_id)
            .header("x-hub-signature-256", signature)
            .body(o.body.to_vec())
            .send()
            .await;
        let status = match sent {
            Ok(r) => r.status().as_u16(),
            Err(e) => {
                tracing::warn!(error = %e, "webhook receiver unreachable");
                0
            }
        };
        self.record(o, status, redelivery);
        status
    }

    pub fn record(&self, o: &Outgoing, status: u16, redelivery: bool) -> u64 {
        let id = self.next_delivery.fetch_add(1, Ordering::Relaxed);
        self.deliveries.lock().expect("deliveries lock").push(Delivery {
            id,
            guid: o.guid.clone(),
            event: o.event.clone(),
            action: o.action.clone(),
            delivered_at: chrono::Utc::now(),
            status_code: status,
            redelivery,
            url: o.url.clone(),
            body: o.body.clone(),
        });
        id
    }
}

/// A running fake GitHub. Dropping it stops the server.
pub struct FakeHub {
    /// `http://127.0.0.1:PORT`: the REST base and `{url}/graphql`.
    pub url: String,
    state: Arc<State>,
    stop: Option<oneshot::Sender<()>>,
}

impl FakeHub {
    /// Generate the organisation of `spec` and serve it with the default config.
    pub async fn start(spec: OrgSpec) -> anyhow::Result<FakeHub> {
        Self::start_with(spec, HubConfig::default()).await
    }

    pub async fn start_with(spec: OrgSpec, config: HubConfig) -> anyhow::Result<FakeHub> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.context("binding the fake GitHub")?;
        let url = format!("http://{}", listener.local_addr().context("the fake's address")?);
        let world = RwLock::new(World::new(Org::generate(&spec)));
        let faults = FaultState {
            queue: VecDeque::new(),
            rng: fastrand::Rng::with_seed(config.faults.seed),
            faults: config.faults.clone(),
        };
        let state = Arc::new(State {
            world,
            config,
            base_url: url.clone(),
            counters: Mutex::default(),
            in_flight: AtomicU64::new(0),
            max_in_flight: AtomicU64::new(0),
            buckets: Mutex::default(),
            by_budget: Mutex::default(),
            foreign: Mutex::default(),
            faults: Mutex::new(faults),
            deliveries: Mutex::default(),
            null_nodes: Mutex::default(),
            installation_tokens: Mutex::default(),
            dispatches: Mutex::default(),
            secret: Mutex::new(WebhookSpec::default().secret),
            next_delivery: AtomicU64::new(90_000_001),
            client: http().timeout(Duration::from_secs(60)).build().context("the webhook client")?,
        });
        let app = server::router(state.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = stopped.await;
            });
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "the fake GitHub stopped");
            }
        });
        Ok(FakeHub { url, state, stop: Some(stop) })
    }

    /// The ground truth, as it is now. Do not hold the view across
    /// [`FakeHub::update`] (it would wait for the view to be dropped).
    pub fn org(&self) -> OrgView<'_> {
        OrgView(self.state.world())
    }

    /// Change the ground truth (GitHub moved on): what the fake serves and
    /// the history it sends from now on follow. Webhooks for the change are
    /// not sent; a test sends what it wants with [`FakeHub::send_webhooks`].
    pub fn update(&self, change: impl FnOnce(&mut Org)) {
        let mut world = self.state.world.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut org = std::mem::replace(
            &mut world.org,
            Org { login: String::new(), id: 0, members: Vec::new(), repos: Vec::new(), teams: Vec::new() },
        );
        change(&mut org);
        *world = World::new(org);
    }

    /// Rename the repository `full_name` (`owner/name`) to `new_name` now, as
    /// GitHub does: the same `id` and contents under the new name; the old
    /// name still answers (GraphQL resolves it, REST redirects with 301), and
    /// the history gains a `repository` `renamed` event. Fails when no
    /// repository is named `full_name` or the new name is taken.
    pub fn rename_repo(&self, full_name: &str, new_name: &str) -> anyhow::Result<()> {
        self.rename_repo_at(full_name, new_name, chrono::Utc::now())
    }

    /// [`Self::rename_repo`] at time `at` of the history: events of the
    /// repository from `at` on carry the new name, earlier ones the old.
    pub fn rename_repo_at(&self, full_name: &str, new_name: &str, at: Time) -> anyhow::Result<()> {
        self.move_repo(full_name, None, Some(new_name), at)
    }

    /// Transfer the repository `full_name` to the account `new_owner` now: as
    /// [`Self::rename_repo`], the history gaining a `repository` `transferred`
    /// event; owned by another login, it leaves the organisation's
    /// `repositories`.
    pub fn transfer_repo(&self, full_name: &str, new_owner: &str) -> anyhow::Result<()> {
        self.transfer_repo_at(full_name, new_owner, chrono::Utc::now())
    }

    /// [`Self::transfer_repo`] at time `at` of the history.
    pub fn transfer_repo_at(&self, full_name: &str, new_owner: &str, at: Time) -> anyhow::Result<()> {
        self.move_repo(full_name, Some(new_owner), None, at)
    }

    fn move_repo(&self, full_name: &str, owner: Option<&str>, name: Option<&str>, at: Time) -> anyhow::Result<()> {
        let mut outcome = Ok(());
        self.update(|org| outcome = org.move_repo(full_name, owner, name, at));
        outcome.map_err(|e| anyhow::anyhow!(e))
    }

    /// The bearer token the fake accepts.
    pub fn token(&self) -> &str {
        &self.state.config.token
    }

    /// The GitHub App installed on the organisation.
    pub fn app(&self) -> &AppSpec {
        &self.state.config.app
    }

    /// Installation tokens minted so far.
    pub fn installation_tokens_minted(&self) -> usize {
        self.state.installation_tokens.lock().expect("token lock").len()
    }

    pub fn hook_id(&self) -> u64 {
        self.state.config.hook_id
    }

    /// Requests received per endpoint: `"GET /repos/{owner}/{repo}/hooks"`,
    /// `"POST /graphql"`; every request counts, refused ones (credentials,
    /// rate limit, injected faults) too. GraphQL operations that were served
    /// are also counted by name: `"graphql PullRequests"`; conditional
    /// requests answered 304 (free of the rate budget) are also counted under
    /// `"304 GET /repos/{owner}/{repo}/actions/runs"`.
    pub fn request_counts(&self) -> BTreeMap<String, u64> {
        self.state.counters.lock().expect("counter lock").clone()
    }

    /// Requests received on one endpoint key (see [`Self::request_counts`]).
    pub fn requests(&self, key: &str) -> u64 {
        self.request_counts().get(key).copied().unwrap_or_default()
    }

    /// Every HTTP request received (GraphQL operations are counted once, under
    /// `POST /graphql`; a 304 once, under its endpoint).
    pub fn total_requests(&self) -> u64 {
        self.request_counts()
            .iter()
            .filter(|(k, _)| !k.starts_with("graphql ") && !k.starts_with("304 "))
            .map(|(_, v)| v)
            .sum()
    }

    /// The most requests the fake was serving at once.
    pub fn max_in_flight(&self) -> u64 {
        self.state.max_in_flight.load(Ordering::SeqCst)
    }

    pub fn reset_counters(&self) {
        self.state.counters.lock().expect("counter lock").clear();
    }

    /// Fail the next requests with these faults, in order.
    pub fn fail_next(&self, faults: impl IntoIterator<Item = Fault>) {
        self.state.faults.lock().expect("fault lock").queue.extend(faults);
    }

    /// Change the random fault shares from now on.
    pub fn set_faults(&self, faults: Faults) {
        let mut f = self.state.faults.lock().expect("fault lock");
        f.rng = fastrand::Rng::with_seed(faults.seed);
        f.faults = faults;
    }

    /// Make `node` come back as `null` (with a `FORBIDDEN` error whose path
    /// points at it) wherever GraphQL would return it (a connection's `nodes`,
    /// an edge's `node`, a field) in the next `times` GraphQL requests that
    /// would hold it; then it comes back normally. Calling again for the same
    /// node adds to its count.
    pub fn null_node(&self, node: NullNode, times: usize) {
        let mut nulls = self.state.null_nodes.lock().expect("null node lock");
        match nulls.iter_mut().find(|(n, _)| *n == node) {
            Some((_, left)) => *left += times,
            None if times > 0 => nulls.push((node, times)),
            None => {}
        }
    }

    /// Spend the rest of the budget of `resource` (`core` or `graphql`) now,
    /// the token's and every installation's.
    pub fn exhaust_rate_limit(&self, resource: &'static str) {
        let mut budgets = vec![TOKEN_BUDGET.to_owned()];
        budgets.extend(self.state.installations().into_iter().map(|(_, login)| login));
        for budget in budgets {
            self.exhaust_budget(&budget, resource);
        }
    }

    /// Spend the rest of one budget (`token`, or an installation's account
    /// login) of `resource` now; it resets after the rate limit's window.
    pub fn exhaust_budget(&self, budget: &str, resource: &'static str) {
        let mut buckets = self.state.buckets.lock().expect("bucket lock");
        let window = chrono::Duration::from_std(self.state.config.rate_limit.window).unwrap_or_default();
        let b = buckets
            .entry((budget.to_ascii_lowercase(), resource))
            .or_insert_with(|| Bucket { remaining: 0, reset_at: chrono::Utc::now() + window });
        b.remaining = 0;
    }

    /// Authenticated requests per budget: `token` (the personal token) or
    /// the account login of the installation whose token was presented.
    /// Requests as the app itself (its JWT) are not counted here.
    pub fn installation_requests(&self) -> BTreeMap<String, u64> {
        self.state.by_budget.lock().expect("budget lock").clone()
    }

    /// Reads an installation's token made of what its installation does not
    /// see (another account's repository or organisation): (its account
    /// login, what was asked). Only with several installations.
    pub fn foreign_reads(&self) -> Vec<(String, String)> {
        self.state.foreign.lock().expect("foreign lock").clone()
    }

    /// The organisation's history as webhook events, oldest first.
    pub fn history(&self, oversized: bool) -> Vec<Event> {
        webhooks::history(&self.state.world().org, oversized)
    }

    /// Every `repository_dispatch` received and accepted (`204`), oldest first.
    pub fn dispatches(&self) -> Vec<Dispatch> {
        self.state.dispatches.lock().expect("dispatch lock").clone()
    }

    /// The installation of each token minted so far, by token (a test's
    /// check of which installation authorised a request).
    pub fn installation_of(&self, token: &str) -> Option<u64> {
        self.minted(token).map(|t| t.installation)
    }

    /// Every installation token minted so far, oldest first.
    pub fn tokens_minted(&self) -> Vec<MintedToken> {
        self.state.installation_tokens.lock().expect("token lock").clone()
    }

    /// The token `token` as it was minted (its installation, repositories
    /// and permissions), if the fake minted it.
    pub fn minted(&self, token: &str) -> Option<MintedToken> {
        self.state.installation_tokens.lock().expect("token lock").iter().find(|t| t.token == token).cloned()
    }

    /// Every recorded delivery attempt of the organisation hook, oldest first.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.state.deliveries.lock().expect("deliveries lock").clone()
    }

    /// Deliver the history to `url` as signed webhooks, one at a time, as
    /// `spec` says. Dropped events are recorded as failed deliveries; a later
    /// REST redelivery (`POST .../deliveries/{id}/attempts`) sends them.
    pub async fn send_webhooks(&self, url: &str, spec: &WebhookSpec) -> anyhow::Result<SendReport> {
        spec.secret.clone_into(&mut self.state.secret.lock().expect("secret lock"));
        let mut rng = fastrand::Rng::with_seed(spec.seed);
        let mut events = self.history(spec.oversized_event);
        let before = events.len();
        events.retain(|e| !spec.lost_events.iter().any(|lost| lost == e.name));
        let mut report = SendReport { events: events.len(), lost: before - events.len(), ..SendReport::default() };
        let mut order: Vec<usize> = (0..events.len()).collect();
        for i in 0..order.len().saturating_sub(1) {
            if rng.f64() < spec.reorder_share {
                let j = (i + rng.usize(1..=5)).min(order.len() - 1);
                order.swap(i, j);
            }
        }
        report.reordered = order.iter().enumerate().filter(|(pos, i)| pos != *i).count();
        // Sends start in order; with `concurrency` > 1 up to that many are in flight at once.
        let permits = Arc::new(tokio::sync::Semaphore::new(spec.concurrency.max(1)));
        let mut sending = tokio::task::JoinSet::new();
        for i in order {
            let e = &events[i];
            let guid = uuid::Builder::from_random_bytes(rng.u128(..).to_le_bytes()).into_uuid().to_string();
            let body = Arc::new(serde_json::to_vec(&e.payload).context("serialising a payload")?);
            if e.payload["pull_request"]["body"].as_str().is_some_and(|b| b.len() >= OVERSIZED_BODY_BYTES) {
                report.oversized_guid = Some(guid.clone());
            }
            let outgoing = Outgoing {
                url: url.to_owned(),
                event: e.name.to_owned(),
                action: e.action.clone(),
                guid: guid.clone(),
                body,
            };
            if rng.f64() < spec.drop_share {
                let id = self.state.record(&outgoing, 0, false);
                report.dropped.push((id, guid));
                continue;
            }
            let copies = if rng.f64() < spec.duplicate_share { 2 } else { 1 };
            if copies == 2 {
                report.duplicated.push(guid);
            }
            for _ in 0..copies {
                let permit = permits.clone().acquire_owned().await.context("the send semaphore")?;
                let (state, outgoing, secret) = (self.state.clone(), outgoing.clone(), spec.secret.clone());
                sending.spawn(async move {
                    let status = state.deliver(&outgoing, &secret, false).await;
                    drop(permit);
                    status
                });
                report.sent += 1;
                while let Some(done) = sending.try_join_next() {
                    *report.statuses.entry(done.context("a webhook send task")?).or_default() += 1;
                }
            }
        }
        while let Some(done) = sending.join_next().await {
            *report.statuses.entry(done.context("a webhook send task")?).or_default() += 1;
        }
        Ok(report)
    }
}

impl Drop for FakeHub {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// An HTTP client builder, ring first made rustls's process-wide crypto
/// provider: a workspace build links reqwest with rustls but no provider of
/// its own, and reqwest then refuses to build a client before one is installed.
pub fn http() -> reqwest::ClientBuilder {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
}
