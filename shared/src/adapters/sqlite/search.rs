//! [`SearchIndex`] on SQLite FTS5, in the store's own database. The store's
//! writes index their entities through triggers (schema_v8.sql) in the
//! writing transaction; this file answers searches and takes documents
//! written directly through the port.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rusqlite::types::Value;
use rusqlite::{Connection, Row, params, params_from_iter};
use serde::{Deserialize, Serialize};

use super::fts_rank;
use super::store::SqliteStore;
use super::{parse_ts_opt, store_error, ts, ts_opt};
use crate::domain::{DocKind, FacetCount, Facets, RepoName, SearchDoc, SearchHit, SearchQuery, SearchResults, Term};
use crate::error::StoreError;
use crate::ports::{PageRequest, SearchError, SearchIndex, decode_cursor, encode_cursor};
use crate::services::search_docs::{MAX_TEXT_CHARS, clean_bounded, segments};

/// bm25 with the words' document counts given ([`fts_rank`], its column
/// weights: a title match counts most); a title equal to the query's words
/// (ASCII case aside) comes before all else (its score lowered by
/// [`EXACT_TITLE_BOOST`]). Its placeholders: the counts, the query's number
/// of phrases, the words.
const SCORE: &str = "octo_bm25(search_text, ?, ?) - CASE WHEN d.title = ? COLLATE NOCASE THEN 1e6 ELSE 0 END";
const EXACT_TITLE_BOOST: f64 = 1e6;
/// How far back, in spans of the candidates' ids, an exact title is looked for.
const PROBE_SPANS: i64 = 10;

/// An FTS5 string for a term: quoted, quotes doubled. Inside a string FTS5
/// sees no operator, column filter, prefix or NEAR: only words.
fn fts_string(t: &Term) -> String {
    format!("\"{}\"", t.as_str().replace('"', "\"\""))
}

/// The columns users' words are searched in (not `tags`).
const TEXT_COLUMNS: &str = "{title body extra}";

/// Whether a term may hold a token of the `tags` column (`r`, `a` or `s`
/// and hex digits, `c` and digits, as the tokenizer folds them): only such a
/// term needs the column filter that keeps it out of `tags`. The filter is
/// not free: a filtered phrase's count reads positions (a word in 457,000
/// documents: 16 ms, 9 ms unfiltered). Text that is not ASCII is filtered
/// (case and diacritic folding could make it a tag token).
fn may_be_a_tag(t: &Term) -> bool {
    let s = t.as_str();
    !s.is_ascii()
        || s.split(|c: char| !c.is_ascii_alphanumeric()).any(|w| {
            let w = w.as_bytes();
            !w.is_empty()
                && match w[0].to_ascii_lowercase() {
                    b'r' | b'a' | b's' => w[1..].iter().all(u8::is_ascii_hexdigit),
                    b'c' => w[1..].iter().all(u8::is_ascii_digit),
                    _ => false,
                }
        })
}

/// A term searched in the text columns: its FTS5 string, behind the column
/// filter when it could match a tag.
fn text_string(t: &Term) -> String {
    match may_be_a_tag(t) {
        true => format!("{TEXT_COLUMNS} : {}", fts_string(t)),
        false => fts_string(t),
    }
}

/// Terms searched in the text columns: `a AND b …` as FTS5's implicit AND
/// of strings, or `a OR b …`.
fn text_expr(terms: &[Term], or: bool) -> String {
    terms.iter().map(text_string).collect::<Vec<_>>().join(if or { " OR " } else { " " })
}

/// The `tags` token of a filter value (schema_v12.sql): a prefix and the value in hex.
fn tag(prefix: char, value: &str) -> String {
    format!("tags : \"{prefix}{}\"", hex::encode(value.as_bytes()))
}

/// A `created` month's tag (schema_v16.sql): `c` and the month as `YYYYMM`.
fn month_tag(month: &str) -> String {
    format!("tags : \"c{month}\"")
}

