//! The soak's end: the data directory (read after the server stopped) against
//! what was sent. Each check prints its figures and returns its differences.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use octoscope::adapters::clock::SystemClock;
use octoscope::adapters::sqlite::{SqliteArchive, SqliteStore};
use octoscope::ports::{ArchiveCursor, RawArchive};
use octoscope::services::{IngestService, WebhookRequest};
use octoscope::webhook::WebhookSecrets;
use rusqlite::{Connection, OpenFlags};
use serde_json::Value;

use super::{Delivery, HOOK_ID};

/// The entity tables compared row for row with the uninterrupted reference:
/// (table, key, columns left out). Team and membership versions are the time
/// a delivery was received (their events carry none), so they differ by design.
const TABLES: &[(&str, &str, &[&str])] = &[
    ("pull_requests", "repo, number", &[]),
    ("reviews", "id", &[]),
    ("workflow_runs", "id", &[]),
    ("workflow_jobs", "id", &[]),
    ("branches", "repo, name", &[]),
    ("commits", "repo, sha", &[]),
    ("branch_commits", "repo, branch, sha", &[]),
    ("deployments", "id", &[]),
    ("deployment_statuses", "id", &[]),
    ("teams", "org, slug", &["version"]),
    ("team_members", "org, team_slug, login", &["version"]),
    ("repos", "full_name", &[]),
];

pub async fn compare(
    deliveries: &[Delivery],
    acked: &[bool],
    data_dir: &Path,
    reference_dir: &Path,
    secret: &str,
) -> anyhow::Result<usize> {
    let mut differences = 0;
    let store = open_read_only(&data_dir.join("octoscope.db"))?;

    // The ledger: one row per delivery, none pending, none unknown.
    let ledger = ledger_statuses(&store)?;
    let sent: BTreeSet<&str> = deliveries.iter().map(|d| d.id.as_str()).collect();
    let missing = deliveries.iter().zip(acked).filter(|(d, a)| **a && !ledger.contains_key(&d.id)).count();
    let pending = ledger.values().filter(|s| s.as_str() == "pending").count();
    let extra = ledger.keys().filter(|k| !sent.contains(k.as_str())).count();
    println!(
        "ledger: {} rows for {} deliveries sent; acknowledged but missing {missing}, pending {pending}, unknown {extra}",
        ledger.len(),
        sent.len()
    );
    differences += missing + pending + extra + sent.len().abs_diff(ledger.len());

    // The archive: one row per delivery, its body the bytes that were sent.
    let archived = archive_bodies(&data_dir.join("archive.db")).await?;
    let mut archive_missing = 0;
    let mut archive_twice = 0;
    let mut archive_changed = 0;
    for (d, a) in deliveries.iter().zip(acked) {
        match archived.get(&d.id).map(Vec::as_slice) {
            None | Some([]) => archive_missing += usize::from(*a),
            Some([body]) => archive_changed += usize::from(*body != d.body),
            Some(_) => archive_twice += 1,
        }
    }
    let archive_extra = archived.keys().filter(|k| !sent.contains(k.as_str())).count();
    let archive_rows: usize = archived.values().map(Vec::len).sum();
    println!(
        "archive: {archive_rows} rows; acknowledged but missing {archive_missing}, twice {archive_twice}, \
         body changed {archive_changed}, unknown {archive_extra}"
    );
    differences +=
        archive_missing + archive_twice + archive_changed + archive_extra + sent.len().abs_diff(archive_rows);

    // The store against the deliveries' own ground truth.
    differences += ground_truth(deliveries, &store)?;

    // The store against one that took the same deliveries in order, uninterrupted.
    let reference = reference_store(deliveries, reference_dir, secret).await?;
    let reference_ledger = ledger_statuses(&reference)?;
    let status_differs = reference_ledger.iter().filter(|(k, s)| ledger.get(*k) != Some(*s)).count();
    println!("ledger statuses against the uninterrupted reference: {status_differs} differ");
    differences += status_differs;
    for (table, key, left_out) in TABLES {
        let ours = rows(&store, table, key, left_out)?;
        let theirs = rows(&reference, table, key, left_out)?;
        let only_ours = ours.difference(&theirs).count();
        let only_theirs = theirs.difference(&ours).count();
        println!(
            "{table}: {} rows, reference {}; {only_ours} only here, {only_theirs} only in the reference",
            ours.len(),
            theirs.len()
        );
        for row in ours.difference(&theirs).take(3) {
            println!("  here:      {row}");
        }
        for row in theirs.difference(&ours).take(3) {
            println!("  reference: {row}");
        }
        differences += only_ours + only_theirs;
    }
    Ok(differences)
}

