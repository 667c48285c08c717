//! `octoscope`: Octoscope on one machine. Wiring only: parse the command line,
//! load the config once, build the adapters, hand them to the services.

mod cli;
mod rules;
mod say;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser as _;
use cli::{Cli, Command, env, refuse, refuse_bad, refuse_damaged};
use octoscope::adapters::clock::SystemClock;
use octoscope::adapters::github::{GitHubClient, GitHubConfig};
use octoscope::adapters::local::{InProcessLauncher, LocalQueue};
use octoscope::adapters::notify_http;
use octoscope::adapters::sqlite::{SqliteArchive, SqliteStore};
use octoscope::api::{self, AppState, NotifyApi};
use octoscope::config::{ConfigError, GitHubSettings, NotifyConfig, ServeConfig};
use octoscope::ports::{Budgeted, Clock, RawArchive, RuleStore, SearchIndex, Store};
use octoscope::services::backfill::BackfillService;
use octoscope::services::completeness::CompletenessLoop;
use octoscope::services::dispatch::DispatchService;
use octoscope::services::integrity::IntegrityService;
use octoscope::services::notify::decide::{CachedRules, Decider, DecidingLedger, DecidingSink};
use octoscope::services::notify::send::Sender;
use octoscope::services::resync::{ResyncService, ResyncStores};
use octoscope::services::search_check::SearchCheck;
use octoscope::services::{IngestService, demo, replay};
use octoscope::webhook::WebhookSecrets;

fn open(data_dir: &Path) -> anyhow::Result<(Arc<dyn Store>, Arc<dyn RawArchive>)> {
    let (store, archive) = open_searchable(data_dir)?;
    Ok((store, archive))
}

/// The store itself: it is also the search index (FTS5) the check compares with it.
fn open_sqlite(data_dir: &Path) -> anyhow::Result<Arc<SqliteStore>> {
    std::fs::create_dir_all(data_dir).with_context(|| format!("creating data directory {}", data_dir.display()))?;
    Ok(Arc::new(SqliteStore::open(&data_dir.join("octoscope.db")).map_err(refuse_damaged)?))
}

/// The search index compared with the store in each integrity check (both
/// in the store's database: the comparison reads its tables twice, the
/// repair rewrites a scope in one transaction).
fn search_check(store: &Arc<SqliteStore>) -> SearchCheck {
    SearchCheck::new(store.clone(), store.clone(), store.clone())
}

/// The store (also the search index, FTS5 in its database) and the archive.
type Opened = (Arc<SqliteStore>, Arc<dyn RawArchive>);

fn open_searchable(data_dir: &Path) -> anyhow::Result<Opened> {
    let store = open_sqlite(data_dir)?;
    let archive = SqliteArchive::open(&data_dir.join("archive.db")).map_err(refuse_damaged)?;
    Ok((store, Arc::new(archive)))
}

/// GitHub settings, or refuse to start: `command` needs them.
fn needs_github(command: &str) -> GitHubSettings {
    refuse_bad(GitHubSettings::load(env)).unwrap_or_else(|| {
        let why = format!("{command} needs GitHub credentials: GITHUB_TOKEN or a GitHub App");
        refuse(ConfigError::new("GITHUB_TOKEN", why))
    })
}

/// The completeness loop on one machine: GitHub, the check, an in-process queue and jobs.
struct Wired {
    github: Arc<GitHubClient>,
    resync: Arc<ResyncService>,
    completeness: CompletenessLoop,
}

/// How long `serve` keeps the rules it read: a delivery does not query them
/// each time (two reads on another thread, ≈ 12 % of a delivery's CPU). A
/// rule written through this server's API applies at once (the write clears
/// the cache); one written by another process (`octoscope rules`) within this.
const SERVE_RULES_TTL: Duration = Duration::from_secs(1);

/// The decider of notifications over the SQLite store (rules, outbox, facts).
fn decider(store: &Arc<SqliteStore>, rules: Arc<dyn RuleStore>, notify: &NotifyConfig) -> Arc<Decider> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    Arc::new(Decider::new(rules, store.clone(), store.clone(), clock).with_late_window(notify.late_window))
}

