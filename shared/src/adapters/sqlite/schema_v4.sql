-- Octoscope store, schema version 4: what the integrity check compares for
-- every kind (workflow runs and jobs, deployments, default-branch commits,
-- reviews), and the items a resync job had to leave out.

-- Items a resync job skipped, and why (JSON array of strings).
ALTER TABLE jobs ADD COLUMN skipped TEXT NOT NULL DEFAULT '[]';

-- A branch's commits since a time: the commit's time, kept beside the branch
-- (commits are immutable, so it never changes), read through one index range.
ALTER TABLE branch_commits ADD COLUMN committed_at TEXT;
UPDATE branch_commits SET committed_at =
  (SELECT c.committed_at FROM commits c WHERE c.repo = branch_commits.repo AND c.sha = branch_commits.sha);
CREATE INDEX branch_commits_time ON branch_commits (repo, branch, committed_at);

-- Job counts per run (all, completed): covering.
CREATE INDEX workflow_jobs_run_status ON workflow_jobs (run_id, status);
DROP INDEX workflow_jobs_run;

-- Where unfinished runs begin: only rows not completed are indexed, so the
-- read costs the unfinished rows, not the repository's history.
CREATE INDEX workflow_runs_unfinished ON workflow_runs (repo, created_at) WHERE status != 'completed';
CREATE INDEX workflow_jobs_unfinished ON workflow_jobs (repo, run_id) WHERE status != 'completed';
