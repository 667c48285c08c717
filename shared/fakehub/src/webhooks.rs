//! The organisation's history as webhook events, with payloads shaped like
//! GitHub's (see the vendored octokit examples): pull requests opened, closed,
//! reopened, merged and edited; reviews submitted; team membership added and
//! removed; pushes of branch heads (the default branch's carrying its commit
//! history); workflow runs requested, started, completed; workflow jobs queued,
//! in progress, completed; deployments created and their statuses created.

use chrono::SecondsFormat;
use serde_json::{Value as Json, json};

use crate::model::*;

/// One event of the history, before it is delivered.
#[derive(Debug, Clone)]
pub struct Event {
    /// `X-GitHub-Event`.
    pub name: &'static str,
    pub action: Option<String>,
    /// When it happened on GitHub (events are delivered in this order unless reordered).
    pub at: Time,
    pub payload: Json,
}

/// The size of the padded pull request body of the oversized event.
pub const OVERSIZED_BODY_BYTES: usize = 7 * 1024 * 1024 + 512 * 1024;

/// The API root webhook payloads link to (REST answers link to the fake itself).
const GITHUB_API: &str = "https://api.github.com";

fn ts(t: Time) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn user_id(login: &str) -> u64 {
    // Stable small ids derived from the login (FNV-1a).
    login.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3)) % 90_000_000
        + 1_000
}

pub fn user(login: &str) -> Json {
    json!({
        "login": login, "id": user_id(login), "node_id": format!("U_{}", user_id(login)),
        "avatar_url": format!("https://avatars.githubusercontent.com/u/{}?v=4", user_id(login)), "gravatar_id": "",
        "url": format!("https://api.github.com/users/{login}"), "html_url": format!("https://github.com/{login}"),
        "type": "User", "site_admin": false
    })
}

/// A job in the REST shape (`GET .../runs/{run_id}/jobs`, and the `workflow_job` event's `workflow_job`).
pub(crate) fn job_json(api_root: &str, full_name: &str, j: &WorkflowJob) -> Json {
    let api = format!("{api_root}/repos/{full_name}");
    json!({
        "id": j.id, "run_id": j.run_id, "run_attempt": j.run_attempt, "node_id": j.node_id,
        "run_url": format!("{api}/actions/runs/{}", j.run_id),
        "url": format!("{api}/actions/jobs/{}", j.id),
        "html_url": format!("https://github.com/{full_name}/actions/runs/{}/job/{}", j.run_id, j.id),
        "check_run_url": format!("{api}/check-runs/{}", j.id),
        "head_sha": j.head_sha, "head_branch": j.head_branch, "workflow_name": j.workflow_name, "name": j.name,
        "status": j.status, "conclusion": j.conclusion,
        "created_at": ts(j.created_at), "started_at": ts(j.started_at), "completed_at": j.completed_at.map(ts),
        "labels": j.labels, "runner_id": j.runner_id, "runner_name": j.runner_name,
        "runner_group_id": j.runner_group_id, "runner_group_name": j.runner_group_name, "steps": []
    })
}

/// A deployment in the REST shape, `updated_at` as it stood at `updated_at`.
pub(crate) fn deployment_json(api_root: &str, full_name: &str, d: &Deployment, updated_at: Time) -> Json {
    let api = format!("{api_root}/repos/{full_name}");
    json!({
        "url": format!("{api}/deployments/{}", d.id), "id": d.id, "node_id": d.node_id, "sha": d.sha,
        "ref": d.git_ref, "task": d.task, "payload": {}, "original_environment": d.environment,
        "environment": d.environment, "description": null, "creator": user(&d.creator),
        "created_at": ts(d.created_at), "updated_at": ts(updated_at),
        "statuses_url": format!("{api}/deployments/{}/statuses", d.id), "repository_url": api,
        "transient_environment": false, "production_environment": d.environment == "production",
        "performed_via_github_app": null
    })
}

pub(crate) fn deployment_status_json(api_root: &str, full_name: &str, d: &Deployment, s: &DeploymentStatus) -> Json {
    let api = format!("{api_root}/repos/{full_name}");
    json!({
        "url": format!("{api}/deployments/{}/statuses/{}", d.id, s.id), "id": s.id, "node_id": s.node_id,
        "state": s.state, "creator": user(&s.creator), "description": "",
        "environment": s.environment, "target_url": "", "log_url": "", "environment_url": "",
        "created_at": ts(s.created_at), "updated_at": ts(s.updated_at),
        "deployment_url": format!("{api}/deployments/{}", d.id), "repository_url": api,
        "performed_via_github_app": null
    })
}

