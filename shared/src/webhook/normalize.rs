//! Normalisation: one webhook payload → the [`Change`]s it implies.
//!
//! Pure (no I/O), so it runs before anything is written: a body that is not
//! JSON is refused with a 400 before the ledger or the archive see it.

use serde::de::DeserializeOwned;

use super::payload::*;
use crate::domain::*;
use crate::services::search_docs::stored_body;

/// The event types Octoscope turns into entities. Any other type is archived,
/// acknowledged and counted, but kept nowhere else.
pub const TRACKED_EVENTS: &[&str] = &[
    "pull_request",
    "pull_request_review",
    "pull_request_review_comment",
    "team",
    "membership",
    "member",
    "organization",
    "repository",
    "push",
    "create",
    "delete",
    "workflow_run",
    "workflow_job",
    "deployment",
    "deployment_status",
    "installation",
    "installation_repositories",
    "installation_target",
    "ping",
];

pub fn is_tracked(event: &str) -> bool {
    TRACKED_EVENTS.contains(&event)
}

/// What a payload means.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalized {
    pub tracked: bool,
    pub action: Option<String>,
    pub repo: Option<RepoName>,
    pub org: Option<String>,
    pub changes: Vec<Change>,
}

/// Why a payload did not normalise.
#[derive(Debug, thiserror::Error)]
pub enum NormalizeError {
    /// Not JSON at all: the sender is broken; refused with 400, nothing kept.
    #[error("body is not valid JSON: {0}")]
    Syntax(#[source] serde_json::Error),
    /// JSON, but not the shape this event type has. Archived and recorded as
    /// failed, so `replay` can retry it once Octoscope understands it.
    #[error("unexpected {event} payload: {source}")]
    Shape {
        event: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("unexpected {event} payload: {source}")]
    Invalid {
        event: String,
        #[source]
        source: ParseError,
    },
}

impl NormalizeError {
    pub fn is_syntax(&self) -> bool {
        matches!(self, Self::Syntax(_))
    }
}

fn parse<T: DeserializeOwned>(event: &str, body: &[u8]) -> Result<T, NormalizeError> {
    serde_json::from_slice(body).map_err(|e| match e.classify() {
        // A type error can come before a syntax error further on (`[1,`):
        // only a body that is JSON throughout has a "shape".
        serde_json::error::Category::Data => match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
            Ok(_) => NormalizeError::Shape { event: event.to_owned(), source: e },
            Err(syntax) => NormalizeError::Syntax(syntax),
        },
        _ => NormalizeError::Syntax(e),
    })
}

struct Ctx<'a> {
    event: &'a str,
    out: Normalized,
}

impl Ctx<'_> {
    fn invalid(&self, source: ParseError) -> NormalizeError {
        NormalizeError::Invalid { event: self.event.to_owned(), source }
    }

    fn repo_name(&self, full_name: &str) -> Result<RepoName, NormalizeError> {
        RepoName::parse(full_name).map_err(|e| self.invalid(e))
    }

    /// Records the event's repository (metadata LWW on its `updated_at`) and the
    /// time of the activity the event reports.
    fn repository(&mut self, r: &RepoPayload, activity_at: Option<Timestamp>) -> Result<RepoName, NormalizeError> {
        let name = self.repo_name(&r.full_name)?;
        self.out.changes.push(Change::Repository(Repository {
            full_name: name.clone(),
            id: r.id,
            default_branch: r.default_branch.clone(),
            private: r.private,
            archived: r.archived,
            deleted: false,
            version: t(r.updated_at),
            activity_at,
        }));
        self.out.repo = Some(name.clone());
        if let Some(OwnerRef { login: Some(login), kind: Some(kind) }) = &r.owner
            && kind == "Organization"
        {
            self.out.org.get_or_insert_with(|| login.clone());
        }
        Ok(name)
    }

    fn org(&mut self, o: &Option<OrgRef>) -> Option<String> {
        let org = o.as_ref().map(|o| o.login.clone());
        if org.is_some() {
            self.out.org.clone_from(&org);
        }
        org
    }

    fn push(&mut self, c: Change) {
        self.out.changes.push(c);
    }
}

