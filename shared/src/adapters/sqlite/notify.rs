//! Notifications on SQLite (schema_v15.sql): [`RuleStore`], the outbox
//! ([`NotificationSink`]) and the sender's work list and log
//! ([`NotificationLog`]), and what the decider reads ([`TransitionFacts`]).
//! Every write goes through the store's writer thread, so it is committed
//! when the call returns.

use std::time::Duration;

use async_trait::async_trait;
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::moves;
use super::store::{Sql, SqliteStore, limit_arg, query};
use super::{parse_ts, parse_ts_opt, store_error, ts, ts_opt};
use crate::domain::*;
use crate::ports::*;

/// A lease longer than this is taken as this.
const MAX_LEASE: chrono::TimeDelta = chrono::TimeDelta::days(1);

const RULE_COLUMNS: &str = "id, event, filters, target, secrets, created_at, updated_at, disabled";

const NOTE_COLUMNS: &str = "id, rule_id, event, transition_key, late, data, occurred_at, created_at, status, attempts,
    next_attempt_at, last_error";

fn bad(i: usize, e: impl std::error::Error + Send + Sync + 'static) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
}

fn unknown(i: usize, what: &str, s: &str) -> rusqlite::Error {
    bad(i, std::io::Error::other(format!("stored {what} {s:?} does not parse")))
}

fn json<T: serde::de::DeserializeOwned>(r: &Row, i: usize) -> rusqlite::Result<T> {
    serde_json::from_str(&r.get::<_, String>(i)?).map_err(|e| bad(i, e))
}

fn event_at(r: &Row, i: usize) -> rusqlite::Result<RuleEvent> {
    let s: String = r.get(i)?;
    RuleEvent::parse(&s).ok_or_else(|| unknown(i, "event", &s))
}

fn rule_row(r: &Row) -> rusqlite::Result<Rule> {
    let id: String = r.get(0)?;
    Ok(Rule {
        id: RuleId::parse(&id).map_err(|e| bad(0, e))?,
        event: event_at(r, 1)?,
        filters: json(r, 2)?,
        target: json(r, 3)?,
        secrets: TargetSecrets(json(r, 4)?),
        created_at: parse_ts(&r.get::<_, String>(5)?)?,
        updated_at: parse_ts(&r.get::<_, String>(6)?)?,
        disabled: r.get(7)?,
    })
}

fn note_row(r: &Row) -> rusqlite::Result<Notification> {
    let (id, rule_id, status): (String, String, String) = (r.get(0)?, r.get(1)?, r.get(8)?);
    Ok(Notification {
        id: NotificationId::parse(&id).map_err(|e| bad(0, e))?,
        rule_id: RuleId::parse(&rule_id).map_err(|e| bad(1, e))?,
        event: event_at(r, 2)?,
        transition_key: r.get(3)?,
        late: r.get(4)?,
        data: json(r, 5)?,
        occurred_at: parse_ts(&r.get::<_, String>(6)?)?,
        created_at: parse_ts(&r.get::<_, String>(7)?)?,
        status: NotificationStatus::parse(&status).ok_or_else(|| unknown(8, "status", &status))?,
        attempts: r.get(9)?,
        next_attempt_at: parse_ts_opt(r.get(10)?)?,
        last_error: r.get(11)?,
    })
}

fn attempt_row(r: &Row) -> rusqlite::Result<Attempt> {
    let id: String = r.get(0)?;
    Ok(Attempt {
        notification_id: NotificationId::parse(&id).map_err(|e| bad(0, e))?,
        number: r.get(1)?,
        at: parse_ts(&r.get::<_, String>(2)?)?,
        status_code: r.get(3)?,
        latency_ms: r.get(4)?,
        excerpt: r.get(5)?,
    })
}