fn org_json(org: &Org) -> Json {
    json!({
        "login": org.login, "id": org.id, "node_id": format!("O_{}", org.id),
        "url": format!("https://api.github.com/orgs/{}", org.login),
        "repos_url": format!("https://api.github.com/orgs/{}/repos", org.login),
        "hooks_url": format!("https://api.github.com/orgs/{}/hooks", org.login),
        "members_url": format!("https://api.github.com/orgs/{}/members{{/member}}", org.login),
        "avatar_url": "", "description": "A generated organisation"
    })
}

fn repo_json(org: &Org, repo: &Repo, pushed_at_epoch: bool) -> Json {
    let full = repo.full_name();
    let pushed_at = if pushed_at_epoch { json!(repo.pushed_at.timestamp()) } else { json!(ts(repo.pushed_at)) };
    json!({
        "id": repo.id, "node_id": format!("R_{}", repo.id), "name": repo.name, "full_name": full, "private": false,
        "owner": owner_json(org, &repo.owner),
        "html_url": format!("https://github.com/{full}"), "description": null, "fork": false,
        "url": format!("https://api.github.com/repos/{full}"),
        "created_at": if pushed_at_epoch { json!(repo.created_at.timestamp()) } else { json!(ts(repo.created_at)) },
        "updated_at": ts(repo.created_at), "pushed_at": pushed_at,
        "default_branch": repo.default_branch, "archived": false, "disabled": false, "visibility": "public",
        "open_issues_count": 0, "forks_count": 0, "stargazers_count": 0, "watchers_count": 0, "size": 0, "language": "Rust"
    })
}

/// A repository's owner: the organisation, or (transferred away) a user account.
fn owner_json(org: &Org, login: &str) -> Json {
    if login.eq_ignore_ascii_case(&org.login) {
        json!({ "login": org.login, "id": org.id, "node_id": format!("O_{}", org.id), "type": "Organization", "site_admin": false })
    } else {
        user(login)
    }
}

/// The `repository` event of a rename or transfer: `repository` as it is
/// after it, `changes` saying what it was (the shapes of GitHub's examples).
fn move_event(org: &Org, repo: &Repo, m: &RepoMove) -> Event {
    let mut after = repo.clone();
    after.owner.clone_from(&m.to_owner);
    after.name.clone_from(&m.to_name);
    let (action, changes) = match m.kind {
        MoveKind::Renamed => ("renamed", json!({ "repository": { "name": { "from": m.from_name } } })),
        MoveKind::Transferred => {
            let from = if m.from_owner.eq_ignore_ascii_case(&org.login) {
                json!({ "organization": org_json(org) })
            } else {
                json!({ "user": user(&m.from_owner) })
            };
            ("transferred", json!({ "owner": { "from": from } }))
        }
    };
    let mut payload = json!({
        "action": action, "changes": changes, "repository": repo_json(org, &after, false),
        "sender": user(&org.members[0]), "organization": org_json(org)
    });
    if !m.to_owner.eq_ignore_ascii_case(&org.login)
        && let Some(p) = payload.as_object_mut()
    {
        p.remove("organization");
    }
    Event { name: "repository", action: Some(action.to_owned()), at: m.at, payload }
}

fn team_json(org: &Org, t: &Team) -> Json {
    json!({
        "name": t.name, "id": t.id, "node_id": format!("T_{}", t.id), "slug": t.slug, "description": t.description,
        "privacy": t.privacy, "notification_setting": "notifications_enabled",
        "url": format!("https://api.github.com/organizations/{}/team/{}", org.id, t.id),
        "html_url": format!("https://github.com/orgs/{}/teams/{}", org.login, t.slug),
        "members_url": format!("https://api.github.com/organizations/{}/team/{}/members{{/member}}", org.id, t.id),
        "repositories_url": format!("https://api.github.com/organizations/{}/team/{}/repos", org.id, t.id),
        "permission": "pull", "parent": null
    })
}

/// How a pull request looked at one point of its history.
struct PullAt {
    at: Time,
    open: bool,
    closed_at: Option<Time>,
    merged_at: Option<Time>,
}