/// The repository's name before a `renamed` (`changes.repository.name.from`,
/// same owner) or `transferred` (`changes.owner.from`'s organisation or user
/// login, same name) event; None for other actions, or when it is unchanged.
fn moved_from(
    cx: &Ctx<'_>,
    changes: Option<&RepositoryChanges>,
    now: &RepoName,
) -> Result<Option<RepoName>, NormalizeError> {
    let old = match cx.out.action.as_deref() {
        Some("renamed") => changes
            .and_then(|c| c.repository.as_ref())
            .and_then(|r| r.name.as_ref())
            .and_then(|n| n.from.as_deref())
            .map(|name| format!("{}/{name}", now.owner())),
        Some("transferred") => changes
            .and_then(|c| c.owner.as_ref())
            .and_then(|o| o.from.as_ref())
            .and_then(|f| f.organization.as_ref().map(|o| o.login.clone()).or_else(|| login(&f.user)))
            .map(|owner| format!("{owner}/{}", now.name())),
        _ => None,
    };
    let Some(old) = old else { return Ok(None) };
    let old = cx.repo_name(&old)?;
    Ok((&old != now).then_some(old))
}

/// Normalise `body` (a JSON payload) of event type `event`.
pub fn normalize(event: &str, body: &[u8], received_at: Timestamp) -> Result<Normalized, NormalizeError> {
    let mut cx = Ctx {
        event,
        out: Normalized { tracked: is_tracked(event), action: None, repo: None, org: None, changes: Vec::new() },
    };
    match event {
        "pull_request" => {
            let e: PullRequestEvent = parse(event, body)?;
            cx.out.action = e.action;
            let repo = cx.repository(&e.repository, Some(e.pull_request.updated_at.0))?;
            cx.push(pull_request(repo, &e.pull_request));
        }
        "pull_request_review" => {
            let e: ReviewEvent = parse(event, body)?;
            cx.out.action = e.action;
            let activity = t(e.review.submitted_at).or(Some(e.pull_request.updated_at.0));
            let repo = cx.repository(&e.repository, activity)?;
            let state = ReviewState::parse(&e.review.state).unwrap_or(ReviewState::Commented);
            cx.push(pull_request(repo.clone(), &e.pull_request));
            cx.push(Change::Review(Review {
                repo,
                pr_number: e.pull_request.number,
                id: e.review.id,
                author: login(&e.review.user),
                state,
                submitted_at: t(e.review.submitted_at),
                commit_id: e.review.commit_id,
                body: e.review.body.as_deref().map(stored_body),
            }));
        }
        "pull_request_review_comment" => {
            let e: ReviewCommentEvent = parse(event, body)?;
            let deleted = e.action.as_deref() == Some("deleted");
            cx.out.action = e.action;
            let repo = cx.repository(&e.repository, Some(e.comment.updated_at.0))?;
            cx.push(pull_request(repo.clone(), &e.pull_request));
            // A deletion keeps the comment's updated_at; the receipt time orders it after.
            let updated_at = if deleted { e.comment.updated_at.0.max(received_at) } else { e.comment.updated_at.0 };
            cx.push(Change::ReviewComment(ReviewComment {
                repo,
                pr_number: e.pull_request.number,
                id: e.comment.id,
                review_id: e.comment.pull_request_review_id,
                author: login(&e.comment.user),
                created_at: e.comment.created_at.0,
                updated_at,
                deleted,
            }));
        }
        "team" => {
            let e: TeamEvent = parse(event, body)?;
            let deleted = e.action.as_deref() == Some("deleted") || e.team.deleted;
            cx.out.action = e.action;
            if let Some(r) = &e.repository {
                cx.repository(r, None)?;
            }
            if let Some(org) = cx.org(&e.organization)
                && let Some(team) = team(&org, &e.team, deleted, received_at)
            {
                cx.push(Change::Team(team));
            }
        }
        "membership" => {
            let e: MembershipEvent = parse(event, body)?;
            let present = match e.action.as_deref() {
                Some("added") => Some(true),
                Some("removed") => Some(false),
                _ => None,
            };
            cx.out.action = e.action;
            let org = cx.org(&e.organization);
            let member = login(&e.member);
            if let (Some(org), Some(team_p), Some(login)) = (org, &e.team, member)
                && let Some(slug) = &team_p.slug
            {
                if let Some(t) = team(&org, team_p, team_p.deleted, received_at) {
                    cx.push(Change::Team(t));
                }
                if let Some(present) = present.filter(|_| e.scope.as_deref().unwrap_or("team") == "team") {
                    cx.push(Change::TeamMember {
                        org,
                        team_slug: slug.clone(),
                        member: Membership { login, role: None, present, version: received_at },
                    });
                }
            }
        }
        "organization" => {
            let e: OrganizationEvent = parse(event, body)?;
            let present = match e.action.as_deref() {
                Some("member_added") => Some(true),
                Some("member_removed") => Some(false),
                _ => None, // invitations, renames: nothing to keep
            };
            cx.out.action = e.action;
            let org = cx.org(&e.organization);
            if let (Some(org), Some(present), Some(m)) = (org, present, &e.membership)
                && let Some(login) = login(&m.user)
            {
                cx.push(Change::OrgMember {
                    org,
                    member: Membership { login, role: m.role.clone(), present, version: received_at },
                });
            }
        }
        "member" => {
            let e: MemberEvent = parse(event, body)?;
            let present = e.action.as_deref() != Some("removed");
            cx.out.action = e.action;
            let repo = cx.repository(&e.repository, None)?;
            if let Some(login) = login(&e.member) {
                let role = e.changes.and_then(|c| c.permission).and_then(|p| p.to);
                cx.push(Change::Collaborator {
                    repo,
                    member: Membership { login, role, present, version: received_at },
                });
            }
        }
        "repository" => {
            let e: RepositoryEvent = parse(event, body)?;
            let deleted = e.action.as_deref() == Some("deleted");
            cx.out.action = e.action;
            let activity = if cx.out.action.as_deref() == Some("created") { t(e.repository.created_at) } else { None };
            let name = cx.repository(&e.repository, activity)?;
            if deleted && let Some(Change::Repository(r)) = cx.out.changes.last_mut() {
                // A deletion must win over the repository's last metadata update.
                r.deleted = true;
                r.version = Some(r.version.map_or(received_at, |v| v.max(received_at)));
            }
            if let Some(from) = moved_from(&cx, e.changes.as_ref(), &name)? {
                // The history stored under the old name follows the repository.
                let at = t(e.repository.updated_at).unwrap_or(received_at);
                cx.push(Change::RepositoryMoved { id: e.repository.id, from, to: name, at });
            }
        }
        "push" => {
            let e: PushEvent = parse(event, body)?;
            let pushed_at = t(e.repository.pushed_at).unwrap_or(received_at);
            let repo = cx.repository(&e.repository, Some(pushed_at))?;
            if let Some(branch) = e.git_ref.strip_prefix("refs/heads/") {
                let deleted = e.deleted || e.after.as_deref().is_some_and(|s| s.bytes().all(|b| b == b'0'));
                cx.push(Change::Branch(Branch {
                    repo: repo.clone(),
                    name: branch.to_owned(),
                    head_sha: if deleted { None } else { e.after.clone() },
                    deleted,
                    version: pushed_at,
                }));
                for c in e.commits {
                    let author = c.author.unwrap_or(CommitAuthor { name: None, username: None });
                    cx.push(Change::Commit {
                        commit: Commit {
                            repo: repo.clone(),
                            sha: c.id,
                            message: c.message,
                            author_name: author.name,
                            author_login: author.username,
                            committed_at: t(c.timestamp),
                        },
                        branch: Some(branch.to_owned()),
                        pushed_at: Some(pushed_at),
                    });
                }
            }
        }
        "create" | "delete" => {
            let e: RefEvent = parse(event, body)?;
            let at = t(e.repository.pushed_at).unwrap_or(received_at);
            let repo = cx.repository(&e.repository, Some(at))?;
            if e.ref_type == "branch" {
                let deleted = event == "delete";
                let name = e.git_ref.strip_prefix("refs/heads/").unwrap_or(&e.git_ref).to_owned();
                // `create` carries no sha: the head stays as known (a push sets it).
                cx.push(Change::Branch(Branch { repo, name, head_sha: None, deleted, version: at }));
            }
        }
        "workflow_run" => {
            let e: WorkflowRunEvent = parse(event, body)?;
            cx.out.action = e.action;
            let repo = cx.repository(&e.repository, Some(e.workflow_run.updated_at.0))?;
            cx.push(Change::WorkflowRun(workflow_run(repo, e.workflow_run)));
        }
        "workflow_job" => {
            let e: WorkflowJobEvent = parse(event, body)?;
            cx.out.action = e.action;
            let job = workflow_job(cx.repo_name(&e.repository.full_name)?, e.workflow_job);
            cx.repository(&e.repository, job.version())?;
            cx.push(Change::WorkflowJob(job));
        }
        "deployment" => {
            let e: DeploymentEvent = parse(event, body)?;
            cx.out.action = e.action;
            let repo = cx.repository(&e.repository, Some(e.deployment.updated_at.0))?;
            cx.push(Change::Deployment(deployment(repo, e.deployment)));
        }
        "deployment_status" => {
            let e: DeploymentStatusEvent = parse(event, body)?;
            cx.out.action = e.action;
            let s = e.deployment_status;
            let repo = cx.repository(&e.repository, Some(s.updated_at.0))?;
            cx.push(Change::DeploymentStatus(deployment_status(repo.clone(), e.deployment.id, s)));
            cx.push(Change::Deployment(deployment(repo, e.deployment)));
        }
        "installation" | "installation_repositories" => {
            let e: InstallationEvent = parse(event, body)?;
            let keep = !matches!(e.action.as_deref(), Some("deleted" | "suspend" | "removed"));
            cx.out.action = e.action;
            if keep {
                for r in e.repositories.into_iter().chain(e.repositories_added).flatten() {
                    // Known by name only: tracked, with metadata to come.
                    let full_name = cx.repo_name(&r.full_name)?;
                    cx.push(Change::Repository(Repository {
                        full_name,
                        id: r.id,
                        default_branch: None,
                        private: r.private,
                        archived: None,
                        deleted: false,
                        version: None,
                        activity_at: None,
                    }));
                }
            }
        }
        "ping" => {
            let e: PingEvent = parse(event, body)?;
            cx.org(&e.organization);
            if let Some(r) = &e.repository {
                cx.repository(r, None)?;
            }
        }
        _ => {
            // Not tracked (or "installation_target"): only what the ledger files it under.
            let e: Envelope = parse(event, body)?;
            cx.out.action = e.action;
            cx.out.repo = e.repository.and_then(|r| r.full_name).and_then(|n| RepoName::parse(&n).ok());
            cx.org(&e.organization);
        }
    }
    Ok(cx.out)
}

