-- Octoscope store, schema version 10: day cells (shared/docs/metrics.md, "Rollups").
-- The same cells as `rollup_pulls` / `rollup_ci`, one per (scope, UTC day):
-- a window's whole days at its edges and day series are read from them. They
-- are recomputed with their week (the week's rows are read once for both),
-- so the triggers of version 7 mark them too.

CREATE TABLE rollup_pulls_day (
    scope TEXT NOT NULL,
    day   TEXT NOT NULL,   -- YYYY-MM-DD (UTC)
    cell  BLOB NOT NULL,
    PRIMARY KEY (scope, day)
) WITHOUT ROWID;

CREATE TABLE rollup_ci_day (
    scope TEXT NOT NULL,
    day   TEXT NOT NULL,
    cell  BLOB NOT NULL,
    PRIMARY KEY (scope, day)
) WITHOUT ROWID;

CREATE INDEX rollup_pulls_day_day ON rollup_pulls_day (day, scope);
CREATE INDEX rollup_ci_day_day ON rollup_ci_day (day, scope);

-- Rows already stored: every week they touch, recomputed (with its days) when the store opens.
INSERT OR IGNORE INTO rollup_dirty (family, week)
    SELECT 'pulls', date(created_at, '-6 days', 'weekday 1') FROM pull_requests
    UNION SELECT 'pulls', date(merged_at, '-6 days', 'weekday 1') FROM pull_requests WHERE merged_at IS NOT NULL
    UNION SELECT 'ci', date(created_at, '-6 days', 'weekday 1') FROM workflow_runs
    UNION SELECT 'ci', date(created_at, '-6 days', 'weekday 1') FROM workflow_jobs WHERE created_at IS NOT NULL;
