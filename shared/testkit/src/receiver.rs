//! A test receiver of Octoscope's outbound notifications:
//! `shared/tests/receivers/standard_webhooks_receiver.py`, which verifies
//! each request's signature with the independent `standardwebhooks` package
//! from PyPI (not Octoscope's signer), records what it got, and answers as
//! told (`--fail N`, `--status CODE`, `--sleep S`).

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

/// A running receiver on a free loopback port: stopped when dropped.
pub struct Receiver {
    child: Child,
    pub port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Receiver {
    /// Verifying with `secret`; `extra` are its other flags (`--fail 3`, `--status 410`, `--sleep 3`).
    pub fn start(secret: &str, extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("received.jsonl");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/receivers/standard_webhooks_receiver.py");
        let mut child = Command::new("python3")
            .arg(script)
            .args(["--secret", secret, "--log"])
            .arg(&log)
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let port = line
            .strip_prefix("listening ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("the receiver did not start (is `standardwebhooks` installed?): {line:?}"));
        Self { child, port, log, _dir: dir }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    /// What it received, in order: `{"n", "headers", "body", "verified", "payload", "answered"}`.
    pub fn records(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let mut r: Vec<Value> = text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
        r.sort_by_key(|v| v["n"].as_u64());
        r
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(mut stdin) = self.child.stdin.take() {
            let _ = stdin.flush();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
