-- Octoscope store: pull request and review bodies, and their search
-- (shared/docs/search.md). `body` is the text GitHub holds, cut to 65,536
-- characters by whoever writes it (`search_docs::stored_body`); NULL where
-- no write has said it yet — every row stored before this migration, since
-- the store never kept the raw payloads' bodies: those rows have no body until
-- their next delivery or a resync writes one. A write that does not know the
-- body (None) keeps the stored one, as sizes do.
--
-- The pull request and review documents now carry the body in the index's
-- `body` column (bounded and without the highlight marks, as a commit's
-- message is); the triggers are recreated with it (SQLite cannot alter a
-- trigger). Documents already indexed have an empty body, which is what the
-- rows' NULL body indexes as: nothing to rebuild.

ALTER TABLE pull_requests ADD COLUMN body TEXT;
ALTER TABLE reviews ADD COLUMN body TEXT;

DROP TRIGGER search_pr_ai;
DROP TRIGGER search_pr_au;
DROP TRIGGER search_review_ai;
DROP TRIGGER search_review_au;

CREATE TRIGGER search_pr_ai AFTER INSERT ON pull_requests BEGIN
    DELETE FROM search_docs WHERE key = 'pr:' || NEW.repo || '#' || NEW.number;
    INSERT INTO search_docs (key, kind, repo, author, state, created_at, version, title, body, extra)
    VALUES ('pr:' || NEW.repo || '#' || NEW.number, 'pr', NEW.repo, NEW.author, NEW.state, NEW.created_at, NEW.updated_at,
            replace(replace(NEW.title, char(1), ''), char(2), ''),
            replace(replace(substr(coalesce(NEW.body, ''), 1, 65536), char(1), ''), char(2), ''),
            replace(replace(concat_ws(' ', NEW.labels, NEW.head_ref, NEW.base_ref, NEW.author, NEW.repo, '#' || NEW.number),
                    char(1), ''), char(2), ''));
END;
CREATE TRIGGER search_pr_au AFTER UPDATE OF repo, number, title, state, author, created_at, updated_at, labels, base_ref, head_ref, body
ON pull_requests BEGIN
    DELETE FROM search_docs WHERE key IN ('pr:' || OLD.repo || '#' || OLD.number, 'pr:' || NEW.repo || '#' || NEW.number);
    INSERT INTO search_docs (key, kind, repo, author, state, created_at, version, title, body, extra)
    VALUES ('pr:' || NEW.repo || '#' || NEW.number, 'pr', NEW.repo, NEW.author, NEW.state, NEW.created_at, NEW.updated_at,
            replace(replace(NEW.title, char(1), ''), char(2), ''),
            replace(replace(substr(coalesce(NEW.body, ''), 1, 65536), char(1), ''), char(2), ''),
            replace(replace(concat_ws(' ', NEW.labels, NEW.head_ref, NEW.base_ref, NEW.author, NEW.repo, '#' || NEW.number),
                    char(1), ''), char(2), ''));
END;

CREATE TRIGGER search_review_ai AFTER INSERT ON reviews BEGIN
    DELETE FROM search_docs WHERE key = 'review:' || NEW.id;
    INSERT INTO search_docs (key, kind, repo, author, state, created_at, version, title, body, extra)
    VALUES ('review:' || NEW.id, 'review', NEW.repo, NEW.author, NEW.state, NEW.submitted_at,
            coalesce(NEW.submitted_at, ''),
            replace(replace(coalesce((SELECT title FROM pull_requests WHERE repo = NEW.repo AND number = NEW.pr_number),
                                     NEW.repo || '#' || NEW.pr_number), char(1), ''), char(2), ''),
            replace(replace(substr(coalesce(NEW.body, ''), 1, 65536), char(1), ''), char(2), ''),
            concat_ws(' ', NEW.author, NEW.state, NEW.repo, '#' || NEW.pr_number));
END;
CREATE TRIGGER search_review_au AFTER UPDATE OF repo, pr_number, author, state, submitted_at, body ON reviews BEGIN
    DELETE FROM search_docs WHERE key = 'review:' || OLD.id;
    INSERT INTO search_docs (key, kind, repo, author, state, created_at, version, title, body, extra)
    VALUES ('review:' || NEW.id, 'review', NEW.repo, NEW.author, NEW.state, NEW.submitted_at,
            coalesce(NEW.submitted_at, ''),
            replace(replace(coalesce((SELECT title FROM pull_requests WHERE repo = NEW.repo AND number = NEW.pr_number),
                                     NEW.repo || '#' || NEW.pr_number), char(1), ''), char(2), ''),
            replace(replace(substr(coalesce(NEW.body, ''), 1, 65536), char(1), ''), char(2), ''),
            concat_ws(' ', NEW.author, NEW.state, NEW.repo, '#' || NEW.pr_number));
END;
