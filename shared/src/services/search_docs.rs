//! Search documents from store changes: what the index holds for each entity
//! the store holds, in Rust, for an index the store does not write itself
//! (OpenSearch, fed by an indexer from the store's stream). It is the same
//! mapping the SQLite triggers of `schema_v8.sql` apply inside the store's
//! transaction — same keys, kinds, titles, other words, states and versions,
//! the same deletions (tested against them in `tests/search_contract.rs`) —
//! and it depends on no store and no index (shared/docs/search.md).
//!
//! The input is an entity **as the store holds it after the write** (for an
//! indexer: the stream record's new image), not a raw incoming change: a
//! write the store's last-writer-wins rules skipped must not reach the index,
//! and fields a write leaves unknown (a pull request's labels, a review's
//! author) are the stored ones. Two documents need more than their row: a
//! review is titled by its pull request, and a person is indexed while they
//! are a present member of any organisation; the caller looks those up
//! ([`Known`], [`Lookup`]).

use crate::domain::{Change, DocKind, RepoName, SearchDoc, Segment, Timestamp};

/// The most characters of a document's body (and of any text written
/// through `SearchIndex::index`) kept.
pub const MAX_TEXT_CHARS: usize = 65_536;
/// The marks around a highlighted word inside the adapters; removed from
/// every indexed text, so a document can never carry one.
pub const HIGHLIGHT_OPEN: char = '\u{1}';
pub const HIGHLIGHT_CLOSE: char = '\u{2}';

/// `text` without the highlight marks.
pub fn clean(text: &str) -> String {
    text.chars().filter(|c| *c != HIGHLIGHT_OPEN && *c != HIGHLIGHT_CLOSE).collect()
}

/// The first `max_chars` characters of `text`, without the highlight marks.
pub fn clean_bounded(text: &str, max_chars: usize) -> String {
    text.chars().take(max_chars).filter(|c| *c != HIGHLIGHT_OPEN && *c != HIGHLIGHT_CLOSE).collect()
}

/// A pull request's or review's body as the store keeps it: its first
/// [`MAX_TEXT_CHARS`] characters (GitHub's own limit for a body is the same
/// 65,536), without the highlight marks. Every source of a body (webhooks,
/// the GitHub API) cuts it here, so the store and the index hold the same text.
pub fn stored_body(text: &str) -> String {
    clean_bounded(text, MAX_TEXT_CHARS)
}

/// Text carrying highlight marks, as segments (both adapters). A highlighter may trim the
/// passage it returns (OpenSearch's unified highlighter trims characters up
/// to U+0020, and so the marks, at either end): a close mark before any open
/// one ends a highlight that began the text, an open mark never closed runs
/// to its end.
pub fn segments(marked: &str) -> Vec<Segment> {
    let mut out = Vec::new();
    let mut highlighted = false;
    let mut seen_mark = false;
    let mut text = String::new();
    for c in marked.chars() {
        if c == HIGHLIGHT_OPEN || c == HIGHLIGHT_CLOSE {
            let was = if c == HIGHLIGHT_CLOSE && !seen_mark { true } else { highlighted };
            if !text.is_empty() {
                out.push(Segment { text: std::mem::take(&mut text), highlighted: was });
            }
            highlighted = c == HIGHLIGHT_OPEN;
            seen_mark = true;
        } else {
            text.push(c);
        }
    }
    if !text.is_empty() {
        out.push(Segment { text, highlighted });
    }
    out
}

/// A version as the store writes it: the time, to the millisecond, in one
/// fixed-width form, so that versions of a key order as strings.
pub fn version_of(t: &Timestamp) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

pub fn pull_request_key(repo: &RepoName, number: u64) -> String {
    format!("pr:{repo}#{number}")
}
pub fn review_key(id: i64) -> String {
    format!("review:{id}")
}
pub fn commit_key(repo: &RepoName, sha: &str) -> String {
    format!("commit:{repo}@{sha}")
}
pub fn repository_key(full_name: &RepoName) -> String {
    format!("repo:{full_name}")
}
pub fn team_key(org: &str, slug: &str) -> String {
    format!("team:{org}/{slug}")
}
pub fn person_key(login: &str) -> String {
    format!("person:{login}")
}

/// What the index must do for one change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DocWrites {
    /// Documents to add or replace (each only if not older than the indexed one).
    pub upsert: Vec<SearchDoc>,
    /// Keys of documents to remove.
    pub delete: Vec<String>,
}

impl DocWrites {
    pub fn is_empty(&self) -> bool {
        self.upsert.is_empty() && self.delete.is_empty()
    }

