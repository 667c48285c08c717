//! `octoscope`: Octoscope on one machine. Wiring only: parse the command line,
//! load the config once, build the adapters, hand them to the services.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use octoscope::adapters::clock::SystemClock;
use octoscope::adapters::github::{GitHubAuth, GitHubClient, GitHubConfig};
use octoscope::adapters::local::{InProcessLauncher, LocalQueue};
use octoscope::adapters::sqlite::{SqliteArchive, SqliteStore};
use octoscope::api::{self, AppState};
use octoscope::config::{ConfigError, GitHubCredentials, GitHubSettings, SecretSource, ServeConfig};
use octoscope::domain::RepoName;
use octoscope::domain::{GapKind, ResyncJob, Target};
use octoscope::ports::GitHubSource;
use octoscope::ports::{Clock, RawArchive, Store};
use octoscope::services::integrity::IntegrityService;
use octoscope::services::resync::ResyncService;
use octoscope::services::{IngestService, demo, dispatch, replay};
use octoscope::webhook::WebhookSecrets;

/// GitHub engineering analytics that is complete: webhooks in, a JSON API out.
#[derive(Parser)]
#[command(name = "octoscope", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Receive GitHub webhooks at /webhook and serve the API at /api.
    ///
    /// Environment: GITHUB_WEBHOOK_SECRET (comma-separated for rotation; if unset,
    /// DATA_DIR/webhook-secret is used, created on first start), OCTOSCOPE_API_TOKENS
    /// (comma-separated bearer tokens; required on a non-loopback address),
    /// OCTOSCOPE_MAX_BODY_BYTES (default 26214400, GitHub's 25 MB cap).
    ///
    /// With GitHub credentials (GITHUB_TOKEN, or GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY),
    /// it also runs the integrity check every --check-interval and repairs what it finds.
    Serve {
        /// Address to listen on.
        #[arg(long, env = "OCTOSCOPE_LISTEN", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Where the store (octoscope.db), the raw archive (archive.db) and the secret file live.
        #[arg(long, env = "OCTOSCOPE_DATA_DIR", default_value = "./octoscope-data")]
        data_dir: PathBuf,
        /// How often the integrity check runs (e.g. 15m, 1h; 0 turns it off).
        #[arg(long, env = "OCTOSCOPE_CHECK_INTERVAL", default_value = "15m", value_parser = humantime::parse_duration)]
        check_interval: Duration,
        /// The built dashboard (`make dashboard`), served at /; not served if the directory is missing.
        #[arg(long, env = "OCTOSCOPE_DASHBOARD_DIR", default_value = "frontend/dist")]
        dashboard_dir: PathBuf,
    },
    /// Compare GitHub with the store, and (unless --dry-run) repair every gap before exiting.
    ///
    /// Needs GITHUB_TOKEN (or a GitHub App); GITHUB_API_URL for GitHub Enterprise Server.
    /// Tracks OCTOSCOPE_REPOS, OCTOSCOPE_ORGS and every repository that delivered a webhook.
    Check {
        /// Find and record gaps, repair nothing, redeliver nothing.
        #[arg(long)]
        dry_run: bool,
        #[arg(long, env = "OCTOSCOPE_DATA_DIR", default_value = "./octoscope-data")]
        data_dir: PathBuf,
    },
    /// Load full history from the GitHub API: every pull request with its reviews,
    /// branches, recent workflow runs, and (for --org) teams with members.
    ///
    /// A backfill that is stopped resumes where it got to when run again.
    Backfill {
        /// OWNER/NAME; repeat for more.
        #[arg(long = "repo", value_parser = RepoName::parse)]
        repos: Vec<RepoName>,
        /// An organisation: all its repositories and its teams; repeat for more.
        #[arg(long = "org")]
        orgs: Vec<String>,
        #[arg(long, env = "OCTOSCOPE_DATA_DIR", default_value = "./octoscope-data")]
        data_dir: PathBuf,
    },
    /// Load a generated sample organisation (4 repositories, 3 teams, four months of
    /// pull requests, reviews, CI and deployments) through the real webhook path.
    ///
    /// Loading it again changes nothing (its deliveries are already in the ledger).
    Demo {
        #[arg(long, env = "OCTOSCOPE_DATA_DIR", default_value = "./octoscope-data")]
        data_dir: PathBuf,
    },
    /// Rebuild the store from the raw archive (stop `serve` first).
    Replay {
        /// The data directory `serve` uses.
        #[arg(long, env = "OCTOSCOPE_DATA_DIR", default_value = "./octoscope-data")]
        data_dir: PathBuf,
    },
}

