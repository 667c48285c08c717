//! [`SearchIndex`] on OpenSearch (Amazon OpenSearch Service on AWS): one
//! index of [`SearchDoc`]s with explicit mappings, written with `_bulk` under
//! external versions, searched with a query built from the typed
//! [`SearchQuery`] — no user text ever reaches a query parser
//! (`query_string` and `simple_query_string` are not used). Requests go out
//! on the AWS SDK's HTTPS client; to AWS they are signed with SigV4 (service
//! `es`) from the SDK's credentials (`opensearch_http.rs`).
//!
//! It gives what the SQLite adapter gives (shared/docs/search.md): the same
//! tokens (words of letters and digits, case and diacritics folded), every
//! term a phrase that must occur in one field, a title equal to the query's
//! words first, then BM25 over title ×10, body ×2 and other words; without
//! words the newest first; facets over the whole match, the total exact up
//! to a bound (`track_total_hits`) and a lower bound beyond;
//! highlights as plain-text segments. It was tested against osmem-server
//! 0.1.6, an in-memory OpenSearch, not a real cluster; the forms chosen
//! where osmem differs from OpenSearch are noted where they are used.

use std::time::Duration;

use anyhow::{Context as _, anyhow};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::domain::{
    DocKind, FacetCount, Facets, RepoName, SEARCH_EXACT_UP_TO, SearchDoc, SearchHit, SearchQuery, SearchResults,
    Segment, Term,
};
use crate::ports::{PageRequest, SearchError, SearchIndex, decode_cursor, encode_cursor};
use crate::services::search_docs::{
    HIGHLIGHT_CLOSE, HIGHLIGHT_OPEN, MAX_TEXT_CHARS, clean_bounded, segments, version_of,
};

// The index's census for the integrity check (`IndexCensus`).
#[path = "opensearch_census.rs"]
mod census;
// The HTTP requests, signed for AWS (adapters/opensearch_http.rs).
use super::opensearch_http::{Answer, Http, Method};

/// The index name when none is configured.
pub const DEFAULT_INDEX: &str = "octoscope-search";
/// A ranked search pages through at most this many matches (OpenSearch's
/// `index.max_result_window`); the facets still count them all.
pub const MAX_RANKED_RESULTS: usize = 10_000;
/// The boost that puts a title equal to the query's words before any BM25 score.
const EXACT_TITLE_BOOST: f64 = 1e6;
/// The longest title (in characters) kept for the exact-title comparison;
/// a query holds at most 512 characters, so a longer title cannot equal it.
const EXACT_TITLE_CHARS: usize = 1024;
/// Characters of a snippet: the highlighted passage, or the start of the
/// body (or other words) when the query has no words.
const SNIPPET_CHARS: usize = 160;
/// A `_bulk` request holds documents up to about this many bytes (the
/// smallest Amazon OpenSearch Service instances take 10 MiB a request).
const BULK_BYTES: usize = 5 << 20;
/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A search index on OpenSearch.
#[derive(Clone)]
pub struct OpenSearchIndex {
    client: Http,
    index: String,
    refresh: bool,
    /// `track_total_hits`: the total is exact up to this many matches.
    exact_up_to: usize,
}

impl std::fmt::Debug for OpenSearchIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenSearchIndex").field("index", &self.index).field("refresh", &self.refresh).finish()
    }
}

fn internal(e: impl Into<anyhow::Error>) -> SearchError {
    SearchError::Internal(e.into())
}

/// The index name OpenSearch accepts: lowercase, no `\ / * ? " < > | , #`,
/// space or `:`, not starting with `-`, `_` or `+`, at most 255 bytes.
fn check_index_name(name: &str) -> Result<(), SearchError> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && name != "."
        && name != ".."
        && !name.starts_with(['-', '_', '+'])
        && name.chars().all(|c| !c.is_uppercase() && !c.is_whitespace() && !"\\/*?\"<>|,#:".contains(c));
    if ok { Ok(()) } else { Err(internal(anyhow!("{name:?} is not an OpenSearch index name"))) }
}

