//! The `SearchIndex` contract: one set of tests, written against the ports
//! only, run against every adapter: SQLite FTS5, where the store's own
//! writes index what they write, and (feature `opensearch`) OpenSearch on a
//! local osmem-server, fed as an indexer feeds it: each change mapped to
//! documents by `services::search_docs` and indexed ([`IndexingSink`]). A
//! [`Backend`]'s `sink` delivers the changes and returns once they are
//! searchable.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{Duration, TimeZone, Utc};
use octoscope::domain::*;
use octoscope::ports::*;
use octoscope::services::search_docs::{DocWrites, Known, Lookup, doc_writes, lookup};

/// Where changes are written, and the index that must then find them.
struct Fixture {
    sink: Arc<dyn ChangeSink>,
    index: Arc<dyn SearchIndex>,
}

/// Makes fresh, empty fixtures of one adapter.
#[async_trait]
trait Backend: Send + Sync {
    /// A fresh fixture whose searches count matches exactly up to
    /// `exact_up_to` (the adapter's default when None).
    async fn fixture_with(&self, exact_up_to: Option<usize>) -> Fixture;

    async fn fixture(&self) -> Fixture {
        self.fixture_with(None).await
    }
}

struct Sqlite(Mutex<Vec<tempfile::TempDir>>);

#[async_trait]
impl Backend for Sqlite {
    async fn fixture_with(&self, exact_up_to: Option<usize>) -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store =
            octoscope::adapters::sqlite::SqliteStore::open(&dir.path().join("store.db")).expect("open store");
        if let Some(n) = exact_up_to {
            store = store.with_search_exact_up_to(n);
        }
        self.0.lock().expect("dirs").push(dir);
        let store = Arc::new(store);
        Fixture { sink: store.clone(), index: store }
    }
}

/// What an indexer looks up in the store for a change's documents
/// ([`Lookup`]): pull request titles and organisation memberships, as the
/// changes applied so far left them.
#[derive(Default)]
struct StoreFacts {
    titles: HashMap<(RepoName, u64), String>,
    /// (login, org) -> (present, version)
    members: HashMap<(String, String), (bool, Timestamp)>,
}

impl StoreFacts {
    /// Note what `change` writes (the newer membership wins, as in the store).
    fn note(&mut self, change: &Change) {
        match change {
            Change::PullRequest { pull, .. } => {
                self.titles.insert((pull.repo.clone(), pull.number), pull.title.clone());
            }
            Change::OrgMember { org, member: m } => {
                let slot = self.members.entry((m.login.clone(), org.clone())).or_insert((m.present, m.version));
                if m.version >= slot.1 {
                    *slot = (m.present, m.version);
                }
            }
            _ => {}
        }
    }

    fn writes(&self, change: &Change) -> DocWrites {
        let known = match lookup(change) {
            Lookup::Nothing => Known::default(),
            Lookup::PullTitle { repo, number } => {
                Known { pull_title: self.titles.get(&(repo.clone(), number)).map(String::as_str), ..Known::default() }
            }
            Lookup::OtherMemberships { login, org } => Known {
                other_membership: self
                    .members
                    .iter()
                    .filter(|((l, o), (present, _))| l == login && o != org && *present)
                    .map(|(_, (_, v))| *v)
                    .max(),
                ..Known::default()
            },
        };
        doc_writes(change, known)
    }
}

/// Changes delivered as an indexer delivers them: each mapped to documents
/// and written through the port, which answers once they are searchable.
#[cfg(feature = "opensearch")]
struct IndexingSink {
    index: Arc<dyn SearchIndex>,
    facts: Mutex<StoreFacts>,
    keys: Mutex<std::collections::HashSet<String>>,
}

#[cfg(feature = "opensearch")]
#[async_trait]
impl ChangeSink for IndexingSink {
    async fn apply_changes(&self, changes: &[Change]) -> Result<ApplyReport, StoreError> {
        let mut all = DocWrites::default();
        {
            let mut facts = self.facts.lock().expect("facts");
            for c in changes {
                facts.note(c);
                all.extend(facts.writes(c));
            }
        }
        self.keys.lock().expect("keys").extend(all.upsert.iter().map(|d| d.key.clone()));
        let failed = |e: SearchError| StoreError::Internal(anyhow::Error::new(e));
        self.index.index(&all.upsert).await.map_err(failed)?;
        self.index.delete(&all.delete).await.map_err(failed)?;
        Ok(ApplyReport { applied: changes.len() as u32, skipped: 0 })
    }

    async fn reset_entities(&self) -> Result<(), StoreError> {
        let keys: Vec<String> = self.keys.lock().expect("keys").drain().collect();
        self.index.delete(&keys).await.map_err(|e| StoreError::Internal(anyhow::Error::new(e)))
    }
}

/// A fresh index on the test binary's one osmem-server.
#[cfg(feature = "opensearch")]
struct OpenSearch;