    /// Add another change's writes after these.
    pub fn extend(&mut self, other: DocWrites) {
        self.upsert.extend(other.upsert);
        self.delete.extend(other.delete);
    }
}

/// What a change's documents need from the store beyond the change ([`lookup`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup<'a> {
    Nothing,
    /// A review: the title of this pull request, if the store holds it.
    PullTitle {
        repo: &'a RepoName,
        number: u64,
    },
    /// An organisation membership: the newest version among this login's
    /// present memberships of *other* organisations, if any.
    OtherMemberships {
        login: &'a str,
        org: &'a str,
    },
}

/// Answers to a change's [`Lookup`]; `Known::default()` when it needs none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Known<'a> {
    /// The reviewed pull request's title (None: the store does not hold it;
    /// the review is then titled `OWNER/NAME#N`).
    pub pull_title: Option<&'a str>,
    /// The newest version among the login's present memberships of other
    /// organisations (None: they are a member of no other).
    pub other_membership: Option<Timestamp>,
}

/// What to look up before calling [`doc_writes`] for `change`.
pub fn lookup(change: &Change) -> Lookup<'_> {
    match change {
        Change::Review(r) => Lookup::PullTitle { repo: &r.repo, number: r.pr_number },
        Change::OrgMember { org, member } => Lookup::OtherMemberships { login: &member.login, org },
        _ => Lookup::Nothing,
    }
}

/// The key of the document `change`'s entity has (whether or not it is
/// indexed now), for an indexer that sees the entity's row removed; None for
/// an entity that has no document (branches, runs, …) or for a move.
pub fn doc_key(change: &Change) -> Option<String> {
    Some(match change {
        Change::PullRequest { pull, .. } => pull_request_key(&pull.repo, pull.number),
        Change::Review(r) => review_key(r.id),
        Change::Commit { commit, .. } => commit_key(&commit.repo, &commit.sha),
        Change::Repository(r) => repository_key(&r.full_name),
        Change::Team(t) => team_key(&t.org, &t.slug),
        Change::OrgMember { member, .. } => person_key(&member.login),
        _ => return None,
    })
}

/// `concat_ws(' ', …)`: the present parts joined by spaces.
fn words<'a>(parts: impl IntoIterator<Item = Option<&'a str>>) -> String {
    parts.into_iter().flatten().collect::<Vec<_>>().join(" ")
}

fn upsert(doc: SearchDoc) -> DocWrites {
    DocWrites { upsert: vec![doc], delete: Vec::new() }
}

fn delete(key: String) -> DocWrites {
    DocWrites { upsert: Vec::new(), delete: vec![key] }
}

fn person(login: &str, version: &Timestamp) -> SearchDoc {
    SearchDoc {
        key: person_key(login),
        kind: DocKind::Person,
        repo: None,
        author: Some(login.to_owned()),
        state: None,
        created_at: None,
        version: version_of(version),
        title: login.to_owned(),
        body: String::new(),
        extra: String::new(),
    }
}

