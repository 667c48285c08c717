//! Test support for Octoscope (not product code): GitHub's vendored example
//! payloads, signed deliveries over HTTP, and the real `octoscope` binary
//! spawned on a free loopback port.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub use octoscope::webhook::sign;

pub mod entities;
pub mod faults;
pub mod moto;
pub mod osmem;
pub mod receiver;

/// The vendored copy of GitHub's example payloads (octokit/webhooks, MIT).
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/github-webhooks/api.github.com")
}

/// Every example payload: (event type, file name, body), sorted by path.
pub fn all_fixtures() -> Vec<(String, String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut events: Vec<_> = std::fs::read_dir(fixtures_dir()).expect("fixtures").map(|e| e.unwrap().path()).collect();
    events.sort();
    for dir in events.into_iter().filter(|p| p.is_dir()) {
        let event = dir.file_name().unwrap().to_string_lossy().into_owned();
        let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        for f in files.into_iter().filter(|f| f.extension().is_some_and(|e| e == "json")) {
            let name = f.file_name().unwrap().to_string_lossy().into_owned();
            out.push((event.clone(), name, std::fs::read(&f).unwrap()));
        }
    }
    out
}

/// An HTTP client builder for tests and the test tools. It first makes ring
/// rustls's process-wide crypto provider: a workspace build links reqwest
/// with rustls but no provider of its own (the search adapter's HTTPS uses
/// ring, as the rest of the product does), and reqwest then refuses to build
/// a client before one is installed.
pub fn http() -> reqwest::ClientBuilder {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
}

pub fn fixture(event: &str, name: &str) -> Vec<u8> {
    std::fs::read(fixtures_dir().join(event).join(name)).unwrap_or_else(|e| panic!("fixture {event}/{name}: {e}"))
}

/// POST one delivery as GitHub does; returns (status, body text).
pub async fn deliver(
    client: &reqwest::Client,
    base: &str,
    secret: &str,
    event: &str,
    body: Vec<u8>,
    delivery: &str,
) -> anyhow::Result<(u16, String)> {
    let resp = client
        .post(format!("{base}/webhook"))
        .header("content-type", "application/json")
        .header("user-agent", "GitHub-Hookshot/octoscope-testkit")
        .header("x-github-event", event)
        .header("x-github-delivery", delivery)
        .header("x-github-hook-id", "1")
        .header("x-hub-signature-256", sign(secret, &body))
        .body(body)
        .send()
        .await?;
    let status = resp.status().as_u16();
    Ok((status, resp.text().await?))
}

/// A running `octoscope serve`, killed when dropped.
pub struct Server {
    pub child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// Everything it printed on stdout before and including the listening line.
    pub banner: String,
}

impl Server {
    /// Start `bin serve` on a free loopback port over `data_dir` with `env`,
    /// and wait until it says where it listens.
    pub fn start(bin: &Path, data_dir: &Path, env: &[(&str, &str)]) -> anyhow::Result<Self> {
        Self::start_with_args(bin, data_dir, env, &[])
    }

    /// As [`Server::start`], with more `serve` arguments.
    pub fn start_with_args(bin: &Path, data_dir: &Path, env: &[(&str, &str)], args: &[&str]) -> anyhow::Result<Self> {
        Self::spawn(bin, data_dir, env, args, Stdio::inherit())
    }

    /// As [`Server::start`], its log (stderr) appended to the file `log`.
    pub fn start_logged(bin: &Path, data_dir: &Path, env: &[(&str, &str)], log: &Path) -> anyhow::Result<Self> {
        let file = std::fs::File::options().create(true).append(true).open(log)?;
        Self::spawn(bin, data_dir, env, &[], Stdio::from(file))
    }

    fn spawn(bin: &Path, data_dir: &Path, env: &[(&str, &str)], args: &[&str], stderr: Stdio) -> anyhow::Result<Self> {
        let mut cmd = Command::new(bin);
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(args)
            .env_remove("GITHUB_TOKEN")
            .env_remove("GITHUB_WEBHOOK_SECRET")
            .env_remove("OCTOSCOPE_API_TOKENS")
            .stdout(Stdio::piped())
            .stderr(stderr);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn()?;
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut banner = String::new();
        let base = loop {
            let Some(line) = lines.next() else {
                let status = child.wait()?;
                anyhow::bail!("octoscope serve exited ({status}) before listening; it said: {banner}");
            };
            let line = line?;
            banner.push_str(&line);
            banner.push('\n');
            if let Some(url) = line.strip_prefix("octoscope listening on ") {
                break url.trim().to_owned();
            }
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Ok(Self { child, base, banner })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every item of a paginated API list (`{"items": [...], "next_cursor": ...}`),
/// 500 a page, following `next_cursor`.
pub async fn all_items(client: &reqwest::Client, base: &str, path: &str) -> Vec<serde_json::Value> {
    let mut items = Vec::new();
    let mut cursor = None::<String>;
    loop {
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = match &cursor {
            Some(c) => format!("{base}{path}{sep}limit=500&cursor={c}"),
            None => format!("{base}{path}{sep}limit=500"),
        };
        let resp = client.get(&url).send().await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
        assert!(resp.status().is_success(), "GET {url}: {}", resp.status());
        let page: serde_json::Value = resp.json().await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
        items.extend(page["items"].as_array().unwrap_or_else(|| panic!("{url}: {page}")).iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return items,
        }
    }
}