/// The write a webhook's pull request makes: a list the payload leaves out is not known.
pub fn pull_request(repo: RepoName, p: &PullRequestPayload) -> Change {
    let merged = p.merged == Some(true) || p.merged_at.is_some();
    let state = if merged {
        PrState::Merged
    } else if p.state.eq_ignore_ascii_case("closed") {
        PrState::Closed
    } else {
        PrState::Open
    };
    let known = ListsKnown {
        labels: p.labels.is_some(),
        requested_reviewers: p.requested_reviewers.is_some(),
        requested_teams: p.requested_teams.is_some(),
    };
    let pull = PullRequest {
        repo,
        number: p.number,
        id: p.id,
        title: p.title.clone(),
        state,
        draft: p.draft.unwrap_or(false),
        author: login(&p.user),
        created_at: p.created_at.0,
        updated_at: p.updated_at.0,
        closed_at: t(p.closed_at),
        merged_at: t(p.merged_at),
        additions: p.additions,
        deletions: p.deletions,
        changed_files: p.changed_files,
        commits: p.commits,
        labels: p.labels.iter().flatten().map(|l| l.name.clone()).collect(),
        requested_reviewers: p.requested_reviewers.iter().flatten().filter_map(|u| u.login.clone()).collect(),
        requested_teams: p.requested_teams.iter().flatten().filter_map(|t| t.slug.clone()).collect(),
        base_ref: p.base.as_ref().and_then(|b| b.git_ref.clone()),
        head_ref: p.head.as_ref().and_then(|h| h.git_ref.clone()),
        head_sha: p.head.as_ref().and_then(|h| h.sha.clone()),
        body: p.body.as_deref().map(stored_body),
    };
    Change::PullRequest { pull: Box::new(pull), known }
}

