//! Resync jobs as ECS tasks on Fargate: one `RunTask` per job.
//!
//! The job is passed by reference: the dispatcher saves its `JobRecord` in
//! the store first, and the task gets only `OCTOSCOPE_JOB_ID` (a container
//! override), then loads the record with `Store::get_job`. The task is tagged
//! with the job id (`octoscope:job-id`), `startedBy` carries a ≤36-character
//! form of it (ECS's limit), and `clientToken` (derived from the job id) makes
//! a retried `RunTask` of the same job start one task, not two.

use anyhow::Context as _;
use async_trait::async_trait;
use aws_sdk_ecs::Client;
use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, ContainerOverride, Failure, KeyValuePair, LaunchType, NetworkConfiguration,
    PropagateTags, Tag, TaskOverride,
};
use sha2::{Digest as _, Sha256};

use crate::config::aws::EcsConfig;
use crate::domain::ResyncJob;
use crate::ports::{JobLauncher, LaunchError};

/// The environment variable the batch job reads its job id from.
pub const JOB_ID_ENV: &str = "OCTOSCOPE_JOB_ID";
/// The tag that names a task's job.
pub const JOB_ID_TAG: &str = "octoscope:job-id";

/// Launches resync jobs as Fargate tasks.
#[derive(Debug, Clone)]
pub struct EcsLauncher {
    client: Client,
    settings: EcsConfig,
}

impl EcsLauncher {
    pub fn new(client: Client, settings: EcsConfig) -> Self {
        Self { client, settings }
    }
}

#[async_trait]
impl JobLauncher for EcsLauncher {
    async fn launch(&self, job: &ResyncJob) -> Result<(), LaunchError> {
        let s = &self.settings;
        let network = AwsVpcConfiguration::builder()
            .set_subnets(Some(s.subnets.clone()))
            .set_security_groups(Some(s.security_groups.clone()))
            .assign_public_ip(if s.assign_public_ip { AssignPublicIp::Enabled } else { AssignPublicIp::Disabled })
            .build()
            .context("building the task's network configuration")
            .map_err(LaunchError::Failed)?;
        let overrides = TaskOverride::builder()
            .container_overrides(
                ContainerOverride::builder()
                    .name(&s.container)
                    .environment(KeyValuePair::builder().name(JOB_ID_ENV).value(&job.id).build())
                    .build(),
            )
            .build();
        let tag = Tag::builder().key(JOB_ID_TAG).value(tag_value(&job.id)).build();
        let out = self
            .client
            .run_task()
            .cluster(&s.cluster)
            .task_definition(&s.task_definition)
            .launch_type(LaunchType::Fargate)
            .count(1)
            .network_configuration(NetworkConfiguration::builder().awsvpc_configuration(network).build())
            .overrides(overrides)
            .started_by(started_by(&job.id))
            .tags(tag)
            .propagate_tags(PropagateTags::TaskDefinition)
            .client_token(client_token(&job.id))
            .send()
            .await
            .map_err(|e| {
                let retryable = super::is_retryable(&e);
                let e = anyhow::Error::new(e).context(format!("RunTask for job {}", job.id));
                if retryable { LaunchError::Unavailable(e) } else { LaunchError::Failed(e) }
            })?;
        if !out.failures().is_empty() || out.tasks().is_empty() {
            let failures = RunTaskFailures(out.failures().iter().map(TaskFailure::from).collect());
            let retryable = failures.is_retryable();
            let e = anyhow::Error::new(failures).context(format!("RunTask for job {}", job.id));
            return Err(if retryable { LaunchError::Unavailable(e) } else { LaunchError::Failed(e) });
        }
        let arn = out.tasks().first().and_then(|t| t.task_arn()).unwrap_or_default();
        tracing::info!(job = job.id, task = arn, "resync task started");
        Ok(())
    }
}

/// One entry of RunTask's `failures`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskFailure {
    pub arn: Option<String>,
    pub reason: String,
    pub detail: Option<String>,
}