/// `notify`: what the resync finds is decided `late`, and what checks find
/// and failed resyncs are announced (None: nothing is decided, as `backfill` wants).
async fn connect(
    store: Arc<dyn Store>,
    settings: &GitHubSettings,
    search: Option<SearchCheck>,
    notify: Option<Arc<Decider>>,
) -> anyhow::Result<Wired> {
    let github = Arc::new(GitHubClient::new(GitHubConfig::of(settings)).await.context("connecting to GitHub")?);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let queue = Arc::new(LocalQueue::default());
    let mut stores = ResyncStores::of(store.clone());
    if let Some(decider) = &notify {
        stores.changes = Arc::new(DecidingSink::new(stores.changes, decider.clone()));
    }
    let resync = Arc::new(ResyncService::new(stores, github.clone(), clock.clone()));
    let launcher = Arc::new(InProcessLauncher::new(resync.clone(), 2));
    let tracked = settings.tracked.clone();
    let mut integrity =
        IntegrityService::new(store.clone(), github.clone(), github.clone(), queue.clone(), clock.clone(), tracked)
            .with_redelivery_window(settings.redelivery_window());
    if let Some(search) = search {
        integrity = integrity.with_search(search);
    }
    let dispatcher = DispatchService::new(store.clone(), store, launcher.clone(), clock);
    let mut completeness = CompletenessLoop::new(integrity, dispatcher, queue, launcher);
    if let Some(decider) = notify {
        completeness = completeness.with_notifications(decider);
    }
    Ok(Wired { github, resync, completeness })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "octoscope=info,warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match Cli::parse().command {
        Command::Serve { listen, data_dir, check_interval, dashboard_dir } => {
            let config = refuse_bad(ServeConfig::load(listen, data_dir, env));
            let github = refuse_bad(GitHubSettings::load(env));
            serve(config, github, check_interval, &dashboard_dir).await
        }
        Command::Check { dry_run, data_dir } => {
            let github = needs_github("check");
            let store = open_sqlite(&data_dir)?;
            let notify = refuse_bad(NotifyConfig::load(env));
            let decider = (!dry_run).then(|| decider(&store, store.clone(), &notify));
            let wired = connect(store.clone(), &github, Some(search_check(&store)), decider.clone()).await?;
            let run = wired.completeness.check(dry_run).await?;
            say::checked(&run);
            if run.gaps.is_empty() {
                return Ok(());
            } else if dry_run {
                println!("dry run: nothing repaired");
                return Ok(());
            }
            let repair = wired.completeness.repair().await;
            wired.completeness.announce(&run, &repair).await;
            say::repaired(&repair, wired.github.as_ref());
            say::notified(decider.as_ref().map_or(0, |d| d.decided()));
            anyhow::ensure!(repair.failed.is_empty(), "{} resync jobs failed", repair.failed.len());
            Ok(())
        }
        Command::Backfill { repos, orgs, data_dir } => {
            if repos.is_empty() && orgs.is_empty() {
                refuse(ConfigError::new("--repo/--org", "name at least one repository or organisation"));
            }
            let github = needs_github("backfill");
            let wired = connect(open(&data_dir)?.0, &github, None, None).await?;
            let (bar, report) = say::backfill_progress();
            BackfillService::new(wired.github.clone(), wired.resync).run(repos, orgs, report).await?;
            bar.finish_and_clear();
            println!("backfill done; GitHub budget left: {}", say::remaining(wired.github.budget().remaining));
            Ok(())
        }
        Command::Demo { data_dir } => {
            let (store, archive) = open(&data_dir)?;
            let secrets = WebhookSecrets::parse(demo::DEMO_SECRET).expect("the demo secret is valid");
            let ingest = IngestService::new(store, archive, Arc::new(SystemClock), secrets);
            let deliveries = demo::generate(SystemClock.now(), 42);
            let report = demo::load(&ingest, &deliveries).await.context("loading the demo organisation")?;
            println!(
                "demo: {} deliveries of the sample organisation {} through the webhook path: {} stored, {} already there",
                report.deliveries,
                demo::DEMO_ORG,
                report.stored,
                report.duplicates
            );
            println!("now `make run` (or `octoscope serve`) and open http://127.0.0.1:8080/");
            Ok(())
        }
        Command::Reindex { data_dir } => {
            let path = data_dir.join("octoscope.db");
            anyhow::ensure!(path.exists(), "no store at {}: nothing to index", path.display());
            let store = SqliteStore::open(&path).map_err(refuse_damaged)?;
            let started = std::time::Instant::now();
            let documents = store.rebuild_search().await.context("rebuilding the search index")?;
            println!("reindex done: {documents} documents in {:.1} s", started.elapsed().as_secs_f64());
            Ok(())
        }
        Command::Rules { command, data_dir, json } => rules::run(*command, &data_dir, json).await,
        Command::Replay { data_dir } => {
            let (store, archive) = open(&data_dir)?;
            let report = replay::replay(store, archive, |r| eprintln!("replayed {} deliveries", r.deliveries)).await?;
            println!(
                "replay done: {} deliveries ({} stored, {} ignored, {} failed), {} writes applied",
                report.deliveries, report.stored, report.ignored, report.failed, report.applied
            );
            Ok(())
        }
    }
}

