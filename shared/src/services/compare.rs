//! What the integrity check compares, kind by kind: GitHub's counts and marks
//! against the store's. Pure functions over the ports' snapshot types, so each
//! rule is tested on its own; `integrity` reads both sides and calls them.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::domain::*;
use crate::ports::{JobCount, OrgSnapshot, RepoSnapshot, RunWindow, StoredRuns};

/// At most this many names or ids are quoted in a gap's reason.
const QUOTED: usize = 10;

/// One kind that differs, from when, and why (for people).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub kind: GapKind,
    /// Repair back to this time (None: all of it).
    pub since: Option<Timestamp>,
    pub reason: String,
}

fn quoted<T: ToString>(items: impl IntoIterator<Item = T>) -> String {
    let all: Vec<String> = items.into_iter().map(|i| i.to_string()).collect();
    let more = all.len().saturating_sub(QUOTED);
    let mut s = all.into_iter().take(QUOTED).collect::<Vec<_>>().join(", ");
    if more > 0 {
        s.push_str(&format!(" and {more} more"));
    }
    s
}

fn secs(t: Option<Timestamp>) -> Option<i64> {
    t.map(|t| t.timestamp())
}

/// The differences between GitHub's and the store's snapshots of one
/// repository, both taken since `since`: pull requests (counts, newest update,
/// the recently updated ones), reviews (per recently updated pull request),
/// branch heads, default-branch commits and deployments.
pub fn compare_repo(theirs: &RepoSnapshot, ours: Option<&RepoSnapshot>, since: Option<Timestamp>) -> Vec<Difference> {
    let empty = RepoSnapshot::empty(theirs.repo.clone());
    let ours = ours.unwrap_or(&empty);
    let mut out = Vec::new();
    let mut differ = |kind, reason: String| out.push(Difference { kind, since, reason });

    let counts = (theirs.open, theirs.closed, theirs.merged) != (ours.open, ours.closed, ours.merged);
    let newest = secs(theirs.newest_pr_updated_at) != secs(ours.newest_pr_updated_at);
    let ours_recent: HashMap<u64, _> = ours.recent_pulls.iter().map(|m| (m.number, m)).collect();
    let stale: Vec<u64> = theirs
        .recent_pulls
        .iter()
        .filter(|t| ours_recent.get(&t.number).is_none_or(|o| o.updated_at.timestamp() != t.updated_at.timestamp()))
        .map(|t| t.number)
        .collect();
    if counts || newest || !stale.is_empty() {
        differ(
            GapKind::Pulls,
            format!(
                "pull requests open/closed/merged {}/{}/{} on GitHub, {}/{}/{} here; newest update {:?} vs {:?}; \
                 updated since the last check and different here: {}",
                theirs.open,
                theirs.closed,
                theirs.merged,
                ours.open,
                ours.closed,
                ours.merged,
                theirs.newest_pr_updated_at,
                ours.newest_pr_updated_at,
                if stale.is_empty() { "none".to_owned() } else { quoted(stale.iter().map(|n| format!("#{n}"))) }
            ),
        );
    }
    let reviews: Vec<String> = theirs
        .recent_pulls
        .iter()
        .filter_map(|t| {
            let o = ours_recent.get(&t.number)?;
            (o.reviews != t.reviews).then(|| format!("#{} {} vs {}", t.number, t.reviews, o.reviews))
        })
        .collect();
    if !reviews.is_empty() {
        differ(GapKind::Reviews, format!("review counts differ (GitHub vs here): {}", quoted(reviews)));
    }

    let ours_heads: BTreeMap<&str, &str> = ours.branches.iter().map(|(n, s)| (n.as_str(), s.as_str())).collect();
    let mut heads: Vec<&str> = theirs
        .branches
        .iter()
        .filter(|(n, s)| ours_heads.get(n.as_str()) != Some(&s.as_str()))
        .map(|(n, _)| n.as_str())
        .collect();
    if !theirs.branches_truncated {
        let theirs_names: HashSet<&str> = theirs.branches.iter().map(|(n, _)| n.as_str()).collect();
        heads.extend(ours.branches.iter().map(|(n, _)| n.as_str()).filter(|n| !theirs_names.contains(n)));
    }
    if !heads.is_empty() {
        heads.sort();
        differ(GapKind::Branches, format!("branch heads differ: {}", quoted(heads)));
    }

    if let Some(n) = theirs.default_branch_commits {
        let here = if ours.default_branch == theirs.default_branch { ours.default_branch_commits } else { None };
        if here != Some(n) && !(n == 0 && here.is_none()) {
            differ(
                GapKind::Commits,
                format!(
                    "commits on {} since the last check: {n} on GitHub, {} here",
                    theirs.default_branch.as_deref().unwrap_or("the default branch"),
                    here.map_or_else(|| "none known".to_owned(), |h| h.to_string())
                ),
            );
        }
    }

    let ours_latest: HashMap<i64, &Option<String>> =
        ours.recent_deployments.iter().map(|d| (d.id, &d.latest_state)).collect();
    let deployments: Vec<String> = theirs
        .recent_deployments
        .iter()
        .filter(|t| ours_latest.get(&t.id) != Some(&&t.latest_state))
        .map(|t| format!("{} ({})", t.id, t.latest_state.as_deref().unwrap_or("no status")))
        .collect();
    if !theirs.deployments_withheld && (theirs.deployments != ours.deployments || !deployments.is_empty()) {
        differ(
            GapKind::Deployments,
            format!(
                "deployments {} on GitHub, {} here; latest status differs for: {}",
                theirs.deployments,
                ours.deployments,
                if deployments.is_empty() { "none".to_owned() } else { quoted(deployments) }
            ),
        );
    }
    out
}

