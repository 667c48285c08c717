-- Octoscope store: full-text search (shared/docs/search.md).
-- `search_docs` holds one document per searchable entity, keyed by the
-- entity's key; `search_text` is its FTS5 index (external content, kept in
-- step by the search_docs_* triggers). Triggers on the entity tables write
-- the documents in the writing transaction, so whatever the store commits is
-- searchable when it commits. Text is stored without the characters U+0001
-- and U+0002, which mark highlights in snippets.

CREATE TABLE search_docs (
    id         INTEGER PRIMARY KEY,
    key        TEXT NOT NULL UNIQUE,   -- pr:OWNER/NAME#N, review:ID, commit:OWNER/NAME@SHA, repo:…, team:ORG/SLUG, person:LOGIN
    kind       TEXT NOT NULL,          -- pr, review, commit, repo, team, person
    repo       TEXT,
    author     TEXT,
    state      TEXT,
    created_at TEXT,
    version    TEXT NOT NULL,          -- orders writes through SearchIndex::index
    title      TEXT NOT NULL,
    body       TEXT NOT NULL,          -- at most 65,536 characters
    extra      TEXT NOT NULL           -- labels, branches, sha, logins
);
CREATE INDEX search_docs_kind ON search_docs (kind, id);
CREATE INDEX search_docs_repo ON search_docs (repo, id);

CREATE VIRTUAL TABLE search_text USING fts5(
    title, body, extra, content = 'search_docs', content_rowid = 'id', tokenize = 'unicode61 remove_diacritics 2'
);

CREATE TRIGGER search_docs_ai AFTER INSERT ON search_docs BEGIN
    INSERT INTO search_text (rowid, title, body, extra) VALUES (NEW.id, NEW.title, NEW.body, NEW.extra);
END;
CREATE TRIGGER search_docs_ad AFTER DELETE ON search_docs BEGIN
    INSERT INTO search_text (search_text, rowid, title, body, extra) VALUES ('delete', OLD.id, OLD.title, OLD.body, OLD.extra);
END;
CREATE TRIGGER search_docs_au AFTER UPDATE ON search_docs BEGIN
    INSERT INTO search_text (search_text, rowid, title, body, extra) VALUES ('delete', OLD.id, OLD.title, OLD.body, OLD.extra);
    INSERT INTO search_text (rowid, title, body, extra) VALUES (NEW.id, NEW.title, NEW.body, NEW.extra);
END;

-- Pull requests: title, labels, branches, author, repository, state, times.
-- (The store keeps no body yet: see the docs.)
CREATE TRIGGER search_pr_ai AFTER INSERT ON pull_requests BEGIN
    DELETE FROM search_docs WHERE key = 'pr:' || NEW.repo || '#' || NEW.number;
    INSERT INTO search_docs (key, kind, repo, author, state, created_at, version, title, body, extra)
    VALUES ('pr:' || NEW.repo || '#' || NEW.number, 'pr', NEW.repo, NEW.author, NEW.state, NEW.created_at, NEW.updated_at,
            replace(replace(NEW.title, char(1), ''), char(2), ''), '',
            replace(replace(concat_ws(' ', NEW.labels, NEW.head_ref, NEW.base_ref, NEW.author, NEW.repo, '#' || NEW.number),
                    char(1), ''), char(2), ''));
END;
CREATE TRIGGER search_pr_au AFTER UPDATE OF repo, number, title, state, author, created_at, updated_at, labels, base_ref, head_ref
ON pull_requests BEGIN
    DELETE FROM search_docs WHERE key IN ('pr:' || OLD.repo || '#' || OLD.number, 'pr:' || NEW.repo || '#' || NEW.number);
    INSERT INTO search_docs (key, kind, repo, author, state, created_at, version, title, body, extra)
    VALUES ('pr:' || NEW.repo || '#' || NEW.number, 'pr', NEW.repo, NEW.author, NEW.state, NEW.created_at, NEW.updated_at,
            replace(replace(NEW.title, char(1), ''), char(2), ''), '',
            replace(replace(concat_ws(' ', NEW.labels, NEW.head_ref, NEW.base_ref, NEW.author, NEW.repo, '#' || NEW.number),
                    char(1), ''), char(2), ''));
END;
CREATE TRIGGER search_pr_ad AFTER DELETE ON pull_requests BEGIN
    DELETE FROM search_docs WHERE key = 'pr:' || OLD.repo || '#' || OLD.number;
