#!/usr/bin/env python3
"""Writes the seeds of every fuzz target into DIR/<target>/ (DIR: the first
argument, default seeds/ beside this script; `make fuzz` runs it). The
committed corpus/ is these seeds and what the fuzzer found, minimised with
`cargo fuzz cmin`. Webhook seeds are every example payload
under shared/tests/fixtures/github-webhooks (MIT, see its LICENSE), minified;
the other targets' seeds are written out below. Input formats: the doc comment
of each fuzz_targets/<target>.rs."""
import base64, json, pathlib, sys, urllib.parse

HERE = pathlib.Path(__file__).resolve().parent
FIXTURES = HERE.parent / "tests" / "fixtures" / "github-webhooks" / "api.github.com"
CORPUS = pathlib.Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else HERE / "seeds"


def write(target, name, data):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data if isinstance(data, bytes) else data.encode())


def minified(path):
    return json.dumps(json.loads(path.read_text()), separators=(",", ":"), ensure_ascii=False).encode()


def webhook():
    for path in sorted(FIXTURES.glob("*/*.json")):
        event = path.parent.name
        write("webhook", f"{event}-{path.name.removesuffix('.payload.json')}", event.encode() + b"\n\n" + minified(path))
    pr = minified(FIXTURES / "pull_request" / "opened.payload.json")
    write("webhook", "x-form", b"pull_request\nf\npayload=" + urllib.parse.quote_plus(pr).encode())
    write("webhook", "x-redelivered", b"pull_request\nr\n" + pr)
    write("webhook", "x-unsigned", b"pull_request\nu\n" + pr)
    write("webhook", "x-wrong-signature", b"pull_request\nx\n" + pr)
    write("webhook", "x-no-hook", b"ping\nn\n" + minified(FIXTURES / "ping" / "payload.json"))
    write("webhook", "x-not-json", b"push\n\n{\"ref\":")


def cursor(key):
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode().rstrip("=")


API_PATHS = [
    "/api/health", "/api/repos", "/api/repos?limit=2", "/api/pulls", "/api/pulls?repo=acme-demo/api&state=open&limit=3",
    "/api/pulls?author=alice&since=2024-01-01T00:00:00Z", "/api/pulls/acme-demo/api/1", "/api/pulls/acme-demo/api/99999",
    "/api/teams?org=acme-demo", "/api/commits?repo=acme-demo/api&branch=main", "/api/workflow-runs?repo=acme-demo/web",
    "/api/deliveries?status=stored&event=pull_request", "/api/integrity", "/api/metrics/pulls?team=platform",
    "/api/metrics/ci?repo=acme-demo/api&from=2024-01-01&to=2030-01-01", "/api/metrics/dora?org=acme-demo&bucket=week",
    "/api/metrics/health", "/api/openapi.json", "/api/nope", "/webhook",
    "/api/repos?cursor=" + cursor(["2024-01-01T00:00:00Z", "acme-demo/api"]),
    "/api/deliveries?cursor=" + cursor(7), "/api/pulls?limit=0", "/api/pulls?limit=501", "/api/pulls?repo=a&repo=b",
]


