//! The real `octoscope` binary when things go wrong underneath it: a damaged
//! store or archive at start, a delivery left claimed by a killed server, and a
//! data directory on a file system that fills up.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use octoscope::adapters::sqlite::SqliteStore;
use octoscope::domain::{DeliveryClaim, DeliveryId, DeliveryKey, EventName, HookId};
use octoscope::ports::{Claim, DeliveryLedger};
use octoscope_testkit::{Server, all_items, deliver, fixture};
use rusqlite::Connection;

const BIN: &str = env!("CARGO_BIN_EXE_octoscope");
const SECRET: &str = "resilience-test-secret";

/// GitHub's example `pull_request` payload as pull request `number`.
fn pull_request(number: u64) -> Vec<u8> {
    let mut p: serde_json::Value = serde_json::from_slice(&fixture("pull_request", "opened.payload.json")).unwrap();
    p["number"] = number.into();
    p["pull_request"]["number"] = number.into();
    serde_json::to_vec(&p).unwrap()
}

/// A data directory holding `n` stored pull requests, written by a server that
/// was then killed, its write-ahead logs folded into the database files.
async fn data_dir_with_pulls(n: u64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Path::new(BIN), dir.path(), &[("GITHUB_WEBHOOK_SECRET", SECRET)]).unwrap();
    let client = octoscope_testkit::http().build().unwrap();
    for i in 0..n {
        let (status, text) =
            deliver(&client, &server.base, SECRET, "pull_request", pull_request(100 + i), &format!("d-{i}"))
                .await
                .unwrap();
        assert_eq!(status, 200, "{text}");
    }
    drop(server);
    for file in ["octoscope.db", "archive.db"] {
        let conn = Connection::open(dir.path().join(file)).unwrap();
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).unwrap();
    }
    dir
}

fn copy_dir(from: &Path) -> tempfile::TempDir {
    let to = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.path().join(entry.file_name())).unwrap();
    }
    to
}

/// Run `serve` on `data_dir` and return its exit code and stderr; a server
/// that starts listening instead is stopped and reported.
fn start_expecting_refusal(data_dir: &Path) -> (Option<i32>, String) {
    let log = data_dir.with_extension("log");
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--check-interval", "0", "--data-dir"])
        .arg(data_dir)
        .env("GITHUB_WEBHOOK_SECRET", SECRET)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("serve started on a damaged data directory: {}", std::fs::read_to_string(&log).unwrap());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (status.code(), std::fs::read_to_string(&log).unwrap())
}

type Damage = fn(&mut Vec<u8>);

const DAMAGES: &[(&str, Damage)] = &[
    ("truncated to nothing", |b| b.clear()),
    ("truncated to half", |b| b.truncate(b.len() / 2)),
    ("header overwritten", |b| b[..100].fill(0xA5)),
    ("pages after the first overwritten", |b| {
        let end = b.len();
        b[4096..end].iter_mut().step_by(7).for_each(|x| *x = !*x);
    }),
];

#[tokio::test]
async fn a_damaged_store_or_archive_is_refused_at_start_naming_the_file_and_left_untouched() {
    // GIVEN a sound data directory with three stored pull requests
    let good = data_dir_with_pulls(3).await;
    // WHEN it is started again THEN it opens, with its data
    let copy = copy_dir(good.path());
    let server = Server::start(Path::new(BIN), copy.path(), &[("GITHUB_WEBHOOK_SECRET", SECRET)]).unwrap();
    let pulls = all_items(&octoscope_testkit::http().build().unwrap(), &server.base, "/api/pulls?state=all").await;
    assert_eq!(pulls.len(), 3, "{pulls:?}");
    drop(server);

    for file in ["octoscope.db", "archive.db"] {
        for (what, damage) in DAMAGES {
            // GIVEN a copy of it with one file damaged
            let dir = copy_dir(good.path());
            let path = dir.path().join(file);
            let mut bytes = std::fs::read(&path).unwrap();
            assert!(bytes.len() > 8192, "{file} has more than two pages to damage");
            damage(&mut bytes);
            std::fs::write(&path, &bytes).unwrap();
            // WHEN serve starts on it
            let (code, said) = start_expecting_refusal(dir.path());
            // THEN it refuses (EX_DATAERR), naming the file and what to do
            assert_eq!(code, Some(65), "{file} {what}: {said}");
            let full = path.display().to_string();
            for needle in [full.as_str(), "corrupt or truncated", "restore it from a backup", "move it aside"] {
                assert!(said.contains(needle), "{file} {what}: no {needle:?} in: {said}");
            }
            // AND the file is exactly as it was: never reset or recreated
            assert_eq!(std::fs::read(&path).unwrap(), bytes, "{file} {what}: the refused file was changed");
        }
    }
}