/// Insert `note` unless its id is kept already; true when it was new.
fn insert_note(conn: &Connection, n: &Notification) -> rusqlite::Result<bool> {
    let inserted = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO notifications (id, rule_id, event, transition_key, late, data, occurred_at,
               created_at, status, attempts, next_attempt_at, lease_until, last_error)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, NULL, ?12)",
        )?
        .execute(params![
            n.id.as_str(),
            n.rule_id.as_str(),
            n.event.as_str(),
            n.transition_key,
            n.late,
            n.data.to_string(),
            ts(&n.occurred_at),
            ts(&n.created_at),
            n.status.as_str(),
            n.attempts,
            ts_opt(&n.next_attempt_at),
            n.last_error,
        ])?;
    Ok(inserted > 0)
}

/// What a retried attempt leaves as the notification's last error.
fn attempt_error(a: &Attempt) -> String {
    match a.status_code {
        Some(code) => format!("HTTP {code}"),
        None => a.excerpt.chars().take(200).collect(),
    }
}

#[async_trait]
impl RuleStore for SqliteStore {
    async fn put_rule(&self, rule: &Rule) -> Result<(), StoreError> {
        let rule = rule.clone();
        self.write(move |conn| {
            conn.prepare_cached(&format!(
                "INSERT INTO notify_rules ({RULE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (id) DO UPDATE SET event = excluded.event, filters = excluded.filters,
                   target = excluded.target, secrets = excluded.secrets, created_at = excluded.created_at,
                   updated_at = excluded.updated_at, disabled = excluded.disabled"
            ))?
            .execute(params![
                rule.id.as_str(),
                rule.event.as_str(),
                serde_json::to_string(&rule.filters).expect("filters serialise"),
                serde_json::to_string(&rule.target).expect("targets serialise"),
                serde_json::to_string(&rule.secrets.0).expect("strings serialise"),
                ts(&rule.created_at),
                ts(&rule.updated_at),
                rule.disabled,
            ])
            .map(drop)
        })
        .await
    }

    async fn get_rule(&self, id: &RuleId) -> Result<Option<Rule>, StoreError> {
        let id = id.as_str().to_owned();
        self.read(move |conn| {
            conn.prepare_cached(&format!("SELECT {RULE_COLUMNS} FROM notify_rules WHERE id = ?1"))
                .and_then(|mut s| s.query_row([id], rule_row).optional())
                .map_err(store_error)
        })
        .await
    }

    async fn list_rules(&self, page: &PageRequest) -> Result<Page<Rule>, StoreError> {
        let page = page.clone();
        self.read(move |conn| {
            let mut sql = Sql::new(&format!("SELECT {RULE_COLUMNS} FROM notify_rules WHERE 1 = 1"));
            if let Some(c) = &page.cursor {
                let (at, id): (String, String) = decode_cursor(c)?;
                sql.push(" AND (created_at, id) > (?, ?)", [Value::Text(at), Value::Text(id)]);
            }
            sql.push(" ORDER BY created_at, id LIMIT ?", [limit_arg(&page)]);
            let rows = sql.rows(conn, rule_row)?;
            Ok(page_from(rows, page.limit, |r| (ts(&r.created_at), r.id.as_str().to_owned())))
        })
        .await
    }

    async fn delete_rule(&self, id: &RuleId) -> Result<bool, StoreError> {
        let id = id.as_str().to_owned();
        self.write(move |conn| {
            conn.prepare_cached("DELETE FROM notify_rules WHERE id = ?1")?.execute([id]).map(|n| n > 0)
        })
        .await
    }

    async fn rules_for(&self, event: RuleEvent) -> Result<Vec<Rule>, StoreError> {
        self.read(move |conn| {
            query(
                conn,
                &format!(
                    "SELECT {RULE_COLUMNS} FROM notify_rules WHERE event = ?1 AND disabled IS NULL ORDER BY created_at, id"
                ),
                vec![Value::Text(event.as_str().to_owned())],
                rule_row,
            )
        })
        .await
    }

    async fn disable_rule(&self, id: &RuleId, reason: &str) -> Result<(), StoreError> {
        let (id, reason) = (id.as_str().to_owned(), reason.to_owned());
        self.write(move |conn| {
            conn.prepare_cached("UPDATE notify_rules SET disabled = ?2 WHERE id = ?1")?
                .execute(params![id, reason])
                .map(drop)
        })
        .await
    }
}

