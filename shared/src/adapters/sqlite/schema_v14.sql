-- Octoscope store: the search index is written only when a document changes
-- (shared/docs/search.md, "Same transaction as the store").
--
-- An upsert names every column, so `AFTER UPDATE OF …` triggers fired on
-- every write of an entity, changed or not: a redelivery, a resync or a
-- replay of an unchanged pull request deleted and re-inserted its document
-- and rewrote it in the full-text index (FTS5 writes a segment per write),
-- which made the index most of the write path's cost. Now:
-- - an entity's document is rewritten only when a field it is made of
--   changed (`WHEN OLD.x IS NOT NEW.x OR …`);
-- - for pull requests and reviews, a write that changes only the version or
--   the time (a new `updated_at`, the common webhook) updates those two
--   columns of the document in place;
-- - an update of a document rewrites the full-text index only when an
--   indexed column (title, body, extra, or the repo/author/state tokens) changed.
-- The documents themselves are the same as before: nothing to rebuild.
--
-- A rebuild (`octoscope reindex`) and the integrity check's repair write
-- documents again through these same triggers, by naming columns without
-- changing them; while `search_rewrite` holds its row (only inside such a
-- transaction, `search::rewrite_documents`), every update rewrites its
-- document whether or not it changed.

CREATE TABLE search_rewrite (id INTEGER PRIMARY KEY CHECK (id = 1));

DROP TRIGGER search_docs_au;
CREATE TRIGGER search_docs_au AFTER UPDATE OF title, body, extra, repo, author, state ON search_docs
WHEN EXISTS (SELECT 1 FROM search_rewrite) OR OLD.title IS NOT NEW.title OR OLD.body IS NOT NEW.body OR OLD.extra IS NOT NEW.extra
  OR OLD.repo IS NOT NEW.repo OR OLD.author IS NOT NEW.author OR OLD.state IS NOT NEW.state
BEGIN
    INSERT INTO search_text (search_text, rowid, title, body, extra, tags)
    VALUES ('delete', OLD.id, OLD.title, OLD.body, OLD.extra,
            'r' || hex(coalesce(OLD.repo, '')) || ' a' || hex(coalesce(OLD.author, ''))
                || ' s' || hex(coalesce(OLD.state, '')));
    INSERT INTO search_text (rowid, title, body, extra, tags)
    VALUES (NEW.id, NEW.title, NEW.body, NEW.extra,
            'r' || hex(coalesce(NEW.repo, '')) || ' a' || hex(coalesce(NEW.author, ''))
                || ' s' || hex(coalesce(NEW.state, '')));
END;

DROP TRIGGER search_pr_au;
CREATE TRIGGER search_pr_au AFTER UPDATE OF repo, number, title, state, author, labels, base_ref, head_ref, body
ON pull_requests
WHEN EXISTS (SELECT 1 FROM search_rewrite) OR OLD.repo IS NOT NEW.repo OR OLD.number IS NOT NEW.number OR OLD.title IS NOT NEW.title
  OR OLD.state IS NOT NEW.state OR OLD.author IS NOT NEW.author OR OLD.labels IS NOT NEW.labels
  OR OLD.base_ref IS NOT NEW.base_ref OR OLD.head_ref IS NOT NEW.head_ref OR OLD.body IS NOT NEW.body
BEGIN
    DELETE FROM search_docs WHERE key IN ('pr:' || OLD.repo || '#' || OLD.number, 'pr:' || NEW.repo || '#' || NEW.number);
    INSERT INTO search_docs (key, kind, repo, author, state, created_at, version, title, body, extra)
    VALUES ('pr:' || NEW.repo || '#' || NEW.number, 'pr', NEW.repo, NEW.author, NEW.state, NEW.created_at, NEW.updated_at,
            replace(replace(NEW.title, char(1), ''), char(2), ''),
            replace(replace(substr(coalesce(NEW.body, ''), 1, 65536), char(1), ''), char(2), ''),
            replace(replace(concat_ws(' ', NEW.labels, NEW.head_ref, NEW.base_ref, NEW.author, NEW.repo, '#' || NEW.number),
                    char(1), ''), char(2), ''));
END;
-- Only the version or the time changed: the document keeps its text.
CREATE TRIGGER search_pr_av AFTER UPDATE OF created_at, updated_at ON pull_requests
WHEN NOT EXISTS (SELECT 1 FROM search_rewrite)
  AND (OLD.created_at IS NOT NEW.created_at OR OLD.updated_at IS NOT NEW.updated_at)
  AND OLD.repo IS NEW.repo AND OLD.number IS NEW.number AND OLD.title IS NEW.title
  AND OLD.state IS NEW.state AND OLD.author IS NEW.author AND OLD.labels IS NEW.labels
  AND OLD.base_ref IS NEW.base_ref AND OLD.head_ref IS NEW.head_ref AND OLD.body IS NEW.body
BEGIN
    UPDATE search_docs SET created_at = NEW.created_at, version = NEW.updated_at
    WHERE key = 'pr:' || NEW.repo || '#' || NEW.number;
END;

DROP TRIGGER search_review_au;
CREATE TRIGGER search_review_au AFTER UPDATE OF repo, pr_number, author, state, body ON reviews
WHEN EXISTS (SELECT 1 FROM search_rewrite) OR OLD.repo IS NOT NEW.repo OR OLD.pr_number IS NOT NEW.pr_number OR OLD.author IS NOT NEW.author
  OR OLD.state IS NOT NEW.state OR OLD.body IS NOT NEW.body