/// The documents to write and the keys to remove for one change of the
/// store (its entity as stored after the write), with what [`lookup`] asked
/// for in `known`.
///
/// A repository move (`RepositoryMoved`) removes the repository's document
/// under its old name only: the store moves each of the repository's rows,
/// and those rows' writes (under the new name) and removals (under the old)
/// are changes of their own. Entities that are not searched (branches,
/// memberships of teams and repositories, review comments, runs, jobs,
/// deployments) write nothing.
pub fn doc_writes(change: &Change, known: Known<'_>) -> DocWrites {
    match change {
        Change::PullRequest { pull: p, known: lists } => {
            let number = format!("#{}", p.number);
            let labels = lists.labels.then(|| serde_json::to_string(&p.labels).expect("strings serialise"));
            let extra = words([
                labels.as_deref(),
                p.head_ref.as_deref(),
                p.base_ref.as_deref(),
                p.author.as_deref(),
                Some(p.repo.as_str()),
                Some(&number),
            ]);
            upsert(SearchDoc {
                key: pull_request_key(&p.repo, p.number),
                kind: DocKind::Pr,
                repo: Some(p.repo.clone()),
                author: p.author.clone(),
                state: Some(p.state.as_str().to_owned()),
                created_at: Some(p.created_at),
                version: version_of(&p.updated_at),
                title: clean(&p.title),
                body: clean_bounded(p.body.as_deref().unwrap_or_default(), MAX_TEXT_CHARS),
                extra: clean(&extra),
            })
        }
        Change::Review(r) => {
            let number = format!("#{}", r.pr_number);
            let title = match known.pull_title {
                Some(t) => clean(t),
                None => clean(&format!("{}#{}", r.repo, r.pr_number)),
            };
            upsert(SearchDoc {
                key: review_key(r.id),
                kind: DocKind::Review,
                repo: Some(r.repo.clone()),
                author: r.author.clone(),
                state: Some(r.state.as_str().to_owned()),
                created_at: r.submitted_at,
                version: r.submitted_at.as_ref().map(version_of).unwrap_or_default(),
                title,
                body: clean_bounded(r.body.as_deref().unwrap_or_default(), MAX_TEXT_CHARS),
                extra: clean(&words([
                    r.author.as_deref(),
                    Some(r.state.as_str()),
                    Some(r.repo.as_str()),
                    Some(&number),
                ])),
            })
        }
        Change::Commit { commit: c, .. } => {
            let first_line = c.message.split('\n').next().unwrap_or_default();
            let short: String = c.sha.chars().take(7).collect();
            upsert(SearchDoc {
                key: commit_key(&c.repo, &c.sha),
                kind: DocKind::Commit,
                repo: Some(c.repo.clone()),
                author: c.author_login.clone(),
                state: None,
                created_at: c.committed_at,
                version: c.committed_at.as_ref().map(version_of).unwrap_or_default(),
                title: clean(first_line),
                body: clean_bounded(&c.message, MAX_TEXT_CHARS),
                extra: clean(&words([
                    Some(c.sha.as_str()),
                    Some(&short),
                    c.author_login.as_deref(),
                    c.author_name.as_deref(),
                    Some(c.repo.as_str()),
                ])),
            })
        }
        Change::Repository(r) if r.deleted => delete(repository_key(&r.full_name)),
        Change::Repository(r) => upsert(SearchDoc {
            key: repository_key(&r.full_name),
            kind: DocKind::Repo,
            repo: Some(r.full_name.clone()),
            author: None,
            state: None,
            created_at: None,
            version: r.version.as_ref().map(version_of).unwrap_or_default(),
            title: r.full_name.to_string(),
            body: String::new(),
            extra: r.full_name.as_str().replace('/', " "),
        }),
        Change::RepositoryMoved { from, .. } => delete(repository_key(from)),
        Change::Team(t) if t.deleted => delete(team_key(&t.org, &t.slug)),
        Change::Team(t) => upsert(SearchDoc {
            key: team_key(&t.org, &t.slug),
            kind: DocKind::Team,
            repo: None,
            author: None,
            state: None,
            created_at: None,
            version: version_of(&t.version),
            title: clean(&t.name),
            body: clean_bounded(t.description.as_deref().unwrap_or_default(), MAX_TEXT_CHARS),
            extra: clean(&format!("{} {}", t.org, t.slug)),
        }),
        Change::OrgMember { member: m, .. } => {
            // Indexed while a present member of any organisation, at the
            // newest version among those memberships.
            let newest = match (m.present, known.other_membership) {
                (true, Some(other)) => Some(other.max(m.version)),
                (true, None) => Some(m.version),
                (false, other) => other,
            };
            match newest {
                Some(v) => upsert(person(&m.login, &v)),
                None => delete(person_key(&m.login)),
            }
        }
        Change::Branch(_)
        | Change::ReviewComment(_)
        | Change::TeamMember { .. }
        | Change::Collaborator { .. }
        | Change::WorkflowRun(_)
        | Change::WorkflowJob(_)
        | Change::Deployment(_)
        | Change::DeploymentStatus(_) => DocWrites::default(),
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::domain::*;

    #[test]
    fn marks_split_into_segments() {
        let s = segments("fix \u{1}rate\u{2} limiter \u{1}bug\u{2}");
        let got: Vec<_> = s.iter().map(|s| (s.text.as_str(), s.highlighted)).collect();
        assert_eq!(got, [("fix ", false), ("rate", true), (" limiter ", false), ("bug", true)]);
    }

    fn t(min: u32) -> Timestamp {
        Utc.with_ymd_and_hms(2030, 3, 4, 9, min, 0).unwrap()
    }

    fn repo(s: &str) -> RepoName {
        RepoName::parse(s).unwrap()
    }

    fn pull(labels: Vec<String>) -> PullRequest {
        PullRequest {
            repo: repo("acme/api"),
            number: 7,
            id: Some(1),
            title: "Fix the \u{1}rate\u{2} limiter".into(),
            state: PrState::Merged,
            draft: false,
            author: Some("alice".into()),
            created_at: t(1),
            updated_at: t(2),
            closed_at: Some(t(2)),
            merged_at: Some(t(2)),
            additions: None,
            deletions: None,
            changed_files: None,
            commits: None,
            labels,
            requested_reviewers: vec![],
            requested_teams: vec![],
            base_ref: Some("main".into()),
            head_ref: None,
            head_sha: None,
            body: None,
        }
    }

    fn one(w: DocWrites) -> SearchDoc {
        assert!(w.delete.is_empty(), "{w:?}");
        assert_eq!(w.upsert.len(), 1, "{w:?}");
        w.upsert.into_iter().next().unwrap()
    }

    #[test]
    fn a_pull_request_is_its_title_labels_branches_author_and_number() {
        let d = one(doc_writes(&Change::pull_request(pull(vec!["bug".into(), "good first".into()])), Known::default()));
        assert_eq!(d.key, "pr:acme/api#7");
        assert_eq!(d.kind, DocKind::Pr);
        assert_eq!(
            (d.repo.unwrap().as_str(), d.author.as_deref(), d.state.as_deref()),
            ("acme/api", Some("alice"), Some("merged"))
        );
        assert_eq!((d.created_at, d.version.as_str()), (Some(t(1)), "2030-03-04T09:02:00.000Z"));
        // The marks are gone; the labels are their JSON list, as the store keeps them.
        assert_eq!(d.title, "Fix the rate limiter");
        assert_eq!(d.body, "");
        assert_eq!(d.extra, r#"["bug","good first"] main alice acme/api #7"#);
        // Labels a write did not know are left out.
        let unknown = Change::PullRequest {
            pull: Box::new(pull(vec![])),
            known: ListsKnown { labels: false, ..ListsKnown::ALL },
        };
        assert_eq!(one(doc_writes(&unknown, Known::default())).extra, "main alice acme/api #7");
    }

    #[test]
    fn a_review_is_titled_by_its_pull_request_or_its_number() {
        let r = Change::Review(Review {
            repo: repo("acme/api"),
            pr_number: 7,
            id: 99,
            author: None,
            state: ReviewState::ChangesRequested,
            submitted_at: None,
            commit_id: None,
            body: None,
        });
        assert_eq!(lookup(&r), Lookup::PullTitle { repo: &repo("acme/api"), number: 7 });
        let d = one(doc_writes(&r, Known { pull_title: Some("Fix \u{2}it"), ..Known::default() }));
        assert_eq!((d.key.as_str(), d.title.as_str(), d.version.as_str()), ("review:99", "Fix it", ""));
        assert_eq!((d.state.as_deref(), d.created_at), (Some("changes_requested"), None));
        assert_eq!(d.extra, "changes_requested acme/api #7");
        assert_eq!(one(doc_writes(&r, Known::default())).title, "acme/api#7");
    }

    #[test]
    fn pull_request_and_review_bodies_are_their_documents_bodies_bounded_and_clean() {
        // GIVEN a pull request and a review with bodies, one past the bound and carrying marks
        let long = "\u{1}a".repeat(40_000);
        let p = PullRequest { body: Some(long.clone()), ..pull(vec![]) };
        let r = Review {
            repo: repo("acme/api"),
            pr_number: 7,
            id: 99,
            author: None,
            state: ReviewState::Approved,
            submitted_at: Some(t(3)),
            commit_id: None,
            body: Some("Looks \u{2}good".into()),
        };
        // WHEN mapped THEN the body is the text's first 65,536 characters without the marks
        let d = one(doc_writes(&Change::pull_request(p.clone()), Known::default()));
        assert_eq!(d.body, "a".repeat(MAX_TEXT_CHARS / 2));
        assert_eq!(d.body, clean_bounded(&long, MAX_TEXT_CHARS));
        assert_eq!(one(doc_writes(&Change::Review(r.clone()), Known::default())).body, "Looks good");
        // AND an unknown body (None) indexes as empty, as the store's NULL does
        let d = one(doc_writes(&Change::pull_request(PullRequest { body: None, ..p }), Known::default()));
        assert_eq!(d.body, "");
        assert_eq!(one(doc_writes(&Change::Review(Review { body: None, ..r }), Known::default())).body, "");
    }

    #[test]
    fn a_stored_body_is_cut_at_65536_characters_not_bytes() {
        let wide = "é".repeat(70_000);
        assert_eq!(stored_body(&wide).chars().count(), 65_536);
        assert_eq!(stored_body(&wide).len(), 2 * 65_536);
        assert_eq!(stored_body("short \u{1}one"), "short one");
    }

    #[test]
    fn a_commit_is_its_first_line_its_message_and_its_sha() {
        let c = Change::Commit {
            commit: Commit {
                repo: repo("acme/api"),
                sha: "4f2a9c81d0".into(),
                message: "Tune \u{1}retries\r\n\nBackoff grows.".into(),
                author_login: None,
                author_name: Some("Dora E".into()),
                committed_at: Some(t(3)),
            },
            branch: None,
            pushed_at: None,
        };
        let d = one(doc_writes(&c, Known::default()));
        assert_eq!(d.key, "commit:acme/api@4f2a9c81d0");
        // Up to the first line feed, as the trigger cuts it.
        assert_eq!(d.title, "Tune retries\r");
        assert_eq!(d.body, "Tune retries\r\n\nBackoff grows.");
        assert_eq!(d.extra, "4f2a9c81d0 4f2a9c8 Dora E acme/api");
        assert_eq!((d.author, d.state, d.version.as_str()), (None, None, "2030-03-04T09:03:00.000Z"));
        // A body is bounded.
        let Change::Commit { mut commit, .. } = c else { unreachable!() };
        commit.message = "x".repeat(MAX_TEXT_CHARS + 10);
        let long = Change::Commit { commit, branch: None, pushed_at: None };
        assert_eq!(one(doc_writes(&long, Known::default())).body.len(), MAX_TEXT_CHARS);
    }

    #[test]
    fn repositories_and_teams_leave_when_deleted_and_moves_remove_the_old_name() {
        let mut r = Repository::named(repo("acme/telemetry"));
        let d = one(doc_writes(&Change::Repository(r.clone()), Known::default()));
        assert_eq!(
            (d.key.as_str(), d.title.as_str(), d.extra.as_str(), d.version.as_str()),
            ("repo:acme/telemetry", "acme/telemetry", "acme telemetry", "")
        );
        r.deleted = true;
        assert_eq!(doc_writes(&Change::Repository(r), Known::default()).delete, ["repo:acme/telemetry"]);
        let moved = Change::RepositoryMoved { id: Some(1), from: repo("acme/old"), to: repo("acme/new"), at: t(1) };
        assert_eq!(
            doc_writes(&moved, Known::default()),
            DocWrites { upsert: vec![], delete: vec!["repo:acme/old".into()] }
        );

        let mut team = Team {
            org: "acme".into(),
            slug: "platform".into(),
            id: None,
            name: "Platform \u{1}Crew".into(),
            description: Some("Keeps the lights on".into()),
            privacy: None,
            parent_slug: None,
            deleted: false,
            version: t(4),
        };
        let d = one(doc_writes(&Change::Team(team.clone()), Known::default()));
        assert_eq!(
            (d.key.as_str(), d.title.as_str(), d.body.as_str(), d.extra.as_str()),
            ("team:acme/platform", "Platform Crew", "Keeps the lights on", "acme platform")
        );
        team.deleted = true;
        assert_eq!(doc_writes(&Change::Team(team), Known::default()).delete, ["team:acme/platform"]);
    }

    #[test]
    fn a_person_is_indexed_while_a_present_member_of_any_organisation() {
        let member = |present, min| Change::OrgMember {
            org: "acme".into(),
            member: Membership { login: "zelda".into(), role: None, present, version: t(min) },
        };
        assert_eq!(lookup(&member(true, 1)), Lookup::OtherMemberships { login: "zelda", org: "acme" });
        let d = one(doc_writes(&member(true, 1), Known::default()));
        assert_eq!(
            (d.key.as_str(), d.title.as_str(), d.author.as_deref(), d.version.as_str()),
            ("person:zelda", "zelda", Some("zelda"), "2030-03-04T09:01:00.000Z")
        );
        // At the newest of their memberships.
        let elsewhere = Known { other_membership: Some(t(9)), ..Known::default() };
        assert_eq!(one(doc_writes(&member(true, 1), elsewhere)).version, "2030-03-04T09:09:00.000Z");
        // Leaving one organisation keeps them while they are in another; leaving the last removes them.
        assert_eq!(one(doc_writes(&member(false, 2), elsewhere)).version, "2030-03-04T09:09:00.000Z");
        assert_eq!(doc_writes(&member(false, 2), Known::default()).delete, ["person:zelda"]);
    }

    #[test]
    fn entities_that_are_not_searched_write_nothing() {
        let b = Change::Branch(Branch {
            repo: repo("a/b"),
            name: "main".into(),
            head_sha: None,
            deleted: false,
            version: t(1),
        });
        assert!(doc_writes(&b, Known::default()).is_empty());
        assert_eq!(doc_key(&b), None);
        assert_eq!(lookup(&b), Lookup::Nothing);
    }
}