#[async_trait]
impl NotificationSink for SqliteStore {
    async fn enqueue(&self, notes: &[Notification]) -> Result<usize, StoreError> {
        let notes = notes.to_vec();
        self.write(move |conn| {
            let mut new = 0;
            for n in &notes {
                new += usize::from(insert_note(conn, n)?);
            }
            Ok(new)
        })
        .await
    }
}

#[async_trait]
impl NotificationLog for SqliteStore {
    async fn admit(&self, note: &Notification) -> Result<bool, StoreError> {
        let note = note.clone();
        self.write(move |conn| insert_note(conn, &note)).await
    }

    async fn take_due(&self, now: Timestamp, lease: Duration, limit: usize) -> Result<Vec<Notification>, StoreError> {
        let until = now + chrono::TimeDelta::from_std(lease).unwrap_or(MAX_LEASE).min(MAX_LEASE);
        let (now, until) = (ts(&now), ts(&until));
        self.write(move |conn| {
            let due = conn
                .prepare_cached(&format!(
                    "SELECT {NOTE_COLUMNS} FROM notifications
                     WHERE status = 'pending' AND next_attempt_at <= ?1 AND (lease_until IS NULL OR lease_until < ?1)
                     ORDER BY next_attempt_at, id LIMIT ?2"
                ))?
                .query_map(params![now, limit as i64], note_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let mut lease = conn.prepare_cached("UPDATE notifications SET lease_until = ?2 WHERE id = ?1")?;
            for n in &due {
                lease.execute(params![n.id.as_str(), until])?;
            }
            Ok(due)
        })
        .await
    }

    async fn get_notification(&self, id: &NotificationId) -> Result<Option<Notification>, StoreError> {
        let id = id.as_str().to_owned();
        self.read(move |conn| {
            conn.prepare_cached(&format!("SELECT {NOTE_COLUMNS} FROM notifications WHERE id = ?1"))
                .and_then(|mut s| s.query_row([id], note_row).optional())
                .map_err(store_error)
        })
        .await
    }

    async fn record_attempt(&self, attempt: &Attempt, next: &AfterAttempt) -> Result<(), StoreError> {
        let (a, next) = (attempt.clone(), next.clone());
        self.write(move |conn| {
            let id = a.notification_id.as_str();
            conn.prepare_cached(
                "INSERT OR IGNORE INTO notification_attempts (notification_id, number, at, status_code, latency_ms, excerpt)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![id, a.number, ts(&a.at), a.status_code, a.latency_ms as i64, a.excerpt])?;
            let (status, next_at, error) = match &next {
                AfterAttempt::Delivered => (NotificationStatus::Delivered, None, None),
                AfterAttempt::Retry(at) => (NotificationStatus::Pending, Some(ts(at)), Some(attempt_error(&a))),
                AfterAttempt::Failed(why) | AfterAttempt::DisableTarget(why) => {
                    (NotificationStatus::Failed, None, Some(why.clone()))
                }
            };
            conn.prepare_cached(
                "UPDATE notifications SET status = ?2, attempts = MAX(attempts, ?3), next_attempt_at = ?4,
                   last_error = ?5, lease_until = NULL
                 WHERE id = ?1 AND status = 'pending'",
            )?
            .execute(params![id, status.as_str(), a.number, next_at, error])?;
            if let AfterAttempt::DisableTarget(why) = &next {
                conn.prepare_cached(
                    "UPDATE notify_rules SET disabled = ?2
                     WHERE id = (SELECT rule_id FROM notifications WHERE id = ?1)",
                )?
                .execute(params![id, why])?;
            }
            Ok(())
        })
        .await
    }

    async fn list_notifications(
        &self,
        filter: &NotificationFilter,
        page: &PageRequest,
    ) -> Result<Page<Notification>, StoreError> {
        let (filter, page) = (filter.clone(), page.clone());
        self.read(move |conn| {
            let mut sql = Sql::new(&format!("SELECT {NOTE_COLUMNS} FROM notifications WHERE 1 = 1"));
            if let Some(rule) = &filter.rule {
                sql.push(" AND rule_id = ?", [Sql::text(rule.as_str())]);
            }
            if let Some(status) = filter.status {
                sql.push(" AND status = ?", [Sql::text(status.as_str())]);
            }
            if let Some(c) = &page.cursor {
                let (at, id): (String, String) = decode_cursor(c)?;
                sql.push(" AND (created_at, id) < (?, ?)", [Value::Text(at), Value::Text(id)]);
            }
            sql.push(" ORDER BY created_at DESC, id DESC LIMIT ?", [limit_arg(&page)]);
            let rows = sql.rows(conn, note_row)?;
            Ok(page_from(rows, page.limit, |n| (ts(&n.created_at), n.id.as_str().to_owned())))
        })
        .await
    }

    async fn attempts(&self, id: &NotificationId) -> Result<Vec<Attempt>, StoreError> {
        let id = id.as_str().to_owned();
        self.read(move |conn| {
            query(
                conn,
                "SELECT notification_id, number, at, status_code, latency_ms, excerpt FROM notification_attempts
                 WHERE notification_id = ?1 ORDER BY number",
                vec![Value::Text(id)],
                attempt_row,
            )
        })
        .await
    }

    async fn rule_stats(&self, rule: &RuleId, since: Timestamp) -> Result<RuleStats, StoreError> {
        let (rule, since) = (rule.as_str().to_owned(), ts(&since));
        self.read(move |conn| {
            let counts = query(
                conn,
                "SELECT status, COUNT(*) FROM notifications WHERE rule_id = ?1 AND created_at >= ?2 GROUP BY status",
                vec![Value::Text(rule), Value::Text(since)],
                |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)),
            )?;
            let mut stats = RuleStats::default();
            for (status, n) in counts {
                let n = n as u64;
                match NotificationStatus::parse(&status) {
                    Some(NotificationStatus::Delivered) => stats.delivered = n,
                    Some(NotificationStatus::Failed) => stats.failed = n,
                    Some(NotificationStatus::Pending) => stats.pending = n,
                    None => {}
                }
            }
            Ok(stats)
        })
        .await
    }
}