#[cfg(feature = "opensearch")]
#[async_trait]
impl Backend for OpenSearch {
    async fn fixture_with(&self, exact_up_to: Option<usize>) -> Fixture {
        use octoscope::adapters::opensearch::OpenSearchIndex;
        let server = octoscope_testkit::osmem::OsmemServer::shared();
        let name = octoscope_testkit::moto::unique("octoscope-search");
        let mut index = OpenSearchIndex::new(&server.url, &name).expect("an OpenSearch client").refreshing();
        if let Some(n) = exact_up_to {
            index = index.exact_up_to(n);
        }
        index.ensure_index().await.expect("the index created");
        let index: Arc<dyn SearchIndex> = Arc::new(index);
        let sink = IndexingSink { index: index.clone(), facts: Mutex::default(), keys: Mutex::default() };
        Fixture { sink: Arc::new(sink), index }
    }
}

macro_rules! contract {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test(&super::Sqlite(std::sync::Mutex::new(Vec::new()))).await;
                }
            )*
        }
        #[cfg(feature = "opensearch")]
        mod opensearch {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test(&super::OpenSearch).await;
                }
            )*
        }
    };
}

contract!(
    an_acknowledged_write_is_searchable_and_an_exact_title_match_ranks_first,
    qualifiers_filter,
    created_ranges_cross_months_and_follow_a_changed_time,
    exclusions_drop_matches,
    facets_count_the_whole_match,
    pagination_neither_repeats_nor_skips,
    a_match_larger_than_the_exact_bound_has_a_lower_bound_total_and_pages_without_repeats,
    a_later_pull_request_replaces_the_earlier_and_an_older_one_does_not,
    indexed_documents_obey_their_versions_and_can_be_deleted,
    commits_repositories_teams_and_people_are_found_by_name,
    highlights_are_segments_of_plain_text,
    hostile_queries_give_results_or_a_query_error_and_change_nothing,
    garbage_cursors_are_refused,
    pull_request_and_review_bodies_are_searched_up_to_their_bound,
);

fn t(min: i64) -> Timestamp {
    Utc.with_ymd_and_hms(2030, 3, 4, 9, 0, 0).unwrap() + Duration::minutes(min)
}

fn repo(name: &str) -> RepoName {
    RepoName::parse(name).unwrap()
}

fn pull(repo_name: &str, number: u64, title: &str, state: PrState, author: &str, updated: i64) -> PullRequest {
    PullRequest {
        repo: repo(repo_name),
        number,
        id: Some(number as i64),
        title: title.into(),
        state,
        draft: false,
        author: Some(author.into()),
        created_at: t(number as i64),
        updated_at: t(updated),
        closed_at: (state != PrState::Open).then(|| t(updated)),
        merged_at: (state == PrState::Merged).then(|| t(updated)),
        additions: None,
        deletions: None,
        changed_files: None,
        commits: None,
        labels: vec!["backend".into()],
        requested_reviewers: vec![],
        requested_teams: vec![],
        base_ref: Some("main".into()),
        head_ref: Some(format!("topic-{number}")),
        head_sha: None,
        body: None,
    }
}

fn pr(repo_name: &str, number: u64, title: &str, state: PrState, author: &str) -> Change {
    Change::pull_request(pull(repo_name, number, title, state, author, number as i64 + 1))
}

fn q(s: &str) -> SearchQuery {
    SearchQuery::parse(s).unwrap()
}

async fn find(f: &Fixture, s: &str) -> SearchResults {
    f.index.search(&q(s), &PageRequest::first(50)).await.unwrap()
}

fn keys(r: &SearchResults) -> Vec<&str> {
    r.items.iter().map(|h| h.key.as_str()).collect()
}

async fn sample(f: &Fixture) {
    f.sink
        .apply_changes(&[
            pr("acme/api", 1, "Add a cache for sessions", PrState::Open, "alice"),
            pr("acme/api", 2, "Rate limiter", PrState::Merged, "bob"),
            pr("acme/api", 3, "Rate limits: document the limiter's rate for each rate class", PrState::Closed, "alice"),
            pr("acme/web", 4, "Limiter settings page", PrState::Open, "carol"),
            pr("acme/web", 5, "Rate card redesign", PrState::Merged, "alice"),
        ])
        .await
        .unwrap();
}

async fn an_acknowledged_write_is_searchable_and_an_exact_title_match_ranks_first(b: &dyn Backend) {
    // GIVEN five pull requests, several mentioning rate or limiter
    let f = b.fixture().await;
    sample(&f).await;
    // WHEN searched for "rate limiter" as soon as the write returned
    let r = find(&f, "rate limiter").await;
    // THEN both that hold both words are found, the exact title first (though
    // the other says "rate" three times)
    assert_eq!(keys(&r), ["pr:acme/api#2", "pr:acme/api#3"]);
    // AND a phrase finds only the exact sequence
    assert_eq!(keys(&find(&f, "\"the limiter's rate\"").await), ["pr:acme/api#3"]);
}

