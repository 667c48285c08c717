//! What both stores share about repositories that moved (renamed or
//! transferred): which repository a change names, the same change under the
//! canonical name, and what applying a [`Change::RepositoryMoved`] does given
//! the aliases already recorded. The rules (shared/docs/schema.md):
//!
//! - every name has at most one alias record, `alias -> canonical`, stamped
//!   with the time of the move that made it (GitHub's, or when the check found it);
//! - a move `from -> to` whose `to` moved on later (`to` is an alias with a
//!   newer time) lands on `to`'s canonical name: a late move joins the chain;
//! - a move back to a name that is an alias older than the move makes that
//!   name canonical again (`a -> b`, then `b -> a`: `a` canonical, `b` its alias);
//! - a move whose `from` is already an alias of the same target only finishes
//!   moving what is still stored under `from` (an interrupted move, a redelivery);
//!   one whose `from` moved elsewhere later changes nothing;
//! - an alias answers for the repository that moved away from the name (the
//!   GitHub id its move carried), never for another repository that took the
//!   name afterwards (GitHub lets a new repository reuse a renamed one's old
//!   name): a write of a repository whose id differs, or a read of a name under
//!   which such a repository is stored, stays on the name ([`answers_for`]).

use crate::domain::{Change, RepoName, Timestamp};

/// One alias record: `alias` answers for `canonical` since `at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Alias {
    pub canonical: RepoName,
    pub at: Timestamp,
    /// GitHub's id of the repository that moved away from the name, when its move said it.
    pub id: Option<i64>,
}

/// Whether an alias recorded with `alias_id` answers for `holder`: the GitHub
/// id of the repository a write is for, or of the one stored under the name a
/// read asks for. Unknown on either side, names decide (as before ids were
/// compared); known on both, they must be the same repository.
pub(crate) fn answers_for(alias_id: Option<i64>, holder: Option<i64>) -> bool {
    match (alias_id, holder) {
        (Some(a), Some(h)) => a == h,
        _ => true,
    }
}

/// What applying a move does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MovePlan {
    /// The canonical name `from`'s history goes to.
    pub target: RepoName,
    /// `to` was an alias of an older move: drop that alias, `to` is canonical again.
    pub unalias_to: bool,
    /// Record (or repoint) `from -> target` at the move's time.
    pub write_alias: bool,
    /// Move what is stored under `from` (and the aliases pointing at it) to `target`.
    pub move_data: bool,
}

/// The plan for `from -> to` at `at` of the repository with GitHub id `id`,
/// given the alias records of `from` and `to` and the id of the repository
/// stored under `from` (`from_holder`); None when the move changes nothing
/// (same name, older than what the store already knows, or a repeat of a move
/// whose old name another repository has taken since).
pub(crate) fn plan_move(
    from: &RepoName,
    to: &RepoName,
    at: Timestamp,
    id: Option<i64>,
    from_alias: Option<&Alias>,
    to_alias: Option<&Alias>,
    from_holder: Option<i64>,
) -> Option<MovePlan> {
    if from == to {
        return None;
    }
    // Another repository's aliases say nothing about this one's move.
    let from_alias = from_alias.filter(|a| answers_for(a.id, id));
    let to_alias = to_alias.filter(|a| answers_for(a.id, id));
    let (target, unalias_to) = match to_alias {
        Some(a) if a.at > at => (a.canonical.clone(), false),
        Some(_) => (to.clone(), true),
        None => (to.clone(), false),
    };
    if &target == from {
        // A stale move whose target has since moved back to `from`.
        return None;
    }
    match from_alias {
        // The move again, but a new repository holds `from` now: what is stored there is its own.
        Some(a) if a.canonical == target && !answers_for(a.id, from_holder) => None,
        Some(a) if a.canonical == target => Some(MovePlan { target, unalias_to, write_alias: false, move_data: true }),
        Some(a) if a.at >= at => None,
        // `from` already moved (its history is elsewhere); a newer move repoints the name only.
        Some(_) => Some(MovePlan { target, unalias_to, write_alias: true, move_data: false }),
        None => Some(MovePlan { target, unalias_to, write_alias: true, move_data: true }),
    }
}

/// The repository a change is stored under (None: organisation-level, or a move).
pub(crate) fn repo_of(change: &Change) -> Option<&RepoName> {
    Some(match change {
        Change::Repository(r) => &r.full_name,
        Change::Branch(b) => &b.repo,
        Change::PullRequest { pull, .. } => &pull.repo,
        Change::Review(r) => &r.repo,
        Change::ReviewComment(c) => &c.repo,
        Change::Collaborator { repo, .. } => repo,
        Change::Commit { commit, .. } => &commit.repo,
        Change::WorkflowRun(r) => &r.repo,
        Change::WorkflowJob(j) => &j.repo,
        Change::Deployment(d) => &d.repo,
        Change::DeploymentStatus(s) => &s.repo,
        Change::RepositoryMoved { .. } | Change::Team(_) | Change::TeamMember { .. } | Change::OrgMember { .. } => {
            return None;
        }
    })
}

/// GitHub's id of each repository a batch of changes names, where one of its
/// changes says it (a delivery's repository, a resync's listing): which
/// repository the batch's other changes under that name are for.
pub(crate) fn repo_ids<'a>(changes: impl IntoIterator<Item = &'a Change>) -> std::collections::HashMap<RepoName, i64> {
    changes
        .into_iter()
        .filter_map(|c| match c {
            Change::Repository(r) => r.id.map(|id| (r.full_name.clone(), id)),
            _ => None,
        })
        .collect()
}

