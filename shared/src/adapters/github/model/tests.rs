use super::*;

#[test]
fn next_link_is_found_among_others() {
    let h = r#"<https://api.github.com/x?page=1>; rel="prev", <https://api.github.com/x?page=3>; rel="next", <https://api.github.com/x?page=9>; rel="last""#;
    assert_eq!(next_link(h).as_deref(), Some("https://api.github.com/x?page=3"));
    assert_eq!(next_link(r#"<https://a/x?page=1>; rel="prev""#), None);
}

#[test]
fn pull_request_nodes_map_state_size_and_requests() {
    let node: PullNode = serde_json::from_value(serde_json::json!({
        "databaseId": 7, "number": 3, "title": "t", "state": "MERGED", "isDraft": false,
        "author": {"login": "octocat"}, "createdAt": "2024-01-01T00:00:00Z", "updatedAt": "2024-01-02T00:00:00Z",
        "closedAt": "2024-01-02T00:00:00Z", "mergedAt": "2024-01-02T00:00:00Z",
        "additions": 1, "deletions": 2, "changedFiles": 3, "commits": {"totalCount": 4},
        "labels": {"nodes": [{"name": "bug"}]},
        "reviewRequests": {"nodes": [{"requestedReviewer": {"__typename": "User", "login": "a"}},
                                     {"requestedReviewer": {"__typename": "Team", "slug": "core"}},
                                     {"requestedReviewer": {"__typename": "Mannequin"}}]},
        "baseRefName": "main", "headRefName": "f", "headRefOid": "abc",
        "reviews": {"nodes": [{"databaseId": 9, "state": "CHANGES_REQUESTED", "submittedAt": "2024-01-01T12:00:00Z",
                               "author": {"login": "b"}, "commit": {"oid": "abc"}}],
                    "pageInfo": {"hasNextPage": true, "endCursor": "c1"}}
    }))
    .unwrap();
    let repo = RepoName::parse("o/r").unwrap();
    let PullParts { pr, reviews, more_reviews: next, skipped } = node.into_parts(&repo, &At::none()).unwrap();
    assert!(skipped.is_empty(), "{skipped:?}");
    assert_eq!(pr.state, PrState::Merged);
    assert_eq!((pr.additions, pr.commits), (Some(1), Some(4)));
    assert_eq!(pr.requested_reviewers, vec!["a".to_owned()]);
    assert_eq!(pr.requested_teams, vec!["core".to_owned()]);
    assert_eq!(reviews[0].state, ReviewState::ChangesRequested);
    assert_eq!(next.as_deref(), Some("c1"));
}

const RUN: &str =
    include_str!("../../../../tests/fixtures/github-webhooks/api.github.com/workflow_run/completed.payload.json");
const JOB: &str = include_str!(
    "../../../../tests/fixtures/github-webhooks/api.github.com/workflow_job/completed.success.with-organization.payload.json"
);
const DEPLOYMENT_STATUS: &str =
    include_str!("../../../../tests/fixtures/github-webhooks/api.github.com/deployment_status/payload.json");

fn object(payload: &str, field: &str) -> serde_json::Value {
    let mut v: serde_json::Value = serde_json::from_str(payload).unwrap();
    v[field].take()
}

fn repo() -> RepoName {
    RepoName::parse("o/r").unwrap()
}

#[test]
fn a_snapshot_answered_under_another_name_says_where_the_repository_moved() {
    let node = |name: serde_json::Value| -> RepoSnapshotNode {
        serde_json::from_value(serde_json::json!({
            "nameWithOwner": name, "databaseId": 42,
            "open": {"totalCount": 0}, "closed": {"totalCount": 0}, "merged": {"totalCount": 0}
        }))
        .unwrap()
    };
    // GIVEN GitHub's answers for `o/r`: under another name, the same in another case, an unreadable one, none
    let moved = node(serde_json::json!("other/r2")).into_snapshot(repo(), None, &At::none());
    let same = node(serde_json::json!("O/R")).into_snapshot(repo(), None, &At::none());
    let unreadable = node(serde_json::json!("no-slash")).into_snapshot(repo(), None, &At::none());
    let absent = node(serde_json::Value::Null).into_snapshot(repo(), None, &At::none());
    // THEN only the other name is a move; every one carries GitHub's id and the name asked for
    assert_eq!(moved.moved_to, Some(RepoName::parse("other/r2").unwrap()));
    assert_eq!((same.moved_to, unreadable.moved_to, absent.moved_to), (None, None, None));
    assert_eq!((moved.id, moved.repo), (Some(42), repo()));
}

fn errors(json: serde_json::Value) -> Vec<GraphqlError> {
    serde_json::from_value(json).unwrap()
}

#[test]
fn a_null_pull_request_node_is_one_skipped_item_with_its_error() {
    // GIVEN a page whose second node is null, with GitHub's error at its path
    let data: RepoData<PullsOf> = serde_json::from_value(serde_json::json!({"repository": {"pullRequests": {
        "nodes": [null, {"databaseId": 1}],
        "totalCount": 2, "pageInfo": {"hasNextPage": false, "endCursor": null}}}}))
    .unwrap();
    let errs = errors(serde_json::json!([{"type": "FORBIDDEN", "message": "Resource not accessible",
        "path": ["repository", "pullRequests", "nodes", 0]}]));
    let nodes = data.repository.unwrap().pull_requests.nodes;
    // WHEN its items are sorted
    let at = At::new(&errs, &["repository", "pullRequests", "nodes"]);
    let (ok, skipped) = sort_items(nodes, &at, |i| format!("pull #{i}"));
    // THEN the null one is skipped with GitHub's reason, the malformed one with its own, and nothing fails
    assert!(ok.is_empty());
    assert_eq!(skipped.len(), 2);
    assert_eq!(skipped[0].what, "pull #0");
    assert!(skipped[0].why.contains("FORBIDDEN: Resource not accessible"), "{skipped:?}");
    assert!(skipped[1].why.starts_with("unreadable: missing field"), "{skipped:?}");
    // AND an error about another index is not taken for this one's
    assert!(!skipped[1].why.contains("FORBIDDEN"));
}

#[test]
fn a_snapshot_keeps_pulls_updated_since_the_watermark_and_says_when_the_list_was_cut() {
    let since: Timestamp = "2024-01-02T00:00:00Z".parse().unwrap();
    let node = |recent: serde_json::Value, has_next: bool| -> RepoSnapshotNode {
        serde_json::from_value(serde_json::json!({
            "open": {"totalCount": 1}, "closed": {"totalCount": 2}, "merged": {"totalCount": 3},
            "recent": {"nodes": recent, "pageInfo": {"hasNextPage": has_next}},
            "defaultBranchRef": {"name": "main", "target": {"history": {"totalCount": 7}}},
            "refs": {"nodes": [{"name": "main", "target": {"oid": "abc"}}, null], "pageInfo": {"hasNextPage": false}},
            "deployments": {"totalCount": 30, "nodes": [
                {"databaseId": 9, "latestStatus": {"state": "SUCCESS"}},
                {"databaseId": 8, "latestStatus": null}, null]}
        }))
        .unwrap()
    };
    // GIVEN pull requests updated on either side of the watermark, one null
    let recent = serde_json::json!([
        {"number": 5, "updatedAt": "2024-01-03T00:00:00Z", "reviews": {"totalCount": 4}},
        null,
        {"number": 4, "updatedAt": "2024-01-02T00:00:00Z", "reviews": null},
        {"number": 3, "updatedAt": "2024-01-01T00:00:00Z", "reviews": {"totalCount": 1}}]);
    // WHEN read with the watermark
    let snap = node(recent.clone(), true).into_snapshot(repo(), Some(since), &At::none());
    // THEN only those at or after it are kept, with review counts; the list is not cut (an older one was listed)
    let marks: Vec<(u64, u64)> = snap.recent_pulls.iter().map(|m| (m.number, m.reviews)).collect();
    assert_eq!(marks, vec![(5, 4), (4, 0)]);
    assert!(!snap.recent_pulls_truncated);
    assert_eq!(snap.newest_pr_updated_at, Some("2024-01-03T00:00:00Z".parse().unwrap()));
    // AND the other kinds are read: commits since, deployments in all, latest states as webhooks spell them
    assert_eq!((snap.default_branch.as_deref(), snap.default_branch_commits), (Some("main"), Some(7)));
    assert_eq!(snap.deployments, 30);
    assert_eq!(
        snap.recent_deployments,
        vec![
            DeploymentMark { id: 9, latest_state: Some("success".into()) },
            DeploymentMark { id: 8, latest_state: None }
        ]
    );
    assert_eq!(snap.branches, vec![("main".to_owned(), "abc".to_owned())]);
    // AND every one listed being recent, with more on GitHub, says the list was cut
    let all_recent = node(serde_json::json!([recent[0].clone()]), true).into_snapshot(repo(), Some(since), &At::none());
    assert!(all_recent.recent_pulls_truncated);
    // AND without a watermark every one listed is kept
    assert_eq!(node(recent, false).into_snapshot(repo(), None, &At::none()).recent_pulls.len(), 3);
}

#[test]
fn rest_runs_are_read_with_their_node_ids_and_a_malformed_one_is_left_out() {
    // GIVEN a runs page as GitHub sends it: the webhook's run object, and one that is not a run
    let page: WorkflowRunsPage = serde_json::from_value(serde_json::json!({
        "total_count": 2, "workflow_runs": [object(RUN, "workflow_run"), {"id": "not a number"}]
    }))
    .unwrap();
    // WHEN its runs are read
    assert_eq!(page.total_count, 2);
    let runs = readable(page.workflow_runs, &At::none(), |i| format!("run #{i}"));
    // THEN the run is there with its node id, and the other left out
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].node_id.as_deref(), Some("MDExOldvcmtmbG93UnVuMjg5NzgyNDUx"));
    let run = crate::webhook::normalize::workflow_run(repo(), runs.into_iter().next().unwrap().run);
    assert_eq!((run.id, run.status), (289782451, RunStatus::Completed));
}