impl From<&Failure> for TaskFailure {
    fn from(f: &Failure) -> Self {
        Self {
            arn: f.arn().map(str::to_owned),
            reason: f.reason().unwrap_or("(no reason)").to_owned(),
            detail: f.detail().map(str::to_owned),
        }
    }
}

impl TaskFailure {
    /// Capacity and throttling go away; a missing or inactive task
    /// definition, a bad subnet or a refused configuration do not.
    pub fn is_retryable(&self) -> bool {
        let r = self.reason.as_str();
        let lower = r.to_ascii_lowercase();
        r.starts_with("RESOURCE:")
            || r == "AGENT"
            || lower.contains("capacity is unavailable")
            || lower.contains("throttl")
            || lower.contains("rate exceeded")
    }
}

/// RunTask answered without starting the task.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ECS did not start the task: {}", describe(.0))]
pub struct RunTaskFailures(pub Vec<TaskFailure>);

impl RunTaskFailures {
    /// Retryable when every failure is (none at all: ECS said nothing, try again).
    pub fn is_retryable(&self) -> bool {
        self.0.iter().all(TaskFailure::is_retryable)
    }
}

fn describe(failures: &[TaskFailure]) -> String {
    if failures.is_empty() {
        return "no task and no failure reported".to_owned();
    }
    failures
        .iter()
        .map(|f| match (&f.detail, &f.arn) {
            (Some(d), _) => format!("{} ({d})", f.reason),
            (None, Some(a)) => format!("{} ({a})", f.reason),
            (None, None) => f.reason.clone(),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// `startedBy`: at most 36 letters, digits, `-`, `_` or `/`. A job id that
/// fits is used as is (other characters become `_`); a longer one keeps its
/// start and ends with 12 hex digits of its hash, so two ids stay distinct.
pub fn started_by(job_id: &str) -> String {
    let clean: String = job_id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '/') { c } else { '_' })
        .collect();
    if clean.len() <= 36 && clean == job_id {
        return clean;
    }
    let hash = hex::encode(Sha256::digest(job_id.as_bytes()));
    format!("{}-{}", &clean[..clean.len().min(23)], &hash[..12])
}

/// ECS's idempotency token for a job (at most 64 characters).
fn client_token(job_id: &str) -> String {
    hex::encode(Sha256::digest(job_id.as_bytes()))
}

/// A tag value: at most 256 of letters, digits, spaces and `_ . : / = + - @`.
fn tag_value(job_id: &str) -> String {
    job_id.chars().map(|c| if c.is_alphanumeric() || " _.:/=+-@".contains(c) { c } else { '_' }).take(256).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn started_by_fits_ecs_and_keeps_ids_apart() {
        assert_eq!(started_by("resync-1"), "resync-1");
        let a = started_by("resync-20261122T165300.123Z-repo:octo/hello-world");
        let b = started_by("resync-20261122T165300.123Z-repo:octo/hello-there");
        assert!(a.len() <= 36 && b.len() <= 36, "{a} {b}");
        assert_ne!(a, b);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric() || "-_/".contains(c)), "{a}");
        assert!(a.starts_with("resync-20261122T165300"), "{a}");
    }

    #[test]
    fn capacity_is_retryable_and_a_missing_definition_is_not() {
        let f = |reason: &str| TaskFailure { arn: None, reason: reason.into(), detail: None };
        assert!(f("RESOURCE:MEMORY").is_retryable());
        assert!(f("AGENT").is_retryable());
        assert!(
            f("Capacity is unavailable at this time. Please try again later or in a different availability zone")
                .is_retryable()
        );
        assert!(!f("MISSING").is_retryable());
        assert!(!f("TaskDefinition is inactive").is_retryable());
        assert!(!RunTaskFailures(vec![f("RESOURCE:CPU"), f("MISSING")]).is_retryable());
        assert!(RunTaskFailures(vec![f("RESOURCE:CPU")]).to_string().contains("RESOURCE:CPU"));
    }
}
