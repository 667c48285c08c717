//! The store on SQLite: opening and migrating the file, the writer thread and
//! the reader pool every concern's queries run on. Each port is implemented
//! in its own file: `ledger.rs`, `apply.rs`, `read.rs`, `completeness.rs`
//! (its integrity reads in `summaries.rs`), `jobs.rs`, `metrics.rs`.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::types::Value;
use rusqlite::{Connection, ErrorCode, Row, params_from_iter};
use rusqlite_migration::{M, Migrations};

use super::writer::{Writer, WriterError};
use super::{DataFile, configure, disk_full, open_sound, store_error};
use crate::ports::*;

fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(include_str!("schema_v1.sql")),
        M::up(include_str!("schema_v2.sql")),
        M::up(include_str!("schema_v3.sql")),
        M::up(include_str!("schema_v4.sql")),
        M::up(include_str!("schema_v5.sql")),
        M::up(include_str!("schema_v6.sql")),
        M::up(include_str!("schema_v7.sql")),
        // Full-text search (FTS5).
        M::up(include_str!("schema_v8.sql")),
        // Pull requests listed by creation.
        M::up(include_str!("schema_v9.sql")),
        // Day cells beside the week cells.
        M::up(include_str!("schema_v10.sql")),
        // Merge cells (DORA's lead time).
        M::up(include_str!("schema_v11.sql")),
        // Search filters as tokens of the full-text index.
        M::up(include_str!("schema_v12.sql")),
        // Pull request and review bodies, searchable.
        M::up(include_str!("schema_v13.sql")),
        // The search index written only when a document changes.
        M::up(include_str!("schema_v14.sql")),
        // Notifications: rules, the outbox and log, attempts.
        M::up(include_str!("schema_v15.sql")),
        // Search: the `created` month as a tag.
        M::up(include_str!("schema_v16.sql")),
    ])
}

/// Bring the schema to the latest version. Each migration is one transaction;
/// when another process (`serve` and `check` started together) migrates the
/// same file at the same moment, the loser's transaction fails and a retry
/// finds the schema current.
fn migrate(conn: &mut Connection) -> Result<(), rusqlite_migration::Error> {
    let mut attempt = 0;
    loop {
        match migrations().to_latest(conn) {
            Err(_) if attempt < 5 => {
                attempt += 1;
                std::thread::sleep(std::time::Duration::from_millis(50 * attempt));
            }
            other => return other,
        }
    }
}

/// The store on SQLite: one writer thread with group commit (SQLite has one
/// writer at a time anyway) and a pool of readers, which WAL lets run beside it.
#[derive(Clone)]
pub struct SqliteStore {
    writer: Arc<Writer>,
    readers: r2d2::Pool<SqliteConnectionManager>,
    /// A search ranks and counts at most this many matches (search.rs).
    pub(super) search_exact_up_to: usize,
    /// Document counts of common search words (search.rs).
    pub(super) search_counts: super::search::DocCounts,
}

impl SqliteStore {
    /// Open (creating and migrating as needed) the store at `path`.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let mut conn = open_sound(path, DataFile::Store)?;
        // The store can be rebuilt from the archive (`octoscope replay`), so it
        // trades the last moments before a power cut for speed; the archive does not.
        configure(&conn, "NORMAL").context("configuring the store database")?;
        migrate(&mut conn).context("migrating the store schema")?;
        let manager = SqliteConnectionManager::file(path)
            .with_flags(rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX)
            .with_init(|c| {
                c.busy_timeout(std::time::Duration::from_secs(5))?;
                super::fts_rank::register(c)
            });
        let readers = r2d2::Pool::builder().max_size(8).build(manager).context("opening store readers")?;
        // Rollup cells of weeks marked before this process (a migration) are recomputed now.
        super::rollups::refresh_now(&mut conn).context("recomputing metric rollups")?;
        let writer = Writer::start_with(conn, "octoscope-store", super::rollups::refresh)
            .context("starting the store writer")?;
        Ok(Self {
            writer: Arc::new(writer),
            readers,
            search_exact_up_to: crate::domain::SEARCH_EXACT_UP_TO,
            search_counts: Default::default(),
        })
    }

    /// Run `f` atomically on the writer thread.
    pub(super) async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.writer.write(f).await.map_err(|e| match e {
            WriterError::Stopped => StoreError::Unavailable(e.into()),
            WriterError::Sqlite(inner) => match Arc::try_unwrap(inner) {
                Ok(sqlite) => store_error(sqlite),
                Err(shared) if shared.sqlite_error_code() == Some(ErrorCode::DiskFull) => {
                    StoreError::Unavailable(disk_full(WriterError::Sqlite(shared)))
                }
                Err(shared) => StoreError::Unavailable(WriterError::Sqlite(shared).into()),
            },
        })
    }

    pub(super) async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let pool = self.readers.clone();
        tokio::task::spawn_blocking(move || {
            let conn = pool.get().map_err(|e| StoreError::Unavailable(e.into()))?;
            f(&conn)
        })
        .await
        .map_err(|e| StoreError::Internal(e.into()))?
    }
}