async fn serve(
    config: ServeConfig,
    github: Option<GitHubSettings>,
    check_interval: Duration,
    dashboard_dir: &Path,
) -> anyhow::Result<()> {
    let (sqlite, archive) = open_searchable(&config.data_dir)?;
    let (store, search): (Arc<dyn Store>, Arc<dyn SearchIndex>) = (sqlite.clone(), sqlite.clone());
    let rules: Arc<dyn RuleStore> = Arc::new(CachedRules::new(sqlite.clone(), SERVE_RULES_TTL));
    let decider = decider(&sqlite, rules.clone(), &config.notify);
    match (&github, check_interval.is_zero()) {
        (Some(settings), false) => {
            let wired = connect(store.clone(), settings, Some(search_check(&sqlite)), Some(decider.clone())).await?;
            tokio::spawn(wired.completeness.run_on_schedule(check_interval));
        }
        (None, false) => tracing::warn!(
            "integrity check off: set GITHUB_TOKEN (or a GitHub App) to find and repair what webhooks missed"
        ),
        (_, true) => tracing::info!("integrity check off (--check-interval 0)"),
    }
    tokio::spawn(scheduled_rules(decider.clone(), sqlite.clone()));
    tokio::spawn(send_notifications(notify_http::sender(
        sqlite.clone(),
        rules.clone(),
        &config.notify,
        github.as_ref(),
    )?));
    let ledger = Arc::new(DecidingLedger::new(store.clone(), decider));
    let ingest = IngestService::new(ledger, archive, Arc::new(SystemClock), config.secrets.clone());
    let app = api::router(AppState {
        ingest: Arc::new(ingest),
        store: store.clone(),
        search: Some(search),
        tokens: config.api_tokens.clone(),
        max_body_bytes: config.max_body_bytes,
        notify: Some(NotifyApi {
            rules,
            log: sqlite.clone(),
            sink: sqlite.clone(),
            allow_private: config.notify.allow_private,
            clock: Arc::new(SystemClock),
        }),
    });
    // The dashboard at /: /api/* and /webhook answer as before (the API's own
    // 404s stay JSON); any other path is a file of the build, or its index.html.
    let dashboard = dashboard_dir.join("index.html").is_file();
    let app = if dashboard {
        tracing::info!(dir = %dashboard_dir.display(), "serving the dashboard at /");
        app.fallback_service(
            tower_http::services::ServeDir::new(dashboard_dir)
                .fallback(tower_http::services::ServeFile::new(dashboard_dir.join("index.html"))),
        )
    } else {
        tracing::info!(
            dir = %dashboard_dir.display(),
            "no dashboard: build it with `make dashboard` (or set --dashboard-dir / OCTOSCOPE_DASHBOARD_DIR)"
        );
        app
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let empty = store.stats().await.map(|s| s.deliveries.is_empty()).unwrap_or(false);
    say::welcome(&config, addr, dashboard, empty);
    axum::serve(listener, app).with_graceful_shutdown(shutdown()).await.context("serving")?;
    eprintln!("octoscope: stopped");
    Ok(())
}

/// How often `serve` evaluates the scheduled rules (`review.pickup_breached`,
/// `ci.queue_time_regressed`); each finding fires once (its key names the
/// pull request and threshold, or the label, hour and threshold).
const SCHEDULED_RULES_EVERY: Duration = Duration::from_secs(300);

async fn scheduled_rules(decider: Arc<Decider>, store: Arc<SqliteStore>) {
    let mut tick = tokio::time::interval(SCHEDULED_RULES_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = decider.evaluate_scheduled(store.as_ref(), store.as_ref()).await {
            tracing::warn!(error = %octoscope::error::error_chain(&e), "scheduled rules failed; retrying next time");
        }
    }
}

/// How often `serve` looks for due notifications.
const SEND_EVERY: Duration = Duration::from_secs(1);

/// Send due notifications, for ever: a notification kept before a crash (or
/// leased by a process that died, once its lease ends) is sent after restart.
async fn send_notifications(sender: Sender) {
    let mut tick = tokio::time::interval(SEND_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match sender.send_due(50).await {
            Ok(r) if r.taken > 0 => tracing::info!(
                taken = r.taken,
                delivered = r.delivered,
                retrying = r.retrying,
                failed = r.failed,
                disabled = r.disabled,
                "notifications sent"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %octoscope::error::error_chain(&e), "could not read due notifications"),
        }
    }
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
