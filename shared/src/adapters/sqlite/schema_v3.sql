-- Octoscope store, schema version 3: indexes for the metrics API (shared/docs/metrics.md).

-- Pull requests merged, created, or open in a window.
CREATE INDEX pull_requests_merged ON pull_requests (merged_at);
CREATE INDEX pull_requests_created ON pull_requests (created_at);
CREATE INDEX pull_requests_state_created ON pull_requests (state, created_at);

-- Jobs created in a window.
CREATE INDEX workflow_jobs_created ON workflow_jobs (created_at);

-- Deployments created in a window.
CREATE INDEX deployments_created ON deployments (created_at);