/// The FTS5 query of a search and its number of phrases: the words in the
/// text columns (first: [`fts_rank`] is given their counts), the
/// repository, author and state qualifiers and the `created` months as their
/// tags (the kind is tested on the row), excluded words (in the text columns)
/// after NOT. None when it has neither words nor those qualifiers.
fn fts_query(q: &SearchQuery, months: Option<&[String]>) -> Option<(String, usize)> {
    let tags: Vec<String> = [
        q.repo.as_ref().map(|r| tag('r', r.as_str())),
        q.author.as_deref().map(|a| tag('a', a)),
        q.state.as_deref().map(|s| tag('s', s)),
    ]
    .into_iter()
    .flatten()
    .collect();
    let months = months.unwrap_or_default();
    let phrases = q.include.len() + tags.len() + months.len() + q.exclude.len();
    let mut all = Vec::new();
    if !q.include.is_empty() {
        all.push(format!("({})", text_expr(&q.include, false)));
    }
    all.extend(tags);
    if !months.is_empty() {
        all.push(format!("({})", months.iter().map(|m| month_tag(m)).collect::<Vec<_>>().join(" OR ")));
    }
    if all.is_empty() {
        return None;
    }
    let matched = all.join(" AND ");
    Some(match q.exclude.is_empty() {
        true => (matched, phrases),
        false => (format!("({matched}) NOT ({})", text_expr(&q.exclude, true)), phrases),
    })
}

/// A search's `created` range through its months' tags when it spans at most
/// this many months that hold documents; a wider range is tested on the rows
/// alone (most rows pass it, so the walk is short).
const MONTHS_AS_TAGS: usize = 48;