#[tokio::test]
async fn a_delivery_left_claimed_by_a_killed_server_is_not_acknowledged_until_it_is_stored() {
    // GIVEN a store where a delivery was claimed and its process died before storing it
    let dir = tempfile::tempdir().unwrap();
    let key = DeliveryKey { hook_id: HookId::parse("1").unwrap(), delivery_id: DeliveryId::parse("d-killed").unwrap() };
    {
        let store = SqliteStore::open(&dir.path().join("octoscope.db")).unwrap();
        let claim = DeliveryClaim {
            key: key.clone(),
            event: EventName::parse("pull_request").unwrap(),
            action: Some("opened".into()),
            repo: None,
            org: None,
            received_at: chrono::Utc::now(),
            body_bytes: 1,
        };
        assert_eq!(store.claim_delivery(&claim).await.unwrap(), Claim::Claimed);
    }
    let server = Server::start(Path::new(BIN), dir.path(), &[("GITHUB_WEBHOOK_SECRET", SECRET)]).unwrap();
    let client = octoscope_testkit::http().build().unwrap();
    // WHEN GitHub redelivers it (within the claim's lease)
    let (status, text) =
        deliver(&client, &server.base, SECRET, "pull_request", pull_request(7), "d-killed").await.unwrap();
    // THEN it is not acknowledged: a 503, so that it is delivered again
    assert_eq!(status, 503, "{text}");
    // AND nothing of it was kept: no pull request, no archive row
    assert!(all_items(&client, &server.base, "/api/pulls?state=all").await.is_empty());
    let archive = Connection::open(dir.path().join("archive.db")).unwrap();
    let rows: i64 = archive.query_row("SELECT count(*) FROM raw_deliveries", [], |r| r.get(0)).unwrap();
    assert_eq!(rows, 0);
    // AND another delivery meanwhile is stored as usual
    let (status, text) =
        deliver(&client, &server.base, SECRET, "pull_request", pull_request(8), "d-other").await.unwrap();
    assert_eq!(status, 200, "{text}");
}

/// A tmpfs of `megabytes`, unmounted when dropped. Mounting needs root (CI runs
/// as root); without it the test fails, saying so.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount(megabytes: u32) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(dir.path())
            .output()
            .unwrap_or_else(|e| panic!("this test needs `mount` for a small file system of its own: {e}"));
        assert!(
            out.status.success(),
            "this test needs a small file system of its own and could not mount one (`mount -t tmpfs` needs root): {} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        Self(dir)
    }

    fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}

/// Write `path` until the file system is full; returns the bytes written.
fn fill(path: &Path) -> u64 {
    let mut file = std::fs::File::create(path).unwrap();
    let mut written = 0;
    for chunk in [1 << 16, 4096, 512, 1] {
        let block = vec![0xA5u8; chunk];
        loop {
            match file.write(&block) {
                Ok(0) => break,
                Ok(n) => written += n as u64,
                Err(e) if e.kind() == std::io::ErrorKind::StorageFull => break,
                Err(e) => panic!("filling {}: {e}", path.display()),
            }
        }
    }
    written
}

