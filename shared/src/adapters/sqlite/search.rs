//! [`SearchIndex`] on SQLite FTS5, in the store's own database. The store's
//! writes index their entities through triggers (schema_v8.sql) in the
//! writing transaction; this file answers searches and takes documents
//! written directly through the port.

use std::collections::HashMap;

use async_trait::async_trait;
use rusqlite::types::Value;
use rusqlite::{Connection, Row, params, params_from_iter};

use super::store::SqliteStore;
use super::{parse_ts_opt, store_error, ts, ts_opt};
use crate::domain::{DocKind, FacetCount, Facets, RepoName, SearchDoc, SearchHit, SearchQuery, SearchResults, Term};
use crate::error::StoreError;
use crate::ports::{PageRequest, SearchError, SearchIndex, decode_cursor, encode_cursor};
use crate::services::search_docs::{MAX_TEXT_CHARS, clean_bounded, segments};

/// bm25 weights of the columns title, body, extra: a title match counts most;
/// a title equal to the query's words (ASCII case aside) comes before all else.
const SCORE: &str = "bm25(search_text, 10.0, 2.0, 1.0, 0.0) - CASE WHEN d.title = ? COLLATE NOCASE THEN 1e6 ELSE 0 END";

/// An FTS5 string for a term: quoted, quotes doubled. Inside a string FTS5
/// sees no operator, column filter, prefix or NEAR: only words.
fn fts_string(t: &Term) -> String {
    format!("\"{}\"", t.as_str().replace('"', "\"\""))
}

/// `a AND b …` as FTS5 implicit AND of strings, or `a OR b …`.
fn fts_expr(terms: &[Term], or: bool) -> String {
    terms.iter().map(fts_string).collect::<Vec<_>>().join(if or { " OR " } else { " " })
}

/// The columns users' words are searched in (not `tags`).
const TEXT_COLUMNS: &str = "{title body extra}";

/// The `tags` token of a filter value (schema_v12.sql): a prefix and the value in hex.
fn tag(prefix: char, value: &str) -> String {
    format!("tags : \"{prefix}{}\"", hex::encode(value.as_bytes()))
}

/// The FTS5 query of a search with words: the words in the text columns,
/// the repository, author and state qualifiers as their tags (the kind is
/// tested on the row), excluded words (in the text columns) after NOT.
fn fts_query(q: &SearchQuery) -> String {
    let mut all = vec![format!("{TEXT_COLUMNS} : ({})", fts_expr(&q.include, false))];
    if let Some(r) = &q.repo {
        all.push(tag('r', r.as_str()));
    }
    if let Some(a) = &q.author {
        all.push(tag('a', a));
    }
    if let Some(s) = &q.state {
        all.push(tag('s', s));
    }
    let matched = all.join(" AND ");
    match q.exclude.is_empty() {
        true => matched,
        false => format!("({matched}) NOT ({TEXT_COLUMNS} : ({}))", fts_expr(&q.exclude, true)),
    }
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
    // CROSS JOIN: the full-text match drives, never an index on a filter
    // column (which would run the match once per row of, say, a repository).
    let from = if ranked {
        w.push("search_text MATCH ?".to_owned());
        // Qualifiers as tags and excluded words as FTS5's own NOT: doclists
        // merged, not every match of a word joined to its row to be tested.
        args.push(Value::Text(fts_query(q)));
        "FROM search_text CROSS JOIN search_docs d ON d.id = search_text.rowid"
    } else {
        "FROM search_docs d"
    };
    if !ranked && !q.exclude.is_empty() {
        w.push("d.id NOT IN (SELECT rowid FROM search_text WHERE search_text MATCH ?)".to_owned());
        args.push(Value::Text(format!("{TEXT_COLUMNS} : ({})", fts_expr(&q.exclude, true))));
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

/// A match's place in the ranking: lower scores first (bm25 is negative,
/// better is lower), then newer documents (higher ids) first.
#[derive(Clone, Copy, Debug)]
struct Rank {
    score: f64,
    id: i64,
}

impl PartialEq for Rank {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}
impl Eq for Rank {}
impl PartialOrd for Rank {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Rank {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.score.total_cmp(&other.score).then(other.id.cmp(&self.id))
    }
}

/// Counts of one facet's values.
#[derive(Default)]
struct Tally(HashMap<String, u64>);

impl Tally {
    fn add(&mut self, v: Option<&str>) {
        if let Some(v) = v {
            match self.0.get_mut(v) {
                Some(n) => *n += 1,
                None => {
                    self.0.insert(v.to_owned(), 1);
                }
            }
        }
    }

    /// Most frequent first, then by value; the first `top` when given.
    fn counts(self, top: Option<usize>) -> Vec<FacetCount> {
        let mut v: Vec<FacetCount> = self.0.into_iter().map(|(value, count)| FacetCount { value, count }).collect();
        v.sort_unstable_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
        v.truncate(top.unwrap_or(usize::MAX));
        v
    }
}

/// A text column borrowed from the row (NULL and non-text as None).
fn text<'r>(r: &'r Row, i: usize) -> rusqlite::Result<Option<&'r str>> {
    match r.get_ref(i)? {
        rusqlite::types::ValueRef::Text(t) => Ok(std::str::from_utf8(t).ok()),
        _ => Ok(None),
    }
}

