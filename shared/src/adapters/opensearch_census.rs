//! The index's side of the integrity check's comparison on OpenSearch
//! ([`IndexCensus`]): a `composite` aggregation over type × repository (a
//! team or a person has no repository: a missing bucket) with the newest
//! `version` of each, a page of buckets at a time; and the keys of one
//! scope, a page of hits at a time (`search_after` on the key).

use anyhow::{Context as _, anyhow};
use async_trait::async_trait;
use chrono::DateTime;
use serde_json::{Value, json};

use super::{ContextInto as _, OpenSearchIndex, internal};
use crate::domain::{DocKind, IndexScope, ScopeCount};
use crate::ports::{IndexCensus, SearchError};
use crate::services::search_docs::version_of;

/// Buckets of the census, and keys of a scope, read a request.
const PAGE: usize = 1_000;

/// The version the store wrote, from its external version
/// ([`super::external_version`]): 0 is none (empty), else 1 + the
/// microseconds of a time. (A decimal counter, which the store never
/// writes, reads back as a time.)
fn stored_version(external: i64) -> Result<String, SearchError> {
    if external <= 0 {
        return Ok(String::new());
    }
    let t = DateTime::from_timestamp_micros(external - 1)
        .ok_or_else(|| internal(anyhow!("version {external} is no time")))?;
    Ok(version_of(&t))
}

fn bucket(b: &Value) -> Result<Option<ScopeCount>, SearchError> {
    let bad = || internal(anyhow!("a census bucket that does not read: {b}"));
    let kind = b["key"]["kind"].as_str().ok_or_else(bad)?;
    // A kind this build does not know is not one it indexes.
    let Some(kind) = DocKind::parse(kind) else { return Ok(None) };
    let repo = b["key"]["repo"].as_str().unwrap_or_default();
    let count = b["doc_count"].as_u64().ok_or_else(bad)?;
    let newest = b["newest"]["value"].as_f64().map_or(Ok(String::new()), |v| stored_version(v as i64))?;
    Ok(Some(ScopeCount { scope: IndexScope::new(kind, repo), count, newest }))
}

#[async_trait]
impl IndexCensus for OpenSearchIndex {
    async fn census(&self) -> Result<Vec<ScopeCount>, SearchError> {
        let mut out = Vec::new();
        let mut after: Option<Value> = None;
        loop {
            let mut composite = json!({
                "size": PAGE,
                "sources": [
                    {"kind": {"terms": {"field": "kind"}}},
                    {"repo": {"terms": {"field": "repo", "missing_bucket": true}}}
                ]
            });
            if let Some(a) = &after {
                composite["after"] = a.clone();
            }
            let body = json!({
                "size": 0,
                "track_total_hits": true,
                "aggs": {"census": {"composite": composite, "aggs": {"newest": {"max": {"field": "version"}}}}}
            });
            let answer = self.run_search(&body).await.map_err(|e| e.context_into("counting the index"))?;
            let buckets = answer["aggregations"]["census"]["buckets"].as_array().cloned().unwrap_or_default();
            for b in &buckets {
                out.extend(bucket(b)?);
            }
            match answer["aggregations"]["census"]["after_key"].clone() {
                Value::Null => return Ok(out),
                _ if buckets.len() < PAGE => return Ok(out),
                next => after = Some(next),
            }
        }
    }

    async fn scope_keys(&self, scope: &IndexScope) -> Result<Vec<String>, SearchError> {
        let repo = if scope.repo.is_empty() {
            json!({"bool": {"must_not": {"exists": {"field": "repo"}}}})
        } else {
            json!({"term": {"repo": scope.repo}})
        };
        let mut keys = Vec::new();
        loop {
            let mut body = json!({
                "size": PAGE,
                "_source": false,
                "query": {"bool": {"filter": [{"term": {"kind": scope.kind.as_str()}}, repo]}},
                "sort": [{"key": "asc"}]
            });
            if let Some(last) = keys.last() {
                body["search_after"] = json!([last]);
            }
            let answer = self.run_search(&body).await.map_err(|e| e.context_into("listing a scope's documents"))?;
            let hits = answer["hits"]["hits"].as_array().cloned().unwrap_or_default();
            for h in &hits {
                let key = h["_id"].as_str().context("a hit without its id").map_err(internal)?;
                keys.push(key.to_owned());
            }
            if hits.len() < PAGE {
                return Ok(keys);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_read_back_as_the_store_wrote_them() {
        for v in ["", "2030-03-04T09:00:00.001Z", "1970-01-01T00:00:00.000Z"] {
            assert_eq!(stored_version(super::super::external_version(v).unwrap()).unwrap(), v);
        }
    }
}
