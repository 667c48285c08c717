//! Every GraphQL document the GitHub adapter sends validates against GitHub's
//! public schema (vendored in `tests/fixtures/github-graphql`, MIT), with
//! apollo-compiler's validator.
#![cfg(feature = "github")]

use std::sync::OnceLock;

use apollo_compiler::executable::{Selection, SelectionSet};
use apollo_compiler::validation::Valid;
use apollo_compiler::{ExecutableDocument, Schema};
use octoscope::adapters::github::queries;

const SCHEMA: &str = include_str!("fixtures/github-graphql/schema.graphql");

/// GitHub's published schema declares a few fields twice (e.g.
/// `EnterpriseOwnerInfo.repositoryDeployKeySetting`, with the same type).
/// Those duplicates, and only those, are tolerated: any other error in the
/// schema fails the tests.
fn schema() -> &'static Valid<Schema> {
    static SCHEMA_VALID: OnceLock<Valid<Schema>> = OnceLock::new();
    SCHEMA_VALID.get_or_init(|| match Schema::parse_and_validate(SCHEMA, "schema.graphql") {
        Ok(s) => s,
        Err(e) => {
            let other: Vec<String> = e
                .errors
                .iter()
                .map(|d| d.error.to_string())
                .filter(|m| !(m.starts_with("duplicate definitions for the `") && m.contains("field of object type")))
                .collect();
            assert!(other.is_empty(), "GitHub's schema does not validate:\n{}", other.join("\n"));
            Valid::assume_valid(e.partial)
        }
    })
}

fn validate(name: &str, doc: &str) -> Result<(), String> {
    ExecutableDocument::parse_and_validate(schema(), doc, format!("{name}.graphql"))
        .map(|_| ())
        .map_err(|e| e.errors.to_string())
}

#[test]
fn every_document_the_adapter_sends_validates_against_the_schema() {
    // GIVEN every document the adapter can send (batched ones included)
    let docs = queries::all_documents();
    assert!(docs.len() >= 11, "the adapter's documents went missing: {}", docs.len());
    // WHEN each is validated against GitHub's schema
    let failures: Vec<String> =
        docs.iter().filter_map(|(name, doc)| validate(name, doc).err().map(|e| format!("{name}:\n{e}"))).collect();
    // THEN none has an error
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn batched_snapshot_documents_validate_for_every_batch_size() {
    for n in [2, 17, queries::SNAPSHOT_BATCH] {
        let doc = queries::repo_snapshots_document(n);
        if let Err(e) = validate(&format!("RepoSnapshots{n}"), &doc) {
            panic!("batch of {n}: {e}");
        }
    }
}

#[test]
fn a_field_github_does_not_have_fails_validation() {
    // GIVEN a real document with one invented field
    let doc = queries::pull_requests().replacen("isDraft", "isDraft reviewDecisionScore", 1);
    // WHEN validated THEN the validator names the field
    let err = validate("Invalid", &doc).expect_err("an invented field must not validate");
    assert!(err.contains("reviewDecisionScore"), "{err}");
}

#[test]
fn a_wrongly_typed_argument_fails_validation() {
    let doc = queries::ORG_REPOS.replace("first: 100", "first: \"100\"");
    assert!(validate("Invalid", &doc).is_err());
}

/// GitHub's node count of a selection (its documented formula): each
/// connection field asked with `first`/`last` adds that many nodes for each
/// of its parents, and multiplies what is below it.
fn node_count(doc: &ExecutableDocument, set: &SelectionSet, parents: u64) -> u64 {
    set.selections
        .iter()
        .map(|s| match s {
            Selection::Field(f) => {
                let page = ["first", "last"]
                    .iter()
                    .find_map(|a| f.specified_argument_by_name(a))
                    .and_then(|v| v.to_i32())
                    .map(|n| n as u64);
                match page {
                    Some(n) => parents * n + node_count(doc, &f.selection_set, parents * n),
                    None => node_count(doc, &f.selection_set, parents),
                }
            }
            Selection::FragmentSpread(spread) => {
                node_count(doc, &doc.fragments[&spread.fragment_name].selection_set, parents)
            }
            Selection::InlineFragment(inline) => node_count(doc, &inline.selection_set, parents),
        })
        .sum()
}

fn document_nodes(name: &str, text: &str) -> u64 {
    let doc =
        ExecutableDocument::parse_and_validate(schema(), text, format!("{name}.graphql")).expect("a valid document");
    doc.operations.iter().map(|op| node_count(&doc, &op.selection_set, 1)).sum()
}

#[test]
fn a_full_snapshot_batch_stays_under_githubs_node_limit() {
    // GIVEN the snapshot document for one repository and for a full batch
    let one = document_nodes("RepoSnapshots1", &queries::repo_snapshots_document(1));
    let batch = document_nodes("RepoSnapshots", &queries::repo_snapshots_document(queries::SNAPSHOT_BATCH));
    // WHEN counted the way GitHub counts THEN the batch is the repositories' sum, within the
    // bound written down in `queries` and under the limit
    println!("snapshot nodes: {one} per repository, {batch} per batch of {}", queries::SNAPSHOT_BATCH);
    assert_eq!(one, 100 + 100 + 20, "recent pulls, branch refs and deployments");
    assert_eq!(batch, one * queries::SNAPSHOT_BATCH as u64);
    assert!(batch <= (queries::SNAPSHOT_BATCH * queries::SNAPSHOT_NODES_PER_REPO) as u64);
    assert!(batch <= queries::GITHUB_NODE_LIMIT as u64);
    // AND every other document is under the limit too
    for (name, doc) in queries::all_documents() {
        assert!(document_nodes(name, &doc) <= queries::GITHUB_NODE_LIMIT as u64, "{name}");
    }
}