/// One pass over every match: the facets and the total of the whole match,
/// and the page's ranks (those after `after`, best first, `limit` of them).
fn rank_and_count(
    conn: &Connection,
    q: &SearchQuery,
    f: &Filter,
    after: Option<Rank>,
    limit: usize,
) -> Result<(Vec<Rank>, Facets, u64), StoreError> {
    let mut args = Vec::new();
    let score = if f.ranked {
        // The score's placeholder comes first in the statement's text.
        let words: Vec<&str> = q.include.iter().map(Term::as_str).collect();
        args.push(Value::Text(words.join(" ")));
        SCORE
    } else {
        "0.0"
    };
    args.extend(f.args.iter().cloned());
    let sql = format!("SELECT d.id, d.kind, d.repo, d.author, d.state, {score} {}", f.from_where);
    let mut stmt = conn.prepare_cached(&sql).map_err(store_error)?;
    let mut rows = stmt.query(params_from_iter(args.iter())).map_err(store_error)?;
    let (mut kind, mut repo, mut author, mut state) =
        (Tally::default(), Tally::default(), Tally::default(), Tally::default());
    let mut total = 0u64;
    // The best `limit` ranks after the cursor, worst on top.
    let mut page = std::collections::BinaryHeap::with_capacity(limit + 1);
    while let Some(r) = rows.next().map_err(store_error)? {
        total += 1;
        kind.add(text(r, 1).map_err(store_error)?);
        repo.add(text(r, 2).map_err(store_error)?);
        author.add(text(r, 3).map_err(store_error)?);
        state.add(text(r, 4).map_err(store_error)?);
        let rank = Rank { id: r.get(0).map_err(store_error)?, score: r.get(5).map_err(store_error)? };
        if after.is_some_and(|a| rank <= a) {
            continue;
        }
        if page.len() < limit {
            page.push(rank);
        } else if page.peek().is_some_and(|worst| rank < *worst) {
            page.pop();
            page.push(rank);
        }
    }
    let facets = Facets {
        kind: kind.counts(None),
        repository: repo.counts(Some(10)),
        author: author.counts(Some(10)),
        state: state.counts(None),
    };
    Ok((page.into_sorted_vec(), facets, total))
}