fn open(data_dir: &Path) -> anyhow::Result<(Arc<dyn Store>, Arc<dyn RawArchive>)> {
    std::fs::create_dir_all(data_dir).with_context(|| format!("creating data directory {}", data_dir.display()))?;
    let store = SqliteStore::open(&data_dir.join("octoscope.db"))?;
    let archive = SqliteArchive::open(&data_dir.join("archive.db"))?;
    Ok((Arc::new(store), Arc::new(archive)))
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
            let github = refuse_bad(GitHubSettings::load(env)).unwrap_or_else(|| {
                refuse(ConfigError::new("GITHUB_TOKEN", "check needs GitHub credentials: GITHUB_TOKEN or a GitHub App"))
            });
            let (store, _) = open(&data_dir)?;
            let loop_ = Completeness::new(store.clone(), &github).await?;
            check(&loop_, store, dry_run).await
        }
        Command::Backfill { repos, orgs, data_dir } => {
            if repos.is_empty() && orgs.is_empty() {
                refuse(ConfigError::new("--repo/--org", "name at least one repository or organisation"));
            }
            let github = refuse_bad(GitHubSettings::load(env)).unwrap_or_else(|| {
                refuse(ConfigError::new(
                    "GITHUB_TOKEN",
                    "backfill needs GitHub credentials: GITHUB_TOKEN or a GitHub App",
                ))
            });
            let (store, _) = open(&data_dir)?;
            let loop_ = Completeness::new(store.clone(), &github).await?;
            backfill(&loop_, repos, orgs).await
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

fn env(k: &str) -> Option<String> {
    std::env::var(k).ok()
}

fn refuse(e: ConfigError) -> ! {
    eprintln!("octoscope: configuration refused: {e}");
    std::process::exit(2);
}

fn refuse_bad<T>(r: Result<T, ConfigError>) -> T {
    r.unwrap_or_else(|e| refuse(e))
}

/// The completeness loop on one machine: GitHub client, check, in-process queue and jobs.
struct Completeness {
    github: Arc<GitHubClient>,
    integrity: IntegrityService,
    resync: Arc<ResyncService>,
    queue: Arc<LocalQueue>,
    launcher: Arc<InProcessLauncher>,
    clock: Arc<dyn Clock>,
}

impl Completeness {
    async fn new(store: Arc<dyn Store>, settings: &GitHubSettings) -> anyhow::Result<Self> {
        let auth = match &settings.credentials {
            GitHubCredentials::Token(t) => GitHubAuth::Token(t.clone()),
            GitHubCredentials::App { app_id, private_key_pem, installation_id } => GitHubAuth::App {
                app_id: *app_id,
                private_key_pem: private_key_pem.clone(),
                installation_id: *installation_id,
            },
        };
        let github = Arc::new(
            GitHubClient::new(GitHubConfig::new(settings.api_url.clone(), auth))
                .await
                .context("connecting to GitHub")?,
        );
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let queue = Arc::new(LocalQueue::default());
        let resync = Arc::new(ResyncService::new(store.clone(), github.clone(), clock.clone()));
        let launcher = Arc::new(InProcessLauncher::new(resync.clone(), 2));
        let integrity =
            IntegrityService::new(store, github.clone(), queue.clone(), clock.clone(), settings.tracked.clone());
        Ok(Self { github, integrity, resync, queue, launcher, clock })
    }

    /// Dispatch what is queued and wait for the jobs; returns the failures.
    async fn repair(&self, store: &dyn Store) -> anyhow::Result<(usize, Vec<(String, String)>)> {
        let gaps = self.queue.take_all();
        let jobs = dispatch::dispatch(&gaps, store, self.launcher.as_ref(), self.clock.as_ref()).await?;
        Ok((jobs.len(), self.launcher.wait_idle().await))
    }
}

async fn check(c: &Completeness, store: Arc<dyn Store>, dry_run: bool) -> anyhow::Result<()> {
    let run = c.integrity.check(dry_run).await?;
    println!(
        "checked {} repositories and {} organisations with {} GitHub requests; {} failed deliveries redelivered",
        run.repos_compared, run.orgs_compared, run.requests, run.redelivered
    );
    if run.gaps.is_empty() {
        println!("no gaps: the store matches GitHub");
        return Ok(());
    }
    println!("{} gaps:", run.gaps.len());
    for g in &run.gaps {
        println!("  {} {:?}: {}", g.target, g.kind, g.reason);
    }
    if dry_run {
        println!("dry run: nothing repaired");
        return Ok(());
    }
    let (jobs, failed) = c.repair(store.as_ref()).await?;
    println!(
        "{jobs} resync jobs ran; {} failed; {} GitHub requests remaining",
        failed.len(),
        remaining(c.github.as_ref())
    );
    for (id, e) in &failed {
        println!("  {id}: {e}");
    }
    anyhow::ensure!(failed.is_empty(), "{} resync jobs failed", failed.len());
    Ok(())
}

fn remaining(github: &dyn GitHubSource) -> String {
    github.budget().remaining.map_or_else(|| "unknown".to_owned(), |n| n.to_string())
}

async fn backfill(c: &Completeness, mut repos: Vec<RepoName>, orgs: Vec<String>) -> anyhow::Result<()> {
    for org in &orgs {
        repos.extend(c.github.org_repos(org).await.with_context(|| format!("listing the repositories of {org}"))?);
    }
    repos.sort();
    repos.dedup();
    let mut targets: Vec<Target> = orgs.iter().cloned().map(Target::Org).collect();
    targets.extend(repos.into_iter().map(Target::Repo));
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} pull requests, ETA {eta} — {msg}",
        )
        .expect("a valid template"),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    for (i, target) in targets.iter().enumerate() {
        let kinds = match target {
            Target::Org(_) => vec![GapKind::Teams],
            Target::Repo(_) => vec![GapKind::Pulls, GapKind::Branches, GapKind::WorkflowRuns],
        };
        // A stable id: a stopped backfill of the same target resumes from its checkpoint.
        let job = ResyncJob { id: format!("backfill-{target}"), target: target.clone(), kinds, watermark: None };
        let github = c.github.clone();
        let (n, total) = (i + 1, targets.len());
        bar.reset();
        bar.set_length(0);
        let done = c
            .resync
            .run(&job, |p| {
                if let Some(all) = p.total_pulls {
                    bar.set_length(all);
                }
                bar.set_position(p.pulls);
                bar.set_message(format!(
                    "{n}/{total} {target}: {} written; GitHub budget left: {}",
                    p.written,
                    remaining(github.as_ref())
                ));
            })
            .await
            .with_context(|| format!("backfilling {target}"))?;
        // Printed, not drawn: the bar is hidden when stdout is not a terminal.
        bar.suspend(|| {
            println!("{target}: {} pull requests in {} pages, {} written", done.pulls, done.pages, done.written)
        });
    }
    bar.finish_and_clear();
    println!("backfill done; GitHub budget left: {}", remaining(c.github.as_ref()));
    Ok(())
}