#[async_trait]
impl TransitionFacts for SqliteStore {
    async fn branch_head(&self, repo: &RepoName, branch: &str) -> Result<Option<String>, StoreError> {
        let (repo, branch) = (repo.clone(), branch.to_owned());
        self.read(move |conn| {
            let repo = moves::resolve(conn, &repo)?.to_string();
            conn.prepare_cached("SELECT head_sha FROM branches WHERE repo = ?1 AND name = ?2 AND deleted = 0")
                .and_then(|mut s| s.query_row(params![repo, branch], |r| r.get::<_, Option<String>>(0)).optional())
                .map(Option::flatten)
                .map_err(store_error)
        })
        .await
    }

    async fn previous_conclusion(&self, run: &WorkflowRun) -> Result<Option<String>, StoreError> {
        let (Some(workflow_id), Some(branch)) = (run.workflow_id, run.head_branch.clone()) else {
            return Ok(None);
        };
        let (repo, id, created) = (run.repo.clone(), run.id, ts(&run.created_at));
        self.read(move |conn| {
            let repo = moves::resolve(conn, &repo)?.to_string();
            conn.prepare_cached(
                "SELECT conclusion FROM workflow_runs
                 WHERE repo = ?1 AND workflow_id = ?2 AND head_branch = ?3 AND created_at < ?4 AND id != ?5
                   AND status = 'completed'
                 ORDER BY created_at DESC, id DESC LIMIT 1",
            )
            .and_then(|mut s| {
                s.query_row(params![repo, workflow_id, branch, created, id], |r| r.get::<_, Option<String>>(0))
                    .optional()
            })
            .map(Option::flatten)
            .map_err(store_error)
        })
        .await
    }

    async fn is_team_member(&self, org: &str, team_slug: &str, login: &str) -> Result<bool, StoreError> {
        let (org, slug, login) = (org.to_owned(), team_slug.to_owned(), login.to_owned());
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT 1 FROM team_members WHERE org = ?1 AND team_slug = ?2 AND login = ?3 AND present = 1",
            )
            .and_then(|mut s| s.exists(params![org, slug, login]))
            .map_err(store_error)
        })
        .await
    }
}