def api():
    for i, path in enumerate(API_PATHS):
        write("api", f"{i:02}", f"Bearer fuzz-api-token-0123456789\n\n{path}")
    write("api", "no-token", "\n\n/api/pulls")
    write("api", "wrong-token", "Bearer nope\n\n/api/pulls")
    write("api", "post", "Bearer fuzz-api-token-0123456789\nPOST\n/api/pulls")
    # The rules' writes, with bodies (the rule RULE_ID is in the store).
    rule = "/api/rules/rul_00000000000000000001"
    bodies = [
        ("POST", "/api/rules", {"on": "pull_request.merged", "repo": "acme-demo/api", "branch": "main",
                                "target": {"type": "webhook", "url": "https://hooks.example.com/a"}}),
        ("POST", "/api/rules", {"on": "workflow_run.failed", "branch": "release/*", "skip_late": True,
                                "target": {"type": "slack", "url": "https://hooks.slack.com/services/T0/B0/x"}}),
        ("POST", "/api/rules", {"on": "review.pickup_breached", "hours": 24,
                                "target": {"type": "repository_dispatch", "repo": "acme-demo/api"}}),
        ("POST", "/api/rules", {"on": "branch.moved", "target": {"type": "webhook", "url": "http://127.0.0.1/"}}),
        ("PUT", rule, {"on": "deployment.failed", "environment": "production",
                       "target": {"type": "webhook", "url": "https://hooks.example.com/b"}}),
        ("POST", rule + "/test", None), ("POST", rule + "/rotate-secret", None), ("DELETE", rule, None),
        ("GET", rule, None), ("GET", "/api/rules", None), ("GET", "/api/notifications?rule=" + rule[11:], None),
    ]
    for i, (method, path, body) in enumerate(bodies):
        text = "" if body is None else json.dumps(body, separators=(",", ":"))
        write("api", f"rules-{i:02}", f"Bearer fuzz-api-token-0123456789\n{method}\n{path}\n{text}")


def cursors():
    for i, key in enumerate([7, "x", ["2024-01-01T00:00:00Z", "acme-demo/api"], ["2024-01-01T00:00:00Z", "acme-demo/api", 3],
                             ["2024-01-01T00:00:00Z", 12], ["acme-demo", "platform"], [], {}, None, "\u00e9"]):
        write("cursor", f"{i:02}", cursor(key))
    write("cursor", "not-base64", "*?")


# Search queries: qualifiers, phrases, exclusions and what FTS5 or a query
# parser would read as syntax (shared/tests/search_api.rs has the hostile set).
SEARCH = ["rate limiter", '"sliding window rate limiter"', "retry repo:acme-demo/api", "author:alice cache",
          "type:pr is:open parser", "type:commit migration", "created:>2024-01-01 deadlock", "flaky -test",
          "is:merged type:review", 'NEAR(a b) OR c* ^d', '(((', 'title:x body:"y', "'; DROP TABLE x; --",
          '{"query": {"match_all": {}}}', "\u0000", "é ü 中文", "a" * 300, "-", '""', "created:<2024-13-45"]


def searches():
    for i, q in enumerate(SEARCH):
        write("search", f"{i:02}", q)


GITHUB = {
    0: {"data": {"r0": {"nameWithOwner": "acme/api", "databaseId": 1, "open": {"totalCount": 1}}, "r1": None},
        "errors": [{"type": "NOT_FOUND", "path": ["r1"], "message": "Could not resolve"}]},
    1: {"data": {"o0": {"teams": {"totalCount": 1, "nodes": [None]}}}},
    2: {"total_count": 2, "workflow_runs": [{"id": 1, "node_id": "WFR_1", "name": "ci", "status": "completed",
                                             "conclusion": "success", "created_at": "2024-01-01T00:00:00Z",
                                             "updated_at": "2024-01-01T00:00:00Z", "run_attempt": 1}, None]},
    3: {"data": {"nodes": [{"id": "WFR_1", "checkSuite": {"checkRuns": {"totalCount": 3}}}, None]}},
    4: {"data": {"repository": {"pullRequests": {"totalCount": 1, "pageInfo": {"hasNextPage": True, "endCursor": "Y3Vy"},
        "nodes": [{"number": 1, "title": "t", "state": "OPEN", "createdAt": "2024-01-01T00:00:00Z",
                   "updatedAt": "2024-01-02T00:00:00Z", "author": {"login": "alice"},
                   "reviews": {"nodes": [], "pageInfo": {"hasNextPage": False, "endCursor": None}}}, None]}}}},
    5: {"data": {"organization": {"teams": {"pageInfo": {"hasNextPage": False, "endCursor": None},
        "nodes": [{"slug": "platform", "name": "Platform", "members": {"totalCount": 1, "nodes": [{"login": "alice"}],
                                                                       "pageInfo": {"hasNextPage": False}}}]}}}},
    6: {"data": {"organization": {"repositories": {"pageInfo": {"hasNextPage": False, "endCursor": None},
                                                   "nodes": [{"nameWithOwner": "acme/api"}, None]}}}},
    7: {"data": {"repository": {"refs": {"pageInfo": {"hasNextPage": False, "endCursor": None},
                                         "nodes": [{"name": "main", "target": {"oid": "abc"}}]}}}},
    8: {"total_count": 1, "workflow_runs": [{"id": 1, "node_id": "WFR_1", "created_at": "2024-01-01T00:00:00Z"}]},
    9: {"total_count": 1, "jobs": [{"id": 5, "run_id": 1, "name": "build", "status": "completed", "labels": ["ubuntu-latest"],
                                    "started_at": "2024-01-01T00:00:00Z"}]},
    10: [{"id": 3, "sha": "abc", "ref": "main", "environment": "prod", "created_at": "2024-01-01T00:00:00Z"}],
    11: {"data": {"repository": {"ref": {"target": {"history": {"pageInfo": {"hasNextPage": False, "endCursor": None},
        "nodes": [{"oid": "abc", "committedDate": "2024-01-01T00:00:00Z", "author": {"user": {"login": "alice"}}}]}}}}}},
    12: [{"id": 9, "type": "Organization", "active": True, "config": {"url": "https://example.com/webhook"}}],
}


