//! [`CompletenessStore`] on SQLite: the store's side of the integrity check
//! and the record of its runs.

use async_trait::async_trait;
use rusqlite::types::Value;
use rusqlite::{OptionalExtension, params};

use super::store::{SqliteStore, limit_arg, query};
use super::summaries;
use super::{parse_ts, parse_ts_opt, store_error, ts};
use crate::domain::*;
use crate::ports::*;

#[async_trait]
impl CompletenessStore for SqliteStore {
    async fn tracked(&self) -> Result<Tracked, StoreError> {
        self.read(|conn| {
            let repos: Vec<String> = query(
                conn,
                // Deliveries keep the names they arrived with: an old name counts as the current one.
                concat!(
                    "SELECT full_name FROM repos WHERE deleted = 0
                     UNION SELECT DISTINCT COALESCE(a.canonical, d.repo) FROM deliveries d
                       LEFT JOIN repo_aliases a ON a.alias = d.repo AND ",
                    super::moves::alias_answers!(),
                    " WHERE d.repo IS NOT NULL ORDER BY 1"
                ),
                vec![],
                |r| r.get(0),
            )?;
            let orgs: Vec<String> = query(
                conn,
                "SELECT org FROM teams UNION SELECT org FROM org_members
                 UNION SELECT DISTINCT org FROM deliveries WHERE org IS NOT NULL ORDER BY 1",
                vec![],
                |r| r.get(0),
            )?;
            let deleted: Vec<String> =
                query(conn, "SELECT full_name FROM repos WHERE deleted = 1", vec![], |r| r.get(0))?;
            Ok(Tracked {
                repos: repos.iter().filter(|r| !deleted.contains(r)).filter_map(|r| RepoName::parse(r).ok()).collect(),
                orgs,
            })
        })
        .await
    }

    async fn repo_summaries(&self, repos: &[SnapshotRequest]) -> Result<Vec<RepoSnapshot>, StoreError> {
        let repos = repos.to_vec();
        self.read(move |conn| repos.iter().map(|req| summaries::repo_snapshot(conn, req)).collect()).await
    }

    async fn org_summaries(&self, orgs: &[String]) -> Result<Vec<OrgSnapshot>, StoreError> {
        let orgs = orgs.to_vec();
        self.read(move |conn| {
            let mut out = Vec::with_capacity(orgs.len());
            for org in orgs {
                let teams = query(
                    conn,
                    "SELECT t.slug, (SELECT COUNT(*) FROM team_members m
                                     WHERE m.org = t.org AND m.team_slug = t.slug AND m.present = 1)
                     FROM teams t WHERE t.org = ?1 AND t.deleted = 0 ORDER BY t.slug",
                    vec![Value::Text(org.clone())],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?;
                out.push(OrgSnapshot {
                    org,
                    teams,
                    teams_withheld: false,
                    repos_total: None,
                    recent_repos: Vec::new(),
                });
            }
            Ok(out)
        })
        .await
    }