fn pull_json(org: &Org, repo: &Repo, p: &Pull, s: &PullAt, with_size: bool, body: Option<&str>) -> Json {
    let full = repo.full_name();
    let branch = |r: &str, sha: &str| json!({ "label": format!("{}:{r}", org.login), "ref": r, "sha": sha, "user": user(&org.login), "repo": repo_json(org, repo, false) });
    let base_sha = repo.branches.iter().find(|b| b.name == p.base_ref).map(|b| b.head_sha.as_str()).unwrap_or("");
    let mut v = json!({
        "url": format!("https://api.github.com/repos/{full}/pulls/{}", p.number),
        "id": p.id, "node_id": format!("PR_{}", p.id),
        "html_url": format!("https://github.com/{full}/pull/{}", p.number),
        "number": p.number, "state": if s.open { "open" } else { "closed" }, "locked": false,
        "title": p.title, "user": user(&p.author), "body": body.unwrap_or(&p.body),
        "created_at": ts(p.created_at), "updated_at": ts(s.at),
        "closed_at": s.closed_at.map(ts), "merged_at": s.merged_at.map(ts),
        "merge_commit_sha": s.merged_at.map(|_| p.head_sha.clone()),
        "assignee": null, "assignees": [],
        "requested_reviewers": if s.open { p.requested_reviewers.iter().map(|u| user(u)).collect::<Vec<_>>() } else { Vec::new() },
        "requested_teams": if s.open {
            p.requested_teams.iter().filter_map(|slug| org.team(slug)).map(|t| team_json(org, t)).collect::<Vec<_>>()
        } else { Vec::new() },
        "labels": p.labels.iter().map(|l| json!({ "id": user_id(l), "node_id": format!("LA_{l}"), "name": l, "color": "ededed", "default": false, "description": null })).collect::<Vec<_>>(),
        "milestone": null, "draft": p.draft,
        "head": branch(&p.head_ref, &p.head_sha), "base": branch(&p.base_ref, base_sha),
        "author_association": "MEMBER", "auto_merge": null, "active_lock_reason": null
    });
    if with_size {
        let extra = json!({
            "merged": s.merged_at.is_some(), "mergeable": null, "rebaseable": null, "mergeable_state": "unknown",
            "merged_by": s.merged_at.map(|_| user(&p.author)), "comments": 0, "review_comments": 0,
            "maintainer_can_modify": false, "commits": p.commits, "additions": p.additions,
            "deletions": p.deletions, "changed_files": p.changed_files
        });
        if let (Some(o), Json::Object(e)) = (v.as_object_mut(), extra) {
            o.extend(e);
        }
    }
    v
}

fn final_state(p: &Pull) -> PullAt {
    PullAt { at: p.updated_at, open: p.state == PullState::Open, closed_at: p.closed_at, merged_at: p.merged_at }
}