/// A query under construction, with numbered parameters.
pub(super) struct Sql {
    text: String,
    args: Vec<Value>,
}

impl Sql {
    pub fn new(text: &str) -> Self {
        Self { text: text.to_owned(), args: Vec::new() }
    }

    /// Append `clause`, each `?` in it bound to the next of `values`.
    pub fn push(&mut self, clause: &str, values: impl IntoIterator<Item = Value>) -> &mut Self {
        let mut values = values.into_iter();
        for part in clause.split_inclusive('?') {
            match part.strip_suffix('?') {
                Some(head) => {
                    self.args.push(values.next().expect("a value for every placeholder"));
                    self.text.push_str(head);
                    self.text.push_str(&format!("?{}", self.args.len()));
                }
                None => self.text.push_str(part),
            }
        }
        self
    }

    pub fn text(v: &str) -> Value {
        Value::Text(v.to_owned())
    }

    pub fn rows<T>(
        &self,
        conn: &Connection,
        map: impl FnMut(&Row) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, StoreError> {
        let mut stmt = conn.prepare_cached(&self.text).map_err(store_error)?;
        let rows = stmt.query_map(params_from_iter(self.args.iter()), map).map_err(store_error)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(store_error)
    }
}

/// Run a query with dynamic parameters and map its rows.
pub(super) fn query<T>(
    conn: &Connection,
    sql: &str,
    args: Vec<Value>,
    map: impl FnMut(&Row) -> rusqlite::Result<T>,
) -> Result<Vec<T>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(store_error)?;
    let rows = stmt.query_map(params_from_iter(args), map).map_err(store_error)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(store_error)
}

