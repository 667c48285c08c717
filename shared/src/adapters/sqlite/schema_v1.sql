-- Octoscope store, schema version 1. Documented in shared/docs/schema.md.
-- Times are ISO-8601 UTC text, 'YYYY-MM-DDTHH:MM:SS.mmmZ', so they sort as text.
-- `version` columns hold the GitHub timestamp a row's last-writer-wins rule compares.

CREATE TABLE deliveries (
    seq          INTEGER PRIMARY KEY,
    hook_id      TEXT    NOT NULL,
    delivery_id  TEXT    NOT NULL,
    event        TEXT    NOT NULL,
    action       TEXT,
    repo         TEXT,
    org          TEXT,
    received_at  TEXT    NOT NULL,
    status       TEXT    NOT NULL CHECK (status IN ('pending', 'stored', 'ignored', 'failed')),
    reason       TEXT,
    changes      INTEGER NOT NULL DEFAULT 0,
    body_bytes   INTEGER NOT NULL DEFAULT 0,
    UNIQUE (hook_id, delivery_id)
);
CREATE INDEX deliveries_status ON deliveries (status, seq);
CREATE INDEX deliveries_event ON deliveries (event, seq);
CREATE INDEX deliveries_repo ON deliveries (repo, seq);

CREATE TABLE repos (
    full_name        TEXT PRIMARY KEY,
    id               INTEGER,
    default_branch   TEXT,
    private          INTEGER,
    archived         INTEGER,
    deleted          INTEGER NOT NULL DEFAULT 0,
    version          TEXT,
    last_activity_at TEXT
);

CREATE TABLE branches (
    repo     TEXT NOT NULL,
    name     TEXT NOT NULL,
    head_sha TEXT,
    deleted  INTEGER NOT NULL DEFAULT 0,
    version  TEXT NOT NULL,
    PRIMARY KEY (repo, name)
);

CREATE TABLE pull_requests (
    repo                TEXT    NOT NULL,
    number              INTEGER NOT NULL,
    id                  INTEGER,
    title               TEXT    NOT NULL,
    state               TEXT    NOT NULL CHECK (state IN ('open', 'closed', 'merged')),
    draft               INTEGER NOT NULL,
    author              TEXT,
    created_at          TEXT    NOT NULL,
    updated_at          TEXT    NOT NULL,
    closed_at           TEXT,
    merged_at           TEXT,
    additions           INTEGER,
    deletions           INTEGER,
    changed_files       INTEGER,
    commits             INTEGER,
    labels              TEXT,  -- JSON array of names
    requested_reviewers TEXT,  -- JSON array of logins
    requested_teams     TEXT,  -- JSON array of team slugs
    base_ref            TEXT,
    head_ref            TEXT,
    head_sha            TEXT,
    rank                INTEGER NOT NULL,  -- tie-break on equal updated_at: open 0, closed 1, merged 2
    PRIMARY KEY (repo, number)
);
CREATE INDEX pull_requests_updated ON pull_requests (updated_at, repo, number);
CREATE INDEX pull_requests_repo_updated ON pull_requests (repo, updated_at, number);
CREATE INDEX pull_requests_author ON pull_requests (author, updated_at);

CREATE TABLE reviews (
    id           INTEGER PRIMARY KEY,
    repo         TEXT    NOT NULL,
    pr_number    INTEGER NOT NULL,
    author       TEXT,
    state        TEXT    NOT NULL,
    submitted_at TEXT,
    commit_id    TEXT,
    rank         INTEGER NOT NULL
);
CREATE INDEX reviews_pr ON reviews (repo, pr_number, submitted_at);

