//! [`SearchIndex`] on SQLite FTS5, in the store's own database. The store's
//! writes index their entities through triggers (schema_v8.sql) in the
//! writing transaction; this file answers searches and takes documents
//! written directly through the port.

use async_trait::async_trait;
use rusqlite::types::Value;
use rusqlite::{Connection, Row, params, params_from_iter};

use super::store::SqliteStore;
use super::{parse_ts_opt, store_error, ts, ts_opt};
use crate::domain::{
    DocKind, FacetCount, Facets, RepoName, SearchDoc, SearchHit, SearchQuery, SearchResults, Segment, Term,
};
use crate::error::StoreError;
use crate::ports::{PageRequest, SearchError, SearchIndex, decode_cursor, encode_cursor};

/// The most characters of a document's body kept.
pub const MAX_BODY_CHARS: usize = 65_536;
/// Highlight marks in snippets; stripped from indexed text.
const OPEN: char = '\u{1}';
const CLOSE: char = '\u{2}';
/// bm25 weights of the columns title, body, extra: a title match counts most;
/// a title equal to the query's words (ASCII case aside) comes before all else.
const SCORE: &str = "bm25(search_text, 10.0, 2.0, 1.0) - CASE WHEN d.title = ? COLLATE NOCASE THEN 1e6 ELSE 0 END";

/// An FTS5 string for a term: quoted, quotes doubled. Inside a string FTS5
/// sees no operator, column filter, prefix or NEAR: only words.
fn fts_string(t: &Term) -> String {
    format!("\"{}\"", t.as_str().replace('"', "\"\""))
}

/// `a AND b …` as FTS5 implicit AND of strings, or `a OR b …`.
fn fts_expr(terms: &[Term], or: bool) -> String {
    terms.iter().map(fts_string).collect::<Vec<_>>().join(if or { " OR " } else { " " })
}

fn clean(s: &str, max_chars: usize) -> String {
    s.chars().filter(|c| *c != OPEN && *c != CLOSE).take(max_chars).collect()
}

/// Split text carrying highlight marks into segments.
fn segments(marked: &str) -> Vec<Segment> {
    let mut out = Vec::new();
    let mut highlighted = false;
    let mut text = String::new();
    for c in marked.chars() {
        if c == OPEN || c == CLOSE {
            if !text.is_empty() {
                out.push(Segment { text: std::mem::take(&mut text), highlighted });
            }
            highlighted = c == OPEN;
        } else {
            text.push(c);
        }
    }
    if !text.is_empty() {
        out.push(Segment { text, highlighted });
    }
    out
}

/// The matching documents as `FROM … WHERE …` with its arguments.
struct Filter {
    from_where: String,
    args: Vec<Value>,
    ranked: bool,
}

fn filter(q: &SearchQuery) -> Filter {
    let mut w = Vec::new();
    let mut args = Vec::new();
    let ranked = !q.include.is_empty();
    let from = if ranked {
        w.push("search_text MATCH ?".to_owned());
        args.push(Value::Text(fts_expr(&q.include, false)));
        "FROM search_text JOIN search_docs d ON d.id = search_text.rowid"
    } else {
        "FROM search_docs d"
    };
    if !q.exclude.is_empty() {
        w.push("d.id NOT IN (SELECT rowid FROM search_text WHERE search_text MATCH ?)".to_owned());
        args.push(Value::Text(fts_expr(&q.exclude, true)));
    }
    let mut eq = |col: &str, v: Option<String>| {
        if let Some(v) = v {
            w.push(format!("{col} = ?"));
            args.push(Value::Text(v));
        }
    };
    eq("d.repo", q.repo.as_ref().map(|r| r.as_str().to_owned()));
    eq("d.author", q.author.clone());
    eq("d.state", q.state.clone());
    eq("d.kind", q.kind.map(|k| k.as_str().to_owned()));
    if let Some(from) = &q.created.from {
        w.push("d.created_at >= ?".to_owned());
        args.push(Value::Text(ts(from)));
    }
    if let Some(until) = &q.created.until {
        w.push("d.created_at < ?".to_owned());
        args.push(Value::Text(ts(until)));
    }
    let where_ = if w.is_empty() { String::new() } else { format!(" WHERE {}", w.join(" AND ")) };
    Filter { from_where: format!("{from}{where_}"), args, ranked }
}

fn rows<T>(
    conn: &Connection,
    sql: &str,
    args: &[Value],
    map: impl FnMut(&Row) -> rusqlite::Result<T>,
) -> Result<Vec<T>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(store_error)?;
    let rows = stmt.query_map(params_from_iter(args.iter()), map).map_err(store_error)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(store_error)
}

fn facet(conn: &Connection, f: &Filter, col: &str, top: Option<usize>) -> Result<Vec<FacetCount>, StoreError> {
    let limit = top.map(|n| format!(" LIMIT {n}")).unwrap_or_default();
    let sql = format!(
        "SELECT {col}, count(*) AS n {} AND {col} IS NOT NULL GROUP BY {col} ORDER BY n DESC, {col}{limit}",
        if f.from_where.contains(" WHERE ") { f.from_where.clone() } else { format!("{} WHERE 1", f.from_where) }
    );
    rows(conn, &sql, &f.args, |r| Ok(FacetCount { value: r.get(0)?, count: r.get::<_, i64>(1)? as u64 }))
}