impl OpenSearchIndex {
    fn with_transport(url: &str, index: &str, sdk: Option<&aws_config::SdkConfig>) -> Result<Self, SearchError> {
        check_index_name(index)?;
        // The SDK's HTTPS client (rustls with ring, no proxy), signing with `sdk`'s credentials if given.
        let client =
            Http::new(url, sdk, REQUEST_TIMEOUT).context("building the OpenSearch client").map_err(internal)?;
        Ok(Self { client, index: index.to_owned(), refresh: false, exact_up_to: SEARCH_EXACT_UP_TO })
    }

    /// The index `index` on the OpenSearch at `url`, requests unsigned (a
    /// local OpenSearch, osmem-server in tests).
    pub fn new(url: &str, index: &str) -> Result<Self, SearchError> {
        Self::with_transport(url, index, None)
    }

    /// The index `index` on the Amazon OpenSearch Service domain at
    /// `endpoint` (`https://search-….es.amazonaws.com`), each request signed
    /// with SigV4 for the service `es` with `sdk`'s credentials and region
    /// (in a Lambda function: `adapters::aws::lambda_sdk_config()`).
    pub fn aws(sdk: &aws_config::SdkConfig, endpoint: &str, index: &str) -> Result<Self, SearchError> {
        Self::with_transport(endpoint, index, Some(sdk))
    }

    /// The index at an endpoint from the configuration: an `https://`
    /// endpoint (Amazon OpenSearch Service) signed as [`aws`](Self::aws); a
    /// plain `http://` one (the configuration admits it on loopback only: a
    /// local engine) unsigned.
    pub fn at(sdk: &aws_config::SdkConfig, endpoint: &str, index: &str) -> Result<Self, SearchError> {
        match endpoint.starts_with("https://") {
            true => Self::aws(sdk, endpoint, index),
            false => Self::new(endpoint, index),
        }
    }

    /// Writes refresh the index before they return, so what was written is
    /// searchable at once (tests; on a cluster the index refreshes each second).
    pub fn refreshing(mut self) -> Self {
        self.refresh = true;
        self
    }

    /// Searches count matches exactly up to `n` (at least 1; `track_total_hits`);
    /// beyond, `total` is `n` and `total_is_exact` false. The default is
    /// [`SEARCH_EXACT_UP_TO`], as on SQLite.
    pub fn exact_up_to(mut self, n: usize) -> Self {
        self.exact_up_to = n.max(1);
        self
    }

    pub fn index_name(&self) -> &str {
        &self.index
    }

    /// The index's settings and mappings ([`ensure_index`](Self::ensure_index)).
    ///
    /// Words are runs of letters and digits (a `pattern` tokenizer in match
    /// mode, `group: 0`), lowercased and folded to ASCII: SQLite's
    /// `unicode61 remove_diacritics 2`, where `limiter's` is `limiter` `s`.
    /// (osmem-server 0.1.6 indexes the *separators* of a split-mode pattern
    /// or `char_group` tokenizer; match mode tokenizes the same on both.)
    /// `title_exact` is the title in ASCII lowercase, written by this
    /// adapter: the exact-title rank is ASCII case-insensitive like SQLite's
    /// `COLLATE NOCASE`, which no normalizer osmem applies can express.
    pub fn index_definition() -> Value {
        let text = json!({"type": "text", "analyzer": "octoscope_words"});
        let keyword = json!({"type": "keyword"});
        json!({
            "settings": {
                // A replica only when a second data node can hold it: the smallest
                // domain (one node) stays green, a larger one keeps a copy.
                "index": {"number_of_shards": 1, "auto_expand_replicas": "0-1", "max_result_window": MAX_RANKED_RESULTS},
                "analysis": {
                    "tokenizer": {"octoscope_words": {"type": "pattern", "pattern": "[\\p{L}\\p{N}]+", "group": 0}},
                    "analyzer": {"octoscope_words": {
                        "type": "custom", "tokenizer": "octoscope_words", "filter": ["lowercase", "asciifolding"]
                    }}
                }
            },
            "mappings": {
                "dynamic": "strict",
                "properties": {
                    "key": keyword, "kind": keyword, "repo": keyword, "author": keyword, "state": keyword,
                    "created_at": {"type": "date"},
                    "version": {"type": "long"},
                    "title": text, "body": text, "extra": text,
                    "title_exact": {"type": "keyword", "ignore_above": EXACT_TITLE_CHARS},
                    "preview": {"type": "keyword", "index": false, "doc_values": false}
                }
            }
        })
    }

