-- Pull requests are listed newest first by creation (GitHub's own default
-- order), not by last update: the order no longer moves with every review or
-- edit, so pages stay stable while they are read, and on DynamoDB the list's
-- index entry is written once (shared/docs/dynamodb.md, "Cost").
DROP INDEX pull_requests_updated;
DROP INDEX pull_requests_author;
CREATE INDEX pull_requests_repo_created ON pull_requests (repo, created_at, number);
CREATE INDEX pull_requests_author_created ON pull_requests (author, created_at, repo, number);