BEGIN
    DELETE FROM search_docs WHERE key = 'review:' || OLD.id;
    INSERT INTO search_docs (key, kind, repo, author, state, created_at, version, title, body, extra)
    VALUES ('review:' || NEW.id, 'review', NEW.repo, NEW.author, NEW.state, NEW.submitted_at,
            coalesce(NEW.submitted_at, ''),
            replace(replace(coalesce((SELECT title FROM pull_requests WHERE repo = NEW.repo AND number = NEW.pr_number),
                                     NEW.repo || '#' || NEW.pr_number), char(1), ''), char(2), ''),
            replace(replace(substr(coalesce(NEW.body, ''), 1, 65536), char(1), ''), char(2), ''),
            concat_ws(' ', NEW.author, NEW.state, NEW.repo, '#' || NEW.pr_number));
END;
CREATE TRIGGER search_review_av AFTER UPDATE OF submitted_at ON reviews
WHEN NOT EXISTS (SELECT 1 FROM search_rewrite) AND OLD.submitted_at IS NOT NEW.submitted_at
  AND OLD.repo IS NEW.repo AND OLD.pr_number IS NEW.pr_number AND OLD.author IS NEW.author
  AND OLD.state IS NEW.state AND OLD.body IS NEW.body
BEGIN
    UPDATE search_docs SET created_at = NEW.submitted_at, version = coalesce(NEW.submitted_at, '')
    WHERE key = 'review:' || NEW.id;
END;

DROP TRIGGER search_commit_au;
CREATE TRIGGER search_commit_au AFTER UPDATE OF repo, sha, message, committed_at, author_login, author_name ON commits
WHEN EXISTS (SELECT 1 FROM search_rewrite) OR OLD.repo IS NOT NEW.repo OR OLD.sha IS NOT NEW.sha OR OLD.message IS NOT NEW.message
  OR OLD.committed_at IS NOT NEW.committed_at OR OLD.author_login IS NOT NEW.author_login
  OR OLD.author_name IS NOT NEW.author_name
BEGIN
    DELETE FROM search_docs WHERE key IN ('commit:' || OLD.repo || '@' || OLD.sha, 'commit:' || NEW.repo || '@' || NEW.sha);
    INSERT INTO search_docs (key, kind, repo, author, state, created_at, version, title, body, extra)
    VALUES ('commit:' || NEW.repo || '@' || NEW.sha, 'commit', NEW.repo, NEW.author_login, NULL, NEW.committed_at,
            coalesce(NEW.committed_at, ''),
            replace(replace(substr(NEW.message, 1, instr(NEW.message || char(10), char(10)) - 1), char(1), ''), char(2), ''),
            replace(replace(substr(NEW.message, 1, 65536), char(1), ''), char(2), ''),
            replace(replace(concat_ws(' ', NEW.sha, substr(NEW.sha, 1, 7), NEW.author_login, NEW.author_name, NEW.repo),
                    char(1), ''), char(2), ''));
END;

DROP TRIGGER search_repo_au;
CREATE TRIGGER search_repo_au AFTER UPDATE OF full_name, deleted, version ON repos
WHEN EXISTS (SELECT 1 FROM search_rewrite) OR OLD.full_name IS NOT NEW.full_name OR OLD.deleted IS NOT NEW.deleted OR OLD.version IS NOT NEW.version
BEGIN
    DELETE FROM search_docs WHERE key IN ('repo:' || OLD.full_name, 'repo:' || NEW.full_name);
    INSERT INTO search_docs (key, kind, repo, version, title, body, extra)
    SELECT 'repo:' || NEW.full_name, 'repo', NEW.full_name, coalesce(NEW.version, ''), NEW.full_name, '',
           replace(NEW.full_name, '/', ' ')
    WHERE NOT NEW.deleted;
END;

DROP TRIGGER search_team_au;
CREATE TRIGGER search_team_au AFTER UPDATE OF org, slug, name, description, deleted, version ON teams
WHEN EXISTS (SELECT 1 FROM search_rewrite) OR OLD.org IS NOT NEW.org OR OLD.slug IS NOT NEW.slug OR OLD.name IS NOT NEW.name
  OR OLD.description IS NOT NEW.description OR OLD.deleted IS NOT NEW.deleted OR OLD.version IS NOT NEW.version
BEGIN
    DELETE FROM search_docs WHERE key IN ('team:' || OLD.org || '/' || OLD.slug, 'team:' || NEW.org || '/' || NEW.slug);
    INSERT INTO search_docs (key, kind, version, title, body, extra)
    SELECT 'team:' || NEW.org || '/' || NEW.slug, 'team', NEW.version,
           replace(replace(NEW.name, char(1), ''), char(2), ''),
           replace(replace(substr(coalesce(NEW.description, ''), 1, 65536), char(1), ''), char(2), ''),
           NEW.org || ' ' || NEW.slug
    WHERE NOT NEW.deleted;
END;

DROP TRIGGER search_person_au;
CREATE TRIGGER search_person_au AFTER UPDATE OF login, present, version ON org_members
WHEN EXISTS (SELECT 1 FROM search_rewrite) OR OLD.login IS NOT NEW.login OR OLD.present IS NOT NEW.present OR OLD.version IS NOT NEW.version
BEGIN
    DELETE FROM search_docs WHERE key IN ('person:' || OLD.login, 'person:' || NEW.login);
    INSERT INTO search_docs (key, kind, author, version, title, body, extra)
    SELECT 'person:' || login, 'person', login, max(version), login, '', ''
    FROM org_members WHERE login IN (OLD.login, NEW.login) AND present GROUP BY login;
END;