async fn qualifiers_filter(b: &dyn Backend) {
    // GIVEN the sample pull requests
    let f = b.fixture().await;
    sample(&f).await;
    let found = |s: &'static str| {
        let f = &f;
        async move {
            let mut k: Vec<String> = find(f, s).await.items.into_iter().map(|h| h.key).collect();
            k.sort();
            k
        }
    };
    // WHEN filtered by repository, author, state, type and creation time THEN only those match
    assert_eq!(found("repo:acme/web").await, ["pr:acme/web#4", "pr:acme/web#5"]);
    assert_eq!(found("author:alice rate").await, ["pr:acme/api#3", "pr:acme/web#5"]);
    assert_eq!(found("is:merged").await, ["pr:acme/api#2", "pr:acme/web#5"]);
    assert_eq!(found("type:pr is:open").await, ["pr:acme/api#1", "pr:acme/web#4"]);
    assert!(found("type:commit").await.is_empty());
    // Created at t(n) = 2030-03-04 09:0n: all on that day, none after it.
    assert_eq!(found("created:2030-03-04").await.len(), 5);
    assert!(found("created:>2030-03-04").await.is_empty());
    assert_eq!(found("created:<2030-03-05 repo:acme/api is:open").await, ["pr:acme/api#1"]);
}

async fn created_ranges_cross_months_and_follow_a_changed_time(b: &dyn Backend) {
    // GIVEN pull requests created at the edges of months (the one-machine
    // index finds a range through its months' tags, the rows deciding the edges)
    let f = b.fixture().await;
    let at = |y, mo, d, h, mi, s| Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap();
    let created = |number: u64, when: Timestamp, updated: i64| {
        let mut p = pull("acme/api", number, &format!("deploy window {number}"), PrState::Open, "alice", updated);
        p.created_at = when;
        Change::pull_request(p)
    };
    let jan = at(2030, 1, 31, 23, 59, 59);
    let feb = at(2030, 2, 28, 23, 59, 59) + Duration::milliseconds(999);
    let mar = at(2030, 3, 1, 0, 0, 0);
    let may = at(2030, 5, 15, 12, 0, 0);
    f.sink
        .apply_changes(&[created(1, jan, 1), created(2, feb, 1), created(3, mar, 1), created(4, may, 1)])
        .await
        .unwrap();
    let found = |s: String| {
        let f = &f;
        async move {
            let mut k: Vec<String> = find(f, &s).await.items.into_iter().map(|h| h.key).collect();
            k.sort();
            k
        }
    };
    let prs = |n: &[u64]| n.iter().map(|n| format!("pr:acme/api#{n}")).collect::<Vec<_>>();
    // WHEN ranged by day, by open bounds and across months THEN the edges hold to the millisecond
    assert_eq!(found("created:2030-02-28".into()).await, prs(&[2]));
    assert_eq!(found("created:>=2030-03-01 deploy".into()).await, prs(&[3, 4]));
    assert_eq!(found("created:>2030-02-28".into()).await, prs(&[3, 4]));
    assert_eq!(found("created:<2030-03-01 window".into()).await, prs(&[1, 2]));
    assert_eq!(found("created:2030-01-31..2030-03-01 -5".into()).await, prs(&[1, 2, 3]));
    // AND a month no document was created in finds nothing, words or not
    assert!(found("created:2030-04-01..2030-04-30".into()).await.is_empty());
    assert!(found("created:2030-04-01..2030-04-30 deploy".into()).await.is_empty());
    // WHEN the first is corrected to June THEN it is found there and no longer in January
    let june = at(2030, 6, 2, 8, 0, 0);
    f.sink.apply_changes(&[created(1, june, 2)]).await.unwrap();
    assert!(found("created:<2030-02-01".into()).await.is_empty());
    assert_eq!(found("created:>2030-05-31 deploy window".into()).await, prs(&[1]));
    assert_eq!(found("created:2030-01-01..2030-12-31 repo:acme/api".into()).await, prs(&[1, 2, 3, 4]));
}

async fn exclusions_drop_matches(b: &dyn Backend) {
    // GIVEN the sample pull requests WHEN "rate -limiter" and "-rate" THEN those with the excluded word are gone
    let f = b.fixture().await;
    sample(&f).await;
    assert_eq!(keys(&find(&f, "rate -limiter").await), ["pr:acme/web#5"]);
    let mut k: Vec<String> = find(&f, "-rate -\"sessions\"").await.items.into_iter().map(|h| h.key).collect();
    k.sort();
    assert_eq!(k, ["pr:acme/web#4"]);
}

