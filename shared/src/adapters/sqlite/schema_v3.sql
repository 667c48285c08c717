-- Octoscope store, schema version 3: what the metrics API reads (shared/docs/metrics.md).

-- Each pull request's review facts, so that a metrics query reads one covering
-- index instead of seeking reviews per pull request. The store refreshes them
-- whenever it writes a review or a pull request (store.rs, REFRESH_REVIEW_FACTS);
-- this fills them for a store migrated from version 2:
--   first_review_at:   earliest submitted_at of a review (not pending) by someone other than the author;
--   changes_requested: reviews whose current state is changes_requested.
ALTER TABLE pull_requests ADD COLUMN first_review_at TEXT;
ALTER TABLE pull_requests ADD COLUMN changes_requested INTEGER NOT NULL DEFAULT 0;

UPDATE pull_requests SET
  first_review_at = (SELECT MIN(r.submitted_at) FROM reviews r
                     WHERE r.repo = pull_requests.repo AND r.pr_number = pull_requests.number AND r.submitted_at IS NOT NULL
                       AND r.state != 'pending' AND (pull_requests.author IS NULL OR r.author IS NULL OR r.author != pull_requests.author)),
  changes_requested = (SELECT COUNT(*) FROM reviews r
                       WHERE r.repo = pull_requests.repo AND r.pr_number = pull_requests.number AND r.state = 'changes_requested');

CREATE INDEX reviews_pr_state ON reviews (repo, pr_number, state, submitted_at, author);

-- Covering indexes: pull requests merged in, created in, or open at a window.
CREATE INDEX pull_requests_merged ON pull_requests
  (merged_at, created_at, state, repo, number, author, additions, deletions, first_review_at, changes_requested);
CREATE INDEX pull_requests_created ON pull_requests
  (created_at, merged_at, state, repo, number, author, additions, deletions, first_review_at, changes_requested);
CREATE INDEX pull_requests_open ON pull_requests
  (state, created_at, merged_at, repo, number, author, additions, deletions, first_review_at, changes_requested);

-- Runs and jobs created in a window (covering what the CI metrics read).
CREATE INDEX workflow_runs_metrics ON workflow_runs
  (created_at, repo, name, head_branch, actor, status, conclusion, run_started_at, updated_at);
CREATE INDEX workflow_jobs_created ON workflow_jobs
  (created_at, repo, run_id, workflow_name, head_branch, status, conclusion, labels, os, started_at, completed_at);

-- Deployments created in a window.
CREATE INDEX deployments_created ON deployments (created_at);
