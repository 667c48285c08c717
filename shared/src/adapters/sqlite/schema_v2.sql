-- Octoscope store, schema version 2: completeness (integrity checks, resync jobs, locks, checkpoints).

CREATE TABLE check_runs (
    id             TEXT PRIMARY KEY,
    started_at     TEXT    NOT NULL,
    finished_at    TEXT    NOT NULL,
    repos_compared INTEGER NOT NULL,
    orgs_compared  INTEGER NOT NULL,
    gaps           TEXT    NOT NULL,  -- JSON array of gaps
    redelivered    INTEGER NOT NULL,
    requests       INTEGER NOT NULL,
    dry_run        INTEGER NOT NULL,
    verified       TEXT    NOT NULL,  -- JSON array of targets that matched GitHub
    error          TEXT
);
CREATE INDEX check_runs_started ON check_runs (started_at);

CREATE TABLE jobs (
    id          TEXT PRIMARY KEY,
    target      TEXT    NOT NULL,  -- JSON {"type":"repo","name":...}
    kinds       TEXT    NOT NULL,  -- JSON array
    watermark   TEXT,
    state       TEXT    NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed')),
    created_at  TEXT    NOT NULL,
    started_at  TEXT,
    finished_at TEXT,
    written     INTEGER NOT NULL DEFAULT 0,
    requests    INTEGER NOT NULL DEFAULT 0,
    error       TEXT
);
CREATE INDEX jobs_created ON jobs (created_at);

-- A lock with expiry: at most one resync per target at a time.
CREATE TABLE locks (
    key        TEXT PRIMARY KEY,
    owner      TEXT NOT NULL,
    expires_at TEXT NOT NULL
);

-- Where a resync job got to, so a killed job resumes.
CREATE TABLE checkpoints (
    job_id     TEXT PRIMARY KEY,
    cursor     TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
