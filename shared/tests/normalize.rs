//! Normalisation of GitHub's real example payloads into domain changes.

mod common;

use chrono::{TimeZone, Utc};
use common::fixture;
use octoscope::domain::*;
use octoscope::webhook::normalize;

fn at() -> Timestamp {
    Utc.with_ymd_and_hms(2024, 1, 1, 12, 0, 0).unwrap()
}

fn changes(event: &str, name: &str) -> Vec<Change> {
    normalize(event, &fixture(event, name), at()).unwrap().changes
}

#[test]
fn a_pull_request_keeps_state_size_people_and_refs() {
    let c = changes("pull_request", "opened.payload.json");
    let Some(Change::PullRequest { pull: p, .. }) = c.iter().find(|c| matches!(c, Change::PullRequest { .. })) else {
        panic!("{c:?}")
    };
    assert_eq!((p.repo.as_str(), p.number, p.state), ("Codertocat/Hello-World", 2, PrState::Open));
    assert_eq!(p.author.as_deref(), Some("Codertocat"));
    assert_eq!((p.additions, p.deletions, p.changed_files), (Some(1), Some(1), Some(1)));
    assert_eq!(p.base_ref.as_deref(), Some("master"));
    assert_eq!(p.updated_at.to_rfc3339(), "2019-05-15T15:20:33+00:00");
    let Some(Change::Repository(r)) = c.first() else { panic!() };
    assert_eq!(r.activity_at, Some(p.updated_at), "the repository's activity is the PR update");
}

#[test]
fn merged_closed_and_review_embedded_pull_requests() {
    // A review event's pull request lacks sizes: they are None, so the store keeps what it has.
    let c = changes("pull_request_review", "submitted.payload.json");
    let Some(Change::PullRequest { pull: p, .. }) = c.iter().find(|c| matches!(c, Change::PullRequest { .. })) else {
        panic!()
    };
    assert_eq!((p.additions, p.deletions), (None, None));
    let Some(Change::Review(r)) = c.iter().find(|c| matches!(c, Change::Review(_))) else { panic!() };
    assert_eq!((r.id, r.state, r.author.as_deref()), (237895671, ReviewState::Commented, Some("Codertocat")));
    let c = changes("pull_request_review", "dismissed.payload.json");
    assert!(c.iter().any(|c| matches!(c, Change::Review(r) if r.state == ReviewState::Dismissed)));
    let c = changes("pull_request", "closed.payload.json");
    assert!(c.iter().any(
        |c| matches!(c, Change::PullRequest { pull: p, .. } if p.state == PrState::Closed && p.closed_at.is_some())
    ));
}

#[test]
fn a_push_moves_the_branch_head_and_records_its_commits() {
    let c = changes("push", "with-new-branch.payload.json");
    let branch = c.iter().find_map(|c| if let Change::Branch(b) = c { Some(b) } else { None }).unwrap();
    assert_eq!(branch.name, "master");
    assert!(branch.head_sha.as_deref().is_some_and(|s| s.len() == 40) && !branch.deleted);
    assert_eq!(
        branch.version.timestamp(),
        1557933657,
        "version is the repository's pushed_at (epoch seconds in push events)"
    );
    assert!(c.iter().any(|c| matches!(c, Change::Commit { branch: Some(b), .. } if b == "master")));
    // A tag push touches no branch.
    assert!(!changes("push", "payload.json").iter().any(|c| matches!(c, Change::Branch(_))));
}

#[test]
fn workflow_jobs_keep_their_times_labels_and_runner_os() {
    let c = changes("workflow_job", "completed.success.with-organization.payload.json");
    let job = c.iter().find_map(|c| if let Change::WorkflowJob(j) = c { Some(j) } else { None }).unwrap();
    assert_eq!(job.status, RunStatus::Completed);
    assert_eq!(job.os.as_deref(), Some("linux"));
    assert_eq!(job.labels, ["ubuntu-latest"]);
    assert_eq!((job.started_at.unwrap() - job.created_at.unwrap()).num_seconds(), 60, "queued 60 s before it started");
    assert_eq!(job.version(), job.completed_at);
}

#[test]
fn team_membership_and_org_membership_are_set_patches_at_receipt_time() {
    let c = changes("membership", "added.payload.json");
    assert!(c.iter().any(|c| matches!(c, Change::TeamMember { org, team_slug, member }
        if org == "Octocoders" && team_slug == "github" && member.login == "Codertocat" && member.present && member.version == at())));
    let c = changes("membership", "removed.payload.json");
    assert!(c.iter().any(|c| matches!(c, Change::TeamMember { member, .. } if !member.present)));
    // A removal from a team that no longer exists (no slug) changes nothing, and is no error.
    assert!(
        changes("membership", "removed.with-deleted-team.payload.json")
            .iter()
            .all(|c| !matches!(c, Change::TeamMember { .. }))
    );
    let c = changes("organization", "member_added.payload.json");
    assert!(
        c.iter()
            .any(|c| matches!(c, Change::OrgMember { member, .. } if member.login == "hacktocat" && member.present))
    );
    assert!(
        changes("organization", "member_invited.payload.json").iter().all(|c| !matches!(c, Change::OrgMember { .. }))
    );
}

