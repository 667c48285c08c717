-- Octoscope store, schema version 5: repositories followed by identity.
-- A repository renamed or transferred (the same GitHub id) keeps its history
-- under its new name; each old name is an alias of the current (canonical)
-- one. Aliases always point at a canonical name (a chain a -> b -> c is
-- stored a -> c, b -> c), so resolving a name is one primary-key lookup.
CREATE TABLE repo_aliases (
    alias     TEXT PRIMARY KEY,
    canonical TEXT NOT NULL,
    moved_at  TEXT NOT NULL,  -- when the move that made this alias happened (GitHub's time, or when found)
    id        INTEGER         -- GitHub's repository id, when the move said it
);
CREATE INDEX repo_aliases_canonical ON repo_aliases (canonical);
