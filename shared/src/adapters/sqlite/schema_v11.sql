-- Octoscope store, schema version 11: merge cells (shared/docs/metrics.md, "Rollups").
-- One per (scope, ISO week): each pull request merged in the week, as its
-- repository and exact merged_at (read::rollup::MergeCell, delta-encoded).
-- DORA's lead time reads a window's merges from them instead of every
-- merged row. Recomputed with the week's pull request cells (the triggers of
-- version 7 mark those weeks already).

CREATE TABLE rollup_merges (
    scope TEXT NOT NULL,
    week  TEXT NOT NULL,   -- YYYY-MM-DD, a Monday (UTC)
    cell  BLOB NOT NULL,
    PRIMARY KEY (scope, week)
) WITHOUT ROWID;

CREATE INDEX rollup_merges_week ON rollup_merges (week, scope);

-- Merges already stored: their weeks recomputed (with their other cells) when the store opens.
INSERT OR IGNORE INTO rollup_dirty (family, week)
    SELECT DISTINCT 'pulls', date(merged_at, '-6 days', 'weekday 1') FROM pull_requests WHERE merged_at IS NOT NULL;

-- DORA's deployments (metrics.rs `deployments`): those created since a bound,
-- each with its newest final status, read from indexes alone. They replace
-- narrower ones, which they serve too (a prefix of each new one).
CREATE INDEX deployments_metrics ON deployments (created_at, id, repo, environment);
DROP INDEX deployments_created;
CREATE INDEX deployment_statuses_outcome ON deployment_statuses (deployment_id, created_at, id, state);
DROP INDEX deployment_statuses_deployment;