#[test]
fn rest_jobs_map_as_the_workflow_job_webhook_does() {
    // GIVEN a jobs page holding the webhook's job object
    let page: WorkflowJobsPage =
        serde_json::from_value(serde_json::json!({"total_count": 1, "jobs": [object(JOB, "workflow_job"), null]}))
            .unwrap();
    // WHEN mapped
    let jobs: Vec<WorkflowJob> = readable(page.jobs, &At::none(), |i| format!("job #{i}"))
        .into_iter()
        .map(|j| crate::webhook::normalize::workflow_job(repo(), j))
        .collect();
    // THEN it is the domain job the webhook gives, runner labels and OS included
    let event = crate::webhook::normalize("workflow_job", JOB.as_bytes(), chrono::Utc::now()).unwrap();
    let from_webhook = event.changes.iter().find_map(|c| match c {
        Change::WorkflowJob(j) => Some(WorkflowJob { repo: repo(), ..j.clone() }),
        _ => None,
    });
    assert_eq!(jobs.len(), 1);
    assert_eq!(Some(&jobs[0]), from_webhook.as_ref());
    assert_eq!((jobs[0].labels.clone(), jobs[0].os.as_deref()), (vec!["ubuntu-latest".to_owned()], Some("linux")));
}

#[test]
fn rest_deployment_statuses_map_as_the_webhook_does() {
    let list: DeploymentStatusesList =
        serde_json::from_value(serde_json::json!([object(DEPLOYMENT_STATUS, "deployment_status")])).unwrap();
    let statuses = readable(list, &At::none(), |i| format!("status #{i}"));
    let status = crate::webhook::normalize::deployment_status(repo(), 77, statuses.into_iter().next().unwrap());
    assert_eq!((status.deployment_id, status.id, status.state.as_str()), (77, 209916254, "success"));
}