pub(super) fn limit_arg(page: &PageRequest) -> Value {
    Value::Integer(page.limit as i64 + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{JobRecord, RepoName, Target};

    #[tokio::test]
    async fn version_4_fills_what_it_adds_for_rows_already_there() {
        // GIVEN a store at schema version 3 holding a repository, two commits of its
        // default branch (committed at 09:00 and 10:00) and a resync job
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let mut conn = Connection::open(&path).unwrap();
        migrations().to_version(&mut conn, 3).unwrap();
        conn.execute_batch(
            "INSERT INTO repos (full_name, default_branch, deleted) VALUES ('acme/api', 'main', 0);
             INSERT INTO commits (repo, sha, message, committed_at) VALUES
               ('acme/api', 'a', 'm', '2030-03-04T09:00:00.000Z'), ('acme/api', 'b', 'm', '2030-03-04T10:00:00.000Z');
             INSERT INTO branch_commits (repo, branch, sha) VALUES ('acme/api', 'main', 'a'), ('acme/api', 'main', 'b');
             INSERT INTO jobs (id, target, kinds, state, created_at)
               VALUES ('j1', '{\"type\":\"repo\",\"name\":\"acme/api\"}', '[]', 'queued', '2030-03-04T09:00:00.000Z');",
        )
        .unwrap();
        drop(conn);
        // WHEN opened (migrated to the latest version)
        let store = SqliteStore::open(&path).unwrap();
        // THEN the branch's commits are counted by their time, as for rows written after
        let repo = RepoName::parse("acme/api").unwrap();
        let since = chrono::DateTime::parse_from_rfc3339("2030-03-04T09:30:00Z").unwrap().to_utc();
        let sums = store
            .repo_summaries(&[
                SnapshotRequest::new(repo.clone(), None),
                SnapshotRequest::new(repo.clone(), Some(since)),
            ])
            .await
            .unwrap();
        assert_eq!((sums[0].default_branch_commits, sums[1].default_branch_commits), (Some(2), Some(1)));
        // AND the old job reads back with nothing skipped
        let job: Option<JobRecord> = store.get_job("j1").await.unwrap();
        assert_eq!(job.map(|j| (j.target, j.skipped)), Some((Target::Repo(repo), Vec::new())));
    }

    #[tokio::test]
    async fn the_search_migration_indexes_what_the_store_already_holds() {
        // GIVEN a store at schema version 7 holding a pull request, a review, a commit,
        // a repository, a team (and a deleted one) and an org member
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let mut conn = Connection::open(&path).unwrap();
        migrations().to_version(&mut conn, 7).unwrap();
        conn.execute_batch(
            "INSERT INTO repos (full_name, default_branch, deleted) VALUES ('acme/api', 'main', 0), ('acme/gone', 'main', 1);
             INSERT INTO pull_requests (repo, number, title, state, draft, author, created_at, updated_at, labels, rank)
               VALUES ('acme/api', 7, 'Quicksilver gateway', 'open', 0, 'alice', '2030-03-04T09:00:00.000Z',
                       '2030-03-04T09:00:00.000Z', '[\"perf\"]', 0);
             INSERT INTO reviews (id, repo, pr_number, author, state, submitted_at, rank)
               VALUES (70, 'acme/api', 7, 'bob', 'approved', '2030-03-04T10:00:00.000Z', 2);
             INSERT INTO commits (repo, sha, message, author_login, committed_at)
               VALUES ('acme/api', 'abc1234def', 'Polish quicksilver', 'carol', '2030-03-04T08:00:00.000Z');
             INSERT INTO teams (org, slug, name, deleted, version) VALUES ('acme', 'owls', 'Night Owls', 0, 'v'),
               ('acme', 'larks', 'Morning Larks', 1, 'v');
             INSERT INTO org_members (org, login, present, version) VALUES ('acme', 'dora', 1, 'v');",
        )
        .unwrap();
        drop(conn);
        // WHEN opened (migrated to the latest version)
        let store = SqliteStore::open(&path).unwrap();
        // THEN every one of them is searchable, the deleted ones not
        let find = |q: &str| {
            let (store, q) = (store.clone(), crate::domain::SearchQuery::parse(q).unwrap());
            async move {
                let r = store.search(&q, &PageRequest::first(10)).await.unwrap();
                let mut keys: Vec<String> = r.items.into_iter().map(|h| h.key).collect();
                keys.sort();
                keys
            }
        };
        assert_eq!(find("quicksilver").await, ["commit:acme/api@abc1234def", "pr:acme/api#7", "review:70"]);
        assert_eq!(find("perf").await, ["pr:acme/api#7"]);
        assert_eq!(find("owls").await, ["team:acme/owls"]);
        assert!(find("larks").await.is_empty() && find("gone").await.is_empty());
        assert_eq!(find("type:repo").await, ["repo:acme/api"]);
        assert_eq!(find("dora").await, ["person:dora"]);
        // AND the filters inside the full-text index (v12) find them by repository and author
        assert_eq!(find("quicksilver repo:acme/api author:carol").await, ["commit:acme/api@abc1234def"]);

        // WHEN the index is lost (its documents gone) and then rebuilt (`octoscope reindex`)
        Connection::open(&path).unwrap().execute("DELETE FROM search_docs", []).unwrap();
        assert!(find("quicksilver").await.is_empty());
        assert_eq!(store.rebuild_search().await.unwrap(), 6);
        // THEN everything is found again, as before
        assert_eq!(find("quicksilver").await, ["commit:acme/api@abc1234def", "pr:acme/api#7", "review:70"]);
        assert_eq!(find("quicksilver is:open").await, ["pr:acme/api#7"]);
        assert_eq!(find("dora").await, ["person:dora"]);
        assert!(find("larks").await.is_empty());
    }
}