    /// Create the index with its settings and mappings unless it exists.
    pub async fn ensure_index(&self) -> Result<(), SearchError> {
        let path = format!("/{}", self.index);
        let exists = self
            .client
            .send(Method::Head, &path, None)
            .await
            .context("asking OpenSearch whether the index exists")
            .map_err(SearchError::Unavailable)?;
        match exists.status {
            200 => return Ok(()),
            404 => {}
            _ => return Err(status_error(exists, "asking whether the index exists")),
        }
        let definition = serde_json::to_vec(&Self::index_definition()).map_err(internal)?;
        let created = self
            .client
            .send(Method::Put, &path, Some(definition))
            .await
            .context("creating the OpenSearch index")
            .map_err(SearchError::Unavailable)?;
        if created.is_success() {
            return Ok(());
        }
        // Created meanwhile by another process.
        let body = created.text();
        if created.status == 400 && body.contains("resource_already_exists_exception") {
            return Ok(());
        }
        Err(classify(created.status, anyhow::Error::new(HttpAnswer { status: created.status, body: bounded(&body) }))
            .context_into("creating the index"))
    }

    /// Send `_bulk` requests of `lines` (action and source lines), at most
    /// about [`BULK_BYTES`] each; every item must succeed or be a version
    /// conflict (a write older than the indexed document: nothing to do) or,
    /// for a delete, a document already gone.
    async fn bulk(&self, lines: Vec<Vec<u8>>, what: &'static str) -> Result<(), SearchError> {
        let mut batch = Vec::new();
        let mut bytes = 0;
        let mut batches = Vec::new();
        // Lines come in pairs for writes; a delete is one line. Cut between actions only.
        let mut pending = lines.into_iter().peekable();
        while let Some(line) = pending.next() {
            let is_index = line.starts_with(br#"{"index""#);
            bytes += line.len() + 1;
            batch.push(line);
            if is_index && let Some(source) = pending.next() {
                bytes += source.len() + 1;
                batch.push(source);
            }
            if bytes >= BULK_BYTES {
                batches.push(std::mem::take(&mut batch));
                bytes = 0;
            }
        }
        if !batch.is_empty() {
            batches.push(batch);
        }
        let path = format!("/{}/_bulk?refresh={}", self.index, self.refresh);
        for batch in batches {
            // NDJSON: each line followed by a newline.
            let mut body = Vec::with_capacity(batch.iter().map(|l| l.len() + 1).sum());
            for line in batch {
                body.extend_from_slice(&line);
                body.push(b'\n');
            }
            let response = self
                .client
                .send(Method::Post, &path, Some(body))
                .await
                .with_context(|| format!("sending {what} to OpenSearch"))
                .map_err(SearchError::Unavailable)?;
            if !response.is_success() {
                return Err(status_error(response, what));
            }
            let answer: Value =
                response.json().with_context(|| format!("reading the answer to {what}")).map_err(internal)?;
            bulk_outcome(&answer).map_err(|e| e.context_into(what))?;
        }
        Ok(())
    }

    async fn run_search(&self, body: &Value) -> Result<Value, SearchError> {
        let body = serde_json::to_vec(body).map_err(internal)?;
        let response = self
            .client
            .send(Method::Post, &format!("/{}/_search", self.index), Some(body))
            .await
            .context("sending a search to OpenSearch")
            .map_err(SearchError::Unavailable)?;
        if response.status == 404 {
            // No index yet (the indexer creates it when it first starts):
            // nothing is indexed, so nothing matches.
            return Ok(json!({"hits": {"total": {"value": 0}, "hits": []}}));
        }
        if !response.is_success() {
            return Err(status_error(response, "a search"));
        }
        response.json().context("reading a search's answer").map_err(internal)
    }
}

/// The search domain's HTTPS endpoint as given (`OCTOSCOPE_SEARCH_ENDPOINT`),
/// in a function built without the resolver (feature `opensearch-resolve`:
/// the api and integrity-check, whose configuration refuses a domain name
/// before this is reached). A domain name is refused here too, naming the
/// variable to set instead.
pub fn given_endpoint(target: &crate::config::aws::SearchEndpoint) -> Result<String, SearchError> {
    use crate::config::aws::SearchEndpoint;
    match target {
        SearchEndpoint::Url(url) => Ok(url.clone()),
        SearchEndpoint::Domain(name) => Err(internal(anyhow!(
            "OCTOSCOPE_SEARCH_DOMAIN={name}: this function is built without the domain resolver \
             (aws-sdk-opensearch, left out for the zip's size); set OCTOSCOPE_SEARCH_ENDPOINT to the domain's \
             https:// endpoint instead"
        ))),
    }
}

#[cfg(feature = "opensearch-resolve")]
pub use super::opensearch_domain::endpoint;

/// An answer of OpenSearch that is not a success.
#[derive(Debug, thiserror::Error)]
#[error("OpenSearch answered {status}: {body}")]
struct HttpAnswer {
    status: u16,
    body: String,
}

fn bounded(s: &str) -> String {
    s.chars().take(2000).collect()
}

/// Too many requests or a server-side failure can pass; anything else is this request's fault.
fn retryable(status: u16) -> bool {
    status == 429 || status >= 500
}

fn classify(status: u16, e: anyhow::Error) -> SearchError {
    if retryable(status) { SearchError::Unavailable(e) } else { SearchError::Internal(e) }
}

trait ContextInto {
    fn context_into(self, what: &'static str) -> SearchError;
}

impl ContextInto for SearchError {
    /// The same class of error, saying what was being done.
    fn context_into(self, what: &'static str) -> SearchError {
        match self {
            SearchError::Unavailable(e) => SearchError::Unavailable(e.context(what)),
            SearchError::Internal(e) => SearchError::Internal(e.context(what)),
            e => e,
        }
    }
}

fn status_error(response: Answer, what: &'static str) -> SearchError {
    let body = response.text();
    classify(response.status, anyhow::Error::new(HttpAnswer { status: response.status, body: bounded(&body) }))
        .context_into(what)
}

/// One failed item of a `_bulk` answer.
#[derive(Debug, thiserror::Error)]
#[error("document {id:?}: {status} {error}")]
struct ItemFailure {
    id: String,
    status: u16,
    error: String,
}

/// The first item that neither succeeded nor was a version conflict (or a
/// missing document, for a delete), as an error: retryable if OpenSearch
/// was busy or failing.
fn bulk_outcome(answer: &Value) -> Result<(), SearchError> {
    if answer["errors"] != json!(true) {
        return Ok(());
    }
    let items = answer["items"].as_array().ok_or_else(|| internal(anyhow!("a _bulk answer without items")))?;
    for item in items {
        let Some((action, result)) = item.as_object().and_then(|o| o.iter().next()) else { continue };
        let status = result["status"].as_u64().unwrap_or(0) as u16;
        let fine = (200..300).contains(&status) || status == 409 || (action == "delete" && status == 404);
        if !fine {
            let failure = ItemFailure {
                id: result["_id"].as_str().unwrap_or_default().to_owned(),
                status,
                error: bounded(&result["error"].to_string()),
            };
            let e = anyhow::Error::new(failure);
            return Err(if retryable(status) { SearchError::Unavailable(e) } else { SearchError::Internal(e) });
        }
    }
    Ok(())
}

/// The external version of a document's `version`, ordered as the SQLite
/// adapter orders them (`excluded.version >= search_docs.version`): empty is
/// the oldest (0); a time (what the store writes: RFC 3339, UTC, to the
/// millisecond) is 1 + its microseconds since 1970; a decimal counter is
/// its value. A key's versions are all of one form.
pub fn external_version(version: &str) -> Result<i64, SearchError> {
    if version.is_empty() {
        return Ok(0);
    }
    if !version.is_empty() && version.len() <= 18 && version.bytes().all(|b| b.is_ascii_digit()) {
        return version.parse().context("a counter version").map_err(internal);
    }
    let t = DateTime::parse_from_rfc3339(version).map_err(|e| {
        internal(anyhow::Error::new(e).context(format!("version {version:?} is neither a time nor a counter")))
    })?;
    let micros = t.timestamp_micros();
    if micros < 0 {
        return Err(internal(anyhow!("version {version:?} is before 1970")));
    }
    Ok(micros + 1)
}

/// The ASCII lowercase form a title is compared in (SQLite's `NOCASE`).
fn exact_form(s: &str) -> String {
    s.to_ascii_lowercase()
}

/// The `_bulk` lines that index `d`.
fn index_lines(d: &SearchDoc) -> Result<[Vec<u8>; 2], SearchError> {
    let version = external_version(&d.version).map_err(|e| e.context_into("a document's version"))?;
    let title = clean_bounded(&d.title, MAX_TEXT_CHARS);
    let body = clean_bounded(&d.body, MAX_TEXT_CHARS);
    let extra = clean_bounded(&d.extra, MAX_TEXT_CHARS);
    let preview: String = if body.is_empty() { &extra } else { &body }.chars().take(SNIPPET_CHARS).collect();
    let action = json!({"index": {"_id": d.key, "version": version, "version_type": "external_gte"}});
    let source = json!({
        "key": d.key,
        "kind": d.kind.as_str(),
        "repo": d.repo.as_ref().map(RepoName::as_str),
        "author": d.author,
        "state": d.state,
        "created_at": d.created_at.as_ref().map(version_of),
        "version": version,
        "title_exact": exact_form(&title),
        "title": title,
        "body": body,
        "extra": extra,
        "preview": preview,
    });
    Ok([action.to_string().into_bytes(), source.to_string().into_bytes()])
}

/// One term of the query: a phrase of its words in one field (the SQLite
/// adapter quotes every term, so `limiter's` is the phrase `limiter s`),
/// scored as the weighted sum over the fields (`tie_breaker: 1`, as bm25's
/// column weights add up).
fn phrase(t: &Term, weighted: bool) -> Value {
    let fields = if weighted { json!(["title^10", "body^2", "extra"]) } else { json!(["title", "body", "extra"]) };
    json!({"multi_match": {"query": t.as_str(), "type": "phrase", "fields": fields, "tie_breaker": 1.0}})
}

/// The query (no user text in any parsed syntax: each term is a phrase value).
fn query(q: &SearchQuery) -> Value {
    let must: Vec<Value> = q.include.iter().map(|t| phrase(t, true)).collect();
    let must_not: Vec<Value> = q.exclude.iter().map(|t| phrase(t, false)).collect();
    let mut filter = Vec::new();
    let mut term = |field: &str, v: Option<&str>| {
        if let Some(v) = v {
            filter.push(json!({"term": {field: v}}));
        }
    };
    term("repo", q.repo.as_ref().map(RepoName::as_str));
    term("author", q.author.as_deref());
    term("state", q.state.as_deref());
    term("kind", q.kind.map(DocKind::as_str));
    if q.created.from.is_some() || q.created.until.is_some() {
        let mut range = serde_json::Map::new();
        if let Some(from) = &q.created.from {
            range.insert("gte".into(), json!(version_of(from)));
        }
        if let Some(until) = &q.created.until {
            range.insert("lt".into(), json!(version_of(until)));
        }
        filter.push(json!({"range": {"created_at": range}}));
    }
    let mut should = Vec::new();
    if !q.include.is_empty() {
        let words: Vec<&str> = q.include.iter().map(Term::as_str).collect();
        should.push(json!({"constant_score": {
            "filter": {"term": {"title_exact": exact_form(&words.join(" "))}},
            "boost": EXACT_TITLE_BOOST
        }}));
    }
    json!({"bool": {"must": must, "must_not": must_not, "filter": filter, "should": should}})
}

/// Where the next page starts. A ranked search pages by position: osmem
/// compares `search_after` on `_score` in double precision against scores
/// it prints in single precision, so equal scores split across pages would
/// repeat or skip, and a score keyset is no steadier than a position under
/// writes anyway (BM25's statistics move with every document). A search
/// without words pages by (version, key), newest first, exactly.
#[derive(Debug, Serialize, Deserialize)]
enum Cursor {
    #[serde(rename = "at")]
    At(usize),
    #[serde(rename = "after")]
    After(i64, String),
}

fn facet_aggs() -> Value {
    json!({
        "type": {"terms": {"field": "kind", "size": 10}},
        "state": {"terms": {"field": "state", "size": 50}},
        "repository": {"terms": {"field": "repo", "size": 10}},
        "author": {"terms": {"field": "author", "size": 10}}
    })
}

fn search_body(q: &SearchQuery, page: &PageRequest, exact_up_to: usize) -> Result<(Value, Option<usize>), SearchError> {
    let cursor = page.cursor.as_deref().map(decode_cursor::<Cursor>).transpose().map_err(|_| SearchError::BadCursor)?;
    let ranked = !q.include.is_empty();
    let mut body = json!({
        "query": query(q),
        // Counted exactly up to the bound; beyond, `relation` is `gte`.
        "track_total_hits": exact_up_to,
        "_source": ["key", "kind", "repo", "author", "state", "created_at", "title", "preview"],
        "aggs": facet_aggs(),
    });
    let mut offset = None;
    if ranked {
        let from = match cursor {
            None => 0,
            Some(Cursor::At(n)) => n,
            Some(Cursor::After(..)) => return Err(SearchError::BadCursor),
        };
        let size = (page.limit + 1).min(MAX_RANKED_RESULTS.saturating_sub(from));
        body["from"] = json!(from.min(MAX_RANKED_RESULTS));
        body["size"] = json!(size);
        body["sort"] = json!([{"_score": "desc"}, {"key": "asc"}]);
        body["highlight"] = json!({
            "pre_tags": [HIGHLIGHT_OPEN.to_string()],
            "post_tags": [HIGHLIGHT_CLOSE.to_string()],
            "encoder": "default",
            "require_field_match": true,
            "fields": {
                "title": {"number_of_fragments": 0},
                "body": {"fragment_size": SNIPPET_CHARS, "number_of_fragments": 1},
                "extra": {"fragment_size": SNIPPET_CHARS, "number_of_fragments": 1}
            }
        });
        offset = Some(from);
    } else {
        body["size"] = json!(page.limit + 1);
        body["sort"] = json!([{"version": "desc"}, {"key": "asc"}]);
        match cursor {
            None => {}
            Some(Cursor::After(version, key)) => body["search_after"] = json!([version, key]),
            Some(Cursor::At(_)) => return Err(SearchError::BadCursor),
        }
    }
    Ok((body, offset))
}

/// The whole title as segments: the highlighted copy, placed back in the
/// title (whose ends the highlighter may have trimmed).
fn title_segments(title: &str, marked: Option<&str>) -> Vec<Segment> {
    let plain = |s: &str| (!s.is_empty()).then(|| Segment { text: s.to_owned(), highlighted: false });
    let Some(marked) = marked else { return plain(title).into_iter().collect() };
    let inner = segments(marked);
    let joined: String = inner.iter().map(|s| s.text.as_str()).collect();
    let Some(at) = title.find(&joined) else { return plain(title).into_iter().collect() };
    plain(&title[..at]).into_iter().chain(inner).chain(plain(&title[at + joined.len()..])).collect()
}

fn hit(h: &Value) -> Result<SearchHit, SearchError> {
    let src = &h["_source"];
    let text = |v: &Value| v.as_str().map(str::to_owned);
    let key = text(&src["key"]).ok_or_else(|| internal(anyhow!("a hit without a key: {h}")))?;
    let kind = src["kind"]
        .as_str()
        .and_then(DocKind::parse)
        .ok_or_else(|| internal(anyhow!("{key}: kind {}", src["kind"])))?;
    let repo = src["repo"]
        .as_str()
        .map(|r| RepoName::parse(r).map_err(|e| internal(anyhow::Error::new(e).context(format!("{key}: repo")))))
        .transpose()?;
    let created_at = src["created_at"]
        .as_str()
        .map(|s| {
            DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| internal(anyhow::Error::new(e).context(format!("{key}: created_at"))))
        })
        .transpose()?;
    let title = text(&src["title"]).unwrap_or_default();
    let highlight = |field: &str| h["highlight"][field][0].as_str();
    let snippet = match highlight("body").or_else(|| highlight("extra")).or_else(|| highlight("title")) {
        Some(marked) => segments(marked),
        None => src["preview"]
            .as_str()
            .filter(|p| !p.is_empty())
            .map(|p| vec![Segment { text: p.to_owned(), highlighted: false }])
            .unwrap_or_default(),
    };
    Ok(SearchHit {
        title_segments: title_segments(&title, highlight("title")),
        key,
        kind,
        repo,
        author: text(&src["author"]),
        state: text(&src["state"]),
        created_at,
        title,
        snippet,
    })
}

fn facet(answer: &Value, name: &str) -> Vec<FacetCount> {
    answer["aggregations"][name]["buckets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|b| Some(FacetCount { value: b["key"].as_str()?.to_owned(), count: b["doc_count"].as_u64()? }))
        .collect()
}

fn results(answer: &Value, page: &PageRequest, offset: Option<usize>) -> Result<SearchResults, SearchError> {
    let raw = answer["hits"]["hits"].as_array().map(Vec::as_slice).unwrap_or_default();
    let mut items = raw.iter().map(hit).collect::<Result<Vec<_>, _>>()?;
    // One hit more than the page only says there is more.
    let next_cursor = if items.len() > page.limit && page.limit > 0 {
        items.truncate(page.limit);
        Some(match offset {
            Some(from) => encode_cursor(&Cursor::At(from + page.limit)),
            None => {
                let last = &raw[page.limit - 1];
                let sorted = || internal(anyhow!("a hit without its sort values: {last}"));
                let version = last["sort"][0].as_i64().ok_or_else(sorted)?;
                let key = last["sort"][1].as_str().ok_or_else(sorted)?;
                encode_cursor(&Cursor::After(version, key.to_owned()))
            }
        })
    } else {
        items.truncate(page.limit);
        None
    };
    let total = answer["hits"]["total"]["value"]
        .as_u64()
        .ok_or_else(|| internal(anyhow!("a search answer without a total")))?;
    // `eq` (or none: an index not created yet) is exact; `gte` a lower bound.
    let total_is_exact = answer["hits"]["total"]["relation"].as_str().is_none_or(|r| r == "eq");
    let facets = Facets {
        kind: facet(answer, "type"),
        repository: facet(answer, "repository"),
        author: facet(answer, "author"),
        state: facet(answer, "state"),
    };
    Ok(SearchResults { items, next_cursor, total, total_is_exact, facets })
}

#[async_trait]
impl SearchIndex for OpenSearchIndex {
    async fn index(&self, docs: &[SearchDoc]) -> Result<(), SearchError> {
        if docs.is_empty() {
            return Ok(());
        }
        let mut lines = Vec::with_capacity(docs.len() * 2);
        for d in docs {
            lines.extend(index_lines(d)?);
        }
        self.bulk(lines, "indexing documents").await
    }

    async fn delete(&self, keys: &[String]) -> Result<(), SearchError> {
        if keys.is_empty() {
            return Ok(());
        }
        let lines = keys.iter().map(|k| json!({"delete": {"_id": k}}).to_string().into_bytes()).collect();
        self.bulk(lines, "deleting documents").await
    }

    async fn search(&self, query: &SearchQuery, page: &PageRequest) -> Result<SearchResults, SearchError> {
        let (body, offset) = search_body(query, page, self.exact_up_to)?;
        let answer = self.run_search(&body).await?;
        results(&answer, page, offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_order_as_the_sqlite_adapter_orders_them() {
        let v = |s: &str| external_version(s).unwrap();
        assert_eq!(v(""), 0);
        assert!(v("1970-01-01T00:00:00.000Z") > v(""));
        assert!(v("2030-03-04T09:00:00.001Z") > v("2030-03-04T09:00:00.000Z"));
        assert!(v("2030-03-04T09:00:00.000Z") > v("2029-12-31T23:59:59.999Z"));
        assert_eq!(v("2030-03-04T09:00:00.000Z"), v("2030-03-04T09:00:00Z"));
        assert!(v("2") > v("1"));
        assert!(external_version("yesterday").is_err());
        assert!(external_version("1969-12-31T23:59:59.000Z").is_err());
    }

    #[test]
    fn trimmed_marks_still_make_whole_segments() {
        let got = |s: &str| segments(s).into_iter().map(|s| (s.text, s.highlighted)).collect::<Vec<_>>();
        let want = |v: &[(&str, bool)]| v.iter().map(|(t, h)| (t.to_string(), *h)).collect::<Vec<_>>();
        // As sent, and with the ends trimmed.
        assert_eq!(got("\u{1}Rate\u{2} \u{1}limiter\u{2}"), want(&[("Rate", true), (" ", false), ("limiter", true)]));
        assert_eq!(got("Rate\u{2} \u{1}limiter"), want(&[("Rate", true), (" ", false), ("limiter", true)]));
        assert_eq!(got("speed up \u{1}parser"), want(&[("speed up ", false), ("parser", true)]));
        // The title around a trimmed copy is kept.
        let t = title_segments(" x parser ", Some("x \u{1}parser"));
        let joined: String = t.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(joined, " x parser ");
        assert_eq!(t.iter().filter(|s| s.highlighted).map(|s| s.text.as_str()).collect::<Vec<_>>(), ["parser"]);
    }

    #[test]
    fn user_text_is_only_ever_a_phrase_value() {
        let q = SearchQuery::parse(r#"NEAR(a {"match_all":{}} -"x y" repo:acme/api"#).unwrap();
        let body = query(&q).to_string();
        assert!(!body.contains("query_string"), "{body}");
        let v = query(&q);
        let musts = v["bool"]["must"].as_array().unwrap();
        assert_eq!(musts[1]["multi_match"]["query"], json!(r#"{"match_all":{}}"#));
        assert_eq!(musts[1]["multi_match"]["type"], json!("phrase"));
        assert_eq!(v["bool"]["must_not"][0]["multi_match"]["query"], json!("x y"));
        assert_eq!(v["bool"]["filter"][0], json!({"term": {"repo": "acme/api"}}));
    }

    #[test]
    fn index_names_are_checked() {
        assert!(check_index_name("octoscope-search").is_ok());
        for bad in ["", "Upper", "a/b", "_x", "a b", "a,b"] {
            assert!(check_index_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_client_builds_for_https_with_ring() {
        // reqwest's rustls has no provider of its own: the constructor installs ring.
        assert!(OpenSearchIndex::new("https://search-x.eu-west-1.es.amazonaws.com", DEFAULT_INDEX).is_ok());
    }
}
