//! Crash and soak: signed deliveries of the generated demo organisation posted
//! at a steady rate to `octoscope serve` while the server is killed (SIGKILL)
//! every `--kill-every` seconds and restarted on the same data directory.
//! Every delivery that got no 2xx (refused, cut off, timed out, 5xx) is sent
//! again until it gets one. At the end the data directory is compared with
//! what was sent: one ledger row and one archive row per delivery, and a
//! store equal to the ground truth (the deliveries' own pull requests,
//! reviews, runs, jobs and branch heads, and every row of a store that took
//! the same deliveries without interruption). Prints the figures; exits
//! non-zero on any difference.

mod compare;

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;
use octoscope::adapters::clock::SystemClock;
use octoscope::ports::Clock as _;
use octoscope::services::demo;
use octoscope_testkit::sign;
use tokio::sync::mpsc;

const SECRET: &str = "soak-secret";
const HOOK_ID: &str = "1";

#[derive(Parser)]
#[command(about = "Post deliveries to octoscope serve while killing it; then compare its data with what was sent")]
struct Args {
    /// The `octoscope` binary to run.
    #[arg(long)]
    bin: PathBuf,
    /// How long deliveries are sent (seconds).
    #[arg(long, default_value_t = 600)]
    seconds: u64,
    /// SIGKILL the server this often (seconds); 0: never.
    #[arg(long, default_value_t = 60)]
    kill_every: u64,
    /// New deliveries per second.
    #[arg(long, default_value_t = 9.0)]
    rate: f64,
    /// Requests in flight at most.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// After sending, how long every delivery has to converge (seconds).
    #[arg(long, default_value_t = 240)]
    settle: u64,
    /// The demo organisation's seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Work directory (data directory, reference store, server log); a
    /// temporary one by default, kept when the run fails.
    #[arg(long)]
    work_dir: Option<PathBuf>,
}

/// One delivery to send.
pub struct Delivery {
    pub id: String,
    pub event: &'static str,
    pub body: Vec<u8>,
    pub signature: String,
}

/// What happened to the requests, counted as they happen.
#[derive(Default)]
struct Counters {
    attempts: AtomicUsize,
    in_flight: AtomicUsize,
    /// Connection refused: the server was down (between a kill and its restart).
    refused: AtomicUsize,
    /// The connection broke after the request went out: cut off by a kill.
    cut: AtomicUsize,
    timeouts: AtomicUsize,
    server_errors: AtomicUsize,
    other_status: AtomicUsize,
    kills: AtomicUsize,
    /// Requests in flight at the moment of a kill, summed over the kills.
    killed_in_flight: AtomicUsize,
}

/// Per delivery: acknowledged, with which reply status, and how many attempts.
struct Outcomes {
    acked: Vec<Option<String>>,
    attempts: Vec<u32>,
}

struct Driver {
    base: RwLock<String>,
    client: reqwest::Client,
    deliveries: Vec<Delivery>,
    counters: Counters,
    outcomes: Mutex<Outcomes>,
    done: AtomicUsize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.rate > 0.0 && args.concurrency > 0 && args.seconds > 0,
        "--rate, --concurrency and --seconds must be positive"
    );
    let (work, temp) = match &args.work_dir {
        Some(d) => (d.clone(), None),
        None => {
            let t = tempfile::Builder::new().prefix("octoscope-soak-").tempdir()?;
            (t.path().to_owned(), Some(t))
        }
    };
    let data_dir = work.join("data");
    anyhow::ensure!(!data_dir.exists(), "{} exists: the soak starts from an empty data directory", data_dir.display());
    let result = run(&args, &work, &data_dir).await;
    match (&result, temp) {
        (Ok(true), Some(t)) => t.close()?,
        (_, Some(t)) => println!("soak: work directory kept for inspection: {}", t.keep().display()),
        _ => {}
    }
    match result {
        Ok(true) => Ok(()),
        Ok(false) => anyhow::bail!("the data directory differs from what was sent"),
        Err(e) => Err(e),
    }
}