/// The difference between GitHub's and the store's teams of one organisation.
pub fn compare_org(theirs: &OrgSnapshot, ours: Option<&OrgSnapshot>) -> Option<String> {
    if theirs.teams_withheld {
        return None;
    }
    let mut t = theirs.teams.clone();
    let mut o = ours.map(|o| o.teams.clone()).unwrap_or_default();
    t.sort();
    o.sort();
    (t != o).then(|| {
        let differ = t
            .iter()
            .filter(|x| !o.contains(x))
            .chain(o.iter().filter(|x| !t.contains(x)))
            .map(|(slug, n)| format!("{slug}({n})"));
        format!("teams or member counts differ: {}", quoted(differ))
    })
}

/// An organisation's repositories on GitHub against those the store tracks:
/// the recent ones it does not know (to compare at once), and why the
/// organisation's repositories need a repair, if they do.
pub fn compare_org_repos(theirs: &OrgSnapshot, tracked: &[RepoName]) -> (Vec<RepoName>, Option<String>) {
    let known: HashSet<String> = tracked.iter().map(|r| r.as_str().to_ascii_lowercase()).collect();
    let ours = tracked.iter().filter(|r| r.owner().eq_ignore_ascii_case(&theirs.org)).count() as u64;
    let missing: Vec<RepoName> =
        theirs.recent_repos.iter().filter(|r| !known.contains(&r.as_str().to_ascii_lowercase())).cloned().collect();
    let more = theirs.repos_total.is_some_and(|n| n > ours);
    let reason = (!missing.is_empty() || more).then(|| {
        format!(
            "repositories: {} on GitHub, {ours} tracked here; not known here: {}",
            theirs.repos_total.map_or_else(|| "?".to_owned(), |n| n.to_string()),
            if missing.is_empty() { "none of the newest".to_owned() } else { quoted(&missing) }
        )
    });
    (missing, reason)
}

/// Where the runs window starts: the watermark, or the oldest run the store
/// holds as unfinished when that is older and within `horizon`.
pub fn widen(since: Option<Timestamp>, oldest_unfinished: Option<Timestamp>, horizon: Timestamp) -> Option<Timestamp> {
    match (since, oldest_unfinished) {
        (Some(s), Some(u)) if u < s && u >= horizon => Some(u),
        (s, _) => s,
    }
}