async fn facets_count_the_whole_match(b: &dyn Backend) {
    // GIVEN the sample pull requests and a review
    let f = b.fixture().await;
    sample(&f).await;
    f.sink
        .apply_changes(&[Change::Review(Review {
            repo: repo("acme/api"),
            pr_number: 2,
            id: 77,
            author: Some("alice".into()),
            state: ReviewState::Approved,
            submitted_at: Some(t(10)),
            commit_id: None,
            body: None,
        })])
        .await
        .unwrap();
    // WHEN searched with a page of one
    let r = f.index.search(&q("acme"), &PageRequest::first(1)).await.unwrap();
    // THEN the facets and the total count every match, not the page
    let counts = |v: &[FacetCount]| v.iter().map(|c| (c.value.clone(), c.count)).collect::<Vec<_>>();
    assert_eq!(r.items.len(), 1);
    assert_eq!(r.total, 6);
    assert_eq!(counts(&r.facets.kind), [("pr".into(), 5), ("review".into(), 1)]);
    assert_eq!(counts(&r.facets.repository), [("acme/api".into(), 4), ("acme/web".into(), 2)]);
    assert_eq!(counts(&r.facets.author)[0], ("alice".into(), 4));
    assert!(counts(&r.facets.state).contains(&("approved".into(), 1)));
    assert!(counts(&r.facets.state).contains(&("merged".into(), 2)));
}

async fn pagination_neither_repeats_nor_skips(b: &dyn Backend) {
    // GIVEN 23 pull requests that all match, with differing scores
    let f = b.fixture().await;
    let changes: Vec<Change> = (1..=23)
        .map(|n| pr("acme/api", n, &format!("widget {}", "padding ".repeat(n as usize % 5)), PrState::Open, "a"))
        .collect();
    f.sink.apply_changes(&changes).await.unwrap();
    for query in ["widget", "repo:acme/api"] {
        // WHEN read 5 at a time to the end
        let mut seen = Vec::new();
        let mut page = PageRequest::first(5);
        loop {
            let r = f.index.search(&q(query), &page).await.unwrap();
            assert!(r.items.len() <= 5);
            seen.extend(r.items.into_iter().map(|h| h.key));
            match r.next_cursor {
                Some(c) => page.cursor = Some(c),
                None => break,
            }
        }
        // THEN every one came exactly once
        let mut unique = seen.clone();
        unique.sort();
        unique.dedup();
        assert_eq!((seen.len(), unique.len()), (23, 23), "{query}");
    }
}

async fn a_match_larger_than_the_exact_bound_has_a_lower_bound_total_and_pages_without_repeats(b: &dyn Backend) {
    // GIVEN searches counting exactly up to 5 matches, and 12 pull requests
    // holding "widget": the oldest titled exactly that, five "gadget widget
    // N" (in acme/api), six "sprocket widget N" (in acme/web)
    let f = b.fixture_with(Some(5)).await;
    let changes: Vec<Change> = (1..=12)
        .map(|n| match n {
            1 => pr("acme/web", n, "widget", PrState::Open, "a"),
            2..=6 => pr("acme/api", n, &format!("gadget widget {n}"), PrState::Open, "a"),
            _ => pr("acme/web", n, &format!("sprocket widget {n}"), PrState::Open, "a"),
        })
        .collect();
    f.sink.apply_changes(&changes).await.unwrap();
    // WHEN matches are at most the bound THEN the total is exact
    for (query, n) in [("gadget", 5), ("widget gadget 3", 1), ("repo:acme/api", 5)] {
        let r = find(&f, query).await;
        assert_eq!((r.total, r.total_is_exact, r.items.len()), (n, true, n as usize), "{query}");
    }
    // WHEN more match THEN the total is a lower bound, at least the bound
    let r = find(&f, "widget").await;
    assert!(!r.total_is_exact && (5..=12).contains(&r.total), "{} {}", r.total, r.total_is_exact);
    // AND the exact title still comes first, though it is the oldest match
    assert_eq!(r.items[0].key, "pr:acme/web#1");
    // AND the facets count at least the documents the total counts
    assert!(r.facets.kind.iter().map(|c| c.count).sum::<u64>() >= r.total);
    // AND words that are FTS5 syntax are only words there too, in a large match
    for hostile in [
        "widget ^",
        "widget *",
        "widget:",
        "\"widget",
        "widget -\"NEAR(\" -^",
        "widget -é -s -r61636d65",
        "WIDGET -\"x y\"",
    ] {
        let r = f.index.search(&q(hostile), &PageRequest::first(2)).await;
        let r = r.unwrap_or_else(|e| panic!("{hostile}: {e:?}"));
        assert!(!r.total_is_exact && r.items.len() == 2, "{hostile}: {} {}", r.total, r.total_is_exact);
    }
    for query in ["widget", "sprocket", "repo:acme/web", ""] {
        let first = find(&f, query).await;
        assert!(!first.total_is_exact && first.total >= 5, "{query}: {} {}", first.total, first.total_is_exact);
        // WHEN read 2 at a time to the end
        let mut seen = Vec::new();
        let mut page = PageRequest::first(2);
        loop {
            let r = f.index.search(&q(query), &page).await.unwrap();
            assert_eq!((r.total, r.total_is_exact), (first.total, false), "{query}: every page says the same");
            seen.extend(r.items.into_iter().map(|h| h.key));
            match r.next_cursor {
                Some(c) => page.cursor = Some(c),
                None => break,
            }
        }
        // THEN none came twice, and at least as many as the total came
        let mut unique = seen.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), seen.len(), "{query}: {seen:?}");
        assert!(seen.len() as u64 >= first.total && seen.len() <= 12, "{query}: {} of {}", seen.len(), first.total);
    }
}

