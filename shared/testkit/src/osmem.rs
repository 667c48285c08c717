//! A local OpenSearch for tests: osmem-server (`pip install
//! osmem-server==0.1.6`), an in-memory OpenSearch-compatible server (its
//! REST API: indices with mappings and analyzers, `_bulk` with external
//! versions, queries, highlighting, aggregations, `search_after`). It is
//! not OpenSearch: shared/docs/search.md says where it differs and what the
//! search adapter does about it.
//!
//! The binary is `OSMEM_SERVER_BIN` if set, else the one the Python package
//! bundles. It listens on a free loopback port, prints its URL as the first
//! line of its stdout, and exits when its stdin closes: the pipe is held
//! here, so when the test process ends (however it ends) no server outlives
//! it. Without the package the tests fail, saying how to install it (as
//! moto's do). `OsmemServer::shared()` is one server for a whole test
//! binary; name indices uniquely per test ([`crate::moto::unique`]).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::Duration;

/// A running osmem-server.
pub struct OsmemServer {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub url: String,
}

const INSTALL: &str = "install it with `python3 -m pip install osmem-server==0.1.6` or point OSMEM_SERVER_BIN at it";

/// The server binary: `OSMEM_SERVER_BIN`, else the Python package's.
fn binary() -> anyhow::Result<String> {
    if let Some(bin) = std::env::var("OSMEM_SERVER_BIN").ok().filter(|b| !b.is_empty()) {
        return Ok(bin);
    }
    let out = Command::new("python3")
        .args(["-c", "import osmem_server; print(osmem_server.resolve_binary())"])
        .stderr(Stdio::null())
        .output()
        .map_err(|e| anyhow::anyhow!("cannot run python3 to find osmem-server ({e}): {INSTALL}"))?;
    anyhow::ensure!(out.status.success(), "the Python package osmem_server is not installed: {INSTALL}");
    Ok(String::from_utf8(out.stdout)?.trim().to_owned())
}

impl OsmemServer {
    /// Start a private server (ended on drop).
    pub fn start() -> anyhow::Result<Self> {
        let bin = binary()?;
        let mut child = Command::new(&bin)
            .args(["--addr", "127.0.0.1:0", "--no-ja"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| anyhow::anyhow!("cannot start {bin} ({e}): {INSTALL}"))?;
        let stdout = child.stdout.take().expect("piped stdout");
        // The first line says where it listens; whatever follows is drained
        // so that the server never blocks on a full pipe.
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout);
            let mut first = String::new();
            let _ = tx.send(lines.read_line(&mut first).map(|_| first));
            let _ = std::io::copy(&mut lines, &mut std::io::sink());
        });
        let first = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(Ok(line)) => line,
            Ok(Err(e)) => anyhow::bail!("reading osmem-server's first line: {e}"),
            Err(_) => {
                let _ = child.kill();
                anyhow::bail!("{bin} printed no address within 60 s")
            }
        };
        let ready: serde_json::Value = serde_json::from_str(&first).map_err(|e| {
            let _ = child.kill();
            anyhow::anyhow!("{bin} did not start (its first line {first:?}: {e}): {INSTALL}")
        })?;
        let url =
            ready["url"].as_str().ok_or_else(|| anyhow::anyhow!("no url in osmem-server's {first:?}"))?.to_owned();
        Ok(Self { child, url })
    }

    /// One server for the whole test binary (never dropped; it ends with the process).
    pub fn shared() -> &'static OsmemServer {
        static SHARED: OnceLock<OsmemServer> = OnceLock::new();
        SHARED.get_or_init(|| OsmemServer::start().expect("osmem-server"))
    }
}

impl Drop for OsmemServer {
    fn drop(&mut self) {
        // Closing stdin ends the server.
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}