/// A workflow run as both the `workflow_run` webhook and the REST API describe it.
pub fn workflow_run(repo: RepoName, r: WorkflowRunPayload) -> WorkflowRun {
    WorkflowRun {
        repo,
        id: r.id,
        name: r.name,
        workflow_id: r.workflow_id,
        head_branch: r.head_branch,
        head_sha: r.head_sha,
        event: r.event,
        status: RunStatus::parse(r.status.as_deref().unwrap_or("queued")),
        conclusion: r.conclusion,
        run_number: r.run_number,
        run_attempt: r.run_attempt,
        actor: login(&r.actor),
        created_at: r.created_at.0,
        run_started_at: t(r.run_started_at),
        updated_at: r.updated_at.0,
    }
}

fn team(org: &str, t: &TeamPayload, deleted: bool, version: Timestamp) -> Option<Team> {
    Some(Team {
        org: org.to_owned(),
        slug: t.slug.clone()?,
        id: t.id,
        name: t.name.clone().unwrap_or_default(),
        description: t.description.clone(),
        privacy: t.privacy.clone(),
        parent_slug: t.parent.as_ref().and_then(|p| p.slug.clone()),
        deleted,
        version,
    })
}

/// A workflow job as both the `workflow_job` webhook and the REST API describe it.
pub fn workflow_job(repo: RepoName, j: WorkflowJobPayload) -> WorkflowJob {
    WorkflowJob {
        repo,
        id: j.id,
        run_id: j.run_id,
        name: j.name,
        workflow_name: j.workflow_name,
        head_branch: j.head_branch,
        status: RunStatus::parse(j.status.as_deref().unwrap_or("queued")),
        conclusion: j.conclusion,
        os: runner_os(&j.labels),
        labels: j.labels,
        runner_name: j.runner_name,
        runner_group: j.runner_group_name,
        created_at: t(j.created_at),
        started_at: t(j.started_at),
        completed_at: t(j.completed_at),
    }
}