async fn a_later_pull_request_replaces_the_earlier_and_an_older_one_does_not(b: &dyn Backend) {
    // GIVEN a pull request titled "draft idea" at version 5
    let f = b.fixture().await;
    let at = |title: &str, updated| Change::pull_request(pull("acme/api", 9, title, PrState::Open, "a", updated));
    f.sink.apply_changes(&[at("draft idea", 5)]).await.unwrap();
    // WHEN retitled at version 6, then a version-4 copy arrives late
    f.sink.apply_changes(&[at("final design", 6)]).await.unwrap();
    f.sink.apply_changes(&[at("stale words", 4)]).await.unwrap();
    // THEN the index holds the version-6 title only
    assert_eq!(keys(&find(&f, "final design").await), ["pr:acme/api#9"]);
    assert!(find(&f, "draft").await.items.is_empty());
    assert!(find(&f, "stale").await.items.is_empty());
    assert_eq!(find(&f, "repo:acme/api").await.total, 1);
}

fn doc(key: &str, version: &str, title: &str) -> SearchDoc {
    SearchDoc {
        key: key.into(),
        kind: DocKind::Pr,
        repo: Some(repo("acme/x")),
        author: Some("z".into()),
        state: Some("open".into()),
        created_at: Some(t(0)),
        version: version.into(),
        title: title.into(),
        body: "the body \u{1}speaks\u{2}".into(),
        extra: String::new(),
    }
}

async fn indexed_documents_obey_their_versions_and_can_be_deleted(b: &dyn Backend) {
    // GIVEN a document indexed directly at version 2
    let f = b.fixture().await;
    f.index.index(&[doc("pr:acme/x#1", "2", "newer words")]).await.unwrap();
    // WHEN version 1 arrives, and version 2 again (a replay)
    f.index.index(&[doc("pr:acme/x#1", "1", "older words")]).await.unwrap();
    f.index.index(&[doc("pr:acme/x#1", "2", "newer words")]).await.unwrap();
    // THEN it is found once, by its newer words only, and by its body
    assert_eq!(keys(&find(&f, "newer").await), ["pr:acme/x#1"]);
    assert!(find(&f, "older").await.items.is_empty());
    assert_eq!(keys(&find(&f, "speaks").await), ["pr:acme/x#1"]);
    // WHEN deleted (and an unknown key with it) THEN it is gone
    f.index.delete(&["pr:acme/x#1".into(), "pr:nope/nope#1".into()]).await.unwrap();
    assert!(find(&f, "newer").await.items.is_empty());
}

async fn commits_repositories_teams_and_people_are_found_by_name(b: &dyn Backend) {
    // GIVEN a commit, a repository, a team and an org member
    let f = b.fixture().await;
    f.sink
        .apply_changes(&[
            Change::Commit {
                commit: Commit {
                    repo: repo("acme/api"),
                    sha: "4f2a9c81d0e1b2c3d4e5f60718293a4b5c6d7e8f".into(),
                    message: "Tune retries\n\nBackoff grows exponentially now.".into(),
                    author_login: Some("dora".into()),
                    author_name: Some("Dora Explorer".into()),
                    committed_at: Some(t(3)),
                },
                branch: Some("main".into()),
                pushed_at: Some(t(4)),
            },
            Change::Repository(Repository {
                full_name: repo("acme/telemetry"),
                id: Some(1),
                default_branch: Some("main".into()),
                private: None,
                archived: None,
                deleted: false,
                version: Some(t(1)),
                activity_at: None,
            }),
            Change::Team(Team {
                org: "acme".into(),
                slug: "platform-crew".into(),
                id: Some(5),
                name: "Platform Crew".into(),
                description: Some("Keeps the lights on".into()),
                privacy: None,
                parent_slug: None,
                deleted: false,
                version: t(1),
            }),
            Change::OrgMember {
                org: "acme".into(),
                member: Membership { login: "zelda".into(), role: None, present: true, version: t(1) },
            },
        ])
        .await
        .unwrap();
    // THEN each is found by its words, the commit also by its short sha, its body and its author
    assert_eq!(keys(&find(&f, "exponentially").await), ["commit:acme/api@4f2a9c81d0e1b2c3d4e5f60718293a4b5c6d7e8f"]);
    assert_eq!(find(&f, "4f2a9c8").await.items[0].title, "Tune retries");
    assert_eq!(find(&f, "author:dora type:commit").await.total, 1);
    assert_eq!(keys(&find(&f, "telemetry").await), ["repo:acme/telemetry"]);
    assert_eq!(keys(&find(&f, "crew lights").await), ["team:acme/platform-crew"]);
    assert_eq!(keys(&find(&f, "zelda type:person").await), ["person:zelda"]);
    // WHEN the member leaves and the team is deleted THEN neither is found
    f.sink
        .apply_changes(&[
            Change::OrgMember {
                org: "acme".into(),
                member: Membership { login: "zelda".into(), role: None, present: false, version: t(2) },
            },
            Change::Team(Team {
                org: "acme".into(),
                slug: "platform-crew".into(),
                id: Some(5),
                name: "Platform Crew".into(),
                description: None,
                privacy: None,
                parent_slug: None,
                deleted: true,
                version: t(2),
            }),
        ])
        .await
        .unwrap();
    assert!(find(&f, "zelda").await.items.is_empty());
    assert!(find(&f, "crew").await.items.is_empty());
}