CREATE TABLE review_comments (
    id         INTEGER PRIMARY KEY,
    repo       TEXT    NOT NULL,
    pr_number  INTEGER NOT NULL,
    review_id  INTEGER,
    author     TEXT,
    created_at TEXT    NOT NULL,
    updated_at TEXT    NOT NULL,
    deleted    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX review_comments_pr ON review_comments (repo, pr_number);

CREATE TABLE teams (
    org         TEXT NOT NULL,
    slug        TEXT NOT NULL,
    id          INTEGER,
    name        TEXT NOT NULL,
    description TEXT,
    privacy     TEXT,
    parent_slug TEXT,
    deleted     INTEGER NOT NULL DEFAULT 0,
    version     TEXT NOT NULL,
    PRIMARY KEY (org, slug)
);

-- Set-valued state: one row per member; present = 0 is a tombstone.
CREATE TABLE team_members (
    org       TEXT    NOT NULL,
    team_slug TEXT    NOT NULL,
    login     TEXT    NOT NULL,
    present   INTEGER NOT NULL,
    version   TEXT    NOT NULL,
    PRIMARY KEY (org, team_slug, login)
);
CREATE INDEX team_members_login ON team_members (login);

CREATE TABLE org_members (
    org     TEXT    NOT NULL,
    login   TEXT    NOT NULL,
    role    TEXT,
    present INTEGER NOT NULL,
    version TEXT    NOT NULL,
    PRIMARY KEY (org, login)
);

CREATE TABLE collaborators (
    repo    TEXT    NOT NULL,
    login   TEXT    NOT NULL,
    role    TEXT,
    present INTEGER NOT NULL,
    version TEXT    NOT NULL,
    PRIMARY KEY (repo, login)
);

CREATE TABLE commits (
    repo         TEXT NOT NULL,
    sha          TEXT NOT NULL,
    message      TEXT NOT NULL,
    author_name  TEXT,
    author_login TEXT,
    committed_at TEXT,
    PRIMARY KEY (repo, sha)
);
CREATE INDEX commits_time ON commits (repo, committed_at);

CREATE TABLE branch_commits (
    repo      TEXT NOT NULL,
    branch    TEXT NOT NULL,
    sha       TEXT NOT NULL,
    pushed_at TEXT,
    PRIMARY KEY (repo, branch, sha)
);

CREATE TABLE workflow_runs (
    id             INTEGER PRIMARY KEY,
    repo           TEXT    NOT NULL,
    name           TEXT,
    workflow_id    INTEGER,
    head_branch    TEXT,
    head_sha       TEXT,
    event          TEXT,
    status         TEXT    NOT NULL,
    conclusion     TEXT,
    run_number     INTEGER,
    run_attempt    INTEGER,
    actor          TEXT,
    created_at     TEXT    NOT NULL,
    run_started_at TEXT,
    updated_at     TEXT    NOT NULL,
    rank           INTEGER NOT NULL  -- queued 0, in_progress 1, completed 2
);
CREATE INDEX workflow_runs_repo ON workflow_runs (repo, created_at);
CREATE INDEX workflow_runs_created ON workflow_runs (created_at);

CREATE TABLE workflow_jobs (
    id            INTEGER PRIMARY KEY,
    repo          TEXT    NOT NULL,
    run_id        INTEGER NOT NULL,
    name          TEXT    NOT NULL,
    workflow_name TEXT,
    head_branch   TEXT,
    status        TEXT    NOT NULL,
    conclusion    TEXT,
    labels        TEXT    NOT NULL,  -- JSON array
    runner_name   TEXT,
    runner_group  TEXT,
    os            TEXT,
    created_at    TEXT,
    started_at    TEXT,
    completed_at  TEXT,
    version       TEXT,
    rank          INTEGER NOT NULL
);
CREATE INDEX workflow_jobs_run ON workflow_jobs (run_id);
CREATE INDEX workflow_jobs_repo ON workflow_jobs (repo, created_at);

CREATE TABLE deployments (
    id          INTEGER PRIMARY KEY,
    repo        TEXT NOT NULL,
    sha         TEXT,
    ref         TEXT,
    environment TEXT,
    task        TEXT,
    creator     TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX deployments_repo ON deployments (repo, created_at);

CREATE TABLE deployment_statuses (
    id            INTEGER PRIMARY KEY,
    deployment_id INTEGER NOT NULL,
    repo          TEXT    NOT NULL,
    state         TEXT    NOT NULL,
    environment   TEXT,
    creator       TEXT,
    created_at    TEXT    NOT NULL,
    updated_at    TEXT    NOT NULL
);
CREATE INDEX deployment_statuses_deployment ON deployment_statuses (deployment_id, created_at);
