-- Octoscope store: notifications (shared/docs/notifications.md) — the rules,
-- the notifications decided from transitions (the durable outbox and the
-- log), and every attempt to send each.

-- A rule. `secrets` is a JSON array of `whsec_` strings, newest first, kept
-- plainly in this file: the store holds no other secrets and has no
-- encryption of its own (the webhook secret is a file beside it); the data
-- directory's permissions protect both.
CREATE TABLE notify_rules (
    id         TEXT PRIMARY KEY,
    event      TEXT NOT NULL,
    filters    TEXT NOT NULL,  -- JSON RuleFilters
    target     TEXT NOT NULL,  -- JSON TargetSpec
    secrets    TEXT NOT NULL,  -- JSON array of strings
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    disabled   TEXT            -- why the target is disabled, or NULL
);
CREATE INDEX notify_rules_event ON notify_rules (event, created_at, id);
CREATE INDEX notify_rules_created ON notify_rules (created_at, id);

-- A notification: one per (rule, transition key), its id derived from both.
CREATE TABLE notifications (
    id              TEXT PRIMARY KEY,
    rule_id         TEXT    NOT NULL,  -- no foreign key: a deleted rule's notifications stay in the log
    event           TEXT    NOT NULL,
    transition_key  TEXT    NOT NULL,
    late            INTEGER NOT NULL,
    data            TEXT    NOT NULL,  -- JSON
    occurred_at     TEXT    NOT NULL,
    created_at      TEXT    NOT NULL,
    status          TEXT    NOT NULL,  -- pending, delivered, failed
    attempts        INTEGER NOT NULL,
    next_attempt_at TEXT,
    lease_until     TEXT,              -- a sender holds it until then
    last_error      TEXT
);
-- The sender's work list: pending and due.
CREATE INDEX notifications_due ON notifications (status, next_attempt_at);
-- The log, newest first.
CREATE INDEX notifications_created ON notifications (created_at DESC, id DESC);
-- A rule's log and its stats.
CREATE INDEX notifications_rule ON notifications (rule_id, created_at DESC, id DESC);

CREATE TABLE notification_attempts (
    notification_id TEXT    NOT NULL,
    number          INTEGER NOT NULL,
    at              TEXT    NOT NULL,
    status_code     INTEGER,
    latency_ms      INTEGER NOT NULL,
    excerpt         TEXT    NOT NULL,
    PRIMARY KEY (notification_id, number)
);

-- previous_conclusion: the newest run of a workflow on a branch before a time.
CREATE INDEX workflow_runs_branch ON workflow_runs (repo, workflow_id, head_branch, created_at);
