-- Octoscope store: a search's `created:` range inside the full-text index
-- (shared/docs/search.md, "Large matches").
--
-- The `tags` column gains one more token per document: `c` and the month of
-- its `created_at` as YYYYMM (none when it has no time). A `created:` range
-- becomes an OR of the tags of the months it spans, so FTS5 intersects them
-- with the words' doclists instead of the store reading the row of every
-- match of a word to test its time (`created:>2026-10-01 deadlock` read
-- ≈ 23,000 of `deadlock`'s 28,000 documents to find 1,205). The exact bounds
-- are still tested on the rows; a month's tag only narrows.
--
-- `search_months` lists the months any document was created in (kept on
-- write, never shrunk: a month left empty costs an empty doclist), so that a
-- range names only months that exist and an open range needs no clock.
--
-- The triggers of `search_docs` are recreated with the token; the index is
-- rebuilt from `search_docs` (time linear in the documents, as in v12).

CREATE TABLE search_months (month TEXT PRIMARY KEY) WITHOUT ROWID;
INSERT OR IGNORE INTO search_months
SELECT substr(created_at, 1, 4) || substr(created_at, 6, 2) FROM search_docs WHERE created_at IS NOT NULL;

DROP TRIGGER search_docs_ai;
DROP TRIGGER search_docs_ad;
DROP TRIGGER search_docs_au;
DROP VIEW search_content;

CREATE VIEW search_content AS
SELECT id, title, body, extra,
       'r' || hex(coalesce(repo, '')) || ' a' || hex(coalesce(author, '')) || ' s' || hex(coalesce(state, ''))
           || coalesce(' c' || substr(created_at, 1, 4) || substr(created_at, 6, 2), '')
           AS tags
FROM search_docs;

CREATE TRIGGER search_docs_ai AFTER INSERT ON search_docs BEGIN
    INSERT INTO search_text (rowid, title, body, extra, tags)
    VALUES (NEW.id, NEW.title, NEW.body, NEW.extra,
            'r' || hex(coalesce(NEW.repo, '')) || ' a' || hex(coalesce(NEW.author, ''))
                || ' s' || hex(coalesce(NEW.state, ''))
                || coalesce(' c' || substr(NEW.created_at, 1, 4) || substr(NEW.created_at, 6, 2), ''));
    -- Not `OR IGNORE`: a policy of the statement that fired the trigger would override it.
    INSERT INTO search_months
    SELECT substr(NEW.created_at, 1, 4) || substr(NEW.created_at, 6, 2)
    WHERE NEW.created_at IS NOT NULL AND NOT EXISTS
        (SELECT 1 FROM search_months WHERE month = substr(NEW.created_at, 1, 4) || substr(NEW.created_at, 6, 2));
END;
CREATE TRIGGER search_docs_ad AFTER DELETE ON search_docs BEGIN
    INSERT INTO search_text (search_text, rowid, title, body, extra, tags)
    VALUES ('delete', OLD.id, OLD.title, OLD.body, OLD.extra,
            'r' || hex(coalesce(OLD.repo, '')) || ' a' || hex(coalesce(OLD.author, ''))
                || ' s' || hex(coalesce(OLD.state, ''))
                || coalesce(' c' || substr(OLD.created_at, 1, 4) || substr(OLD.created_at, 6, 2), ''));
END;
-- A new time within the same month (the common case: none) leaves the index alone.
CREATE TRIGGER search_docs_au AFTER UPDATE OF title, body, extra, repo, author, state, created_at ON search_docs
WHEN EXISTS (SELECT 1 FROM search_rewrite) OR OLD.title IS NOT NEW.title OR OLD.body IS NOT NEW.body OR OLD.extra IS NOT NEW.extra
  OR OLD.repo IS NOT NEW.repo OR OLD.author IS NOT NEW.author OR OLD.state IS NOT NEW.state
  OR substr(OLD.created_at, 1, 7) IS NOT substr(NEW.created_at, 1, 7)
BEGIN
    INSERT INTO search_text (search_text, rowid, title, body, extra, tags)
    VALUES ('delete', OLD.id, OLD.title, OLD.body, OLD.extra,
            'r' || hex(coalesce(OLD.repo, '')) || ' a' || hex(coalesce(OLD.author, ''))
                || ' s' || hex(coalesce(OLD.state, ''))
                || coalesce(' c' || substr(OLD.created_at, 1, 4) || substr(OLD.created_at, 6, 2), ''));
    INSERT INTO search_text (rowid, title, body, extra, tags)
    VALUES (NEW.id, NEW.title, NEW.body, NEW.extra,
            'r' || hex(coalesce(NEW.repo, '')) || ' a' || hex(coalesce(NEW.author, ''))
                || ' s' || hex(coalesce(NEW.state, ''))
                || coalesce(' c' || substr(NEW.created_at, 1, 4) || substr(NEW.created_at, 6, 2), ''));
    -- Not `OR IGNORE`: a policy of the statement that fired the trigger would override it.
    INSERT INTO search_months
    SELECT substr(NEW.created_at, 1, 4) || substr(NEW.created_at, 6, 2)
    WHERE NEW.created_at IS NOT NULL AND NOT EXISTS
        (SELECT 1 FROM search_months WHERE month = substr(NEW.created_at, 1, 4) || substr(NEW.created_at, 6, 2));
END;

INSERT INTO search_text (search_text) VALUES ('rebuild');