/// (ledger status, archive rows) of every delivery id, read from the files.
fn recorded(data_dir: &Path) -> std::collections::BTreeMap<String, (String, i64)> {
    let store = Connection::open(data_dir.join("octoscope.db")).unwrap();
    let archive = Connection::open(data_dir.join("archive.db")).unwrap();
    let mut stmt = store.prepare("SELECT delivery_id, status FROM deliveries").unwrap();
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))).unwrap();
    rows.map(|r| {
        let (id, status) = r.unwrap();
        let archived: i64 = archive
            .query_row("SELECT count(*) FROM raw_deliveries WHERE delivery_id = ?1", [&id], |r| r.get(0))
            .unwrap();
        (id, (status, archived))
    })
    .collect()
}

#[tokio::test]
async fn a_full_disk_refuses_deliveries_with_503_and_a_clear_log_line_then_recovers_by_itself() {
    // GIVEN serve with its data directory on a 24 MB file system, taking deliveries
    let fs = Tmpfs::mount(24);
    let data: PathBuf = fs.path().join("data");
    let log = fs.path().join("serve.log");
    let mut server = Server::start_logged(Path::new(BIN), &data, &[("GITHUB_WEBHOOK_SECRET", SECRET)], &log).unwrap();
    let client = octoscope_testkit::http().build().unwrap();
    let mut acked = Vec::new();
    for i in 0..5 {
        let id = format!("before-{i}");
        let (status, text) =
            deliver(&client, &server.base, SECRET, "pull_request", pull_request(i), &id).await.unwrap();
        assert_eq!(status, 200, "{text}");
        acked.push(id);
    }

    // WHEN the file system fills up and deliveries keep coming
    let filler = fs.path().join("filler");
    let filled = fill(&filler);
    assert!(filled > 0);
    let mut refused = Vec::new();
    let mut consecutive = 0;
    for i in 0..2000 {
        let id = format!("full-{i}");
        let (status, text) =
            deliver(&client, &server.base, SECRET, "pull_request", pull_request(1000 + i), &id).await.unwrap();
        match status {
            // Space the database files already held (a reused log) may still take some.
            200 => {
                acked.push(id);
                consecutive = 0;
            }
            503 => {
                refused.push(id);
                consecutive += 1;
                if consecutive == 10 {
                    break;
                }
            }
            other => panic!("a full disk answered {other}: {text}"),
        }
    }
    // THEN they are refused with a 503 (GitHub redelivers), the server stays up
    assert_eq!(consecutive, 10, "ten deliveries in a row refused once the disk is full");
    assert!(server.child.try_wait().unwrap().is_none(), "the server is still running");
    // AND the log says plainly what is wrong
    let said = std::fs::read_to_string(&log).unwrap();
    let line = said.lines().find(|l| l.contains("the disk holding the data directory is full"));
    eprintln!("the log says: {}", line.unwrap_or_else(|| panic!("no line says the disk is full: {said}")));

    // WHEN space returns
    std::fs::remove_file(&filler).unwrap();
    // THEN the refused deliveries are taken when redelivered, with no restart
    let deadline = Instant::now() + Duration::from_secs(120);
    for id in &refused {
        let number = 1000 + id.trim_start_matches("full-").parse::<u64>().unwrap();
        loop {
            let (status, text) =
                deliver(&client, &server.base, SECRET, "pull_request", pull_request(number), id).await.unwrap();
            if status == 200 {
                break;
            }
            // A claim the full disk kept from being released answers 503 until its lease ends.
            assert_eq!(status, 503, "{id}: {text}");
            assert!(Instant::now() < deadline, "{id} still refused two minutes after space returned");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        acked.push(id.clone());
    }
    // AND so is a new one
    let (status, text) =
        deliver(&client, &server.base, SECRET, "pull_request", pull_request(5000), "after").await.unwrap();
    assert_eq!(status, 200, "{text}");
    acked.push("after".into());

    // AND after a hard kill, every acknowledged delivery is in the ledger and the archive once, nothing else is
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let recorded = recorded(&data);
    for id in &acked {
        assert_eq!(recorded.get(id), Some(&("stored".to_owned(), 1)), "{id}");
    }
    assert_eq!(recorded.len(), acked.len(), "no delivery recorded that was not acknowledged");
    drop(server);
}