/// One repository's workflow runs since a time: GitHub's window and the store's.
#[derive(Debug, Clone)]
pub struct RunComparison {
    pub since: Option<Timestamp>,
    pub theirs: RunWindow,
    pub ours: StoredRuns,
}

impl RunComparison {
    /// Node ids of GitHub's listed runs, for their job counts.
    pub fn node_ids(&self) -> impl Iterator<Item = String> + '_ {
        self.theirs.runs.iter().filter_map(|r| r.node_id.clone())
    }

    /// Runs: how many since the window's start, and each listed run's status,
    /// conclusion and last update.
    pub fn differences(&self) -> Option<Difference> {
        let ours: HashMap<i64, _> = self.ours.runs.iter().map(|r| (r.id, r)).collect();
        let differ: Vec<i64> = self
            .theirs
            .runs
            .iter()
            .map(|l| &l.run)
            .filter(|t| {
                ours.get(&t.id).is_none_or(|o| {
                    (o.status, &o.conclusion, o.updated_at.timestamp())
                        != (t.status, &t.conclusion, t.updated_at.timestamp())
                })
            })
            .map(|t| t.id)
            .collect();
        (self.theirs.total != self.ours.total || !differ.is_empty()).then(|| Difference {
            kind: GapKind::WorkflowRuns,
            since: self.since,
            reason: format!(
                "workflow runs since {}: {} on GitHub, {} here; missing or different here: {}",
                self.since.map_or_else(|| "the start".to_owned(), |s| s.to_rfc3339()),
                self.theirs.total,
                self.ours.total,
                if differ.is_empty() { "none of the newest".to_owned() } else { quoted(differ) }
            ),
        })
    }

    /// Jobs: per listed run, how many and how many completed, GitHub's
    /// `counts` against the store's.
    pub fn job_differences(&self, counts: &[JobCount]) -> Option<Difference> {
        let listed: HashSet<i64> = self.theirs.runs.iter().map(|r| r.run.id).collect();
        let ours: HashMap<i64, (u64, u64)> =
            self.ours.runs.iter().map(|r| (r.id, (r.jobs, r.jobs_completed))).collect();
        let differ: Vec<String> = counts
            .iter()
            .filter(|c| listed.contains(&c.run_id))
            .filter(|c| ours.get(&c.run_id).copied().unwrap_or((0, 0)) != (c.jobs, c.completed))
            .map(|c| {
                let (j, d) = ours.get(&c.run_id).copied().unwrap_or((0, 0));
                format!("run {} {}/{} vs {j}/{d}", c.run_id, c.jobs, c.completed)
            })
            .collect();
        (!differ.is_empty()).then(|| Difference {
            kind: GapKind::WorkflowJobs,
            since: self.since,
            reason: format!("jobs (all/completed, GitHub vs here) differ: {}", quoted(differ)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{DeploymentMark, ListedRun, PullMark, StoredRun};
    use chrono::{TimeZone as _, Utc};

    fn at(s: i64) -> Timestamp {
        Utc.timestamp_opt(1_700_000_000 + s, 0).unwrap()
    }
    fn repo() -> RepoName {
        RepoName::parse("octo/app").unwrap()
    }
    fn snapshot() -> RepoSnapshot {
        RepoSnapshot {
            open: 1,
            newest_pr_updated_at: Some(at(50)),
            recent_pulls: vec![PullMark { number: 7, updated_at: at(50), reviews: 2 }],
            branches: vec![("main".into(), "abc".into())],
            default_branch: Some("main".into()),
            default_branch_commits: Some(3),
            deployments: 1,
            recent_deployments: vec![DeploymentMark { id: 9, latest_state: Some("success".into()) }],
            ..RepoSnapshot::empty(repo())
        }
    }
    fn kinds(d: &[Difference]) -> Vec<GapKind> {
        d.iter().map(|d| d.kind).collect()
    }

    #[test]
    fn equal_snapshots_differ_in_nothing() {
        // GIVEN the same snapshot on both sides THEN no kind differs
        assert_eq!(compare_repo(&snapshot(), Some(&snapshot()), Some(at(0))), vec![]);
    }

    #[test]
    fn each_kind_is_found_on_its_own() {
        // GIVEN the store lost one review, one deployment status and one commit
        let mut ours = snapshot();
        ours.recent_pulls[0].reviews = 1;
        ours.recent_deployments[0].latest_state = Some("in_progress".into());
        ours.default_branch_commits = Some(2);
        // WHEN compared
        let d = compare_repo(&snapshot(), Some(&ours), Some(at(0)));
        // THEN exactly those kinds differ, each from the watermark
        assert_eq!(kinds(&d), vec![GapKind::Reviews, GapKind::Commits, GapKind::Deployments]);
        assert!(d.iter().all(|d| d.since == Some(at(0))));
        assert!(d[0].reason.contains("#7 2 vs 1"), "{}", d[0].reason);
    }

    #[test]
    fn deployments_github_withholds_are_not_compared() {
        // GIVEN GitHub withheld the deployments (an app not granted Deployments), the store holds some
        let theirs =
            RepoSnapshot { deployments: 0, deployments_withheld: true, recent_deployments: vec![], ..snapshot() };
        // WHEN compared THEN nothing differs; without the mark, the deployments would
        assert_eq!(compare_repo(&theirs, Some(&snapshot()), Some(at(0))), vec![]);
        let shown = RepoSnapshot { deployments_withheld: false, ..theirs };
        assert_eq!(kinds(&compare_repo(&shown, Some(&snapshot()), Some(at(0)))), vec![GapKind::Deployments]);
    }

    #[test]
    fn a_lost_update_of_an_old_pull_request_is_found_by_its_mark() {
        // GIVEN the counts and the newest update agree, but one pull request updated
        // since the last check is older here
        let mut theirs = snapshot();
        theirs.recent_pulls.push(PullMark { number: 3, updated_at: at(40), reviews: 0 });
        let mut ours = snapshot();
        ours.recent_pulls.push(PullMark { number: 3, updated_at: at(10), reviews: 0 });
        // THEN pull requests differ, and a pull request unknown here would too
        assert_eq!(kinds(&compare_repo(&theirs, Some(&ours), None)), vec![GapKind::Pulls]);
        assert_eq!(kinds(&compare_repo(&theirs, Some(&snapshot()), None)), vec![GapKind::Pulls]);
    }

    #[test]
    fn an_unknown_default_branch_with_commits_is_a_gap_but_an_empty_one_is_not() {
        let mut ours = snapshot();
        ours.default_branch = None;
        ours.default_branch_commits = None;
        assert_eq!(kinds(&compare_repo(&snapshot(), Some(&ours), None)), vec![GapKind::Commits]);
        let mut theirs = snapshot();
        theirs.default_branch_commits = Some(0);
        assert_eq!(kinds(&compare_repo(&theirs, Some(&ours), None)), vec![]);
    }

    #[test]
    fn a_repository_unknown_here_differs_in_every_kind_it_has() {
        let d = compare_repo(&snapshot(), None, None);
        assert_eq!(kinds(&d), vec![GapKind::Pulls, GapKind::Branches, GapKind::Commits, GapKind::Deployments]);
    }

    fn run(id: i64, status: RunStatus, conclusion: Option<&str>, updated: i64) -> WorkflowRun {
        WorkflowRun {
            repo: repo(),
            id,
            name: None,
            workflow_id: None,
            head_branch: None,
            head_sha: None,
            event: None,
            status,
            conclusion: conclusion.map(str::to_owned),
            run_number: None,
            run_attempt: None,
            actor: None,
            created_at: at(0),
            run_started_at: None,
            updated_at: at(updated),
        }
    }
    fn stored(id: i64, status: RunStatus, conclusion: Option<&str>, updated: i64, jobs: (u64, u64)) -> StoredRun {
        StoredRun {
            id,
            status,
            conclusion: conclusion.map(str::to_owned),
            updated_at: at(updated),
            jobs: jobs.0,
            jobs_completed: jobs.1,
        }
    }

    #[test]
    fn runs_differ_by_count_by_completion_and_by_jobs() {
        // GIVEN two runs on GitHub, both completed; the store has one still in progress
        let theirs = RunWindow {
            total: 2,
            runs: vec![
                ListedRun { run: run(1, RunStatus::Completed, Some("success"), 20), node_id: Some("R1".into()) },
                ListedRun { run: run(2, RunStatus::Completed, Some("failure"), 30), node_id: Some("R2".into()) },
            ],
        };
        let ours = StoredRuns {
            total: 2,
            runs: vec![
                stored(1, RunStatus::Completed, Some("success"), 20, (2, 2)),
                stored(2, RunStatus::InProgress, None, 25, (3, 1)),
            ],
            oldest_unfinished: Some(at(0)),
        };
        let c = RunComparison { since: Some(at(0)), theirs, ours };
        // THEN run 2 differs, and so do its jobs (3 of 3 completed on GitHub)
        let runs = c.differences().expect("run 2 differs");
        assert!(runs.reason.contains(": 2"), "{}", runs.reason);
        let counts = [JobCount { run_id: 1, jobs: 2, completed: 2 }, JobCount { run_id: 2, jobs: 3, completed: 3 }];
        let jobs = c.job_differences(&counts).expect("run 2's jobs differ");
        assert_eq!((jobs.kind, jobs.since), (GapKind::WorkflowJobs, Some(at(0))));
        assert!(jobs.reason.contains("run 2 3/3 vs 3/1") && !jobs.reason.contains("run 1"), "{}", jobs.reason);
        // AND when the store catches up, nothing differs
        let c = RunComparison {
            ours: StoredRuns {
                total: 2,
                runs: vec![
                    stored(1, RunStatus::Completed, Some("success"), 20, (2, 2)),
                    stored(2, RunStatus::Completed, Some("failure"), 30, (3, 3)),
                ],
                oldest_unfinished: None,
            },
            ..c
        };
        assert_eq!((c.differences(), c.job_differences(&counts)), (None, None));
    }

    #[test]
    fn a_lost_run_beyond_the_listed_page_is_found_by_the_count() {
        let c = RunComparison {
            since: None,
            theirs: RunWindow { total: 101, runs: vec![] },
            ours: StoredRuns { total: 100, ..StoredRuns::default() },
        };
        assert_eq!(c.differences().map(|d| d.kind), Some(GapKind::WorkflowRuns));
    }

    #[test]
    fn the_runs_window_widens_only_to_recent_unfinished_runs() {
        assert_eq!(widen(Some(at(100)), Some(at(50)), at(0)), Some(at(50)));
        assert_eq!(widen(Some(at(100)), Some(at(-5)), at(0)), Some(at(100)), "too old to widen");
        assert_eq!(widen(Some(at(100)), Some(at(150)), at(0)), Some(at(100)));
        assert_eq!(widen(None, Some(at(50)), at(0)), None);
    }

    #[test]
    fn repositories_unknown_here_are_named_and_a_larger_total_is_a_gap() {
        let theirs = OrgSnapshot {
            org: "octo".into(),
            teams: vec![],
            teams_withheld: false,
            repos_total: Some(3),
            recent_repos: vec![RepoName::parse("octo/new").unwrap(), repo()],
        };
        let tracked = [repo(), RepoName::parse("octo/old").unwrap()];
        let (missing, reason) = compare_org_repos(&theirs, &tracked);
        assert_eq!(missing, vec![RepoName::parse("octo/new").unwrap()]);
        assert!(reason.unwrap().contains("octo/new"));
        let tracked = [repo(), RepoName::parse("octo/old").unwrap(), RepoName::parse("octo/new").unwrap()];
        assert_eq!(compare_org_repos(&theirs, &tracked), (vec![], None));
    }
}
