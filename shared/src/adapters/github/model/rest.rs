//! What the REST endpoints answer: workflow runs, jobs, deployments, hooks.

use super::*;

/// A page of `GET /repos/{owner}/{repo}/actions/runs`: each run has the same
/// shape as the `workflow_run` webhook's, so it is read by the same type.
#[derive(Debug, Deserialize)]
pub struct WorkflowRunsPage {
    pub total_count: u64,
    pub workflow_runs: Vec<Item<RestRun>>,
}

/// A run as REST lists it: the webhook's run, and its GraphQL node id.
#[derive(Debug, Deserialize)]
pub struct RestRun {
    #[serde(flatten)]
    pub run: WorkflowRunPayload,
    pub node_id: Option<String>,
}

/// A page of `GET /repos/{owner}/{repo}/actions/runs/{run_id}/jobs`: each
/// job has the shape of the `workflow_job` webhook's.
#[derive(Debug, Deserialize)]
pub struct WorkflowJobsPage {
    pub jobs: Vec<Item<WorkflowJobPayload>>,
}

/// `GET /repos/{owner}/{repo}/deployments` (the `deployment` webhook's shape).
pub type DeploymentsList = Vec<Item<DeploymentPayload>>;

/// `GET .../deployments/{id}/statuses` (the `deployment_status` webhook's shape).
pub type DeploymentStatusesList = Vec<Item<DeploymentStatusPayload>>;

#[derive(Debug, Deserialize)]
pub struct RestHook {
    pub id: u64,
}

#[derive(Debug, Deserialize)]
pub struct RestDelivery {
    pub id: u64,
    pub guid: String,
    pub delivered_at: Timestamp,
    pub redelivery: bool,
    pub status_code: u16,
    pub event: String,
}

impl From<RestDelivery> for HookDelivery {
    fn from(d: RestDelivery) -> Self {
        HookDelivery {
            id: d.id,
            guid: d.guid,
            delivered_at: d.delivered_at,
            status_code: d.status_code,
            event: d.event,
            redelivery: d.redelivery,
        }
    }
}

/// The `rel="next"` target of a `Link` header.
pub fn next_link(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        params
            .split(';')
            .any(|p| p.trim() == r#"rel="next""#)
            .then(|| target.trim().trim_start_matches('<').trim_end_matches('>').to_owned())
    })
}
