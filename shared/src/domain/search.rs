//! Search: the typed query a user's `q` parses into, and what a search finds.
//!
//! The query language is GitHub's, in part: free words, `"quoted phrases"`,
//! `-word` / `-"phrase"` to exclude, and the qualifiers `repo:OWNER/NAME`,
//! `author:LOGIN`, `is:open|closed|merged`, `type:pr|review|commit|repo|team|person`
//! (`is:pr` and friends too) and `created:>DATE`, `<DATE`, `>=DATE`, `<=DATE`,
//! `DATE`, `DATE..DATE`. The parsed [`SearchQuery`] holds words, never query
//! syntax: an adapter builds its own engine's query from them (quoting each),
//! so no user text reaches an engine's parser (shared/docs/search.md).

use chrono::{Days, NaiveDate};
use serde::{Deserialize, Serialize};

use super::{RepoName, Timestamp};

/// The longest `q` accepted, in characters.
pub const MAX_QUERY_CHARS: usize = 512;

/// What a search document is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "api", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DocKind {
    Pr,
    Review,
    Commit,
    Repo,
    Team,
    Person,
}

impl DocKind {
    pub const ALL: [DocKind; 6] = [Self::Pr, Self::Review, Self::Commit, Self::Repo, Self::Team, Self::Person];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pr => "pr",
            Self::Review => "review",
            Self::Commit => "commit",
            Self::Repo => "repo",
            Self::Team => "team",
            Self::Person => "person",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A word or a phrase: one or more words that must appear in this order.
/// Holds text only; it is never query syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term(String);

impl Term {
    /// A term from user text, or None when it holds no letter or digit
    /// (nothing a word index could find).
    pub fn new(text: &str) -> Option<Self> {
        let t = text.trim();
        t.chars().any(char::is_alphanumeric).then(|| Self(t.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A half-open time range `[from, until)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TimeRange {
    pub from: Option<Timestamp>,
    pub until: Option<Timestamp>,
}

/// A parsed search query.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SearchQuery {
    /// Every one must match (AND).
    pub include: Vec<Term>,
    /// None may match.
    pub exclude: Vec<Term>,
    pub repo: Option<RepoName>,
    pub author: Option<String>,
    /// `open`, `closed`, `merged` (pull requests' states).
    pub state: Option<String>,
    pub kind: Option<DocKind>,
    pub created: TimeRange,
}

/// Why a `q` is refused: said so the user can fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("the query is longer than {MAX_QUERY_CHARS} characters")]
    TooLong,
    #[error("{qualifier}: {problem}")]
    BadQualifier { qualifier: String, problem: String },
    #[error("the qualifier {0}: is given twice")]
    Repeated(String),
}

fn bad(qualifier: &str, problem: impl Into<String>) -> QueryError {
    QueryError::BadQualifier { qualifier: qualifier.to_owned(), problem: problem.into() }
}

/// One lexical piece of `q`: an optional `-`, and either a bare token or a quoted phrase.
struct Piece {
    negated: bool,
    text: String,
    quoted: bool,
}

/// Whitespace and control characters separate words.
fn separates(c: &char) -> bool {
    c.is_whitespace() || c.is_control()
}

/// Split `q` into pieces. Lenient, as GitHub's search box is: a control
/// character separates words like a space, and a quote left open runs to the
/// end of the query.
fn lex(q: &str) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut chars = q.chars().peekable();
    loop {
        while chars.next_if(separates).is_some() {}
        let Some(&first) = chars.peek() else { break };
        let negated = first == '-' && {
            chars.next();
            true
        };
        let mut text = String::new();
        let mut quoted = false;
        if chars.peek() == Some(&'"') {
            chars.next();
            quoted = true;
            phrase(&mut chars, &mut text);
        } else {
            while let Some(c) = chars.next_if(|c| !separates(c)) {
                // A qualifier's quoted value: `author:"x y"`.
                if c == '"' && text.ends_with(':') {
                    phrase(&mut chars, &mut text);
                } else {
                    text.push(c);
                }
            }
        }
        pieces.push(Piece { negated, text, quoted });
    }
    pieces
}

/// The rest of a quoted phrase, up to its closing quote or the end of the
/// query; a control character in it reads as a space.
fn phrase(chars: &mut std::iter::Peekable<std::str::Chars<'_>>, text: &mut String) {
    for c in chars.by_ref() {
        match c {
            '"' => break,
            c if c.is_control() => text.push(' '),
            c => text.push(c),
        }
    }
}

fn day(qualifier: &str, s: &str) -> Result<NaiveDate, QueryError> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| bad(qualifier, format!("{s:?} is not a date (YYYY-MM-DD)")))
}

fn start(d: NaiveDate) -> Timestamp {
    d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc()
}

fn next_day(qualifier: &str, d: NaiveDate) -> Result<Timestamp, QueryError> {
    d.checked_add_days(Days::new(1)).map(start).ok_or_else(|| bad(qualifier, "the date is out of range"))
}

fn parse_created(v: &str) -> Result<TimeRange, QueryError> {
    const Q: &str = "created";
    let r = if let Some(s) = v.strip_prefix(">=") {
        TimeRange { from: Some(start(day(Q, s)?)), until: None }
    } else if let Some(s) = v.strip_prefix("<=") {
        TimeRange { from: None, until: Some(next_day(Q, day(Q, s)?)?) }
    } else if let Some(s) = v.strip_prefix('>') {
        TimeRange { from: Some(next_day(Q, day(Q, s)?)?), until: None }
    } else if let Some(s) = v.strip_prefix('<') {
        TimeRange { from: None, until: Some(start(day(Q, s)?)) }
    } else if let Some((a, b)) = v.split_once("..") {
        let (a, b) = (day(Q, a)?, day(Q, b)?);
        if b < a {
            return Err(bad(Q, "the range ends before it starts"));
        }
        TimeRange { from: Some(start(a)), until: Some(next_day(Q, b)?) }
    } else {
        let d = day(Q, v)?;
        TimeRange { from: Some(start(d)), until: Some(next_day(Q, d)?) }
    };
    Ok(r)
}

fn set<T>(slot: &mut Option<T>, key: &str, v: T) -> Result<(), QueryError> {
    if slot.is_some() {
        return Err(QueryError::Repeated(key.to_owned()));
    }
    *slot = Some(v);
    Ok(())
}

const QUALIFIERS: [&str; 5] = ["repo", "author", "is", "type", "created"];

impl SearchQuery {
    /// Parse a user's `q`. Any text gives a query or a [`QueryError`]; an
    /// unknown `word:word` is searched for as text, as GitHub does.
    pub fn parse(q: &str) -> Result<Self, QueryError> {
        if q.chars().count() > MAX_QUERY_CHARS {
            return Err(QueryError::TooLong);
        }
        let mut out = SearchQuery::default();
        let mut created = None;
        for p in lex(q) {
            let qualifier = (!p.quoted)
                .then(|| p.text.split_once(':'))
                .flatten()
                .filter(|(k, _)| QUALIFIERS.contains(&k.to_ascii_lowercase().as_str()));
            match qualifier {
                Some((key, value)) => {
                    let key = key.to_ascii_lowercase();
                    if p.negated {
                        return Err(bad(&key, "excluding a qualifier (-qualifier:) is not supported"));
                    }
                    if value.is_empty() {
                        return Err(bad(&key, "needs a value"));
                    }
                    match key.as_str() {
                        "repo" => {
                            let r = RepoName::parse(value)
                                .map_err(|_| bad("repo", format!("{value:?} is not OWNER/NAME")))?;
                            set(&mut out.repo, "repo", r)?
                        }
                        "author" => {
                            if !value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '[' || c == ']') {
                                return Err(bad("author", format!("{value:?} is not a GitHub login")));
                            }
                            set(&mut out.author, "author", value.to_owned())?
                        }
                        "is" => match value.to_ascii_lowercase().as_str() {
                            s @ ("open" | "closed" | "merged") => set(&mut out.state, "is", s.to_owned())?,
                            k => match DocKind::parse(k) {
                                Some(kind) => set(&mut out.kind, "type", kind)?,
                                None => {
                                    return Err(bad("is", format!("{value:?} is not open, closed, merged or a type")));
                                }
                            },
                        },
                        "type" => {
                            let kind = DocKind::parse(&value.to_ascii_lowercase()).ok_or_else(|| {
                                bad("type", format!("{value:?} is not one of pr, review, commit, repo, team, person"))
                            })?;
                            set(&mut out.kind, "type", kind)?
                        }
                        _ => set(&mut created, "created", parse_created(value)?)?,
                    }
                }
                None => {
                    if let Some(t) = Term::new(&p.text) {
                        if p.negated { out.exclude.push(t) } else { out.include.push(t) }
                    }
                }
            }
        }
        out.created = created.unwrap_or_default();
        Ok(out)
    }
}

/// A piece of a snippet: text to show, highlighted or not. Never markup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "api", derive(utoipa::ToSchema))]
pub struct Segment {
    pub text: String,
    pub highlighted: bool,
}

/// One searchable thing, as an index stores it. `key` is the entity's key
/// (`pr:OWNER/NAME#N`, `review:ID`, `commit:OWNER/NAME@SHA`, `repo:OWNER/NAME`,
/// `team:ORG/SLUG`, `person:LOGIN`); `version` orders writes of one key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchDoc {
    pub key: String,
    pub kind: DocKind,
    pub repo: Option<RepoName>,
    pub author: Option<String>,
    pub state: Option<String>,
    pub created_at: Option<Timestamp>,
    pub version: String,
    pub title: String,
    pub body: String,
    /// Other words to find it by: labels, branches, a sha, a login.
    pub extra: String,
}

/// One search result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "api", derive(utoipa::ToSchema))]
pub struct SearchHit {
    pub key: String,
    #[serde(rename = "type")]
    pub kind: DocKind,
    #[cfg_attr(feature = "api", schema(value_type = Option<String>))]
    pub repo: Option<RepoName>,
    pub author: Option<String>,
    pub state: Option<String>,
    pub created_at: Option<Timestamp>,
    pub title: String,
    /// The title with the query's words highlighted.
    pub title_segments: Vec<Segment>,
    /// A short passage of the body (or other words) around the query's words.
    pub snippet: Vec<Segment>,
}

/// A count of matching documents by one value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "api", derive(utoipa::ToSchema))]
pub struct FacetCount {
    pub value: String,
    pub count: u64,
}

/// Counts of every matching document (not only this page's) by type,
/// repository, author and state; repositories and authors the top 10.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "api", derive(utoipa::ToSchema))]
pub struct Facets {
    #[serde(rename = "type")]
    pub kind: Vec<FacetCount>,
    pub repository: Vec<FacetCount>,
    pub author: Vec<FacetCount>,
    pub state: Vec<FacetCount>,
}

/// How many matches a search ranks and counts exactly, by default: a match
/// of more documents has `total_is_exact: false` and `total` is a lower
/// bound (shared/docs/search.md, "Large matches").
pub const SEARCH_EXACT_UP_TO: usize = 1_000;

/// A page of results and the facets of the match.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "api", derive(utoipa::ToSchema))]
pub struct SearchResults {
    pub items: Vec<SearchHit>,
    pub next_cursor: Option<String>,
    /// The number of matching documents when `total_is_exact`; otherwise a
    /// lower bound (the match holds more than the search counts exactly).
    pub total: u64,
    /// Whether `total` is the exact number of matches. When false, the
    /// facets count a part of the match: on the one-machine index the
    /// documents the results are ranked from (the newest matches).
    pub total_is_exact: bool,
    pub facets: Facets,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(v: &[Term]) -> Vec<&str> {
        v.iter().map(Term::as_str).collect()
    }

    #[test]
    fn words_phrases_and_exclusions() {
        let q = SearchQuery::parse(r#"rate limiter "token bucket" -flaky -"do not merge""#).unwrap();
        assert_eq!(terms(&q.include), ["rate", "limiter", "token bucket"]);
        assert_eq!(terms(&q.exclude), ["flaky", "do not merge"]);
    }

    #[test]
    fn qualifiers_become_typed_filters() {
        let q = SearchQuery::parse("repo:acme/api author:octocat is:merged type:pr created:2026-01-01..2026-01-31 x")
            .unwrap();
        assert_eq!(q.repo.unwrap().as_str(), "acme/api");
        assert_eq!(q.author.as_deref(), Some("octocat"));
        assert_eq!(q.state.as_deref(), Some("merged"));
        assert_eq!(q.kind, Some(DocKind::Pr));
        assert_eq!(q.created.from.unwrap().to_rfc3339(), "2026-01-01T00:00:00+00:00");
        assert_eq!(q.created.until.unwrap().to_rfc3339(), "2026-02-01T00:00:00+00:00");
        assert_eq!(terms(&q.include), ["x"]);
    }

    #[test]
    fn created_comparisons() {
        let r = |s: &str| SearchQuery::parse(&format!("created:{s}")).unwrap().created;
        let d = |s: &str| Some(start(NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()));
        assert_eq!(r(">2026-01-01"), TimeRange { from: d("2026-01-02"), until: None });
        assert_eq!(r(">=2026-01-01"), TimeRange { from: d("2026-01-01"), until: None });
        assert_eq!(r("<2026-01-01"), TimeRange { from: None, until: d("2026-01-01") });
        assert_eq!(r("<=2026-01-01"), TimeRange { from: None, until: d("2026-01-02") });
        assert_eq!(r("2026-01-01"), TimeRange { from: d("2026-01-01"), until: d("2026-01-02") });
    }

    #[test]
    fn bad_qualifiers_say_what_is_wrong() {
        for (q, needle) in [
            ("repo:nope", "OWNER/NAME"),
            ("is:pending", "is:"),
            ("type:issue", "type"),
            ("created:yesterday", "not a date"),
            ("created:2026-02-01..2026-01-01", "ends before"),
            ("author:a;b", "login"),
            ("repo:", "needs a value"),
            ("-repo:acme/api", "not supported"),
            ("repo:a/b repo:c/d", "twice"),
        ] {
            let e = SearchQuery::parse(q).unwrap_err().to_string();
            assert!(e.contains(needle), "{q:?} gave {e:?}");
        }
    }

    #[test]
    fn hostile_text_stays_words() {
        // FTS5 syntax, SQL and JSON fragments come out as plain terms or nothing.
        let q = SearchQuery::parse(r#"NEAR(a b, 3) title:x * ^start a:b {"k":1} '; DROP TABLE x;-- (("#).unwrap();
        assert_eq!(
            terms(&q.include),
            ["NEAR(a", "b,", "3)", "title:x", "^start", "a:b", r#"{"k":1}"#, "DROP", "TABLE", "x;--"]
        );
        assert!(q.repo.is_none() && q.kind.is_none());
        // Only punctuation: no term at all.
        assert!(SearchQuery::parse(r#"* ( ) "" - ^ :"#).unwrap().include.is_empty());
        // Unicode words are words.
        assert_eq!(terms(&SearchQuery::parse("café 東京 ünïcødé").unwrap().include), ["café", "東京", "ünïcødé"]);
    }

    #[test]
    fn limits() {
        assert_eq!(SearchQuery::parse(&"a".repeat(10_000)), Err(QueryError::TooLong));
        assert!(SearchQuery::parse(&"a".repeat(MAX_QUERY_CHARS)).is_ok());
        // A control character separates words; a quote left open runs to the end.
        assert_eq!(terms(&SearchQuery::parse("a\0b\x10c").unwrap().include), ["a", "b", "c"]);
        let q = SearchQuery::parse("x \"token\x07bucket").unwrap();
        assert_eq!(q.include.len(), 2);
        assert_eq!(SearchQuery::parse("x \"token bucket").unwrap(), SearchQuery::parse("x \"token bucket\"").unwrap());
        assert_eq!(SearchQuery::parse("author:\"ab").unwrap().author.as_deref(), Some("ab"));
        // As many words as 512 characters hold.
        assert_eq!(SearchQuery::parse(&"w ".repeat(256)).unwrap().include.len(), 256);
    }
}