fn open_read_only(path: &Path) -> anyhow::Result<Connection> {
    Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .with_context(|| format!("opening {}", path.display()))
}

fn ledger_statuses(conn: &Connection) -> anyhow::Result<BTreeMap<String, String>> {
    let mut stmt = conn.prepare("SELECT delivery_id, status FROM deliveries WHERE hook_id = ?1")?;
    let rows = stmt.query_map([HOOK_ID], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Every archived body by delivery id (more than one would be a duplicate).
async fn archive_bodies(path: &Path) -> anyhow::Result<BTreeMap<String, Vec<Vec<u8>>>> {
    let archive = SqliteArchive::open(path)?;
    let mut out: BTreeMap<String, Vec<Vec<u8>>> = BTreeMap::new();
    let mut after: Option<ArchiveCursor> = None;
    loop {
        let page = archive.scan(after.as_ref(), 500).await?;
        let Some((last, _)) = page.last() else { return Ok(out) };
        after = Some(last.clone());
        for (_, raw) in page {
            out.entry(raw.key.delivery_id.to_string()).or_default().push(raw.body);
        }
    }
}

/// Every row of `table` but the columns `left_out`, each as one line of its
/// values, for set comparison.
fn rows(conn: &Connection, table: &str, key: &str, left_out: &[&str]) -> anyhow::Result<BTreeSet<String>> {
    let columns: Vec<String> = query(conn, &format!("SELECT name FROM pragma_table_info('{table}')"), |r| r.get(0))?;
    let columns: Vec<String> = columns.into_iter().filter(|c| !left_out.contains(&c.as_str())).collect();
    anyhow::ensure!(!columns.is_empty(), "no table {table}");
    let mut stmt = conn.prepare(&format!("SELECT {} FROM {table} ORDER BY {key}", columns.join(", ")))?;
    let rows = stmt.query_map([], |r| {
        (0..columns.len())
            .map(|i| r.get::<_, rusqlite::types::Value>(i).map(|v| format!("{v:?}")))
            .collect::<Result<Vec<_>, _>>()
    })?;
    rows.map(|r| Ok(r?.join(" | "))).collect()
}

/// The same deliveries through the same ingest path, in order, into a fresh
/// data directory, with nothing killed.
async fn reference_store(deliveries: &[Delivery], dir: &Path, secret: &str) -> anyhow::Result<Connection> {
    let path = dir.join("octoscope.db");
    {
        std::fs::create_dir_all(dir)?;
        let store = Arc::new(SqliteStore::open(&path)?);
        let archive = Arc::new(SqliteArchive::open(&dir.join("archive.db"))?);
        let ingest = IngestService::new(store, archive, Arc::new(SystemClock), WebhookSecrets::parse(secret)?);
        for d in deliveries {
            ingest
                .ingest(WebhookRequest {
                    event: Some(d.event),
                    delivery: Some(&d.id),
                    hook_id: Some(HOOK_ID),
                    signature: Some(d.signature.as_bytes()),
                    content_type: Some("application/json"),
                    body: &d.body,
                })
                .await
                .with_context(|| format!("reference ingest of {}", d.id))?;
        }
    }
    open_read_only(&path)
}

/// JSON time (whole seconds) in the store's format.
fn stored_time(v: &Value) -> Option<String> {
    v.as_str().map(|s| s.replace('Z', ".000Z"))
}

/// The pull requests, reviews, runs, jobs and branch heads the deliveries
/// themselves describe, against the store.
fn ground_truth(deliveries: &[Delivery], store: &Connection) -> anyhow::Result<usize> {
    // (repo, number) -> (updated_at, state) of the latest version seen.
    let mut pulls: BTreeMap<(String, i64), (String, String)> = BTreeMap::new();
    let mut reviews = BTreeSet::new();
    let mut runs = BTreeSet::new();
    let mut jobs = BTreeSet::new();
    // (repo, branch) -> (pushed_at, head)
    let mut heads: BTreeMap<(String, String), (i64, String)> = BTreeMap::new();
    for d in deliveries {
        let p: Value = serde_json::from_slice(&d.body)?;
        let repo = p["repository"]["full_name"].as_str().unwrap_or_default().to_owned();
        if let Some(pr) = p.get("pull_request") {
            let updated = stored_time(&pr["updated_at"]).unwrap_or_default();
            let state = if pr["merged_at"].is_string() { "merged" } else { pr["state"].as_str().unwrap_or_default() };
            let key = (repo.clone(), pr["number"].as_i64().unwrap_or_default());
            let newer = pulls.get(&key).is_none_or(|(at, _)| *at <= updated);
            if newer {
                pulls.insert(key, (updated, state.to_owned()));
            }
        }
        match d.event {
            "pull_request_review" => {
                reviews.insert(p["review"]["id"].as_i64().unwrap_or_default());
            }
            "workflow_run" => {
                runs.insert(p["workflow_run"]["id"].as_i64().unwrap_or_default());
            }
            "workflow_job" => {
                jobs.insert(p["workflow_job"]["id"].as_i64().unwrap_or_default());
            }
            "push" => {
                let branch = p["ref"].as_str().unwrap_or_default().trim_start_matches("refs/heads/").to_owned();
                let at = p["repository"]["pushed_at"].as_i64().unwrap_or_default();
                let head = p["after"].as_str().unwrap_or_default().to_owned();
                let key = (repo, branch);
                if heads.get(&key).is_none_or(|(t, _)| *t <= at) {
                    heads.insert(key, (at, head));
                }
            }
            _ => {}
        }
    }
    let stored_pulls: BTreeMap<(String, i64), (String, String)> =
        query(store, "SELECT repo, number, updated_at, state FROM pull_requests", |r| {
            Ok(((r.get(0)?, r.get(1)?), (r.get(2)?, r.get(3)?)))
        })?;
    let stored_reviews: BTreeSet<i64> = query(store, "SELECT id FROM reviews", |r| r.get(0))?;
    let stored_runs: BTreeSet<i64> = query(store, "SELECT id FROM workflow_runs", |r| r.get(0))?;
    let stored_jobs: BTreeSet<i64> = query(store, "SELECT id FROM workflow_jobs", |r| r.get(0))?;
    let stored_heads: BTreeMap<(String, String), Option<String>> =
        query(store, "SELECT repo, name, head_sha FROM branches", |r| Ok(((r.get(0)?, r.get(1)?), r.get(2)?)))?;

    let pull_diff = sym_diff(&pulls, &stored_pulls);
    let review_diff = reviews.symmetric_difference(&stored_reviews).count();
    let run_diff = runs.symmetric_difference(&stored_runs).count();
    let job_diff = jobs.symmetric_difference(&stored_jobs).count();
    let head_diff = heads.iter().filter(|(k, (_, head))| stored_heads.get(*k) != Some(&Some(head.clone()))).count();
    println!(
        "ground truth: pull requests {} (stored {}, {pull_diff} differ in state or time), reviews {} (stored {}, {review_diff} differ), \
         runs {} (stored {}, {run_diff} differ), jobs {} (stored {}, {job_diff} differ), branch heads {} ({head_diff} differ)",
        pulls.len(),
        stored_pulls.len(),
        reviews.len(),
        stored_reviews.len(),
        runs.len(),
        stored_runs.len(),
        jobs.len(),
        stored_jobs.len(),
        heads.len()
    );
    Ok(pull_diff + review_diff + run_diff + job_diff + head_diff)
}

fn query<C: FromIterator<T>, T>(
    conn: &Connection,
    sql: &str,
    map: impl FnMut(&rusqlite::Row) -> rusqlite::Result<T>,
) -> anyhow::Result<C> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map([], map)?;
    Ok(rows.collect::<Result<C, _>>()?)
}

fn sym_diff<K: Ord, V: PartialEq>(a: &BTreeMap<K, V>, b: &BTreeMap<K, V>) -> usize {
    a.iter().filter(|(k, v)| b.get(*k) != Some(*v)).count() + b.keys().filter(|k| !a.contains_key(*k)).count()
}