END;

-- Reviews: author and state, titled by their pull request (the store keeps no review body yet).
CREATE TRIGGER search_review_ai AFTER INSERT ON reviews BEGIN
    DELETE FROM search_docs WHERE key = 'review:' || NEW.id;
    INSERT INTO search_docs (key, kind, repo, author, state, created_at, version, title, body, extra)
    VALUES ('review:' || NEW.id, 'review', NEW.repo, NEW.author, NEW.state, NEW.submitted_at,
            coalesce(NEW.submitted_at, ''),
            replace(replace(coalesce((SELECT title FROM pull_requests WHERE repo = NEW.repo AND number = NEW.pr_number),
                                     NEW.repo || '#' || NEW.pr_number), char(1), ''), char(2), ''), '',
            concat_ws(' ', NEW.author, NEW.state, NEW.repo, '#' || NEW.pr_number));
END;
CREATE TRIGGER search_review_au AFTER UPDATE OF repo, pr_number, author, state, submitted_at ON reviews BEGIN
    DELETE FROM search_docs WHERE key = 'review:' || OLD.id;
    INSERT INTO search_docs (key, kind, repo, author, state, created_at, version, title, body, extra)
    VALUES ('review:' || NEW.id, 'review', NEW.repo, NEW.author, NEW.state, NEW.submitted_at,
            coalesce(NEW.submitted_at, ''),
            replace(replace(coalesce((SELECT title FROM pull_requests WHERE repo = NEW.repo AND number = NEW.pr_number),
                                     NEW.repo || '#' || NEW.pr_number), char(1), ''), char(2), ''), '',
            concat_ws(' ', NEW.author, NEW.state, NEW.repo, '#' || NEW.pr_number));
END;
CREATE TRIGGER search_review_ad AFTER DELETE ON reviews BEGIN
    DELETE FROM search_docs WHERE key = 'review:' || OLD.id;
END;

-- Commits: the message's first line as title, the message (bounded) as body, sha and author.
CREATE TRIGGER search_commit_ai AFTER INSERT ON commits BEGIN
    DELETE FROM search_docs WHERE key = 'commit:' || NEW.repo || '@' || NEW.sha;
    INSERT INTO search_docs (key, kind, repo, author, state, created_at, version, title, body, extra)
    VALUES ('commit:' || NEW.repo || '@' || NEW.sha, 'commit', NEW.repo, NEW.author_login, NULL, NEW.committed_at,
            coalesce(NEW.committed_at, ''),
            replace(replace(substr(NEW.message, 1, instr(NEW.message || char(10), char(10)) - 1), char(1), ''), char(2), ''),
            replace(replace(substr(NEW.message, 1, 65536), char(1), ''), char(2), ''),
            replace(replace(concat_ws(' ', NEW.sha, substr(NEW.sha, 1, 7), NEW.author_login, NEW.author_name, NEW.repo),
                    char(1), ''), char(2), ''));
END;
CREATE TRIGGER search_commit_au AFTER UPDATE OF repo, sha, message ON commits BEGIN
    DELETE FROM search_docs WHERE key IN ('commit:' || OLD.repo || '@' || OLD.sha, 'commit:' || NEW.repo || '@' || NEW.sha);
    INSERT INTO search_docs (key, kind, repo, author, state, created_at, version, title, body, extra)
    VALUES ('commit:' || NEW.repo || '@' || NEW.sha, 'commit', NEW.repo, NEW.author_login, NULL, NEW.committed_at,
            coalesce(NEW.committed_at, ''),
            replace(replace(substr(NEW.message, 1, instr(NEW.message || char(10), char(10)) - 1), char(1), ''), char(2), ''),
            replace(replace(substr(NEW.message, 1, 65536), char(1), ''), char(2), ''),
            replace(replace(concat_ws(' ', NEW.sha, substr(NEW.sha, 1, 7), NEW.author_login, NEW.author_name, NEW.repo),
                    char(1), ''), char(2), ''));
END;
CREATE TRIGGER search_commit_ad AFTER DELETE ON commits BEGIN
    DELETE FROM search_docs WHERE key = 'commit:' || OLD.repo || '@' || OLD.sha;
END;