fn pull_events(org: &Org, repo: &Repo, p: &Pull, out: &mut Vec<Event>) {
    let ev = |action: &str, s: &PullAt, out: &mut Vec<Event>| {
        out.push(Event {
            name: "pull_request",
            action: Some(action.to_owned()),
            at: s.at,
            payload: json!({
                "action": action, "number": p.number, "pull_request": pull_json(org, repo, p, s, true, None),
                "repository": repo_json(org, repo, false), "organization": org_json(org), "sender": user(&p.author)
            }),
        });
    };
    ev("opened", &PullAt { at: p.created_at, open: true, closed_at: None, merged_at: None }, out);
    for r in &p.reviews {
        let s = PullAt { at: r.submitted_at, open: true, closed_at: None, merged_at: None };
        let mut review = json!({
            "id": r.id, "node_id": r.node_id, "user": user(&r.author), "body": null, "commit_id": r.commit_id,
            "submitted_at": ts(r.submitted_at), "state": r.state.webhook(),
            "html_url": format!("https://github.com/{}/pull/{}#pullrequestreview-{}", repo.full_name(), p.number, r.id),
            "pull_request_url": format!("https://api.github.com/repos/{}/pulls/{}", repo.full_name(), p.number),
            "author_association": "MEMBER"
        });
        if r.state == ReviewState::Dismissed {
            // A dismissed review was submitted (as approved) and dismissed later; the
            // submitted event carries what it said at the time.
            review["state"] = json!("approved");
        }
        out.push(Event {
            name: "pull_request_review",
            action: Some("submitted".into()),
            at: r.submitted_at,
            payload: json!({
                "action": "submitted", "review": review, "pull_request": pull_json(org, repo, p, &s, false, None),
                "repository": repo_json(org, repo, false), "organization": org_json(org), "sender": user(&r.author)
            }),
        });
        if r.state == ReviewState::Dismissed {
            let mut dismissed = out.last().expect("just pushed").clone();
            dismissed.action = Some("dismissed".into());
            dismissed.payload["action"] = json!("dismissed");
            dismissed.payload["review"]["state"] = json!("dismissed");
            out.push(dismissed);
        }
    }
    if let Some((closed, reopened)) = p.reopened {
        ev("closed", &PullAt { at: closed, open: false, closed_at: Some(closed), merged_at: None }, out);
        ev("reopened", &PullAt { at: reopened, open: true, closed_at: None, merged_at: None }, out);
    }
    if let Some(closed_at) = p.closed_at {
        ev("closed", &PullAt { at: closed_at, open: false, closed_at: Some(closed_at), merged_at: p.merged_at }, out);
    }
    if p.edited_last {
        ev("edited", &final_state(p), out);
    }
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

/// The commit of a push payload.
fn push_commit(repo: &Repo, c: &Commit) -> Json {
    let email = format!("{}@users.noreply.github.com", c.author_login.as_deref().unwrap_or("guest"));
    let mut author = json!({ "name": c.author_name, "email": email });
    if let Some(login) = &c.author_login {
        author["username"] = json!(login);
    }
    json!({
        "id": c.sha, "tree_id": c.sha, "distinct": true, "message": c.message, "timestamp": ts(c.committed_at),
        "url": format!("https://github.com/{}/commit/{}", repo.full_name(), c.sha),
        "author": author, "committer": { "name": "GitHub", "email": "noreply@github.com", "username": "web-flow" },
        "added": [], "removed": [], "modified": ["README.md"]
    })
}

/// The default branch's history as pushes of 1 to 3 commits each (oldest first
/// in each push, as GitHub lists them); the last one leaves the branch at its head.
fn history_pushes(org: &Org, repo: &Repo, out: &mut Vec<Event>) {
    let branch = &repo.default_branch;
    let mut sizes = fastrand::Rng::with_seed(repo.id as u64);
    let mut before = "0000000000000000000000000000000000000000".to_owned();
    let mut rest: &[Commit] = &repo.commits;
    while !rest.is_empty() {
        let (group, tail) = rest.split_at(sizes.usize(1..=3).min(rest.len()));
        rest = tail;
        let head = group.last().expect("a group has a commit");
        let mut r = repo.clone();
        r.pushed_at = head.committed_at;
        let commits: Vec<Json> = group.iter().map(|c| push_commit(repo, c)).collect();
        let pusher = head.author_login.clone().unwrap_or_else(|| org.members[0].clone());
        out.push(Event {
            name: "push",
            action: None,
            at: head.committed_at,
            payload: json!({
                "ref": format!("refs/heads/{branch}"), "before": before, "after": head.sha,
                "created": before.bytes().all(|b| b == b'0'), "deleted": false, "forced": false, "base_ref": null,
                "compare": format!("https://github.com/{}/compare/{}...{}", repo.full_name(), short(&before), short(&head.sha)),
                "commits": commits, "head_commit": commits.last().cloned(),
                "repository": repo_json(org, &r, true), "pusher": { "name": pusher, "email": null },
                "organization": org_json(org), "sender": user(&pusher)
            }),
        });
        before.clone_from(&head.sha);
    }
}

/// A job's `queued`, `in_progress` and `completed` events, each with the job as it was then.
fn job_events(org: &Org, repo: &Repo, job: &WorkflowJob, out: &mut Vec<Event>) {
    let full = repo.full_name();
    let queued = WorkflowJob {
        status: "queued".into(),
        conclusion: None,
        started_at: job.created_at,
        completed_at: None,
        runner_id: None,
        runner_name: None,
        runner_group_id: None,
        runner_group_name: None,
        ..job.clone()
    };
    let in_progress = WorkflowJob { status: "in_progress".into(), conclusion: None, completed_at: None, ..job.clone() };
    let mut stages = vec![("queued", job.created_at, queued)];
    if job.status != "queued" {
        stages.push(("in_progress", job.started_at, in_progress));
    }
    if let Some(done) = job.completed_at {
        stages.push(("completed", done, job.clone()));
    }
    for (action, at, j) in stages {
        out.push(Event {
            name: "workflow_job",
            action: Some(action.to_owned()),
            at,
            payload: json!({
                "action": action, "workflow_job": job_json(GITHUB_API, &full, &j), "repository": repo_json(org, repo, false),
                "organization": org_json(org), "sender": user(&org.members[0])
            }),
        });
    }
}

/// A deployment's `created` event and one `deployment_status` `created` per status,
/// the deployment's `updated_at` moving with them as on GitHub.
fn deployment_events(org: &Org, repo: &Repo, d: &Deployment, out: &mut Vec<Event>) {
    let full = repo.full_name();
    out.push(Event {
        name: "deployment",
        action: Some("created".into()),
        at: d.created_at,
        payload: json!({
            "action": "created", "deployment": deployment_json(GITHUB_API, &full, d, d.created_at), "workflow": null,
            "workflow_run": null, "repository": repo_json(org, repo, false), "organization": org_json(org),
            "sender": user(&d.creator)
        }),
    });
    for s in &d.statuses {
        out.push(Event {
            name: "deployment_status",
            action: Some("created".into()),
            at: s.created_at,
            payload: json!({
                "action": "created", "deployment_status": deployment_status_json(GITHUB_API, &full, d, s),
                "deployment": deployment_json(GITHUB_API, &full, d, s.created_at), "workflow": null, "workflow_run": null,
                "repository": repo_json(org, repo, false), "organization": org_json(org), "sender": user(&s.creator)
            }),
        });
    }
}

/// One repository's events (branches, pull requests, runs and jobs, deployments), under its name as given.
fn repo_events(org: &Org, repo: &Repo, out: &mut Vec<Event>) {
    for b in &repo.branches {
        if b.name == repo.default_branch && !repo.commits.is_empty() {
            history_pushes(org, repo, out);
            continue;
        }
        let mut r = repo.clone();
        r.pushed_at = b.pushed_at;
        let commit = json!({
            "id": b.head_sha, "tree_id": b.head_sha, "distinct": true, "message": format!("Update {}", b.name),
            "timestamp": ts(b.pushed_at), "url": format!("https://github.com/{}/commit/{}", repo.full_name(), b.head_sha),
            "author": { "name": org.members[0], "email": format!("{}@example.com", org.members[0]), "username": org.members[0] },
            "committer": { "name": "GitHub", "email": "noreply@github.com", "username": "web-flow" },
            "added": [], "removed": [], "modified": ["README.md"]
        });
        out.push(Event {
            name: "push",
            action: None,
            at: b.pushed_at,
            payload: json!({
                "ref": format!("refs/heads/{}", b.name), "before": "0000000000000000000000000000000000000000",
                "after": b.head_sha, "created": false, "deleted": false, "forced": false, "base_ref": null,
                "compare": format!("https://github.com/{}/compare/{}", repo.full_name(), b.name),
                // A default branch without history (`OrgSpec.commits` 0) pushes no commit.
                "commits": if b.name == repo.default_branch { Vec::new() } else { vec![commit.clone()] },
                "head_commit": commit,
                "repository": repo_json(org, &r, true), "pusher": { "name": org.members[0], "email": null },
                "organization": org_json(org), "sender": user(&org.members[0])
            }),
        });
    }
    for p in &repo.pulls {
        pull_events(org, repo, p, out);
    }
    for run in &repo.runs {
        let run_at = |status: &str, conclusion: Option<&str>, updated: Time| {
            json!({
                "id": run.id, "name": run.name, "node_id": format!("WFR_{}", run.id), "head_branch": run.head_branch,
                "head_sha": run.head_sha, "path": ".github/workflows/ci.yml", "display_title": run.name,
                "run_number": run.run_number, "event": run.event, "status": status, "conclusion": conclusion,
                "workflow_id": run.workflow_id, "check_suite_id": run.id + 1, "run_attempt": run.run_attempt,
                "url": format!("https://api.github.com/repos/{}/actions/runs/{}", repo.full_name(), run.id),
                "html_url": format!("https://github.com/{}/actions/runs/{}", repo.full_name(), run.id),
                "pull_requests": [], "created_at": ts(run.created_at), "updated_at": ts(updated),
                "run_started_at": ts(run.run_started_at), "actor": user(&run.actor), "triggering_actor": user(&run.actor),
                "head_commit": { "id": run.head_sha, "message": "Update", "timestamp": ts(run.created_at) },
                "repository": repo_json(org, repo, false), "head_repository": repo_json(org, repo, false)
            })
        };
        let ev = |action: &str, at: Time, wr: Json| Event {
            name: "workflow_run",
            action: Some(action.to_owned()),
            at,
            payload: json!({
                "action": action, "workflow_run": wr, "workflow": { "id": run.workflow_id, "name": run.name },
                "repository": repo_json(org, repo, false), "organization": org_json(org), "sender": user(&run.actor)
            }),
        };
        out.push(ev("requested", run.created_at, run_at("queued", None, run.created_at)));
        if run.status != "queued" {
            out.push(ev("in_progress", run.run_started_at, run_at("in_progress", None, run.run_started_at)));
        }
        if run.status == "completed" {
            out.push(ev("completed", run.updated_at, run_at("completed", run.conclusion.as_deref(), run.updated_at)));
        }
        for job in &run.jobs {
            job_events(org, repo, job, out);
        }
    }
    for d in &repo.deployments {
        deployment_events(org, repo, d, out);
    }
}

/// The org's whole history, oldest first. With `oversized`, one extra
/// `pull_request` `edited` event whose body is over 7 MB comes last; it
/// repeats the final state of the first pull request, so it changes no truth.
pub fn history(org: &Org, oversized: bool) -> Vec<Event> {
    let mut out = Vec::new();
    for t in &org.teams {
        let membership = |action: &str, login: &str, at: Time| Event {
            name: "membership",
            action: Some(action.to_owned()),
            at,
            payload: json!({
                "action": action, "scope": "team", "member": user(login), "sender": user(&org.members[0]),
                "team": team_json(org, t), "organization": org_json(org)
            }),
        };
        for (login, at) in t.members.iter().zip(&t.added_at) {
            out.push(membership("added", login, *at));
        }
        for (login, added, removed) in &t.former_members {
            out.push(membership("added", login, *added));
            out.push(membership("removed", login, *removed));
        }
    }
    for repo in &org.repos {
        if repo.moves.is_empty() {
            repo_events(org, repo, &mut out);
            continue;
        }
        // Each event carries the name the repository had at its time: one
        // version of the repository per name, each keeping the events of its span.
        for k in 0..=repo.moves.len() {
            let (from, until) = (k.checked_sub(1).map(|p| repo.moves[p].at), repo.moves.get(k).map(|m| m.at));
            let mut version = repo.clone();
            let (owner, name) = repo.name_at(from.unwrap_or(Time::MIN_UTC));
            (version.owner, version.name) = (owner.to_owned(), name.to_owned());
            let mut events = Vec::new();
            repo_events(org, &version, &mut events);
            let owned = version.owner.eq_ignore_ascii_case(&org.login);
            for mut e in events {
                if from.is_none_or(|f| e.at >= f) && until.is_none_or(|u| e.at < u) {
                    if !owned && let Some(p) = e.payload.as_object_mut() {
                        // An account's repository, not the organisation's.
                        p.remove("organization");
                    }
                    out.push(e);
                }
            }
        }
        out.extend(repo.moves.iter().map(|m| move_event(org, repo, m)));
    }
    out.sort_by_key(|e| e.at);
    if oversized && let Some((repo, p)) = org.repos.iter().find_map(|r| r.pulls.first().map(|p| (r, p))) {
        let body = "x".repeat(OVERSIZED_BODY_BYTES);
        out.push(Event {
            name: "pull_request",
            action: Some("edited".into()),
            at: p.updated_at,
            payload: json!({
                "action": "edited", "number": p.number, "changes": { "body": { "from": p.body } },
                "pull_request": pull_json(org, repo, p, &final_state(p), true, Some(&body)),
                "repository": repo_json(org, repo, false), "organization": org_json(org), "sender": user(&p.author)
            }),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_pull_request_event_carries_the_final_state() {
        // GIVEN a generated org WHEN its history is built
        let org = Org::generate(&OrgSpec::default());
        let events = history(&org, false);
        // THEN for each pull request the newest event says what the truth says
        for repo in &org.repos {
            for p in &repo.pulls {
                let last = events
                    .iter()
                    .filter(|e| e.payload["pull_request"]["id"] == p.id)
                    .max_by_key(|e| e.at)
                    .expect("every pull request has events");
                let pr = &last.payload["pull_request"];
                assert_eq!(pr["updated_at"], ts(p.updated_at));
                assert_eq!(pr["state"], if p.state == PullState::Open { "open" } else { "closed" });
                assert_eq!(pr["merged_at"], json!(p.merged_at.map(ts)));
            }
        }
        assert!(events.windows(2).all(|w| w[0].at <= w[1].at));
    }

    #[test]
    fn the_oversized_event_is_over_seven_megabytes() {
        let org = Org::generate(&OrgSpec { repos: 1, pulls: 2, ..OrgSpec::default() });
        let last = history(&org, true).pop().unwrap();
        assert!(serde_json::to_vec(&last.payload).unwrap().len() > 7 * 1024 * 1024);
    }
}
