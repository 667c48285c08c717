-- Octoscope store: search filters inside the full-text index (shared/docs/search.md).
-- A fourth FTS5 column, `tags`, holds one token per selective filter value
-- of a document: `r` + the repository's name in hex, `a` + the author's login
-- in hex, `s` + the state in hex. A query's repo:/author:/is: qualifiers
-- become phrases on this column, so FTS5 intersects their doclists
-- with the words' instead of the store joining every match of a word to test
-- its row (a word in 57,000 documents, 2,900 of them in the repository: the
-- join now reads 2,900 rows, not 57,000). The kind is no tag: six values,
-- one of them nine documents in ten, so its doclist would cost more to
-- intersect than the row test. Users' words are searched in the other three
-- columns only. The exact column tests stay as well.
--
-- The index reads its content through the view `search_content` (the
-- documents with their tags computed), so the tags are stored in the index
-- only. Rebuilt from `search_docs` here (time linear in the documents).

DROP TRIGGER search_docs_ai;
DROP TRIGGER search_docs_ad;
DROP TRIGGER search_docs_au;
DROP TABLE search_text;

CREATE VIEW search_content AS
SELECT id, title, body, extra,
       'r' || hex(coalesce(repo, '')) || ' a' || hex(coalesce(author, '')) || ' s' || hex(coalesce(state, ''))
           AS tags
FROM search_docs;

CREATE VIRTUAL TABLE search_text USING fts5(
    title, body, extra, tags, content = 'search_content', content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2'
);

CREATE TRIGGER search_docs_ai AFTER INSERT ON search_docs BEGIN
    INSERT INTO search_text (rowid, title, body, extra, tags)
    VALUES (NEW.id, NEW.title, NEW.body, NEW.extra,
            'r' || hex(coalesce(NEW.repo, '')) || ' a' || hex(coalesce(NEW.author, ''))
                || ' s' || hex(coalesce(NEW.state, '')));
END;
CREATE TRIGGER search_docs_ad AFTER DELETE ON search_docs BEGIN
    INSERT INTO search_text (search_text, rowid, title, body, extra, tags)
    VALUES ('delete', OLD.id, OLD.title, OLD.body, OLD.extra,
            'r' || hex(coalesce(OLD.repo, '')) || ' a' || hex(coalesce(OLD.author, ''))
                || ' s' || hex(coalesce(OLD.state, '')));
END;
CREATE TRIGGER search_docs_au AFTER UPDATE ON search_docs BEGIN
    INSERT INTO search_text (search_text, rowid, title, body, extra, tags)
    VALUES ('delete', OLD.id, OLD.title, OLD.body, OLD.extra,
            'r' || hex(coalesce(OLD.repo, '')) || ' a' || hex(coalesce(OLD.author, ''))
                || ' s' || hex(coalesce(OLD.state, '')));
    INSERT INTO search_text (rowid, title, body, extra, tags)
    VALUES (NEW.id, NEW.title, NEW.body, NEW.extra,
            'r' || hex(coalesce(NEW.repo, '')) || ' a' || hex(coalesce(NEW.author, ''))
                || ' s' || hex(coalesce(NEW.state, '')));
END;

INSERT INTO search_text (search_text) VALUES ('rebuild');