/// A deployment status as both the `deployment_status` webhook and the REST API describe it.
pub fn deployment_status(repo: RepoName, deployment_id: i64, s: DeploymentStatusPayload) -> DeploymentStatus {
    DeploymentStatus {
        repo,
        deployment_id,
        id: s.id,
        state: s.state,
        environment: s.environment,
        creator: login(&s.creator),
        created_at: s.created_at.0,
        updated_at: s.updated_at.0,
    }
}

/// A deployment as both the `deployment` webhook and the REST API describe it.
pub fn deployment(repo: RepoName, d: DeploymentPayload) -> Deployment {
    Deployment {
        repo,
        id: d.id,
        sha: d.sha,
        git_ref: d.git_ref,
        environment: d.environment,
        task: d.task,
        creator: login(&d.creator),
        created_at: d.created_at.0,
        updated_at: d.updated_at.0,
    }
}

/// The runner's operating system, from its labels (GitHub-hosted image names
/// like `ubuntu-latest`, or self-hosted labels like `linux`).
pub fn runner_os(labels: &[String]) -> Option<String> {
    labels.iter().find_map(|l| {
        let l = l.to_ascii_lowercase();
        if l.contains("ubuntu") || l.contains("linux") {
            Some("linux")
        } else if l.contains("windows") {
            Some("windows")
        } else if l.contains("macos") || l.starts_with("mac") {
            Some("macos")
        } else {
            None
        }
        .map(str::to_owned)
    })
}