def github():
    for pick, answer in GITHUB.items():
        body = json.dumps(answer, separators=(",", ":")).encode()
        write("github", f"{pick:02}", bytes([pick]) + b"\n\n\n\n" + body)
    write("github", "next-page", bytes([8]) + b"\n<https://api.github.com/x?page=2>; rel=\"next\"\n\n\n" +
          json.dumps(GITHUB[8]).encode())
    write("github", "rate-limited", bytes([4]) + b"403\n\n0\n\n{\"message\":\"API rate limit exceeded\"}")
    write("github", "secondary-limit", bytes([5]) + b"429\n\n\n1\n{\"message\":\"secondary rate limit\"}")
    write("github", "server-error", bytes([6]) + b"502\n\n\n\n<html>")


def aws():
    gap = {"gap": {"target": {"repo": "acme/api"}, "kind": "pulls", "watermark": None, "reason": "count differs"},
           "pending_owner": "check-1"}
    records = [{"messageId": f"m{i}", "body": b, "eventSource": "aws:sqs"}
               for i, b in enumerate([json.dumps(gap), json.dumps(gap), "not a gap", None])]
    write("aws_events", "sqs", b"\x00" + json.dumps({"Records": records}).encode())
    write("aws_events", "sqs-empty", b"\x00" + b'{"Records":[]}')
    env = ("OCTOSCOPE_TABLE=octoscope\nOCTOSCOPE_JOB_ID=job-1\nGITHUB_TOKEN_PARAM=/octoscope/github\n"
           "OCTOSCOPE_GAP_QUEUE_URL=https://sqs.eu-west-1.amazonaws.com/1/gaps\nOCTOSCOPE_ECS_CLUSTER=c\n"
           "OCTOSCOPE_ECS_TASK_DEFINITION=t\nOCTOSCOPE_ECS_SUBNETS=s1,s2\nGITHUB_WEBHOOK_SECRET_PARAM=/octoscope/secret\nOCTOSCOPE_ARCHIVE_BUCKET=raw\nOCTOSCOPE_ORGS=acme\nOCTOSCOPE_API_AUTH=tokens\n"
           "OCTOSCOPE_API_TOKENS_PARAM=/octoscope/tokens\nOCTOSCOPE_MAX_BODY_BYTES=26214400\n")
    write("aws_events", "env", b"\x01" + env.encode())


if __name__ == "__main__":
    webhook(); api(); cursors(); searches(); github(); aws()