async fn highlights_are_segments_of_plain_text(b: &dyn Backend) {
    // GIVEN a title carrying markup and the highlight marks themselves
    let f = b.fixture().await;
    let title = "<script>alert(1)</script> speed \u{1}up\u{2} parser";
    f.sink.apply_changes(&[pr("acme/api", 1, title, PrState::Open, "a")]).await.unwrap();
    // WHEN searched for "parser"
    let hit = find(&f, "parser").await.items.remove(0);
    // THEN the title's segments are its text, only the query's word highlighted
    let joined: String = hit.title_segments.iter().map(|s| s.text.as_str()).collect();
    assert_eq!(joined, "<script>alert(1)</script> speed up parser");
    let marked: Vec<&str> = hit.title_segments.iter().filter(|s| s.highlighted).map(|s| s.text.as_str()).collect();
    assert_eq!(marked, ["parser"]);
}

async fn hostile_queries_give_results_or_a_query_error_and_change_nothing(b: &dyn Backend) {
    // GIVEN the sample pull requests
    let f = b.fixture().await;
    sample(&f).await;
    let before = find(&f, "repo:acme/api").await.total;
    let long = "x".repeat(10_000);
    let hostile = [
        "\"",
        "\"\"",
        "\"rate",
        "rate\"",
        "((",
        ")",
        "*",
        "rate*",
        "NEAR(rate limiter)",
        "NEAR(",
        "^rate",
        "title:rate",
        "{title}: rate",
        "rate OR 1=1",
        "'; DELETE FROM search_docs; --",
        "\"); DROP TABLE pull_requests; --",
        "{\"query\":{\"match_all\":{}}}",
        "a AND",
        "NOT",
        "- -",
        "-\"\"",
        "\u{0}",
        "%00",
        "rate\u{0}",
        "🦀 ünï 東京",
        "\u{202e}rate",
        long.as_str(),
        "repo:../../etc",
        "author:*",
        "created:>'",
        "type:pr type:pr",
    ];
    for s in hostile {
        // WHEN searched THEN a query error, or results
        match SearchQuery::parse(s) {
            Err(_) => {}
            Ok(query) => {
                f.index.search(&query, &PageRequest::first(10)).await.unwrap_or_else(|e| panic!("{s:?}: {e:?}"));
            }
        }
    }
    // AND the index holds what it held
    assert_eq!(find(&f, "repo:acme/api").await.total, before);
    assert_eq!(keys(&find(&f, "rate limiter").await), ["pr:acme/api#2", "pr:acme/api#3"]);
}

async fn garbage_cursors_are_refused(b: &dyn Backend) {
    let f = b.fixture().await;
    sample(&f).await;
    for c in ["garbage", "eyJ4IjoxfQ", ""] {
        let page = PageRequest { limit: 5, cursor: Some(c.into()) };
        let e = f.index.search(&q("rate"), &page).await.unwrap_err();
        assert!(matches!(e, SearchError::BadCursor) && !e.is_retryable(), "{c:?}: {e:?}");
    }
}

