//! The SQLite search index is written only when a document changes
//! (`schema_v14.sql`): a write that changes nothing a document is made of
//! leaves the document and the full-text index alone, a write that changes
//! only the version or the time updates the document in place, and every
//! other write rewrites it. The full-text index always matches its documents.

use octoscope::adapters::sqlite::SqliteStore;
use rusqlite::Connection;

/// Writes of documents seen by temporary triggers on this connection.
const COUNT: &str = "
    CREATE TEMP TABLE doc_writes (op TEXT);
    CREATE TEMP TRIGGER count_insert AFTER INSERT ON search_docs BEGIN INSERT INTO doc_writes VALUES ('insert'); END;
    CREATE TEMP TRIGGER count_delete AFTER DELETE ON search_docs BEGIN INSERT INTO doc_writes VALUES ('delete'); END;
    CREATE TEMP TRIGGER count_text AFTER UPDATE ON search_docs
      WHEN OLD.title IS NOT NEW.title OR OLD.body IS NOT NEW.body OR OLD.extra IS NOT NEW.extra
        OR OLD.repo IS NOT NEW.repo OR OLD.author IS NOT NEW.author OR OLD.state IS NOT NEW.state
      BEGIN INSERT INTO doc_writes VALUES ('text'); END;
    CREATE TEMP TRIGGER count_version AFTER UPDATE ON search_docs
      WHEN OLD.version IS NOT NEW.version OR OLD.created_at IS NOT NEW.created_at
      BEGIN INSERT INTO doc_writes VALUES ('version'); END;";

fn store_at(dir: &tempfile::TempDir) -> Connection {
    let path = dir.path().join("store.db");
    drop(SqliteStore::open(&path).unwrap());
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(COUNT).unwrap();
    conn
}

/// What `sql` did to the documents, in order.
fn writes(conn: &Connection, sql: &str) -> Vec<String> {
    conn.execute("DELETE FROM doc_writes", []).unwrap();
    conn.execute_batch(sql).unwrap();
    let mut stmt = conn.prepare("SELECT op FROM doc_writes ORDER BY rowid").unwrap();
    stmt.query_map([], |r| r.get(0)).unwrap().collect::<Result<_, _>>().unwrap()
}

/// Keys of the documents whose indexed text matches `q` (FTS5 syntax).
fn found(conn: &Connection, q: &str) -> Vec<String> {
    let mut stmt = conn
        .prepare("SELECT d.key FROM search_text JOIN search_docs d ON d.id = search_text.rowid WHERE search_text MATCH ?1 ORDER BY d.key")
        .unwrap();
    stmt.query_map([q], |r| r.get(0)).unwrap().collect::<Result<_, _>>().unwrap()
}

fn doc(conn: &Connection, key: &str) -> (String, Option<String>, String) {
    conn.query_row("SELECT version, created_at, title FROM search_docs WHERE key = ?1", [key], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })
    .unwrap()
}

/// FTS5's own check that the index holds exactly what its content says.
fn index_matches_documents(conn: &Connection) {
    conn.execute("INSERT INTO search_text (search_text) VALUES ('integrity-check')", []).unwrap();
}

const PR: &str =
    "INSERT INTO pull_requests (repo, number, title, body, state, draft, author, created_at, updated_at, labels, rank)
    VALUES ('acme/api', 7, 'Quicksilver gateway', 'Speeds up routing', 'open', 0, 'alice',
            '2030-03-04T09:00:00.000Z', '2030-03-04T09:00:00.000Z', '[\"perf\"]', 0)";

/// The statement a redelivery amounts to: every column named, with `updated_at` and `title` as given.
fn pr_write(updated_at: &str, title: &str) -> String {
    format!(
        "UPDATE pull_requests SET title = '{title}', body = body, state = state, author = author, labels = labels,
           base_ref = base_ref, head_ref = head_ref, created_at = created_at, updated_at = '{updated_at}'
         WHERE repo = 'acme/api' AND number = 7"
    )
}