-- Repositories, teams and people by name, for quick jumps. Deleted ones are not found.
CREATE TRIGGER search_repo_ai AFTER INSERT ON repos BEGIN
    INSERT INTO search_docs (key, kind, repo, version, title, body, extra)
    SELECT 'repo:' || NEW.full_name, 'repo', NEW.full_name, coalesce(NEW.version, ''), NEW.full_name, '',
           replace(NEW.full_name, '/', ' ')
    WHERE NOT NEW.deleted;
END;
CREATE TRIGGER search_repo_au AFTER UPDATE OF full_name, deleted ON repos BEGIN
    DELETE FROM search_docs WHERE key IN ('repo:' || OLD.full_name, 'repo:' || NEW.full_name);
    INSERT INTO search_docs (key, kind, repo, version, title, body, extra)
    SELECT 'repo:' || NEW.full_name, 'repo', NEW.full_name, coalesce(NEW.version, ''), NEW.full_name, '',
           replace(NEW.full_name, '/', ' ')
    WHERE NOT NEW.deleted;
END;
CREATE TRIGGER search_repo_ad AFTER DELETE ON repos BEGIN
    DELETE FROM search_docs WHERE key = 'repo:' || OLD.full_name;
END;

CREATE TRIGGER search_team_ai AFTER INSERT ON teams BEGIN
    INSERT INTO search_docs (key, kind, version, title, body, extra)
    SELECT 'team:' || NEW.org || '/' || NEW.slug, 'team', NEW.version,
           replace(replace(NEW.name, char(1), ''), char(2), ''),
           replace(replace(substr(coalesce(NEW.description, ''), 1, 65536), char(1), ''), char(2), ''),
           NEW.org || ' ' || NEW.slug
    WHERE NOT NEW.deleted;
END;
CREATE TRIGGER search_team_au AFTER UPDATE OF org, slug, name, description, deleted ON teams BEGIN
    DELETE FROM search_docs WHERE key IN ('team:' || OLD.org || '/' || OLD.slug, 'team:' || NEW.org || '/' || NEW.slug);
    INSERT INTO search_docs (key, kind, version, title, body, extra)
    SELECT 'team:' || NEW.org || '/' || NEW.slug, 'team', NEW.version,
           replace(replace(NEW.name, char(1), ''), char(2), ''),
           replace(replace(substr(coalesce(NEW.description, ''), 1, 65536), char(1), ''), char(2), ''),
           NEW.org || ' ' || NEW.slug
    WHERE NOT NEW.deleted;
END;
CREATE TRIGGER search_team_ad AFTER DELETE ON teams BEGIN
    DELETE FROM search_docs WHERE key = 'team:' || OLD.org || '/' || OLD.slug;
END;

-- People: a login that is a present member of any organisation.
CREATE TRIGGER search_person_ai AFTER INSERT ON org_members BEGIN
    DELETE FROM search_docs WHERE key = 'person:' || NEW.login;
    INSERT INTO search_docs (key, kind, author, version, title, body, extra)
    SELECT 'person:' || NEW.login, 'person', NEW.login, NEW.version, NEW.login, '', ''
    WHERE EXISTS (SELECT 1 FROM org_members WHERE login = NEW.login AND present);
END;
CREATE TRIGGER search_person_au AFTER UPDATE OF login, present ON org_members BEGIN
    DELETE FROM search_docs WHERE key IN ('person:' || OLD.login, 'person:' || NEW.login);
    INSERT INTO search_docs (key, kind, author, version, title, body, extra)
    SELECT 'person:' || login, 'person', login, max(version), login, '', ''
    FROM org_members WHERE login IN (OLD.login, NEW.login) AND present GROUP BY login;
END;
CREATE TRIGGER search_person_ad AFTER DELETE ON org_members BEGIN
    DELETE FROM search_docs WHERE key = 'person:' || OLD.login;
    INSERT INTO search_docs (key, kind, author, version, title, body, extra)
    SELECT 'person:' || login, 'person', login, max(version), login, '', ''
    FROM org_members WHERE login = OLD.login AND present GROUP BY login;
END;

-- Backfill: what the store already holds goes through the same triggers.
UPDATE repos SET deleted = deleted;
UPDATE teams SET deleted = deleted;
UPDATE org_members SET present = present;
UPDATE pull_requests SET title = title;
UPDATE reviews SET state = state;
UPDATE commits SET message = message;
