-- Octoscope store, schema version 6: GitHub requests per installation.
-- A check and a resync job keep, besides their total `requests`, how many of
-- them each GitHub App installation made (its account login -> count; a
-- token's are under "token"), as a JSON object. Rows from before have none.
ALTER TABLE check_runs ADD COLUMN requests_by_installation TEXT NOT NULL DEFAULT '{}';
ALTER TABLE jobs ADD COLUMN requests_by_installation TEXT NOT NULL DEFAULT '{}';