async fn pull_request_and_review_bodies_are_searched_up_to_their_bound(b: &dyn Backend) {
    // GIVEN the sample pull requests, one of them with a body, and a review
    // with a body; each holds a word found nowhere else
    let f = b.fixture().await;
    sample(&f).await;
    let described = PullRequest {
        body: Some("Sessions now expire after a zanzibar interval.".into()),
        ..pull("acme/api", 1, "Add a cache for sessions", PrState::Open, "alice", 2)
    };
    // AND a pull request whose body is longer than the bound: one word before
    // the 65,536th character, one after it
    let long = format!("{} withinbound {} beyondbound", "pad ".repeat(16_000), "pad ".repeat(2_000));
    assert!(long.find("withinbound").unwrap() < 65_536 && long.find("beyondbound").unwrap() > 65_536);
    let oversized = PullRequest { body: Some(long), ..pull("acme/web", 6, "Long story", PrState::Open, "dave", 7) };
    f.sink
        .apply_changes(&[
            Change::pull_request(described),
            Change::pull_request(oversized),
            Change::Review(Review {
                repo: repo("acme/api"),
                pr_number: 2,
                id: 77,
                author: Some("bob".into()),
                state: ReviewState::ChangesRequested,
                submitted_at: Some(t(10)),
                commit_id: None,
                body: Some("Please rename the quokka before merging.".into()),
            }),
        ])
        .await
        .unwrap();
    // WHEN searched for the word only the pull request's body holds THEN it is found
    let r = find(&f, "zanzibar").await;
    assert_eq!(keys(&r), ["pr:acme/api#1"]);
    // AND the snippet is the body's passage, the word highlighted
    let marked: Vec<&str> = r.items[0].snippet.iter().filter(|s| s.highlighted).map(|s| s.text.as_str()).collect();
    assert_eq!(marked, ["zanzibar"]);
    // AND the review is found by its body's word (and by a phrase of it), the pull request is not
    assert_eq!(keys(&find(&f, "quokka").await), ["review:77"]);
    assert_eq!(keys(&find(&f, "\"rename the quokka\" type:review").await), ["review:77"]);
    // AND a body is indexed up to its bound: the word before it is found, the one after it is not
    assert_eq!(keys(&find(&f, "withinbound").await), ["pr:acme/web#6"]);
    assert!(keys(&find(&f, "beyondbound").await).is_empty());
    // AND a later write of the pull request without a body empties its document's body
    let silent = PullRequest {
        body: Some(String::new()),
        ..pull("acme/api", 1, "Add a cache for sessions", PrState::Open, "alice", 3)
    };
    f.sink.apply_changes(&[Change::pull_request(silent)]).await.unwrap();
    assert!(keys(&find(&f, "zanzibar").await).is_empty());
    assert_eq!(keys(&find(&f, "sessions").await), ["pr:acme/api#1"]);
}

/// A search document as a comparable row: key, kind, repo, author, state,
/// created_at, version, title, body, extra.
type DocRow =
    (String, String, Option<String>, Option<String>, Option<String>, Option<String>, String, String, String, String);

fn row(d: &SearchDoc) -> DocRow {
    (
        d.key.clone(),
        d.kind.as_str().to_owned(),
        d.repo.as_ref().map(|r| r.as_str().to_owned()),
        d.author.clone(),
        d.state.clone(),
        d.created_at.as_ref().map(octoscope::services::search_docs::version_of),
        d.version.clone(),
        d.title.clone(),
        d.body.clone(),
        d.extra.clone(),
    )
}