/// Returns whether the data directory matched.
async fn run(args: &Args, work: &Path, data_dir: &Path) -> anyhow::Result<bool> {
    let mut generated = demo::generate(SystemClock.now(), args.seed);
    let wanted = (args.rate * args.seconds as f64).round() as usize;
    // The demo organisation's size varies with the day; fewer deliveries are spread over the whole time.
    let rate = if generated.len() < wanted { generated.len() as f64 / args.seconds as f64 } else { args.rate };
    generated.truncate(wanted);
    let deliveries: Vec<Delivery> = generated
        .into_iter()
        .enumerate()
        .map(|(i, d)| Delivery {
            id: format!("soak-{i:06}"),
            event: d.event,
            signature: sign(SECRET, &d.body),
            body: d.body,
        })
        .collect();
    let n = deliveries.len();
    std::fs::create_dir_all(work)?;
    let log_path = work.join("serve.log");
    let mut server = ServeProcess::start(&args.bin, data_dir, &log_path)?;
    println!(
        "soak: {n} deliveries at {rate:.2}/s over {} s, SIGKILL every {} s, {} in flight at most; server {} (log {})",
        args.seconds,
        args.kill_every,
        args.concurrency,
        args.bin.display(),
        log_path.display()
    );
    let driver = Arc::new(Driver {
        base: RwLock::new(server.base.clone()),
        client: octoscope_testkit::http().timeout(Duration::from_secs(30)).build()?,
        deliveries,
        counters: Counters::default(),
        outcomes: Mutex::new(Outcomes { acked: vec![None; n], attempts: vec![0; n] }),
        done: AtomicUsize::new(0),
    });

    // Senders: a queue of delivery indexes; a failed one goes back in after a pause.
    let (tx, rx) = mpsc::unbounded_channel::<usize>();
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let permits = Arc::new(tokio::sync::Semaphore::new(args.concurrency));
    let dispatcher = {
        let (driver, tx) = (driver.clone(), tx.clone());
        tokio::spawn(async move {
            loop {
                let Some(i) = rx.lock().await.recv().await else { return };
                let permit = permits.clone().acquire_owned().await.expect("semaphore open");
                let (driver, tx) = (driver.clone(), tx.clone());
                tokio::spawn(async move {
                    let ok = driver.send(i).await;
                    drop(permit);
                    if !ok {
                        let attempts = driver.outcomes.lock().unwrap().attempts[i];
                        let pause = Duration::from_millis(250 * u64::from(attempts.min(8)));
                        tokio::time::sleep(pause).await;
                        let _ = tx.send(i);
                    }
                });
            }
        })
    };

    // The steady stream of new deliveries.
    let started = Instant::now();
    let feeder = {
        let tx = tx.clone();
        tokio::spawn(async move {
            for i in 0..n {
                tokio::time::sleep_until((started + Duration::from_secs_f64(i as f64 / rate)).into()).await;
                if tx.send(i).is_err() {
                    return;
                }
            }
        })
    };

    // The killer: SIGKILL on schedule while deliveries are being sent, then a restart.
    let mut next_kill = started + Duration::from_secs(args.kill_every);
    let mut downtime = Duration::ZERO;
    let sending_until = started + Duration::from_secs(args.seconds);
    while !feeder.is_finished() || Instant::now() < sending_until {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if args.kill_every > 0 && Instant::now() >= next_kill {
            next_kill += Duration::from_secs(args.kill_every);
            // Aim the kill at a moment with requests in flight (waiting 3 s at most).
            let aim_until = Instant::now() + Duration::from_secs(3);
            while driver.counters.in_flight.load(Ordering::SeqCst) == 0 && Instant::now() < aim_until {
                std::thread::sleep(Duration::from_micros(200));
            }
            let in_flight = driver.counters.in_flight.load(Ordering::SeqCst);
            server.kill()?;
            driver.counters.kills.fetch_add(1, Ordering::SeqCst);
            driver.counters.killed_in_flight.fetch_add(in_flight, Ordering::SeqCst);
            let down = Instant::now();
            server = ServeProcess::start(&args.bin, data_dir, &log_path)?;
            downtime += down.elapsed();
            *driver.base.write().unwrap() = server.base.clone();
            println!(
                "soak: t={:>4.0} s kill {} ({in_flight} requests in flight), restarted in {:.2} s; {} of {n} acknowledged",
                started.elapsed().as_secs_f64(),
                driver.counters.kills.load(Ordering::SeqCst),
                down.elapsed().as_secs_f64(),
                driver.done.load(Ordering::SeqCst)
            );
        }
    }
    let sent_for = started.elapsed();

    // Settle: every delivery keeps being sent until it is acknowledged.
    let settle_until = Instant::now() + Duration::from_secs(args.settle);
    while driver.done.load(Ordering::SeqCst) < n && Instant::now() < settle_until {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let converged_after = started.elapsed();
    dispatcher.abort();
    drop(tx);
    server.kill()?;

    let c = &driver.counters;
    let (replies, attempts) = {
        let o = driver.outcomes.lock().unwrap();
        (o.acked.clone(), o.attempts.clone())
    };
    let acked = replies.iter().filter(|a| a.is_some()).count();
    let redelivered = attempts.iter().filter(|a| **a > 1).count();
    let mut by_reply = std::collections::BTreeMap::<&str, usize>::new();
    for a in replies.iter().flatten() {
        *by_reply.entry(a.as_str()).or_default() += 1;
    }
    let load = |a: &AtomicUsize| a.load(Ordering::SeqCst);
    println!(
        "soak: sent {n} deliveries in {:.0} s ({} requests); acknowledged {acked} ({by_reply:?}); \
         {} kills, {} requests in flight at a kill, {} cut off, {} refused while down, {} timed out, {} 5xx, {} other; \
         redelivered {redelivered} deliveries; all acknowledged {:.0} s after the start; {:.1} s down in restarts",
        sent_for.as_secs_f64(),
        load(&c.attempts),
        load(&c.kills),
        load(&c.killed_in_flight),
        load(&c.cut),
        load(&c.refused),
        load(&c.timeouts),
        load(&c.server_errors),
        load(&c.other_status),
        converged_after.as_secs_f64(),
        downtime.as_secs_f64()
    );
    let unacked: Vec<&str> =
        (0..n).filter(|i| replies[*i].is_none()).map(|i| driver.deliveries[i].id.as_str()).collect();
    let acked_ids: Vec<bool> = replies.iter().map(Option::is_some).collect();

    let differences =
        compare::compare(&driver.deliveries, &acked_ids, data_dir, &work.join("reference"), SECRET).await?;
    let total = differences + unacked.len();
    if !unacked.is_empty() {
        println!("soak: {} deliveries never acknowledged, e.g. {:?}", unacked.len(), &unacked[..unacked.len().min(5)]);
    }
    println!("soak: final differences = {total}");
    Ok(total == 0)
}

impl Driver {
    /// Post delivery `i` once; true on a 2xx.
    async fn send(&self, i: usize) -> bool {
        let d = &self.deliveries[i];
        let base = self.base.read().unwrap().clone();
        self.outcomes.lock().unwrap().attempts[i] += 1;
        self.counters.attempts.fetch_add(1, Ordering::SeqCst);
        self.counters.in_flight.fetch_add(1, Ordering::SeqCst);
        let result = async {
            let resp = self
                .client
                .post(format!("{base}/webhook"))
                .header("content-type", "application/json")
                .header("user-agent", "GitHub-Hookshot/octoscope-soak")
                .header("x-github-event", d.event)
                .header("x-github-delivery", &d.id)
                .header("x-github-hook-id", HOOK_ID)
                .header("x-hub-signature-256", &d.signature)
                .body(d.body.clone())
                .send()
                .await?;
            let status = resp.status();
            let body = resp.text().await?;
            Ok::<_, reqwest::Error>((status, body))
        }
        .await;
        self.counters.in_flight.fetch_sub(1, Ordering::SeqCst);
        let c = &self.counters;
        match result {
            Ok((status, body)) if status.is_success() => {
                let reply: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                let said = reply["status"].as_str().unwrap_or("?").to_owned();
                let mut o = self.outcomes.lock().unwrap();
                if o.acked[i].is_none() {
                    o.acked[i] = Some(said);
                    self.done.fetch_add(1, Ordering::SeqCst);
                }
                true
            }
            Ok((status, _)) if status.is_server_error() => {
                c.server_errors.fetch_add(1, Ordering::SeqCst);
                false
            }
            Ok((status, body)) => {
                c.other_status.fetch_add(1, Ordering::SeqCst);
                eprintln!("soak: {} got {status}: {body}", d.id);
                false
            }
            Err(e) if e.is_connect() => {
                c.refused.fetch_add(1, Ordering::SeqCst);
                false
            }
            Err(e) if e.is_timeout() => {
                c.timeouts.fetch_add(1, Ordering::SeqCst);
                false
            }
            Err(_) => {
                c.cut.fetch_add(1, Ordering::SeqCst);
                false
            }
        }
    }
}

/// `octoscope serve` on a free loopback port, its stderr appended to a log.
struct ServeProcess {
    child: Child,
    base: String,
}

impl ServeProcess {
    fn start(bin: &Path, data_dir: &Path, log: &Path) -> anyhow::Result<Self> {
        let log_file = File::options().create(true).append(true).open(log)?;
        let mut child = Command::new(bin)
            .args(["serve", "--listen", "127.0.0.1:0", "--check-interval", "0", "--dashboard-dir"])
            .arg(data_dir.join("no-dashboard"))
            .arg("--data-dir")
            .arg(data_dir)
            .env("GITHUB_WEBHOOK_SECRET", SECRET)
            .env_remove("GITHUB_TOKEN")
            .env_remove("OCTOSCOPE_API_TOKENS")
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let mut said = VecDeque::new();
        let base = loop {
            let Some(line) = lines.next() else {
                let status = child.wait()?;
                anyhow::bail!("octoscope serve exited ({status}) before listening: {said:?}; see {}", log.display());
            };
            let line = line?;
            if let Some(url) = line.strip_prefix("octoscope listening on ") {
                break url.trim().to_owned();
            }
            said.push_back(line);
        };
        std::thread::spawn(move || for _ in lines {});
        Ok(Self { child, base })
    }

    /// SIGKILL, and wait for the process to be gone.
    fn kill(&mut self) -> anyhow::Result<()> {
        self.child.kill().context("SIGKILL octoscope serve")?;
        self.child.wait()?;
        Ok(())
    }
}
