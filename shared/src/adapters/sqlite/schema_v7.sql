-- Octoscope store, schema version 7: metric rollups (shared/docs/metrics.md, "Rollups").
-- One cell per (scope, ISO week) of pull request and CI figures, encoded by
-- `read::rollup`. Triggers mark the weeks a row change touches (its old and
-- new weeks) in `rollup_dirty`, in the writing transaction; before that
-- transaction commits, the store recomputes every cell of each marked week
-- from its rows (`rollups::refresh`), so the cells always equal a recomputation.

CREATE TABLE rollup_pulls (
    scope TEXT NOT NULL,   -- '*', 'repo:OWNER/NAME', 'author:LOGIN' ('author:' for none)
    week  TEXT NOT NULL,   -- its Monday, YYYY-MM-DD
    cell  BLOB NOT NULL,
    PRIMARY KEY (scope, week)
) WITHOUT ROWID;

CREATE TABLE rollup_ci (
    scope TEXT NOT NULL,
    week  TEXT NOT NULL,
    cell  BLOB NOT NULL,
    PRIMARY KEY (scope, week)
) WITHOUT ROWID;

CREATE INDEX rollup_pulls_week ON rollup_pulls (week, scope);
CREATE INDEX rollup_ci_week ON rollup_ci (week, scope);

CREATE TABLE rollup_dirty (
    family TEXT NOT NULL,  -- 'pulls' or 'ci'
    week   TEXT NOT NULL,
    PRIMARY KEY (family, week)
) WITHOUT ROWID;

-- Pull requests: merge facts in the week of merged_at, opening facts in that of created_at.
CREATE TRIGGER rollup_pulls_insert AFTER INSERT ON pull_requests BEGIN
    INSERT INTO rollup_dirty (family, week) SELECT 'pulls', w FROM (
        SELECT date(NEW.created_at, '-6 days', 'weekday 1') AS w UNION SELECT date(NEW.merged_at, '-6 days', 'weekday 1')
    ) WHERE w IS NOT NULL ON CONFLICT DO NOTHING;
END;

CREATE TRIGGER rollup_pulls_update AFTER UPDATE ON pull_requests
WHEN OLD.repo IS NOT NEW.repo OR OLD.author IS NOT NEW.author OR OLD.created_at IS NOT NEW.created_at
  OR OLD.merged_at IS NOT NEW.merged_at OR OLD.additions IS NOT NEW.additions OR OLD.deletions IS NOT NEW.deletions
  OR OLD.first_review_at IS NOT NEW.first_review_at OR OLD.changes_requested IS NOT NEW.changes_requested
BEGIN
    INSERT INTO rollup_dirty (family, week) SELECT 'pulls', w FROM (
        SELECT date(NEW.created_at, '-6 days', 'weekday 1') AS w UNION SELECT date(NEW.merged_at, '-6 days', 'weekday 1')
        UNION SELECT date(OLD.created_at, '-6 days', 'weekday 1') UNION SELECT date(OLD.merged_at, '-6 days', 'weekday 1')
    ) WHERE w IS NOT NULL ON CONFLICT DO NOTHING;
END;

CREATE TRIGGER rollup_pulls_delete AFTER DELETE ON pull_requests BEGIN
    INSERT INTO rollup_dirty (family, week) SELECT 'pulls', w FROM (
        SELECT date(OLD.created_at, '-6 days', 'weekday 1') AS w UNION SELECT date(OLD.merged_at, '-6 days', 'weekday 1')
    ) WHERE w IS NOT NULL ON CONFLICT DO NOTHING;
END;

-- Runs, by created_at. A run's actor is its jobs' person: when it changes (or
-- the run arrives after its jobs), their weeks too.
CREATE TRIGGER rollup_runs_insert AFTER INSERT ON workflow_runs BEGIN
    INSERT INTO rollup_dirty (family, week) SELECT 'ci', w FROM (SELECT date(NEW.created_at, '-6 days', 'weekday 1') AS w) WHERE w IS NOT NULL
        ON CONFLICT DO NOTHING;
    INSERT INTO rollup_dirty (family, week)
        SELECT DISTINCT 'ci', date(created_at, '-6 days', 'weekday 1') FROM workflow_jobs
        WHERE run_id = NEW.id AND created_at IS NOT NULL ON CONFLICT DO NOTHING;
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
        SELECT DISTINCT 'ci', date(created_at, '-6 days', 'weekday 1') FROM workflow_jobs
        WHERE run_id = NEW.id AND created_at IS NOT NULL AND OLD.actor IS NOT NEW.actor ON CONFLICT DO NOTHING;
END;

CREATE TRIGGER rollup_runs_delete AFTER DELETE ON workflow_runs BEGIN
    INSERT INTO rollup_dirty (family, week) SELECT 'ci', w FROM (SELECT date(OLD.created_at, '-6 days', 'weekday 1') AS w) WHERE w IS NOT NULL
        ON CONFLICT DO NOTHING;
    INSERT INTO rollup_dirty (family, week)
        SELECT DISTINCT 'ci', date(created_at, '-6 days', 'weekday 1') FROM workflow_jobs
        WHERE run_id = OLD.id AND created_at IS NOT NULL ON CONFLICT DO NOTHING;
END;

-- Jobs, by created_at (a job without one is in no cell).
CREATE TRIGGER rollup_jobs_insert AFTER INSERT ON workflow_jobs WHEN NEW.created_at IS NOT NULL BEGIN
    INSERT INTO rollup_dirty (family, week) SELECT 'ci', w FROM (SELECT date(NEW.created_at, '-6 days', 'weekday 1') AS w) WHERE w IS NOT NULL
        ON CONFLICT DO NOTHING;
END;

CREATE TRIGGER rollup_jobs_update AFTER UPDATE ON workflow_jobs
WHEN OLD.repo IS NOT NEW.repo OR OLD.run_id IS NOT NEW.run_id OR OLD.status IS NOT NEW.status
  OR OLD.conclusion IS NOT NEW.conclusion OR OLD.created_at IS NOT NEW.created_at
  OR OLD.started_at IS NOT NEW.started_at OR OLD.completed_at IS NOT NEW.completed_at
BEGIN
    INSERT INTO rollup_dirty (family, week) SELECT 'ci', w FROM (
        SELECT date(NEW.created_at, '-6 days', 'weekday 1') AS w UNION SELECT date(OLD.created_at, '-6 days', 'weekday 1')
    ) WHERE w IS NOT NULL ON CONFLICT DO NOTHING;
END;

CREATE TRIGGER rollup_jobs_delete AFTER DELETE ON workflow_jobs WHEN OLD.created_at IS NOT NULL BEGIN
    INSERT INTO rollup_dirty (family, week) SELECT 'ci', w FROM (SELECT date(OLD.created_at, '-6 days', 'weekday 1') AS w) WHERE w IS NOT NULL
        ON CONFLICT DO NOTHING;
END;

-- Rows already stored: every week they touch, recomputed when the store opens.
INSERT OR IGNORE INTO rollup_dirty (family, week)
    SELECT 'pulls', date(created_at, '-6 days', 'weekday 1') FROM pull_requests
    UNION SELECT 'pulls', date(merged_at, '-6 days', 'weekday 1') FROM pull_requests WHERE merged_at IS NOT NULL
    UNION SELECT 'ci', date(created_at, '-6 days', 'weekday 1') FROM workflow_runs
    UNION SELECT 'ci', date(created_at, '-6 days', 'weekday 1') FROM workflow_jobs WHERE created_at IS NOT NULL;