/// `change` stored under `repo` instead of the name it carries.
pub(crate) fn under(change: &Change, repo: &RepoName) -> Change {
    let mut c = change.clone();
    match &mut c {
        Change::Repository(r) => r.full_name = repo.clone(),
        Change::Branch(b) => b.repo = repo.clone(),
        Change::PullRequest { pull, .. } => pull.repo = repo.clone(),
        Change::Review(r) => r.repo = repo.clone(),
        Change::ReviewComment(x) => x.repo = repo.clone(),
        Change::Collaborator { repo: r, .. } => *r = repo.clone(),
        Change::Commit { commit, .. } => commit.repo = repo.clone(),
        Change::WorkflowRun(r) => r.repo = repo.clone(),
        Change::WorkflowJob(j) => j.repo = repo.clone(),
        Change::Deployment(d) => d.repo = repo.clone(),
        Change::DeploymentStatus(s) => s.repo = repo.clone(),
        Change::RepositoryMoved { .. } | Change::Team(_) | Change::TeamMember { .. } | Change::OrgMember { .. } => {}
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn name(s: &str) -> RepoName {
        RepoName::parse(s).unwrap()
    }
    fn at(min: u32) -> Timestamp {
        chrono::Utc.with_ymd_and_hms(2030, 1, 1, 10, min, 0).unwrap()
    }
    fn alias(to: &str, min: u32) -> Alias {
        Alias { canonical: name(to), at: at(min), id: Some(ID) }
    }
    /// The repository that moves in these cases.
    const ID: i64 = 7;
    /// Another repository, taking a name the first one left.
    const OTHER: i64 = 8;
    fn plan(from: &str, to: &str, min: u32, from_alias: Option<&Alias>, to_alias: Option<&Alias>) -> Option<MovePlan> {
        plan_move(&name(from), &name(to), at(min), Some(ID), from_alias, to_alias, None)
    }

    #[test]
    fn a_first_move_records_the_alias_and_moves_the_history() {
        // GIVEN no alias WHEN a/x moves to b/x THEN everything moves to b/x
        let p = plan("a/x", "b/x", 1, None, None).unwrap();
        assert_eq!(p, MovePlan { target: name("b/x"), unalias_to: false, write_alias: true, move_data: true });
    }

    #[test]
    fn a_redelivered_move_only_finishes_what_is_left() {
        // GIVEN a/x already an alias of b/x WHEN the same move comes again THEN no new alias, only leftovers move
        let p = plan("a/x", "b/x", 1, Some(&alias("b/x", 1)), None).unwrap();
        assert_eq!((p.write_alias, p.move_data, p.unalias_to), (false, true, false));
    }

    #[test]
    fn a_late_move_joins_the_chain() {
        // GIVEN b/x moved on to c/x at 2 WHEN a/x -> b/x (at 1) arrives late THEN a/x lands on c/x
        let p = plan("a/x", "b/x", 1, None, Some(&alias("c/x", 2))).unwrap();
        assert_eq!(p.target, name("c/x"));
        assert!(!p.unalias_to);
    }

    #[test]
    fn moving_back_makes_the_old_name_canonical_and_the_stale_move_changes_nothing() {
        // GIVEN a/x -> b/x at 1 WHEN b/x -> a/x at 2 THEN a/x stops being an alias
        let back = plan("b/x", "a/x", 2, None, Some(&alias("b/x", 1))).unwrap();
        assert_eq!((back.target, back.unalias_to), (name("a/x"), true));
        // AND the first move redelivered afterwards changes nothing
        assert_eq!(plan("a/x", "b/x", 1, None, Some(&alias("a/x", 2))), None);
    }

    #[test]
    fn an_older_move_of_a_name_that_moved_elsewhere_changes_nothing() {
        // GIVEN a/x -> c/x at 3 WHEN a/x -> b/x at 1 arrives THEN nothing
        assert_eq!(plan("a/x", "b/x", 1, Some(&alias("c/x", 3)), None), None);
        // AND a move to the same name is nothing
        assert_eq!(plan("a/x", "a/x", 1, None, None), None);
    }

    #[test]
    fn an_alias_answers_only_for_the_repository_that_moved() {
        // GIVEN a/x moved to b/x (repository ID) WHEN another repository takes a/x and it moves to c/x
        // THEN a/x's old alias is not this repository's: a first move, all of it
        let other =
            plan_move(&name("a/x"), &name("c/x"), at(5), Some(OTHER), Some(&alias("b/x", 1)), None, Some(OTHER));
        assert_eq!(
            other,
            Some(MovePlan { target: name("c/x"), unalias_to: false, write_alias: true, move_data: true })
        );
        // AND a move of the other repository onto b/x's old alias does not join b/x's chain
        let onto = plan_move(&name("d/x"), &name("a/x"), at(0), Some(OTHER), None, Some(&alias("b/x", 1)), None);
        assert_eq!(onto.map(|p| (p.target, p.unalias_to)), Some((name("a/x"), false)));
        // AND the first move redelivered while the other repository holds a/x changes nothing
        let again = plan_move(&name("a/x"), &name("b/x"), at(1), Some(ID), Some(&alias("b/x", 1)), None, Some(OTHER));
        assert_eq!(again, None);
        // AND still finishes a move cut short while a/x holds the repository that moved
        let cut = plan_move(&name("a/x"), &name("b/x"), at(1), Some(ID), Some(&alias("b/x", 1)), None, Some(ID));
        assert_eq!(cut.map(|p| p.move_data), Some(true));
        // AND ids unknown on either side leave names to decide
        assert!(answers_for(None, Some(OTHER)) && answers_for(Some(ID), None) && !answers_for(Some(ID), Some(OTHER)));
    }
}