/// The mapping an indexer uses (`services::search_docs`) writes what the
/// SQLite triggers write, for every kind of document, and removes what they remove.
#[tokio::test]
async fn the_mapping_writes_what_the_sqlite_triggers_write() {
    // GIVEN changes of every searchable kind, marks and missing fields included
    let mut bare = pull("acme/api", 8, "Bare \u{1}one\u{2}", PrState::Open, "x", 9);
    // A body with the marks, wide characters and more than 65,536 characters.
    let described = PullRequest {
        body: Some(format!("Uses a \u{1}token bucket\u{2}.\n{}", "é".repeat(70_000))),
        ..pull("acme/api", 2, "Rate limiter", PrState::Merged, "bob", 3)
    };
    (bare.author, bare.labels, bare.head_ref, bare.base_ref) = (None, vec![], None, None);
    let team = |slug: &str, deleted, min| {
        Change::Team(Team {
            org: "acme".into(),
            slug: slug.into(),
            id: None,
            name: format!("Team \u{2}{slug}"),
            description: (slug != "quiet").then(|| "Keeps \u{1}things\u{2} running".into()),
            privacy: None,
            parent_slug: None,
            deleted,
            version: t(min),
        })
    };
    let member = |org: &str, login: &str, present, min| Change::OrgMember {
        org: org.into(),
        member: Membership { login: login.into(), role: None, present, version: t(min) },
    };
    let review = |id, number, author: Option<&str>, submitted: Option<i64>, body: Option<&str>| {
        Change::Review(Review {
            repo: repo("acme/api"),
            pr_number: number,
            id,
            author: author.map(Into::into),
            state: ReviewState::ChangesRequested,
            submitted_at: submitted.map(t),
            commit_id: None,
            body: body.map(Into::into),
        })
    };
    let changes = vec![
        Change::pull_request(described),
        Change::pull_request(bare),
        review(77, 2, Some("alice"), Some(10), Some("Please \u{2}rename\u{1} it")),
        review(78, 99, None, None, None),
        review(79, 2, Some("bob"), Some(11), Some("")),
        Change::Commit {
            commit: Commit {
                repo: repo("acme/api"),
                sha: "4f2a9c81d0e1b2c3d4e5f60718293a4b5c6d7e8f".into(),
                message: "Tune \u{1}retries\r\n\nBackoff grows.\nMore.".into(),
                author_login: None,
                author_name: Some("Dora Explorer".into()),
                committed_at: None,
            },
            branch: Some("main".into()),
            pushed_at: None,
        },
        Change::Repository(Repository { version: Some(t(1)), ..Repository::named(repo("acme/telemetry")) }),
        Change::Repository(Repository::named(repo("acme/unversioned"))),
        Change::Repository(Repository { deleted: true, version: Some(t(1)), ..Repository::named(repo("acme/gone")) }),
        team("crew", false, 1),
        team("quiet", false, 1),
        team("old", true, 1),
        member("acme", "zelda", true, 1),
        member("other", "zelda", true, 3),
        member("acme", "zelda", false, 4),
        member("acme", "yorick", true, 1),
        member("acme", "yorick", false, 2),
    ];
    // WHEN the store applies them one by one (its triggers index them), and
    // the mapping maps them with what the store then holds
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let store = octoscope::adapters::sqlite::SqliteStore::open(&path).unwrap();
    let mut facts = StoreFacts::default();
    let mut mapped: std::collections::BTreeMap<String, DocRow> = Default::default();
    for c in &changes {
        store.apply_changes(std::slice::from_ref(c)).await.unwrap();
        facts.note(c);
        let w = facts.writes(c);
        for k in &w.delete {
            mapped.remove(k);
        }
        for d in &w.upsert {
            mapped.insert(d.key.clone(), row(d));
        }
    }
    // THEN the documents are the same, field for field
    let conn = rusqlite::Connection::open(&path).unwrap();
    let mut stmt = conn
        .prepare("SELECT key, kind, repo, author, state, created_at, version, title, body, extra FROM search_docs ORDER BY key")
        .unwrap();
    let stored: Vec<DocRow> = stmt
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
                r.get(8)?,
                r.get(9)?,
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mapped: Vec<DocRow> = mapped.into_values().collect();
    assert_eq!(mapped, stored);
    // AND the bodies are there, cut at 65,536 characters and without the marks
    let body = |key: &str| stored.iter().find(|r| r.0 == key).map(|r| r.8.clone()).unwrap();
    assert_eq!(body("pr:acme/api#2").chars().count(), 65_536 - 2);
    assert!(body("pr:acme/api#2").starts_with("Uses a token bucket.\né"));
    assert_eq!((body("review:77").as_str(), body("review:78").as_str()), ("Please rename it", ""));
    let keys: Vec<&str> = stored.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(
        keys,
        [
            "commit:acme/api@4f2a9c81d0e1b2c3d4e5f60718293a4b5c6d7e8f",
            "person:zelda",
            "pr:acme/api#2",
            "pr:acme/api#8",
            "repo:acme/telemetry",
            "repo:acme/unversioned",
            "review:77",
            "review:78",
            "review:79",
            "team:acme/crew",
            "team:acme/quiet",
        ]
    );
}

/// A rough latency figure, not a benchmark: `cargo test -p octoscope-core
/// --release --test search_contract -- --ignored --nocapture` (shared/docs/search.md).
#[tokio::test]
#[ignore]
async fn search_latency_over_many_pull_requests() {
    let n: u64 = std::env::var("SEARCH_PULLS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let backend = Sqlite(Mutex::new(Vec::new()));
    let f = backend.fixture().await;
    let words = ["rate", "limiter", "cache", "gateway", "parser", "retry", "metrics", "login", "queue", "index"];
    let started = std::time::Instant::now();
    for chunk in (1..=n).collect::<Vec<_>>().chunks(1000) {
        let changes: Vec<Change> = chunk
            .iter()
            .map(|&i| {
                let title = format!("{} the {} in {}", words[(i % 10) as usize], words[(i / 10 % 10) as usize], i);
                pr(&format!("acme/r{}", i % 50), i, &title, PrState::Open, &format!("u{}", i % 200))
            })
            .collect();
        f.sink.apply_changes(&changes).await.unwrap();
    }
    println!("indexed {n} pull requests through the store in {:?}", started.elapsed());
    for query in ["rate limiter", "\"cache the gateway\"", "parser repo:acme/r7", "author:u5 retry", "-rate queue"] {
        let mut times = Vec::new();
        for _ in 0..50 {
            let t0 = std::time::Instant::now();
            f.index.search(&q(query), &PageRequest::first(20)).await.unwrap();
            times.push(t0.elapsed());
        }
        times.sort();
        println!("{query:>24}: p50 {:?} p99 {:?}", times[25], times[49]);
    }
}
