//! The command line: commands, flags and their environment variables, and
//! how a bad configuration is refused.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgGroup, Args, Parser, Subcommand};
use octoscope::adapters::sqlite::{CorruptDatabase, DataFile};
use octoscope::config::ConfigError;
use octoscope::domain::RepoName;

/// GitHub engineering analytics that is complete: webhooks in, a JSON API out.
#[derive(Parser)]
#[command(name = "octoscope", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
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
    /// Rebuild the search index from the store (it is kept in step with every
    /// write; this repairs an index after damage). `serve` may keep running.
    Reindex {
        /// The data directory `serve` uses.
        #[arg(long, env = "OCTOSCOPE_DATA_DIR", default_value = "./octoscope-data")]
        data_dir: PathBuf,
    },
    /// Rebuild the store from the raw archive (stop `serve` first).
    Replay {
        /// The data directory `serve` uses.
        #[arg(long, env = "OCTOSCOPE_DATA_DIR", default_value = "./octoscope-data")]
        data_dir: PathBuf,
    },
    /// Notification rules: add, list, remove, send a test.
    ///
    /// Reads and writes the data directory's store directly (`serve` may keep
    /// running; it sends what is queued). OCTOSCOPE_NOTIFY_ALLOW_PRIVATE=1
    /// admits http:// and private or loopback targets.
    Rules {
        #[command(subcommand)]
        command: Box<RulesCommand>,
        /// The data directory `serve` uses.
        #[arg(long, env = "OCTOSCOPE_DATA_DIR", default_value = "./octoscope-data", global = true)]
        data_dir: PathBuf,
        /// Print JSON (as the API answers) instead of text.
        #[arg(long, global = true)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum RulesCommand {
    /// Add a rule: an event, optional filters, and one target. A webhook
    /// target's signing secret is printed this once.
    Add(Box<AddRule>),
    /// Every rule, with its notifications of the last 7 days.
    List,
    /// Remove a rule (its notifications stay in the log).
    Remove {
        /// The rule's id (rul_…).
        id: String,
    },
    /// Queue a test notification to a rule's target (`octoscope serve` sends it).
    Test {
        /// The rule's id (rul_…).
        id: String,
    },
}

#[derive(Args)]
#[command(group(ArgGroup::new("target").required(true).args(["webhook", "slack", "dispatch"])))]
pub struct AddRule {
    /// The event: branch.moved, pull_request.opened, pull_request.merged,
    /// workflow_run.failed, workflow_run.recovered, deployment.failed,
    /// review.pickup_breached, ci.queue_time_regressed, integrity.gaps_found,
    /// resync.failed.
    #[arg(long)]
    pub on: String,
    /// Only this repository: OWNER/NAME.
    #[arg(long)]
    pub repo: Option<String>,
    /// Only branches matching this glob (`*` within a segment, `**` across).
    #[arg(long)]
    pub branch: Option<String>,
    /// Only changes by this login.
    #[arg(long)]
    pub author: Option<String>,
    /// Only changes by members of this team: ORG/TEAM-SLUG.
    #[arg(long)]
    pub team: Option<String>,
    /// Only deployments to this environment.
    #[arg(long)]
    pub environment: Option<String>,
    /// Not for transitions found late by the integrity check's resync.
    #[arg(long)]
    pub skip_late: bool,
    /// review.pickup_breached: hours without a review (default 24).
    #[arg(long)]
    pub hours: Option<u32>,
    /// ci.queue_time_regressed: the p90 queue time in seconds above which it fires (default 300).
    #[arg(long)]
    pub threshold_seconds: Option<u64>,
    /// ci.queue_time_regressed: only this runner label.
    #[arg(long)]
    pub label: Option<String>,
    /// An HTTPS endpoint, signed by the Standard Webhooks specification.
    #[arg(long, value_name = "URL")]
    pub webhook: Option<String>,
    /// A Slack incoming webhook URL.
    #[arg(long, value_name = "URL")]
    pub slack: Option<String>,
    /// GitHub's repository_dispatch on this repository (OWNER/NAME), with the configured GitHub credentials.
    #[arg(long, value_name = "OWNER/NAME")]
    pub dispatch: Option<String>,
    /// The dispatch's event_type (default octoscope).
    #[arg(long, requires = "dispatch")]
    pub event_type: Option<String>,
}

pub fn env(k: &str) -> Option<String> {
    std::env::var(k).ok()
}

/// Refuse to start: the error names the variable (or flag) at fault; exit code 2.
pub fn refuse(e: ConfigError) -> ! {
    eprintln!("octoscope: configuration refused: {e}");
    std::process::exit(2);
}

pub fn refuse_bad<T>(r: Result<T, ConfigError>) -> T {
    r.unwrap_or_else(|e| refuse(e))
}

/// Refuse to start on a damaged database file (exit code 65, EX_DATAERR): say
/// which file, that it was left untouched, and how to go on. Other errors pass.
pub fn refuse_damaged(e: anyhow::Error) -> anyhow::Error {
    let Some(c) = e.downcast_ref::<CorruptDatabase>() else { return e };
    let path = c.path.display();
    let way_on = match c.file {
        DataFile::Store => format!(
            "restore it from a backup; or move it aside (mv {path} {path}.damaged) and start again: the store \
             starts empty, `octoscope replay` rebuilds it from archive.db, `octoscope check` resyncs it from GitHub"
        ),
        DataFile::Archive => format!(
            "restore it from a backup; or move it aside (mv {path} {path}.damaged) and start again: a new, empty \
             archive is created and the store keeps its data, but `octoscope replay` can then rebuild only \
             from deliveries that arrive after"
        ),
    };
    eprintln!("octoscope: refusing to start: {c}");
    eprintln!(
        "octoscope: the file was left as it is (a damaged database is never reset or recreated); to go on, {way_on}"
    );
    std::process::exit(65);
}
