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

-- A job without created_at (GitHub's payloads before jobs carried it) counts
-- by its started_at, as on DynamoDB (MetricRows::metric_jobs): its reads are
-- the NULL range of workflow_jobs_created (v3), and the rollup triggers of
-- version 7 now mark the week of coalesce(created_at, started_at).

DROP TRIGGER rollup_runs_insert;
DROP TRIGGER rollup_runs_update;
DROP TRIGGER rollup_runs_delete;
DROP TRIGGER rollup_jobs_insert;
DROP TRIGGER rollup_jobs_update;
DROP TRIGGER rollup_jobs_delete;

CREATE TRIGGER rollup_runs_insert AFTER INSERT ON workflow_runs BEGIN
    INSERT INTO rollup_dirty (family, week) SELECT 'ci', w FROM (SELECT date(NEW.created_at, '-6 days', 'weekday 1') AS w) WHERE w IS NOT NULL
        ON CONFLICT DO NOTHING;
    INSERT INTO rollup_dirty (family, week)
        SELECT DISTINCT 'ci', date(coalesce(created_at, started_at), '-6 days', 'weekday 1') FROM workflow_jobs
        WHERE run_id = NEW.id AND coalesce(created_at, started_at) IS NOT NULL ON CONFLICT DO NOTHING;
END;

CREATE TRIGGER rollup_runs_update AFTER UPDATE ON workflow_runs
WHEN OLD.repo IS NOT NEW.repo OR OLD.actor IS NOT NEW.actor OR OLD.status IS NOT NEW.status
  OR OLD.conclusion IS NOT NEW.conclusion OR OLD.created_at IS NOT NEW.created_at
  OR OLD.run_started_at IS NOT NEW.run_started_at OR OLD.updated_at IS NOT NEW.updated_at
BEGIN
    INSERT INTO rollup_dirty (family, week) SELECT 'ci', w FROM (
        SELECT date(NEW.created_at, '-6 days', 'weekday 1') AS w UNION SELECT date(OLD.created_at, '-6 days', 'weekday 1')
    ) WHERE w IS NOT NULL ON CONFLICT DO NOTHING;
    INSERT INTO rollup_dirty (family, week)
        SELECT DISTINCT 'ci', date(coalesce(created_at, started_at), '-6 days', 'weekday 1') FROM workflow_jobs
        WHERE run_id = NEW.id AND coalesce(created_at, started_at) IS NOT NULL AND OLD.actor IS NOT NEW.actor
        ON CONFLICT DO NOTHING;
END;

CREATE TRIGGER rollup_runs_delete AFTER DELETE ON workflow_runs BEGIN
    INSERT INTO rollup_dirty (family, week) SELECT 'ci', w FROM (SELECT date(OLD.created_at, '-6 days', 'weekday 1') AS w) WHERE w IS NOT NULL
        ON CONFLICT DO NOTHING;
    INSERT INTO rollup_dirty (family, week)
        SELECT DISTINCT 'ci', date(coalesce(created_at, started_at), '-6 days', 'weekday 1') FROM workflow_jobs
        WHERE run_id = OLD.id AND coalesce(created_at, started_at) IS NOT NULL ON CONFLICT DO NOTHING;
END;

CREATE TRIGGER rollup_jobs_insert AFTER INSERT ON workflow_jobs
WHEN coalesce(NEW.created_at, NEW.started_at) IS NOT NULL BEGIN
    INSERT INTO rollup_dirty (family, week)
        SELECT 'ci', w FROM (SELECT date(coalesce(NEW.created_at, NEW.started_at), '-6 days', 'weekday 1') AS w)
        WHERE w IS NOT NULL ON CONFLICT DO NOTHING;
END;

CREATE TRIGGER rollup_jobs_update AFTER UPDATE ON workflow_jobs
WHEN OLD.repo IS NOT NEW.repo OR OLD.run_id IS NOT NEW.run_id OR OLD.status IS NOT NEW.status
  OR OLD.conclusion IS NOT NEW.conclusion OR OLD.created_at IS NOT NEW.created_at
  OR OLD.started_at IS NOT NEW.started_at OR OLD.completed_at IS NOT NEW.completed_at
BEGIN
    INSERT INTO rollup_dirty (family, week) SELECT 'ci', w FROM (
        SELECT date(coalesce(NEW.created_at, NEW.started_at), '-6 days', 'weekday 1') AS w
        UNION SELECT date(coalesce(OLD.created_at, OLD.started_at), '-6 days', 'weekday 1')
    ) WHERE w IS NOT NULL ON CONFLICT DO NOTHING;
END;

CREATE TRIGGER rollup_jobs_delete AFTER DELETE ON workflow_jobs
WHEN coalesce(OLD.created_at, OLD.started_at) IS NOT NULL BEGIN
    INSERT INTO rollup_dirty (family, week)
        SELECT 'ci', w FROM (SELECT date(coalesce(OLD.created_at, OLD.started_at), '-6 days', 'weekday 1') AS w)
        WHERE w IS NOT NULL ON CONFLICT DO NOTHING;
END;

-- Jobs already stored without created_at: their started_at weeks recomputed when the store opens.
INSERT OR IGNORE INTO rollup_dirty (family, week)
    SELECT DISTINCT 'ci', date(started_at, '-6 days', 'weekday 1') FROM workflow_jobs
    WHERE created_at IS NULL AND started_at IS NOT NULL;