#[test]
fn repository_deletion_wins_over_its_last_update_and_installations_track_repos() {
    let c = normalize(
        "repository",
        br#"{"action":"deleted","repository":{"full_name":"o/r","updated_at":"2019-01-01T00:00:00Z"}}"#,
        at(),
    )
    .unwrap()
    .changes;
    assert!(matches!(&c[0], Change::Repository(r) if r.deleted && r.version == Some(at())));
    let c = changes("installation_repositories", "added.payload.json");
    assert!(c.iter().any(
        |c| matches!(c, Change::Repository(r) if r.full_name.as_str() == "Codertocat/Space" && r.version.is_none())
    ));
}

#[test]
fn untracked_events_are_filed_but_change_nothing() {
    let n = normalize("issues", &fixture("issues", "opened.payload.json"), at()).unwrap();
    assert!(!n.tracked && n.changes.is_empty());
    assert_eq!(n.repo.as_ref().map(RepoName::as_str), Some("Codertocat/Hello-World"));
    assert_eq!(n.action.as_deref(), Some("opened"));
}

#[test]
fn syntax_and_shape_errors_are_told_apart() {
    assert!(normalize("pull_request", b"{not json", at()).unwrap_err().is_syntax());
    assert!(normalize("gollum", b"[1,", at()).unwrap_err().is_syntax());
    let shape = normalize("pull_request", br#"{"action":"opened"}"#, at()).unwrap_err();
    assert!(!shape.is_syntax());
    let bad_repo =
        normalize("push", br#"{"ref":"refs/heads/x","repository":{"full_name":"no slash"}}"#, at()).unwrap_err();
    assert!(!bad_repo.is_syntax() && bad_repo.to_string().contains("repository"));
}

#[test]
fn timestamps_with_offsets_and_epochs_normalise_to_utc() {
    let body = br#"{"ref":"refs/heads/main","after":"abc","commits":[{"id":"abc","message":"m","timestamp":"2019-05-15T15:20:30-05:00"}],
        "repository":{"full_name":"o/r","pushed_at":1557933657,"created_at":1557933565,"updated_at":"2019-05-15T15:20:41Z"}}"#;
    let c = normalize("push", body, at()).unwrap().changes;
    let commit =
        c.iter().find_map(|c| if let Change::Commit { commit, .. } = c { Some(commit) } else { None }).unwrap();
    assert_eq!(commit.committed_at.unwrap().to_rfc3339(), "2019-05-15T20:20:30+00:00");
}

fn moves(c: &[Change]) -> Vec<(Option<i64>, String, String, Timestamp)> {
    c.iter()
        .filter_map(|c| match c {
            Change::RepositoryMoved { id, from, to, at } => Some((*id, from.to_string(), to.to_string(), *at)),
            _ => None,
        })
        .collect()
}

/// A fixture payload with one JSON value replaced.
fn edited(event: &str, name: &str, pointer: &str, value: serde_json::Value) -> Vec<u8> {
    let mut body: serde_json::Value = serde_json::from_slice(&common::fixture(event, name)).unwrap();
    *body.pointer_mut(pointer).unwrap_or_else(|| panic!("{pointer} in {name}")) = value;
    serde_json::to_vec(&body).unwrap()
}

#[test]
fn a_renamed_repository_moves_from_its_old_name() {
    // GIVEN GitHub's example `renamed` payload, whose old name is the current one
    let c = changes("repository", "renamed.payload.json");
    // THEN the repository is recorded, and nothing moves (the name did not change)
    assert!(c.iter().any(|c| matches!(c, Change::Repository(r) if r.full_name.as_str() == "Octocoders/Hello-World")));
    assert_eq!(moves(&c), []);
    // GIVEN the same payload renamed from "Hello-Old"
    let body = edited("repository", "renamed.payload.json", "/changes/repository/name/from", "Hello-Old".into());
    // WHEN normalised
    let c = normalize("repository", &body, at()).unwrap().changes;
    // THEN the repository (same id, same owner) moved from its old name, at its updated_at
    let when = Utc.with_ymd_and_hms(2019, 5, 15, 15, 20, 41).unwrap();
    assert_eq!(moves(&c), [(Some(186853261), "Octocoders/Hello-Old".into(), "Octocoders/Hello-World".into(), when)]);
    // AND the usual repository change under the new name comes with it
    assert!(c.iter().any(|c| matches!(c, Change::Repository(r) if r.full_name.as_str() == "Octocoders/Hello-World")));
}

#[test]
fn a_transferred_repository_moves_from_its_old_owner() {
    // GIVEN GitHub's example `transferred` payloads (from the user octocat)
    for name in ["transferred.payload.json", "transferred.with-organization.payload.json"] {
        // WHEN normalised THEN the repository moved from octocat's account, same name
        let c = changes("repository", name);
        let got: Vec<(String, String)> = moves(&c).into_iter().map(|(_, f, t, _)| (f, t)).collect();
        assert_eq!(got, [("octocat/Hello-World".into(), "Octocoders/Hello-World".into())], "{name}");
    }
    // GIVEN a transfer from an organisation
    let body = edited(
        "repository",
        "transferred.payload.json",
        "/changes/owner/from",
        serde_json::json!({ "organization": { "login": "old-org" } }),
    );
    // WHEN normalised THEN the move names the organisation as the old owner
    let c = normalize("repository", &body, at()).unwrap().changes;
    assert_eq!(moves(&c)[0].1, "old-org/Hello-World");
    // AND other repository actions move nothing
    for other in ["created.payload.json", "edited.payload.json", "privatized.payload.json"] {
        assert_eq!(moves(&changes("repository", other)), [], "{other}");
    }
}

#[test]
fn a_move_with_an_invalid_old_name_is_refused() {
    // GIVEN a renamed payload whose old name could not be a repository name
    let body = edited("repository", "renamed.payload.json", "/changes/repository/name/from", "bad name/x".into());
    // WHEN normalised THEN it is refused, not stored under a made-up name
    assert!(normalize("repository", &body, at()).is_err());
}

fn pull_of(c: &[Change]) -> &PullRequest {
    c.iter()
        .find_map(|c| if let Change::PullRequest { pull, .. } = c { Some(&**pull) } else { None })
        .unwrap_or_else(|| panic!("no pull request in {c:?}"))
}

fn review_of(c: &[Change]) -> &Review {
    c.iter().find_map(|c| if let Change::Review(r) = c { Some(r) } else { None }).unwrap_or_else(|| panic!("{c:?}"))
}

#[test]
fn pull_request_and_review_bodies_are_kept_and_null_is_empty() {
    // GIVEN GitHub's example payloads WHEN normalised THEN the pull request keeps its body
    let simple = "This is a pretty simple change that we need to pull into master.";
    assert_eq!(pull_of(&changes("pull_request", "opened.payload.json")).body.as_deref(), Some(simple));
    // AND a null body is an empty one (known: it replaces what the store has)
    assert_eq!(pull_of(&changes("pull_request", "opened.with-null-body.json")).body.as_deref(), Some(""));
    // AND a review event keeps its review's body (null here) and its pull request's
    let c = changes("pull_request_review", "submitted.payload.json");
    assert_eq!(review_of(&c).body.as_deref(), Some(""));
    assert_eq!(pull_of(&c).body.as_deref(), Some(simple));
    let body = edited("pull_request_review", "submitted.payload.json", "/review/body", "Looks good, ship it".into());
    let c = normalize("pull_request_review", &body, at()).unwrap().changes;
    assert_eq!(review_of(&c).body.as_deref(), Some("Looks good, ship it"));
}

#[test]
fn a_payload_without_a_body_leaves_the_stored_one() {
    // GIVEN a pull request payload with no `body` field at all
    let mut v: serde_json::Value =
        serde_json::from_slice(&common::fixture("pull_request", "opened.payload.json")).unwrap();
    v["pull_request"].as_object_mut().unwrap().remove("body");
    let c = normalize("pull_request", &serde_json::to_vec(&v).unwrap(), at()).unwrap().changes;
    // THEN the body is unknown (None), not empty: the store keeps what it has
    assert_eq!(pull_of(&c).body, None);
}

#[test]
fn a_body_over_64_kib_is_cut_to_65536_characters() {
    // GIVEN bodies of 70,000 characters, some of them two bytes long, and the highlight marks
    let long: String = "é\u{1}".repeat(35_000) + &"x".repeat(30_000);
    let pr = edited("pull_request", "opened.payload.json", "/pull_request/body", long.clone().into());
    let review = edited("pull_request_review", "submitted.payload.json", "/review/body", long.clone().into());
    // WHEN normalised
    let pr = normalize("pull_request", &pr, at()).unwrap().changes;
    let review = normalize("pull_request_review", &review, at()).unwrap().changes;
    // THEN each keeps the first 65,536 characters, without the marks
    let expected: String = long.chars().take(65_536).filter(|c| *c != '\u{1}').collect();
    assert_eq!(expected.chars().count(), 32_768, "half of the first 65,536 characters are marks");
    assert_eq!(pull_of(&pr).body.as_deref(), Some(expected.as_str()));
    assert_eq!(review_of(&review).body.as_deref(), Some(expected.as_str()));
    // AND a plain body longer than the bound keeps exactly 65,536 characters
    let plain = edited("pull_request", "opened.payload.json", "/pull_request/body", "y".repeat(70_000).into());
    let body = pull_of(&normalize("pull_request", &plain, at()).unwrap().changes).body.clone().unwrap();
    assert_eq!(body.len(), 65_536);
}