    async fn team_rosters(&self, org: &str) -> Result<Vec<(String, Vec<String>)>, StoreError> {
        let org = org.to_owned();
        self.read(move |conn| {
            let rows: Vec<(String, Option<String>)> = query(
                conn,
                "SELECT t.slug, m.login FROM teams t
                 LEFT JOIN team_members m ON m.org = t.org AND m.team_slug = t.slug AND m.present = 1
                 WHERE t.org = ?1 AND t.deleted = 0 ORDER BY t.slug, m.login",
                vec![Value::Text(org)],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            let mut out: Vec<(String, Vec<String>)> = Vec::new();
            for (slug, login) in rows {
                if out.last().is_none_or(|(s, _)| *s != slug) {
                    out.push((slug, Vec::new()));
                }
                if let (Some(login), Some((_, members))) = (login, out.last_mut()) {
                    members.push(login);
                }
            }
            Ok(out)
        })
        .await
    }

    async fn known_deliveries(&self, keys: &[DeliveryKey]) -> Result<Vec<bool>, StoreError> {
        let keys = keys.to_vec();
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT 1 FROM deliveries WHERE hook_id = ?1 AND delivery_id = ?2 AND status != 'pending'",
                )
                .map_err(store_error)?;
            keys.iter()
                .map(|k| stmt.exists(params![k.hook_id.as_str(), k.delivery_id.as_str()]).map_err(store_error))
                .collect()
        })
        .await
    }

    async fn delivery_hooks(&self) -> Result<Vec<HookSeen>, StoreError> {
        self.read(|conn| {
            let rows: Vec<(String, Option<String>, Option<String>, i64)> = query(
                conn,
                "SELECT hook_id, MAX(org), MAX(repo), SUM(repo IS NULL AND org IS NOT NULL)
                 FROM deliveries WHERE hook_id != '0' GROUP BY hook_id ORDER BY hook_id",
                vec![],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )?;
            Ok(rows
                .into_iter()
                .filter_map(|(hook, org, repo, org_events)| {
                    Some(HookSeen {
                        hook_id: HookId::parse(&hook).ok()?,
                        org,
                        repo: repo.and_then(|r| RepoName::parse(&r).ok()),
                        org_events: org_events > 0,
                    })
                })
                .collect())
        })
        .await
    }

    async fn record_check(&self, run: &CheckRun) -> Result<(), StoreError> {
        let run = run.clone();
        self.write(move |conn| {
            conn.prepare_cached(
                "INSERT OR REPLACE INTO check_runs (id, started_at, finished_at, repos_compared, orgs_compared, gaps,
                   redelivered, requests, dry_run, verified, error, requests_by_installation)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )?
            .execute(params![
                run.id,
                ts(&run.started_at),
                ts(&run.finished_at),
                run.repos_compared,
                run.orgs_compared,
                gaps_column(&run),
                run.redelivered,
                run.requests,
                run.dry_run,
                serde_json::to_string(&run.verified).expect("targets serialise"),
                run.error,
                serde_json::to_string(&run.requests_by_installation).expect("counts serialise")
            ])
            .map(drop)
        })
        .await
    }

    async fn verified_at(&self, target: &Target) -> Result<Option<Timestamp>, StoreError> {
        let needle = serde_json::to_string(target).expect("targets serialise");
        self.read(move |conn| {
            // Newest first; the JSON text of a target is unique, so a substring test finds it.
            let at: Option<String> = conn
                .query_row(
                    "SELECT started_at FROM check_runs WHERE dry_run = 0 AND instr(verified, ?1) > 0
                     ORDER BY started_at DESC LIMIT 1",
                    [needle],
                    |r| r.get(0),
                )
                .optional()
                .map_err(store_error)?;
            parse_ts_opt(at).map_err(store_error)
        })
        .await
    }

    async fn stored_runs(
        &self,
        repo: &RepoName,
        since: Option<Timestamp>,
        ids: &[i64],
        unfinished_from: Option<Timestamp>,
    ) -> Result<StoredRuns, StoreError> {
        let (repo, ids) = (repo.clone(), ids.to_vec());
        self.read(move |conn| summaries::stored_runs(conn, &repo, &since, &ids, unfinished_from)).await
    }

    async fn list_checks(&self, page: &PageRequest) -> Result<Page<CheckRun>, StoreError> {
        let page = page.clone();
        self.read(move |conn| {
            let mut args = Vec::new();
            let mut sql = String::from(
                "SELECT id, started_at, finished_at, repos_compared, orgs_compared, gaps, redelivered, requests,
                   dry_run, error, requests_by_installation FROM check_runs WHERE 1 = 1",
            );
            if let Some(c) = &page.cursor {
                let (at, id): (String, String) = decode_cursor(c)?;
                sql.push_str(" AND (started_at, id) < (?1, ?2)");
                args.extend([Value::Text(at), Value::Text(id)]);
            }
            sql.push_str(&format!(" ORDER BY started_at DESC, id DESC LIMIT ?{}", args.len() + 1));
            args.push(limit_arg(&page));
            let rows = query(conn, &sql, args, |r| {
                Ok(CheckRun {
                    id: r.get(0)?,
                    started_at: parse_ts(&r.get::<_, String>(1)?)?,
                    finished_at: parse_ts(&r.get::<_, String>(2)?)?,
                    repos_compared: r.get(3)?,
                    orgs_compared: r.get(4)?,
                    gaps: Vec::new(),
                    redelivered: r.get(6)?,
                    requests: r.get(7)?,
                    requests_by_installation: serde_json::from_str(&r.get::<_, String>(10)?).unwrap_or_default(),
                    dry_run: r.get(8)?,
                    verified: Vec::new(),
                    error: r.get(9)?,
                    search: None,
                }
                .with_gaps_column(&r.get::<_, String>(5)?))
            })?;
            Ok(page_from(rows, page.limit, |c| (ts(&c.started_at), c.id.clone())))
        })
        .await
    }
}

/// The `gaps` column: the gaps' JSON list, or with a search comparison
/// `{"gaps": […], "search": {…}}` (kept in the check's row, no column of its own).
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
enum GapsColumn {
    Gaps(Vec<Gap>),
    WithSearch { gaps: Vec<Gap>, search: Option<SearchComparison> },
}

fn gaps_column(run: &CheckRun) -> String {
    let column = match &run.search {
        None => GapsColumn::Gaps(run.gaps.clone()),
        Some(s) => GapsColumn::WithSearch { gaps: run.gaps.clone(), search: Some(s.clone()) },
    };
    serde_json::to_string(&column).expect("gaps serialise")
}

trait WithGapsColumn {
    fn with_gaps_column(self, column: &str) -> Self;
}

impl WithGapsColumn for CheckRun {
    fn with_gaps_column(self, column: &str) -> Self {
        match serde_json::from_str(column) {
            Ok(GapsColumn::Gaps(gaps)) => Self { gaps, ..self },
            Ok(GapsColumn::WithSearch { gaps, search }) => Self { gaps, search, ..self },
            Err(_) => self,
        }
    }
}
