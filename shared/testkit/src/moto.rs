//! A local AWS for tests: a moto server (`pip install 'moto[server]'`) on a
//! free loopback port. It speaks the real AWS wire protocols (DynamoDB, S3,
//! SQS, ECS, SSM, EC2), so the adapters are tested with the real SDK.
//!
//! The server is started through `sh`, which waits on its stdin: when the test
//! process ends (however it ends) the pipe closes and the server is killed, so
//! no moto outlives its tests. `MotoServer::shared()` is one server for a
//! whole test binary; `MotoServer::start()` a private one. Either way, name
//! tables, buckets and queues uniquely per test ([`unique`]).

use std::io::Write as _;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A running moto server.
pub struct MotoServer {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
}

/// Fake credentials and region for the SDK; moto accepts any.
pub const REGION: &str = "us-east-1";

impl MotoServer {
    /// Start a private server (killed on drop).
    pub fn start() -> anyhow::Result<Self> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let moto = std::env::var("MOTO_SERVER").unwrap_or_else(|_| "moto_server".to_owned());
        // `exec 3<&0`: keep the pipe; the server runs in the background; when
        // stdin reaches EOF (the test process is gone), kill it.
        let script = format!(
            "{moto} -H 127.0.0.1 -p {port} >/dev/null 2>&1 </dev/null & pid=$!; cat >/dev/null; kill $pid 2>/dev/null; wait $pid 2>/dev/null"
        );
        let child = Command::new("sh")
            .arg("-c")
            .arg(&script)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| anyhow::anyhow!("cannot start sh for {moto}: {e}"))?;
        let endpoint = format!("http://127.0.0.1:{port}");
        let mut server = Self { child, endpoint };
        server.wait_ready(&moto)?;
        Ok(server)
    }

    /// One server for the whole test binary (never dropped; it ends with the process).
    pub fn shared() -> &'static MotoServer {
        static SHARED: OnceLock<MotoServer> = OnceLock::new();
        SHARED.get_or_init(|| MotoServer::start().expect("moto server"))
    }

    fn wait_ready(&mut self, moto: &str) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let addr = self.endpoint.trim_start_matches("http://").to_owned();
        loop {
            if let Some(status) = self.child.try_wait()? {
                anyhow::bail!(
                    "{moto} exited ({status}) before listening: install it with `pip install 'moto[server]'` \
                     or point MOTO_SERVER at it"
                );
            }
            if let Ok(mut s) = std::net::TcpStream::connect(&addr) {
                // moto's own health page: 200 once the app is loaded.
                let _ = s.write_all(b"GET /moto-api/ HTTP/1.0\r\nHost: localhost\r\n\r\n");
                let mut buf = [0u8; 12];
                if std::io::Read::read(&mut s, &mut buf).map(|n| n >= 12 && &buf[9..12] == b"200").unwrap_or(false) {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                anyhow::bail!("{moto} did not answer on {addr} within 60 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Environment for a process that should talk to this server (a spawned
    /// binary, `cargo lambda watch`): endpoint, region and fake credentials.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_REGION", REGION.to_owned()),
            ("AWS_DEFAULT_REGION", REGION.to_owned()),
            ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
            ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
        ]
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        // Closing stdin makes the wrapper kill the server.
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// A name no other test uses: `prefix-<8 hex>` (valid for tables, buckets, queues).
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
}