#[test]
fn job_count_nodes_read_runs_and_leave_out_the_rest() {
    // GIVEN a run, a null (deleted run) and a node of another type
    let data: NodesData<RunJobsNode> = serde_json::from_value(serde_json::json!({"nodes": [
        {"databaseId": 11, "checkSuite": {"all": {"totalCount": 5}, "done": {"totalCount": 3}}},
        null,
        {}
    ]}))
    .unwrap();
    // WHEN counted
    let (nodes, gone) = sort_items(data.nodes, &At::none(), |i| format!("node #{i}"));
    let counts: Vec<JobCount> = nodes.into_iter().filter_map(RunJobsNode::job_count).collect();
    // THEN only the run counts
    assert_eq!(counts, vec![JobCount { run_id: 11, jobs: 5, completed: 3 }]);
    assert_eq!(gone.len(), 1);
}

#[test]
fn commit_nodes_map_author_name_and_login() {
    let node: CommitNode = serde_json::from_value(serde_json::json!({
        "oid": "abc", "message": "fix", "committedDate": "2024-01-01T00:00:00Z",
        "author": {"name": "Mona", "user": {"login": "mona"}}
    }))
    .unwrap();
    let c = node.into_commit(&repo());
    assert_eq!(
        (c.sha.as_str(), c.author_name.as_deref(), c.author_login.as_deref()),
        ("abc", Some("Mona"), Some("mona"))
    );
    assert_eq!(c.committed_at, Some("2024-01-01T00:00:00Z".parse().unwrap()));
}