#[test]
fn a_pull_request_document_is_rewritten_only_when_its_text_changes() {
    let dir = tempfile::tempdir().unwrap();
    let conn = store_at(&dir);
    // GIVEN an indexed pull request
    assert_eq!(writes(&conn, PR), ["insert"]);
    let key = "pr:acme/api#7";
    // WHEN the same pull request is written again (a redelivery, a resync, a replay)
    // THEN its document is not touched
    assert_eq!(writes(&conn, &pr_write("2030-03-04T09:00:00.000Z", "Quicksilver gateway")), Vec::<String>::new());
    // WHEN only its version moves (a later event that changed nothing searchable)
    // THEN the document's version follows in place, its text is not rewritten
    assert_eq!(writes(&conn, &pr_write("2030-03-05T10:00:00.000Z", "Quicksilver gateway")), ["version"]);
    assert_eq!(doc(&conn, key).0, "2030-03-05T10:00:00.000Z");
    assert_eq!(found(&conn, "quicksilver"), [key]);
    index_matches_documents(&conn);
    // WHEN its title changes THEN the document is rewritten: the new words found, the old not
    assert_eq!(writes(&conn, &pr_write("2030-03-06T10:00:00.000Z", "Mercury gateway")), ["delete", "insert"]);
    assert_eq!(
        doc(&conn, key),
        ("2030-03-06T10:00:00.000Z".into(), Some("2030-03-04T09:00:00.000Z".into()), "Mercury gateway".into())
    );
    assert_eq!(found(&conn, "mercury"), [key]);
    assert!(found(&conn, "quicksilver").is_empty());
    // AND a body change and a state change are rewrites too
    let body = "UPDATE pull_requests SET body = 'Cuts latency' WHERE number = 7";
    assert_eq!(writes(&conn, body), ["delete", "insert"]);
    assert_eq!(found(&conn, "latency"), [key]);
    assert_eq!(writes(&conn, "UPDATE pull_requests SET state = 'merged' WHERE number = 7"), ["delete", "insert"]);
    index_matches_documents(&conn);
}

#[test]
fn reviews_commits_repositories_teams_and_people_are_left_alone_when_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let conn = store_at(&dir);
    // GIVEN one of each, indexed
    conn.execute_batch(&format!(
        "{PR};
         INSERT INTO reviews (id, repo, pr_number, author, state, submitted_at, body, rank)
           VALUES (70, 'acme/api', 7, 'bob', 'approved', '2030-03-04T10:00:00.000Z', 'Ship it', 2);
         INSERT INTO commits (repo, sha, message, author_login, author_name, committed_at)
           VALUES ('acme/api', 'abc1234def', 'Polish quicksilver', 'carol', 'Carol', '2030-03-04T08:00:00.000Z');
         INSERT INTO repos (full_name, default_branch, deleted, version) VALUES ('acme/api', 'main', 0, 'v1');
         INSERT INTO teams (org, slug, name, deleted, version) VALUES ('acme', 'owls', 'Night Owls', 0, 'v1');
         INSERT INTO org_members (org, login, present, version) VALUES ('acme', 'dora', 1, 'v1');"
    ))
    .unwrap();
    // WHEN each is written again unchanged, every column named THEN no document is touched
    let same = "
        UPDATE reviews SET repo = repo, pr_number = pr_number, author = author, state = state, body = body, submitted_at = submitted_at;
        UPDATE commits SET repo = repo, sha = sha, message = message, committed_at = committed_at,
          author_login = author_login, author_name = author_name;
        UPDATE repos SET full_name = full_name, deleted = deleted, version = version, default_branch = 'trunk';
        UPDATE teams SET org = org, slug = slug, name = name, description = description, deleted = deleted, version = version;
        UPDATE org_members SET login = login, present = present, version = version;";
    assert_eq!(writes(&conn, same), Vec::<String>::new());
    // WHEN a review is submitted again later THEN its document's version follows in place
    assert_eq!(writes(&conn, "UPDATE reviews SET submitted_at = '2030-03-05T10:00:00.000Z'"), ["version"]);
    assert_eq!(doc(&conn, "review:70").0, "2030-03-05T10:00:00.000Z");
    // WHEN what a document is made of changes THEN it is rewritten, as before
    assert_eq!(writes(&conn, "UPDATE reviews SET state = 'dismissed'"), ["delete", "insert"]);
    assert_eq!(writes(&conn, "UPDATE commits SET author_name = 'Carol C.'"), ["delete", "insert"]);
    assert_eq!(writes(&conn, "UPDATE repos SET version = 'v2'"), ["delete", "insert"]);
    assert_eq!(writes(&conn, "UPDATE teams SET name = 'Night Owls II'"), ["delete", "insert"]);
    assert_eq!(writes(&conn, "UPDATE org_members SET present = 0"), ["delete"]);
    assert_eq!(found(&conn, "owls"), ["team:acme/owls"]);
    assert!(found(&conn, "dora").is_empty());
    index_matches_documents(&conn);
}