/// The months (`YYYYMM`) of the documents' `created` times within the
/// search's range, from the months the index holds: None when the range is
/// open on both ends or spans more than [`MONTHS_AS_TAGS`] of them.
fn months(conn: &Connection, q: &SearchQuery) -> rusqlite::Result<Option<Vec<String>>> {
    let (from, until) = (&q.created.from, &q.created.until);
    if from.is_none() && until.is_none() {
        return Ok(None);
    }
    let first = from.map_or_else(String::new, |t| t.format("%Y%m").to_string());
    // `until` is exclusive: the month of its last millisecond.
    let last =
        until.map_or_else(|| "~".to_owned(), |t| (t - chrono::Duration::milliseconds(1)).format("%Y%m").to_string());
    let mut stmt = conn
        .prepare_cached("SELECT month FROM search_months WHERE month >= ?1 AND month <= ?2 ORDER BY month LIMIT ?3")?;
    let months = stmt
        .query_map(params![first, last, MONTHS_AS_TAGS as i64 + 1], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok((months.len() <= MONTHS_AS_TAGS).then_some(months))
}

/// The matching documents: the FTS5 query (a search with words) and the
/// conditions on the document row `d`, with their arguments.
struct Filter {
    fts: Option<String>,
    /// The FTS5 query's number of phrases.
    phrases: usize,
    /// Whether the search has words (ranked by bm25; else newest first).
    ranked: bool,
    conds: Vec<String>,
    args: Vec<Value>,
}

fn filter(q: &SearchQuery, months: Option<&[String]>) -> Filter {
    let mut conds = Vec::new();
    let mut args = Vec::new();
    // Qualifiers as tags and excluded words as FTS5's own NOT: doclists
    // merged, not every match of a word joined to its row to be tested.
    // Without words, a repository, author, state or created qualifier still
    // drives the search from its tags' doclists (newest first), not a walk
    // of the documents testing each row.
    let fts = fts_query(q, months);
    if fts.is_none() && !q.exclude.is_empty() {
        conds.push("d.id NOT IN (SELECT rowid FROM search_text WHERE search_text MATCH ?)".to_owned());
        args.push(Value::Text(text_expr(&q.exclude, true)));
    }
    let mut eq = |col: &str, v: Option<String>| {
        if let Some(v) = v {
            conds.push(format!("{col} = ?"));
            args.push(Value::Text(v));
        }
    };
    eq("d.repo", q.repo.as_ref().map(|r| r.as_str().to_owned()));
    eq("d.author", q.author.clone());
    eq("d.state", q.state.clone());
    eq("d.kind", q.kind.map(|k| k.as_str().to_owned()));
    // The exact bounds (a month's tag holds the whole month).
    if let Some(from) = &q.created.from {
        conds.push("d.created_at >= ?".to_owned());
        args.push(Value::Text(ts(from)));
    }
    if let Some(until) = &q.created.until {
        conds.push("d.created_at < ?".to_owned());
        args.push(Value::Text(ts(until)));
    }
    let (fts, phrases) = fts.map_or((None, 0), |(f, n)| (Some(f), n));
    Filter { fts, phrases, ranked: !q.include.is_empty(), conds, args }
}

impl Filter {
    fn ranked(&self) -> bool {
        self.ranked
    }

    /// ` AND …` of the row conditions.
    fn and_conds(&self) -> String {
        self.conds.iter().map(|c| format!(" AND {c}")).collect()
    }
}

/// The number of documents holding each of a search's words, for its
/// ranking ([`fts_rank`]): counted in the search's snapshot, and kept for
/// [`COUNT_KEPT_FOR`] when at least [`COUNT_KEPT_FROM`] (counting a common
/// word reads its whole doclist: ≈ 9 ms for one in 457,000 documents; a
/// rarer word is counted each time, cheaply and exactly). A kept count is
/// at most that old: the ranking of common words drifts by a few minutes'
/// writes at most, which moves an IDF of ln(N/n) hardly at all.
#[derive(Clone, Default)]
pub(super) struct DocCounts(Arc<Mutex<HashMap<String, (u64, Instant)>>>);

const COUNT_KEPT_FROM: u64 = 1_000;
const COUNT_KEPT_FOR: Duration = Duration::from_secs(600);
/// At most this many counts are kept; when full, the expired ones go, and
/// all of them if none has.
const COUNTS_KEPT: usize = 4_096;

impl DocCounts {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (u64, Instant)>> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The documents matching `phrase` (an FTS5 query of one phrase).
    fn count(&self, conn: &Connection, phrase: &str) -> rusqlite::Result<u64> {
        if let Some((n, at)) = self.lock().get(phrase)
            && at.elapsed() < COUNT_KEPT_FOR
        {
            return Ok(*n);
        }
        let n: i64 = conn
            .prepare_cached("SELECT count(*) FROM search_text WHERE search_text MATCH ?1")?
            .query_row([phrase], |r| r.get(0))?;
        let n = u64::try_from(n).unwrap_or(0);
        if n >= COUNT_KEPT_FROM {
            let mut kept = self.lock();
            if kept.len() >= COUNTS_KEPT {
                kept.retain(|_, (_, at)| at.elapsed() < COUNT_KEPT_FOR);
                if kept.len() >= COUNTS_KEPT {
                    kept.clear();
                }
            }
            kept.insert(phrase.to_owned(), (n, Instant::now()));
        }
        Ok(n)
    }
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

/// The set of matches a search ranks and counts, fixed by its first page so
/// that later pages read the same set: the matches with ids in `lo..=hi`
/// (`hi` the newest match then, `lo` the oldest of the `exact_up_to` newest,
/// 0 when the match held no more), and whether that was every match.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
struct Candidates {
    lo: i64,
    hi: i64,
    exact: bool,
}

/// A page's cursor: the last result's rank and the candidate set. The score
/// is kept as its bits: a decimal in JSON need not read back as the same
/// double, and a score one unit off would skip (or repeat) its equals.
#[derive(Debug, Serialize, Deserialize)]
struct Cursor {
    score: u64,
    id: i64,
    set: Candidates,
}

/// The candidates' ranks and facets: the newest `cap` matches (within the
/// set's bounds when a cursor gives them), each with its score.
struct Ranked {
    ranks: Vec<Rank>,
    facets: Facets,
    set: Candidates,
}

/// The words of a ranked search as one string (the exact-title comparison).
fn words(q: &SearchQuery) -> String {
    q.include.iter().map(Term::as_str).collect::<Vec<_>>().join(" ")
}

fn rank_and_count(
    conn: &Connection,
    q: &SearchQuery,
    f: &Filter,
    counts: &DocCounts,
    set: Option<Candidates>,
    cap: usize,
) -> Result<Ranked, StoreError> {
    let (lo, hi) = set.map_or((0, i64::MAX), |s| (s.lo, s.hi));
    let mut args = Vec::new();
    // Newest first and no further than the cap (+1, to know whether there
    // is more): FTS5 walks the match in descending rowid order and stops;
    // bm25 is computed for the rows produced only.
    let sql = match &f.fts {
        Some(fts) => {
            // The score's placeholders come first in the statement's text.
            let score = if f.ranked {
                let n =
                    q.include.iter().map(|t| counts.count(conn, &text_string(t))).collect::<rusqlite::Result<Vec<_>>>();
                args.push(Value::Blob(fts_rank::counts_blob(&n.map_err(store_error)?)));
                args.push(Value::Integer(f.phrases as i64));
                args.push(Value::Text(words(q)));
                SCORE
            } else {
                "0.0"
            };
            args.push(Value::Text(fts.clone()));
            format!(
                "SELECT d.id, d.kind, d.repo, d.author, d.state, {score}
                 FROM search_text CROSS JOIN search_docs d ON d.id = search_text.rowid
                 WHERE search_text MATCH ? AND search_text.rowid >= ? AND search_text.rowid <= ?{}
                 ORDER BY search_text.rowid DESC LIMIT ?",
                f.and_conds()
            )
        }
        // `+d.id`: the bounds are no index constraint, so that the repository's
        // or the kind's index (repo, id) / (kind, id) is chosen when given
        // (newest first in it), not a walk of every document by id.
        None => format!(
            "SELECT d.id, d.kind, d.repo, d.author, d.state, 0.0 FROM search_docs d
             WHERE +d.id >= ? AND +d.id <= ?{} ORDER BY d.id DESC LIMIT ?",
            f.and_conds()
        ),
    };
    args.push(Value::Integer(lo));
    args.push(Value::Integer(hi));
    args.extend(f.args.iter().cloned());
    args.push(Value::Integer(cap.saturating_add(1).min(i64::MAX as usize) as i64));
    let mut stmt = conn.prepare_cached(&sql).map_err(store_error)?;
    let mut rows = stmt.query(params_from_iter(args.iter())).map_err(store_error)?;
    let (mut kind, mut repo, mut author, mut state) =
        (Tally::default(), Tally::default(), Tally::default(), Tally::default());
    let mut ranks = Vec::new();
    let mut capped = false;
    while let Some(r) = rows.next().map_err(store_error)? {
        if ranks.len() == cap {
            capped = true;
            break;
        }
        kind.add(text(r, 1).map_err(store_error)?);
        repo.add(text(r, 2).map_err(store_error)?);
        author.add(text(r, 3).map_err(store_error)?);
        state.add(text(r, 4).map_err(store_error)?);
        ranks.push(Rank { id: r.get(0).map_err(store_error)?, score: r.get(5).map_err(store_error)? });
    }
    drop(rows);
    let set = set.unwrap_or(Candidates {
        lo: if capped { ranks.last().map_or(0, |r| r.id) } else { 0 },
        hi: ranks.first().map_or(0, |r| r.id),
        exact: !capped,
    });
    if let (Some(fts), true, false) = (&f.fts, f.ranked, set.exact) {
        // Beyond the cap, a title equal to the query's words still comes
        // first: the older matches whose title starts with the words (the
        // newest `cap` of them, within ten times the candidates' span of ids:
        // a phrase rarely at a title's start would otherwise be looked for
        // through the whole index) are compared, and the equal ones added,
        // after those among the candidates, newest first.
        let probe = format!("({fts}) AND (title : ^ \"{}\")", words(q).replace('"', "\"\""));
        let reach = set.lo.saturating_sub(set.hi.saturating_sub(set.lo).saturating_add(1).saturating_mul(PROBE_SPANS));
        let sql = format!(
            "SELECT d.id, d.kind, d.repo, d.author, d.state
             FROM (SELECT rowid AS id FROM search_text WHERE search_text MATCH ? AND rowid < ? AND rowid >= ?
                   ORDER BY rowid DESC LIMIT ?) p
             CROSS JOIN search_docs d ON d.id = p.id
             WHERE d.title = ? COLLATE NOCASE{}",
            f.and_conds()
        );
        let mut args = vec![
            Value::Text(probe),
            Value::Integer(set.lo),
            Value::Integer(reach),
            Value::Integer(cap.min(i64::MAX as usize) as i64),
            Value::Text(words(q)),
        ];
        args.extend(f.args.iter().cloned());
        let mut stmt = conn.prepare_cached(&sql).map_err(store_error)?;
        let mut rows = stmt.query(params_from_iter(args.iter())).map_err(store_error)?;
        while let Some(r) = rows.next().map_err(store_error)? {
            kind.add(text(r, 1).map_err(store_error)?);
            repo.add(text(r, 2).map_err(store_error)?);
            author.add(text(r, 3).map_err(store_error)?);
            state.add(text(r, 4).map_err(store_error)?);
            ranks.push(Rank { id: r.get(0).map_err(store_error)?, score: -EXACT_TITLE_BOOST });
        }
    }
    let facets = Facets {
        kind: kind.counts(None),
        repository: repo.counts(Some(10)),
        author: author.counts(Some(10)),
        state: state.counts(None),
    };
    Ok(Ranked { ranks, facets, set })
}

fn search(
    conn: &Connection,
    q: &SearchQuery,
    page: &PageRequest,
    counts: &DocCounts,
    cap: usize,
) -> Result<SearchResults, StoreError> {
    // One snapshot for the ranking pass and the page's details.
    let tx = conn.unchecked_transaction().map_err(store_error)?;
    let conn = &*tx;
    let cursor = page.cursor.as_deref().map(decode_cursor::<Cursor>).transpose()?;
    let months = months(conn, q).map_err(store_error)?;
    if months.as_ref().is_some_and(Vec::is_empty) {
        // No document was created in the range.
        return Ok(SearchResults {
            items: Vec::new(),
            next_cursor: None,
            total: 0,
            total_is_exact: true,
            facets: Facets::default(),
        });
    }
    let f = filter(q, months.as_deref());
    let Ranked { mut ranks, facets, set } = rank_and_count(conn, q, &f, counts, cursor.as_ref().map(|c| c.set), cap)?;
    let total = ranks.len() as u64;
    if let Some(c) = &cursor {
        let after = Rank { score: f64::from_bits(c.score), id: c.id };
        ranks.retain(|r| *r > after);
    }
    ranks.sort_unstable();
    let more = ranks.len() > page.limit;
    let ranks = &ranks[..ranks.len().min(page.limit)];
    // Highlights and snippets for the page's documents only.
    let sql = if f.ranked() {
        "SELECT d.key, d.kind, d.repo, d.author, d.state, d.created_at, d.title,
                highlight(search_text, 0, char(1), char(2)), snippet(search_text, -1, char(1), char(2), '…', 24)
         FROM search_text CROSS JOIN search_docs d ON d.id = search_text.rowid
         WHERE search_text MATCH ?1 AND search_text.rowid = ?2"
    } else {
        "SELECT d.key, d.kind, d.repo, d.author, d.state, d.created_at, d.title,
                d.title, substr(CASE WHEN d.body = '' THEN d.extra ELSE d.body END, 1, 160)
         FROM search_docs d WHERE ?1 IS NULL AND d.id = ?2"
    };
    let matched = f.ranked().then(|| text_expr(&q.include, false));
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
    let next_cursor = if more {
        ranks.last().map(|r| encode_cursor(&Cursor { score: r.score.to_bits(), id: r.id, set }))
    } else {
        None
    };
    Ok(SearchResults { items, next_cursor, total, total_is_exact: set.exact, facets })
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
    /// Searches rank and count at most the newest `n` matches (at least 1);
    /// the default is [`SEARCH_EXACT_UP_TO`](crate::domain::SEARCH_EXACT_UP_TO).
    pub fn with_search_exact_up_to(mut self, n: usize) -> Self {
        self.search_exact_up_to = n.max(1);
        self
    }

    fn search_exact_up_to(&self) -> usize {
        self.search_exact_up_to
    }

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
        let (cap, counts) = (self.search_exact_up_to(), self.search_counts.clone());
        self.scan_read(move |conn| search(conn, &query, &page, &counts, cap)).await.map_err(search_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_become_quoted_strings() {
        let t = |s: &str| Term::new(s).unwrap();
        assert_eq!(text_expr(&[t(r#"a"b"#), t("NEAR(x")], false), r#"{title body extra} : "a""b" "NEAR(x""#);
        assert_eq!(text_expr(&[t("x"), t("title:y")], true), r#""x" OR "title:y""#);
    }

    #[test]
    fn the_phrase_count_given_to_the_ranking_is_fts5s() {
        // octo_bm25 uses the given counts only when the phrase count agrees
        // with FTS5's; else it counts itself (the score then bm25's, > 0).
        let conn = Connection::open_in_memory().unwrap();
        fts_rank::register(&conn).unwrap();
        conn.execute_batch(
            "CREATE VIRTUAL TABLE search_text USING fts5(title, body, extra, tags);
             INSERT INTO search_text VALUES ('fix the cache', '', '', 'r612f62 a62 s6f70656e c203001');
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20)
             INSERT INTO search_text SELECT 'other ' || i, '', '', 'r612f62' FROM n;",
        )
        .unwrap();
        let q = SearchQuery::parse("fix \"the cache\" repo:a/b author:b is:open -flaky -\"no way\"").unwrap();
        let months = ["203001".to_owned(), "203002".to_owned()];
        let (fts, phrases) = fts_query(&q, Some(&months)).unwrap();
        // Every word said to be in every document: an IDF of 1e-6, a score of ≈ 0.
        let everywhere = fts_rank::counts_blob(&[1_000_000, 1_000_000]);
        let score = |n: usize| -> f64 {
            conn.query_row(
                "SELECT octo_bm25(search_text, ?2, ?3) FROM search_text WHERE search_text MATCH ?1",
                params![fts, everywhere, n as i64],
                |r| r.get(0),
            )
            .unwrap()
        };
        assert!(score(phrases).abs() < 1e-4, "{fts}: {phrases} phrases given, FTS5 counts another number");
        assert!(score(phrases + 1).abs() > 1e-2, "the fallback is not taken on a wrong count");
    }

    #[test]
    fn only_terms_that_could_be_tags_are_kept_out_of_the_tags_column() {
        let t = |s: &str| Term::new(s).unwrap();
        for tagged in ["a", "A", "s", "read", "r6163", "fix a bug", "add", "é", "ａ", "c", "C202610", "c 2"] {
            assert!(may_be_a_tag(&t(tagged)), "{tagged}");
            assert_eq!(text_string(&t(tagged)), format!("{TEXT_COLUMNS} : {}", fts_string(&t(tagged))));
        }
        for plain in ["fix", "limiter", "rebase", "r6163x", "sx", "fix the bug", "b1", "cache", "cafe", "c3po"] {
            assert!(!may_be_a_tag(&t(plain)), "{plain}");
            assert_eq!(text_string(&t(plain)), fts_string(&t(plain)));
        }
    }
}
