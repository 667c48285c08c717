//! Workflow runs and jobs as the store tests write them: CI on `main`, a
//! success once completed, the rest fixed, so a test names only what it is
//! about.

use chrono::TimeDelta;
use octoscope::domain::{RepoName, RunStatus, Timestamp, WorkflowJob, WorkflowRun};

/// Run `id` of `repo` in `status` (`queued`, `in_progress`, `completed`),
/// created at `created_at` and started a minute later (unless queued).
pub fn workflow_run(
    repo: &str,
    id: i64,
    status: &str,
    actor: &str,
    created_at: Timestamp,
    updated_at: Timestamp,
) -> WorkflowRun {
    WorkflowRun {
        repo: RepoName::parse(repo).expect("a repository name"),
        id,
        name: Some("CI".into()),
        workflow_id: Some(1),
        head_branch: Some("main".into()),
        head_sha: Some("abc".into()),
        event: Some("push".into()),
        status: RunStatus::parse(status),
        conclusion: (status == "completed").then(|| "success".into()),
        run_number: Some(id),
        run_attempt: Some(1),
        actor: Some(actor.into()),
        created_at,
        run_started_at: (status != "queued").then(|| created_at + TimeDelta::minutes(1)),
        updated_at,
    }
}

/// Job `id` of run `run_id` in `acme/api`, `build` on `ubuntu-latest`,
/// created at `created_at`, started a minute later, completed at `done`.
pub fn workflow_job(id: i64, run_id: i64, status: &str, created_at: Timestamp, done: Option<Timestamp>) -> WorkflowJob {
    WorkflowJob {
        repo: RepoName::parse("acme/api").expect("a repository name"),
        id,
        run_id,
        name: "build".into(),
        workflow_name: Some("CI".into()),
        head_branch: Some("main".into()),
        status: RunStatus::parse(status),
        conclusion: done.map(|_| "success".into()),
        labels: vec!["ubuntu-latest".into()],
        runner_name: None,
        runner_group: None,
        os: Some("linux".into()),
        created_at: Some(created_at),
        started_at: Some(created_at + TimeDelta::minutes(1)),
        completed_at: done,
    }
}