async fn serve(
    config: ServeConfig,
    github: Option<GitHubSettings>,
    check_interval: Duration,
    dashboard_dir: &Path,
) -> anyhow::Result<()> {
    let (store, archive) = open(&config.data_dir)?;
    match (&github, check_interval.is_zero()) {
        (Some(settings), false) => {
            let c = Completeness::new(store.clone(), settings).await?;
            tokio::spawn(check_on_schedule(c, store.clone(), check_interval));
        }
        (None, false) => tracing::warn!(
            "integrity check off: set GITHUB_TOKEN (or a GitHub App) to find and repair what webhooks missed"
        ),
        (_, true) => tracing::info!("integrity check off (--check-interval 0)"),
    }
    let ingest = IngestService::new(store.clone(), archive, Arc::new(SystemClock), config.secrets.clone());
    let app = api::router(AppState {
        ingest: Arc::new(ingest),
        store: store.clone(),
        tokens: config.api_tokens.clone(),
        max_body_bytes: config.max_body_bytes,
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
    print_welcome(&config, addr, dashboard, empty);
    axum::serve(listener, app).with_graceful_shutdown(shutdown()).await.context("serving")?;
    eprintln!("octoscope: stopped");
    Ok(())
}

fn print_welcome(config: &ServeConfig, addr: SocketAddr, dashboard: bool, empty: bool) {
    let secret = match &config.secret_source {
        SecretSource::Environment => "from GITHUB_WEBHOOK_SECRET".to_owned(),
        SecretSource::File { path, created } => {
            format!("the contents of {}{}", path.display(), if *created { " (just created)" } else { "" })
        }
    };
    println!("Octoscope is ready. Point a GitHub webhook at it (organization or repository → Settings → Webhooks):");
    println!("  Payload URL   http://{addr}/webhook   (GitHub must reach it: use your public URL or a tunnel)");
    println!("  Content type  application/json");
    println!("  Secret        {secret}");
    println!("  Events        Send me everything");
    println!("API: http://{addr}/api/health  (repos, pulls, teams, commits, workflow-runs, deliveries)");
    if dashboard {
        println!("Dashboard: http://{addr}/");
    }
    if empty {
        println!("The store is empty. To look around first: `make demo` (octoscope demo) loads a sample organisation.");
    }
    if !config.api_tokens.is_empty() {
        println!("API calls need 'Authorization: Bearer <token>' with a token from OCTOSCOPE_API_TOKENS.");
    }
    // Last, and in this exact form: scripts and tests wait for this line.
    println!("octoscope listening on http://{addr}");
}

/// The scheduled check and its worker: gaps are repaired as soon as they are queued.
async fn check_on_schedule(c: Completeness, store: Arc<dyn Store>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match c.integrity.check(false).await {
            Ok(run) => tracing::info!(gaps = run.gaps.len(), requests = run.requests, "integrity check done"),
            Err(e) => tracing::warn!(error = %format!("{e:#}"), "integrity check failed; retrying next time"),
        }
        match c.repair(store.as_ref()).await {
            Ok((jobs, failed)) if jobs > 0 => tracing::info!(jobs, failed = failed.len(), "resync jobs done"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %format!("{e:#}"), "dispatching resync jobs failed"),
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
