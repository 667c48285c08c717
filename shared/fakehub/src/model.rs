//! The ground truth: a deterministic organisation generated from a seed and a
//! size, as plain structs a test can compare a store with.

use chrono::{DateTime, Duration, TimeZone, Utc};
use fastrand::Rng;

pub type Time = DateTime<Utc>;

/// The size and shape of the generated organisation.
#[derive(Debug, Clone)]
pub struct OrgSpec {
    pub org: String,
    pub seed: u64,
    pub repos: usize,
    /// Pull requests per repository.
    pub pulls: usize,
    pub teams: usize,
    /// Organisation members (team members are drawn from them).
    pub members: usize,
    /// Branches per repository besides the default branch.
    pub branches: usize,
    /// Workflow runs per repository.
    pub runs: usize,
    /// Reviews per pull request are drawn from 0..=max_reviews.
    pub max_reviews: usize,
    /// Pull requests (the first N of the first repository) that get 150 reviews each,
    /// so that their reviews need more than one page.
    pub pulls_with_many_reviews: usize,
    /// When the organisation's history starts; it spans `days` days.
    pub start: Time,
    pub days: i64,
}

impl Default for OrgSpec {
    fn default() -> Self {
        Self {
            org: "octo-org".into(),
            seed: 1,
            repos: 5,
            pulls: 100,
            teams: 4,
            members: 20,
            branches: 3,
            runs: 10,
            max_reviews: 4,
            pulls_with_many_reviews: 0,
            start: Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).single().expect("a valid date"),
            days: 90,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PullState {
    Open,
    /// Closed without merging.
    Closed,
    Merged,
}

impl PullState {
    /// GraphQL's `PullRequestState`.
    pub fn graphql(self) -> &'static str {
        match self {
            Self::Open => "OPEN",
            Self::Closed => "CLOSED",
            Self::Merged => "MERGED",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReviewState {
    Approved,
    ChangesRequested,
    Commented,
    Dismissed,
}

impl ReviewState {
    /// GraphQL's `PullRequestReviewState`.
    pub fn graphql(self) -> &'static str {
        match self {
            Self::Approved => "APPROVED",
            Self::ChangesRequested => "CHANGES_REQUESTED",
            Self::Commented => "COMMENTED",
            Self::Dismissed => "DISMISSED",
        }
    }
    /// The webhook payload's lowercase spelling.
    pub fn webhook(self) -> &'static str {
        match self {
            Self::Approved => "approved",
            Self::ChangesRequested => "changes_requested",
            Self::Commented => "commented",
            Self::Dismissed => "dismissed",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Review {
    pub id: i64,
    pub node_id: String,
    pub author: String,
    pub state: ReviewState,
    pub submitted_at: Time,
    pub commit_id: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Pull {
    pub id: i64,
    pub number: u64,
    pub title: String,
    pub body: String,
    pub state: PullState,
    pub draft: bool,
    pub author: String,
    pub created_at: Time,
    /// The time of the pull request's last event (the newest of its history).
    pub updated_at: Time,
    pub closed_at: Option<Time>,
    pub merged_at: Option<Time>,
    pub additions: i64,
    pub deletions: i64,
    pub changed_files: i64,
    pub commits: i64,
    pub labels: Vec<String>,
    pub requested_reviewers: Vec<String>,
    pub requested_teams: Vec<String>,
    pub base_ref: String,
    pub head_ref: String,
    pub head_sha: String,
    pub reviews: Vec<Review>,
    /// Closed at this time and reopened at `updated`-ish later (history only).
    pub reopened: Option<(Time, Time)>,
    /// An `edited` event at `updated_at` ends its history.
    pub edited_last: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Branch {
    pub name: String,
    pub head_sha: String,
    /// When its head was pushed.
    pub pushed_at: Time,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowRun {
    pub id: i64,
    pub name: String,
    pub workflow_id: i64,
    pub head_branch: String,
    pub head_sha: String,
    pub event: String,
    /// `completed`, `in_progress` or `queued`.
    pub status: String,
    pub conclusion: Option<String>,
    pub run_number: i64,
    pub run_attempt: i64,
    pub actor: String,
    pub created_at: Time,
    pub run_started_at: Time,
    pub updated_at: Time,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Repo {
    pub id: i64,
    pub owner: String,
    pub name: String,
    pub default_branch: String,
    pub created_at: Time,
    /// The newest branch push.
    pub pushed_at: Time,
    pub updated_at: Time,
    /// The default branch first.
    pub branches: Vec<Branch>,
    pub pulls: Vec<Pull>,
    pub runs: Vec<WorkflowRun>,
}

impl Repo {
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }
    pub fn count(&self, state: PullState) -> usize {
        self.pulls.iter().filter(|p| p.state == state).count()
    }
    pub fn newest_pull_update(&self) -> Option<Time> {
        self.pulls.iter().map(|p| p.updated_at).max()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Team {
    pub id: i64,
    pub slug: String,
    pub name: String,
    pub description: String,
    /// `closed` (GraphQL `VISIBLE`) or `secret`.
    pub privacy: String,
    /// Current direct members.
    pub members: Vec<String>,
    /// Members added and later removed (history only): (login, added, removed).
    pub former_members: Vec<(String, Time, Time)>,
    /// When each current member was added.
    pub added_at: Vec<Time>,
}

/// The whole organisation.
#[derive(Debug, Clone, PartialEq)]
pub struct Org {
    pub login: String,
    pub id: i64,
    pub members: Vec<String>,
    pub repos: Vec<Repo>,
    pub teams: Vec<Team>,
}

impl Org {
    pub fn repo(&self, full_name: &str) -> Option<&Repo> {
        self.repos.iter().find(|r| r.full_name() == full_name)
    }
    pub fn team(&self, slug: &str) -> Option<&Team> {
        self.teams.iter().find(|t| t.slug == slug)
    }
}

fn sha(rng: &mut Rng) -> String {
    format!("{:016x}{:016x}{:08x}", rng.u64(..), rng.u64(..), rng.u32(..))
}

fn secs(rng: &mut Rng, lo: i64, hi: i64) -> Duration {
    Duration::seconds(rng.i64(lo..=hi))
}

const LABELS: &[&str] = &["bug", "enhancement", "documentation", "dependencies", "ci", "security"];
const WORKFLOWS: &[&str] = &["CI", "Lint", "Release"];

impl Org {
    /// Generate the organisation `spec` describes. The same spec always gives
    /// the same organisation.
    pub fn generate(spec: &OrgSpec) -> Org {
        let mut rng = Rng::with_seed(spec.seed);
        let members: Vec<String> = (0..spec.members.max(1)).map(|i| format!("dev-{i:03}")).collect();
        let end = spec.start + Duration::days(spec.days.max(1));
        let span = (end - spec.start).num_seconds();
        let mut ids = 1_000_000i64;
        let mut next_id = || {
            ids += 1;
            ids
        };

        let mut teams = Vec::with_capacity(spec.teams);
        for t in 0..spec.teams {
            let size = if members.len() <= 2 { members.len() } else { rng.usize(1..=members.len().min(12)) };
            let mut pool = members.clone();
            rng.shuffle(&mut pool);
            let mut current: Vec<String> = pool.iter().take(size).cloned().collect();
            current.sort();
            let added_at = current.iter().map(|_| spec.start + secs(&mut rng, 0, span / 2)).collect();
            let former = pool
                .iter()
                .skip(size)
                .take(rng.usize(0..=2))
                .map(|login| {
                    let added = spec.start + secs(&mut rng, 0, span / 2);
                    (login.clone(), added, added + secs(&mut rng, 3600, span / 2))
                })
                .collect();
            teams.push(Team {
                id: next_id(),
                slug: format!("team-{t}"),
                name: format!("Team {t}"),
                description: format!("The team number {t}"),
                privacy: if t % 3 == 2 { "secret".into() } else { "closed".into() },
                members: current,
                former_members: former,
                added_at,
            });
        }
        let team_slugs: Vec<String> = teams.iter().map(|t| t.slug.clone()).collect();

        let mut repos = Vec::with_capacity(spec.repos);
        for r in 0..spec.repos {
            let name = format!("repo-{r}");
            let created_at = spec.start - Duration::days(30);
            let mut branches = vec![Branch {
                name: "main".into(),
                head_sha: sha(&mut rng),
                pushed_at: spec.start + secs(&mut rng, 0, span),
            }];
            for b in 0..spec.branches {
                branches.push(Branch {
                    name: format!("feature/{b}"),
                    head_sha: sha(&mut rng),
                    pushed_at: spec.start + secs(&mut rng, 0, span),
                });
            }
            let mut pulls = Vec::with_capacity(spec.pulls);
            for n in 1..=spec.pulls {
                let many = r == 0 && n <= spec.pulls_with_many_reviews;
                pulls.push(generate_pull(
                    &mut rng,
                    spec,
                    &members,
                    &team_slugs,
                    &branches,
                    n as u64,
                    many,
                    &mut next_id,
                ));
            }
            let mut runs = Vec::with_capacity(spec.runs);
            for i in 0..spec.runs {
                let branch = &branches[rng.usize(..branches.len())];
                let created = spec.start + secs(&mut rng, 0, span);
                let started = created + secs(&mut rng, 1, 300);
                let (status, conclusion, updated) = match rng.u8(..10) {
                    0 => ("queued", None, created),
                    1 => ("in_progress", None, started),
                    2 | 3 => ("completed", Some("failure"), started + secs(&mut rng, 30, 3600)),
                    4 => ("completed", Some("cancelled"), started + secs(&mut rng, 30, 600)),
                    _ => ("completed", Some("success"), started + secs(&mut rng, 30, 3600)),
                };
                let w = rng.usize(..WORKFLOWS.len());
                runs.push(WorkflowRun {
                    id: next_id(),
                    name: WORKFLOWS[w].into(),
                    workflow_id: 7000 + w as i64,
                    head_branch: branch.name.clone(),
                    head_sha: branch.head_sha.clone(),
                    event: if rng.bool() { "push".into() } else { "pull_request".into() },
                    status: status.into(),
                    conclusion: conclusion.map(str::to_owned),
                    run_number: i as i64 + 1,
                    run_attempt: 1,
                    actor: members[rng.usize(..members.len())].clone(),
                    created_at: created,
                    run_started_at: started,
                    updated_at: updated,
                });
            }
            let pushed_at = branches.iter().map(|b| b.pushed_at).max().unwrap_or(created_at);
            let updated_at = pulls.iter().map(|p: &Pull| p.updated_at).max().unwrap_or(pushed_at).max(pushed_at);
            repos.push(Repo {
                id: next_id(),
                owner: spec.org.clone(),
                name,
                default_branch: "main".into(),
                created_at,
                pushed_at,
                updated_at,
                branches,
                pulls,
                runs,
            });
        }
        Org { login: spec.org.clone(), id: 900_000 + spec.seed as i64 % 1000, members, repos, teams }
    }
}

#[allow(clippy::too_many_arguments)]
fn generate_pull(
    rng: &mut Rng,
    spec: &OrgSpec,
    members: &[String],
    teams: &[String],
    branches: &[Branch],
    number: u64,
    many_reviews: bool,
    next_id: &mut impl FnMut() -> i64,
) -> Pull {
    let span = Duration::days(spec.days.max(1)).num_seconds();
    let created_at = spec.start + secs(rng, 0, span * 9 / 10);
    let author = members[rng.usize(..members.len())].clone();
    let head_sha = sha(rng);
    let state = match rng.u8(..10) {
        0..=2 => PullState::Open,
        3 | 4 => PullState::Closed,
        _ => PullState::Merged,
    };
    let n_reviews = if many_reviews { 150 } else { rng.usize(0..=spec.max_reviews) };
    let mut t = created_at;
    let mut reviews = Vec::with_capacity(n_reviews);
    for _ in 0..n_reviews {
        t += secs(rng, 60, 6 * 3600);
        let state = match rng.u8(..10) {
            0..=4 => ReviewState::Approved,
            5 | 6 => ReviewState::ChangesRequested,
            7 | 8 => ReviewState::Commented,
            _ => ReviewState::Dismissed,
        };
        let id = next_id();
        reviews.push(Review {
            id,
            node_id: format!("PRR_{id}"),
            author: members[rng.usize(..members.len())].clone(),
            state,
            submitted_at: t,
            commit_id: head_sha.clone(),
        });
    }
    let reopened = (state == PullState::Open && rng.u8(..10) == 0).then(|| {
        let closed = t + secs(rng, 60, 3600);
        t = closed + secs(rng, 60, 3600);
        (closed, t)
    });
    let (closed_at, merged_at) = match state {
        PullState::Open => (None, None),
        PullState::Closed => {
            t += secs(rng, 60, 86_400);
            (Some(t), None)
        }
        PullState::Merged => {
            t += secs(rng, 60, 86_400);
            (Some(t), Some(t))
        }
    };
    // A pull request with no other activity is edited once, so that it was updated after it was created.
    let edited_last = rng.u8(..4) == 0 || t == created_at;
    if edited_last {
        t += secs(rng, 60, 3600);
    }
    let mut labels: Vec<String> = LABELS.iter().filter(|_| rng.u8(..5) == 0).map(|l| (*l).to_owned()).collect();
    labels.sort();
    let (requested_reviewers, requested_teams) = if state == PullState::Open {
        let reviewer = members[rng.usize(..members.len())].clone();
        let team = (!teams.is_empty() && rng.bool()).then(|| teams[rng.usize(..teams.len())].clone());
        (vec![reviewer], team.into_iter().collect())
    } else {
        (Vec::new(), Vec::new())
    };
    let head = &branches[rng.usize(..branches.len())];
    Pull {
        id: next_id(),
        number,
        title: format!("Change number {number}"),
        body: format!("This pull request changes thing {number}."),
        state,
        draft: state == PullState::Open && rng.u8(..4) == 0,
        author,
        created_at,
        updated_at: t,
        closed_at,
        merged_at,
        additions: rng.i64(1..2000),
        deletions: rng.i64(0..800),
        changed_files: rng.i64(1..60),
        commits: rng.i64(1..20),
        labels,
        requested_reviewers,
        requested_teams,
        base_ref: "main".into(),
        head_ref: if head.name == "main" { format!("topic-{number}") } else { head.name.clone() },
        head_sha,
        reviews,
        reopened,
        edited_last,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_org_and_another_differs() {
        let spec = OrgSpec::default();
        assert_eq!(Org::generate(&spec), Org::generate(&spec));
        assert_ne!(Org::generate(&spec), Org::generate(&OrgSpec { seed: 2, ..spec }));
    }

    #[test]
    fn pulls_have_every_state_and_consistent_times() {
        let org = Org::generate(&OrgSpec { pulls: 300, ..OrgSpec::default() });
        let pulls: Vec<&Pull> = org.repos.iter().flat_map(|r| &r.pulls).collect();
        for s in [PullState::Open, PullState::Closed, PullState::Merged] {
            assert!(pulls.iter().any(|p| p.state == s), "no {s:?} pull");
        }
        assert!(pulls.iter().any(|p| p.draft));
        for p in pulls {
            assert!(p.created_at < p.updated_at, "#{} created {} updated {}", p.number, p.created_at, p.updated_at);
            assert!(p.reviews.iter().all(|r| r.submitted_at <= p.updated_at));
            assert_eq!(p.merged_at.is_some(), p.state == PullState::Merged);
            assert_eq!(p.closed_at.is_some(), p.state != PullState::Open);
            assert!(p.closed_at.is_none_or(|c| c <= p.updated_at));
        }
    }

    #[test]
    fn ten_thousand_pulls_generate_quickly() {
        let started = std::time::Instant::now();
        let org = Org::generate(&OrgSpec { repos: 1, pulls: 10_000, ..OrgSpec::default() });
        assert_eq!(org.repos[0].pulls.len(), 10_000);
        assert!(started.elapsed() < std::time::Duration::from_secs(2), "{:?}", started.elapsed());
    }
}