fn search(conn: &Connection, q: &SearchQuery, page: &PageRequest) -> Result<SearchResults, StoreError> {
    let f = filter(q);
    let (score, title, snippet) = if f.ranked {
        (SCORE, "highlight(search_text, 0, char(1), char(2))", "snippet(search_text, -1, char(1), char(2), '…', 24)")
    } else {
        ("0.0", "d.title", "substr(CASE WHEN d.body = '' THEN d.extra ELSE d.body END, 1, 160)")
    };
    let mut args = Vec::new();
    if f.ranked {
        // The score's placeholder comes first in the statement's text.
        let words: Vec<&str> = q.include.iter().map(Term::as_str).collect();
        args.push(Value::Text(words.join(" ")));
    }
    args.extend(f.args.iter().cloned());
    let mut after = String::new();
    if let Some(c) = &page.cursor {
        let (s, id): (f64, i64) = decode_cursor(c)?;
        after = " WHERE score > ? OR (score = ? AND id < ?)".to_owned();
        args.extend([Value::Real(s), Value::Real(s), Value::Integer(id)]);
    }
    args.push(Value::Integer(page.limit as i64 + 1));
    let sql = format!(
        "SELECT * FROM (SELECT d.id AS id, d.key, d.kind, d.repo, d.author, d.state, d.created_at, d.title,
                {title} AS marked_title, {snippet} AS marked_snippet, {score} AS score {})
         {after} ORDER BY score, id DESC LIMIT ?",
        f.from_where
    );
    let mut hits = rows(conn, &sql, &args, |r| {
        let kind: String = r.get(2)?;
        let repo: Option<String> = r.get(3)?;
        let hit = SearchHit {
            key: r.get(1)?,
            kind: DocKind::parse(&kind).ok_or_else(|| bad_text(2, &kind))?,
            repo: repo.map(|s| RepoName::parse(&s).map_err(|_| bad_text(3, &s))).transpose()?,
            author: r.get(4)?,
            state: r.get(5)?,
            created_at: parse_ts_opt(r.get(6)?)?,
            title: r.get(7)?,
            title_segments: segments(&r.get::<_, String>(8)?),
            snippet: segments(&r.get::<_, Option<String>>(9)?.unwrap_or_default()),
        };
        Ok((hit, r.get::<_, f64>(10)?, r.get::<_, i64>(0)?))
    })?;
    let next_cursor = if hits.len() > page.limit {
        hits.truncate(page.limit);
        hits.last().map(|(_, s, id)| encode_cursor(&(s, id)))
    } else {
        None
    };
    let facets = Facets {
        kind: facet(conn, &f, "d.kind", None)?,
        repository: facet(conn, &f, "d.repo", Some(10))?,
        author: facet(conn, &f, "d.author", Some(10))?,
        state: facet(conn, &f, "d.state", None)?,
    };
    let total = facets.kind.iter().map(|c| c.count).sum();
    Ok(SearchResults { items: hits.into_iter().map(|(h, _, _)| h).collect(), next_cursor, total, facets })
}

fn bad_text(col: usize, s: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        col,
        rusqlite::types::Type::Text,
        format!("stored search value {s:?} does not parse").into(),
    )
}

fn search_error(e: StoreError) -> SearchError {
    match e {
        StoreError::BadCursor => SearchError::BadCursor,
        StoreError::Unavailable(e) => SearchError::Unavailable(e),
        StoreError::Internal(e) => SearchError::Internal(e),
    }
}

fn index_one(tx: &Connection, d: &SearchDoc) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO search_docs (key, kind, repo, author, state, created_at, version, title, body, extra)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT (key) DO UPDATE SET
           kind = excluded.kind, repo = excluded.repo, author = excluded.author, state = excluded.state,
           created_at = excluded.created_at, version = excluded.version, title = excluded.title,
           body = excluded.body, extra = excluded.extra
         WHERE excluded.version >= search_docs.version",
    )?
    .execute(params![
        d.key,
        d.kind.as_str(),
        d.repo.as_ref().map(RepoName::as_str),
        d.author,
        d.state,
        ts_opt(&d.created_at),
        d.version,
        clean(&d.title, MAX_BODY_CHARS),
        clean(&d.body, MAX_BODY_CHARS),
        clean(&d.extra, MAX_BODY_CHARS)
    ])?;
    Ok(())
}

#[async_trait]
impl SearchIndex for SqliteStore {
    async fn index(&self, docs: &[SearchDoc]) -> Result<(), SearchError> {
        let docs = docs.to_vec();
        self.write(move |tx| docs.iter().try_for_each(|d| index_one(tx, d))).await.map_err(search_error)
    }

    async fn delete(&self, keys: &[String]) -> Result<(), SearchError> {
        let keys = keys.to_vec();
        self.write(move |tx| {
            let mut stmt = tx.prepare_cached("DELETE FROM search_docs WHERE key = ?1")?;
            keys.iter().try_for_each(|k| stmt.execute([k]).map(|_| ()))
        })
        .await
        .map_err(search_error)
    }

    async fn search(&self, query: &SearchQuery, page: &PageRequest) -> Result<SearchResults, SearchError> {
        let (query, page) = (query.clone(), page.clone());
        self.read(move |conn| search(conn, &query, &page)).await.map_err(search_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_become_quoted_strings() {
        let t = |s: &str| Term::new(s).unwrap();
        assert_eq!(fts_expr(&[t(r#"a"b"#), t("NEAR(x")], false), r#""a""b" "NEAR(x""#);
        assert_eq!(fts_expr(&[t("x"), t("title:y")], true), r#""x" OR "title:y""#);
    }

    #[test]
    fn marks_split_into_segments() {
        let s = segments("fix \u{1}rate\u{2} limiter \u{1}bug\u{2}");
        let got: Vec<_> = s.iter().map(|s| (s.text.as_str(), s.highlighted)).collect();
        assert_eq!(got, [("fix ", false), ("rate", true), (" limiter ", false), ("bug", true)]);
    }
}
