//! Changes written the same way by the metrics tests and the metrics bench
//! (which includes this file by path).

use octoscope::domain::*;

/// Deployment `id` of `main` to `env` in `repo`, by deploy-bot, at `at`.
pub fn deployment(repo: RepoName, id: i64, env: &str, at: Timestamp) -> Change {
    Change::Deployment(Deployment {
        repo,
        id,
        sha: None,
        git_ref: Some("main".into()),
        environment: Some(env.into()),
        task: Some("deploy".into()),
        creator: Some("deploy-bot".into()),
        created_at: at,
        updated_at: at,
    })
}

/// Status `id` of deployment `deployment_id` in `repo`: `state` at `at`.
pub fn deployment_status(
    repo: RepoName,
    deployment_id: i64,
    id: i64,
    state: &str,
    environment: Option<&str>,
    at: Timestamp,
) -> Change {
    Change::DeploymentStatus(DeploymentStatus {
        repo,
        deployment_id,
        id,
        state: state.into(),
        environment: environment.map(Into::into),
        creator: None,
        created_at: at,
        updated_at: at,
    })
}
