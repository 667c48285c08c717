//! The webhook secrets, when they can change while the process runs.

use std::sync::Arc;

use crate::error::SecretUnavailable;
use crate::webhook::WebhookSecrets;

/// Where the webhook secrets come from when they can change while the process
/// runs: on AWS, a parameter read through a short-lived cache, so that a
/// rotation is picked up without a restart.
#[async_trait::async_trait]
pub trait WebhookSecretSource: Send + Sync {
    async fn secrets(&self) -> Result<Arc<WebhookSecrets>, SecretUnavailable>;
}
