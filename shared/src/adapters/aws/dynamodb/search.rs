//! The table's items as an indexer sees them: a stream image read back as
//! the change that wrote it (only the entities that have search documents),
//! and what the documents need from the table beyond their own item
//! ([`SearchLookups`]).

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;

use super::DynamoStore;
use super::codec::*;
use super::ops::{Query, Range, corrupt, sdk_error};
use crate::domain::*;
use crate::ports::{SearchLookups, SearchableEntities, StoreError, decode_cursor, encode_cursor};

fn team(i: &Item) -> anyhow::Result<Team> {
    Ok(Team {
        org: i.req_str("org")?,
        slug: i.req_str("slug")?,
        id: i.num("id"),
        name: i.req_str("name")?,
        description: i.str("description"),
        privacy: i.str("privacy"),
        parent_slug: i.str("parent_slug"),
        deleted: i.flag("deleted").unwrap_or(false),
        version: i.req_time("version")?,
    })
}

/// The entities with search documents (`searchable_change`).
const SEARCHABLE: [&str; 6] = ["repository", "pull_request", "review", "commit", "team", "org_member"];

/// The change that wrote `item`, when its entity has a search document
/// (repositories, pull requests, reviews, commits, teams, organisation
/// members); None for every other item (ledger, listings, cells, branches,
/// runs, …). An item of such an entity that does not decode is an error: the
/// record is reported, not skipped. A pull request's body is on an item of its
/// own (`pull_body`): the change has none unless the item predates those.
pub fn searchable_change(item: &HashMap<String, AttributeValue>) -> anyhow::Result<Option<Change>> {
    let Some(entity) = item.str("entity") else { return Ok(None) };
    Ok(Some(match entity.as_str() {
        "repository" => Change::Repository(decode::repository(item)?),
        "pull_request" => Change::PullRequest { pull: Box::new(decode::pull(item)?), known: decode::lists_known(item) },
        "review" => Change::Review(decode::review(item)?),
        // A commit is also listed per branch (`branch_commit`): one document, from the commit item.
        "commit" => Change::Commit { commit: decode::commit(item)?, branch: None, pushed_at: item.time("pushed_at")? },
        "team" => Change::Team(team(item)?),
        "org_member" => Change::OrgMember { org: item.req_str("org")?, member: decode::membership(item)? },
        _ => return Ok(None),
    }))
}

#[async_trait]
impl SearchLookups for DynamoStore {
    async fn pull_title(&self, repo: &RepoName, number: u64) -> Result<Option<String>, StoreError> {
        let repo = self.canonical(repo).await?;
        let item = self.get(key_of(key::repo(&repo), key::pull_sk(number))).await?;
        Ok(item.and_then(|i| i.str("title")))
    }

    async fn pull_body(&self, repo: &RepoName, number: u64) -> Result<Option<String>, StoreError> {
        let repo = self.canonical(repo).await?;
        Ok(self.get(key_of(key::repo(&repo), key::pull_body_sk(number))).await?.and_then(|b| b.str("body")))
    }

    async fn other_membership(&self, login: &str, org: &str) -> Result<Option<Timestamp>, StoreError> {
        let orgs = self.query_all(&Query::table(key::TRACKED, Range::Prefix("ORG#".into()))).await?;
        let mut newest: Option<Timestamp> = None;
        for other in orgs.iter().filter_map(|i| i.str("org")).filter(|o| o != org) {
            let Some(item) = self.get(key_of(key::org(&other), key::org_member_sk(login))).await? else { continue };
            if item.flag("present") == Some(true)
                && let Some(v) = item.time("version").map_err(super::ops::corrupt)?
            {
                newest = newest.max(Some(v));
            }
        }
        Ok(newest)
    }
}

#[async_trait]
impl SearchableEntities for DynamoStore {
    /// One Scan page of the table (up to `limit` items or 1 MB read), filtered to the
    /// searchable entities; the cursor is the page's last evaluated key.
    async fn searchable_page(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<Change>, Option<String>), StoreError> {
        let start = after.map(|c| decode_cursor::<(String, String)>(c).map(|(pk, sk)| key_of(pk, sk))).transpose()?;
        let mut scan = self.client.scan().table_name(&self.table).expression_attribute_names("#e", "entity");
        let mut names = Vec::new();
        for (i, entity) in SEARCHABLE.iter().enumerate() {
            scan = scan.expression_attribute_values(format!(":e{i}"), s(*entity));
            names.push(format!(":e{i}"));
        }
        let out = scan
            .filter_expression(format!("#e IN ({})", names.join(", ")))
            .set_exclusive_start_key(start)
            .limit(limit.clamp(1, 10_000) as i32)
            .send()
            .await
            .map_err(sdk_error("reading the searchable items"))?;
        // A pull request's body is on an item of its own: `IndexerService` reads it when it
        // makes the document (the census needs none).
        let changes = out
            .items
            .unwrap_or_default()
            .iter()
            .filter_map(|i| searchable_change(i).transpose())
            .collect::<anyhow::Result<Vec<_>>>()
            .map_err(corrupt)?;
        let next = match out.last_evaluated_key {
            Some(k) if !k.is_empty() => {
                Some(encode_cursor(&(k.str("pk").unwrap_or_default(), k.str("sk").unwrap_or_default())))
            }
            _ => None,
        };
        Ok((changes, next))
    }
}