fn search(conn: &Connection, q: &SearchQuery, page: &PageRequest) -> Result<SearchResults, StoreError> {
    // One snapshot for the ranking pass and the page's details.
    let tx = conn.unchecked_transaction().map_err(store_error)?;
    let conn = &*tx;
    let f = filter(q);
    let after = match &page.cursor {
        Some(c) => {
            let (score, id): (f64, i64) = decode_cursor(c)?;
            Some(Rank { score, id })
        }
        None => None,
    };
    let (ranks, facets, total) = rank_and_count(conn, q, &f, after, page.limit + 1)?;
    let more = ranks.len() > page.limit;
    let ranks = &ranks[..ranks.len().min(page.limit)];
    // Highlights and snippets for the page's documents only.
    let sql = if f.ranked {
        "SELECT d.key, d.kind, d.repo, d.author, d.state, d.created_at, d.title,
                highlight(search_text, 0, char(1), char(2)), snippet(search_text, -1, char(1), char(2), '…', 24)
         FROM search_text CROSS JOIN search_docs d ON d.id = search_text.rowid
         WHERE search_text MATCH ?1 AND search_text.rowid = ?2"
    } else {
        "SELECT d.key, d.kind, d.repo, d.author, d.state, d.created_at, d.title,
                d.title, substr(CASE WHEN d.body = '' THEN d.extra ELSE d.body END, 1, 160)
         FROM search_docs d WHERE ?1 IS NULL AND d.id = ?2"
    };
    let matched = f.ranked.then(|| format!("{TEXT_COLUMNS} : ({})", fts_expr(&q.include, false)));
    let mut stmt = conn.prepare_cached(sql).map_err(store_error)?;
    let mut items = Vec::with_capacity(ranks.len());
    for rank in ranks {
        let hit = stmt
            .query_row(params![matched, rank.id], |r| {
                let kind: String = r.get(1)?;
                let repo: Option<String> = r.get(2)?;
                Ok(SearchHit {
                    key: r.get(0)?,
                    kind: DocKind::parse(&kind).ok_or_else(|| bad_text(1, &kind))?,
                    repo: repo.map(|s| RepoName::parse(&s).map_err(|_| bad_text(2, &s))).transpose()?,
                    author: r.get(3)?,
                    state: r.get(4)?,
                    created_at: parse_ts_opt(r.get(5)?)?,
                    title: r.get(6)?,
                    title_segments: segments(&r.get::<_, String>(7)?),
                    snippet: segments(&r.get::<_, Option<String>>(8)?.unwrap_or_default()),
                })
            })
            .map_err(store_error)?;
        items.push(hit);
    }
    let next_cursor = if more { ranks.last().map(|r| encode_cursor(&(r.score, r.id))) } else { None };
    Ok(SearchResults { items, next_cursor, total, facets })
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

/// Have the triggers write the documents of what `touch` updates again:
/// `touch` names columns without changing them, which alone rewrites nothing
/// (`schema_v14.sql`); inside this call every update rewrites its document.
pub(super) fn rewrite_documents(
    tx: &Connection,
    touch: impl FnOnce(&Connection) -> rusqlite::Result<()>,
) -> rusqlite::Result<()> {
    tx.execute("INSERT INTO search_rewrite (id) VALUES (1)", [])?;
    touch(tx)?;
    tx.execute("DELETE FROM search_rewrite", [])?;
    Ok(())
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
        clean_bounded(&d.title, MAX_TEXT_CHARS),
        clean_bounded(&d.body, MAX_TEXT_CHARS),
        clean_bounded(&d.extra, MAX_TEXT_CHARS)
    ])?;
    Ok(())
}

impl SqliteStore {
    /// Rebuild the search index from the entity tables (`octoscope reindex`):
    /// every document dropped, then every row touched so that the same
    /// triggers that index the store's writes index it again, in one
    /// transaction (a search sees the old index or the new one). The number
    /// of documents indexed.
    pub async fn rebuild_search(&self) -> Result<u64, StoreError> {
        self.write(|tx| {
            tx.execute("DELETE FROM search_docs", [])?;
            rewrite_documents(tx, |tx| {
                for touch in [
                    "UPDATE repos SET deleted = deleted",
                    "UPDATE teams SET deleted = deleted",
                    "UPDATE org_members SET present = present",
                    "UPDATE pull_requests SET title = title",
                    "UPDATE reviews SET state = state",
                    "UPDATE commits SET message = message",
                ] {
                    tx.execute(touch, [])?;
                }
                Ok(())
            })?;
            tx.execute("INSERT INTO search_text (search_text) VALUES ('optimize')", [])?;
            tx.query_row("SELECT count(*) FROM search_docs", [], |r| r.get::<_, i64>(0)).map(|n| n as u64)
        })
        .await
    }
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
        self.scan_read(move |conn| search(conn, &query, &page)).await.map_err(search_error)
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
}
