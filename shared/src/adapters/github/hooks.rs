//! Webhook configurations and their delivery logs (`GitHubHooks`, REST).

use async_trait::async_trait;
use http::Method;
use serde_json::json;

use super::model::*;
use super::*;

#[async_trait]
impl GitHubHooks for GitHubClient {
    async fn hooks(&self, target: &HookTarget) -> Result<Vec<HookRef>, GitHubError> {
        let owner = match target {
            HookTarget::Repo(repo) => repo.owner(),
            HookTarget::Org(org) => org,
        };
        let first = match target {
            HookTarget::Repo(repo) => format!("/repos/{}/{}/hooks?per_page=100", repo.owner(), repo.name()),
            HookTarget::Org(org) => format!("/orgs/{org}/hooks?per_page=100"),
        };
        let mut out = Vec::new();
        self.rest_pages(owner, first, |page: Vec<RestHook>| {
            out.extend(page.into_iter().map(|h| match target {
                HookTarget::Repo(repo) => HookRef::Repo { repo: repo.clone(), id: h.id },
                HookTarget::Org(org) => HookRef::Org { org: org.clone(), id: h.id },
            }));
            true
        })
        .await?;
        Ok(out)
    }

    async fn failed_deliveries(&self, hook: &HookRef, since: Timestamp) -> Result<Vec<HookDelivery>, GitHubError> {
        let first = format!("{}/deliveries?per_page=100", Self::hook_path(hook));
        let mut out = Vec::new();
        // Deliveries come newest first: stop at the first page reaching before `since`.
        self.rest_pages(Self::hook_owner(hook), first, |page: Vec<RestDelivery>| {
            let mut reached_older = page.is_empty();
            for d in page {
                if d.delivered_at < since {
                    reached_older = true;
                    continue;
                }
                if !(200..300).contains(&d.status_code) {
                    out.push(HookDelivery::from(d));
                }
            }
            !reached_older
        })
        .await?;
        Ok(out)
    }

    async fn redeliver(&self, hook: &HookRef, delivery_id: u64) -> Result<(), GitHubError> {
        let path = format!("{}/deliveries/{delivery_id}/attempts", Self::hook_path(hook));
        self.routes.of(Self::hook_owner(hook))?.rest(Method::POST, &path, Some(&json!({}))).await.map(|_| ())
    }
}
