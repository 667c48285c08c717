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


# notify: byte 0 the event (0 branch.moved, 1 pull_request.opened, 2 .merged,
# 3 workflow_run.failed, 4 .recovered, 5 deployment.failed, 6
# review.pickup_breached, 7 ci.queue_time_regressed, 8 integrity.gaps_found,
# 9 resync.failed, 10 test); byte 1 the target (0 webhook, 1 Slack, 2
# repository_dispatch) | 4 late | 8 two secrets | 16 dashboard | 32 over HTTP
# | 64 disabled, 128 deleted (192); byte 2 attempts so far; byte 3 the
# policy's attempts - 1; bytes 4-5 its horizon (0x0306: about 7,200 s).
HOSTILE = [
    "<script>alert(1)</script>", "<!here>", "<!channel> @channel @here", "&amp; &lt;b&gt; &", "\u202egnp.exe",
    "a\u0000b", "<https://evil.example|click> *bold* _i_ ~s~ `c`", "\"quoted\" \\ back",
]


def notify_seed(name, event, flags, answer, fields, body=b"", so_far=0, attempts=5, retry_after="", event_type="",
                path="services/T0/B0/secret"):
    head = bytes([event, flags, so_far, attempts, 0x03, 0x06])
    lines = [answer, retry_after, event_type, path] + fields + [""]
    write("notify", name, head + "\n".join(lines).encode() + b"\n" + body)


def notify():
    pr = ["repo=acme/api", "number=42", "title=Fix <script> & <!channel>", "author=mallory", "base=main",
          "head=feature/<x>", "draft=false", "url=https://github.com/acme/api/pull/42", "at=\"2026-12-04T10:00:00Z\""]
    push = ["repo=acme/api", "branch=release/<!here>", "before=0123456789abcdef", "after=fedcba9876543210",
            'commits=[{"sha":"fedcba9","message":"<!channel> deploy","author":"eve","url":"https://x"}]',
            "commit_count=1", "url=https://github.com/acme/api/compare/0123456...fedcba9"]
    run = ["repo=acme/api", "run_id=7", "workflow=CI <b>", "branch=main", "sha=0123456789abcdef", "conclusion=failure",
           "broke=true", "actor=@channel", "url=https://github.com/acme/api/actions/runs/7"]
    deploy = ["repo=acme/api", "deployment_id=3", "state=failure", "environment=prod & <staging>", "creator=eve",
              "url=https://github.com/acme/api/deployments"]
    queue = ["label=ubuntu-<latest>", "p90_seconds=900", "jobs=12", "threshold_seconds=300", "hour=\"2026-12-04T09\""]
    data = {0: push, 1: pr, 2: pr, 3: run, 4: run, 5: deploy, 6: pr + ["hours=24"], 7: queue,
            8: ["check_id=5", "gaps=2", 'targets=["acme/api"]', 'reasons=["count differs"]'],
            9: ["job=job-1", "error=<!here> disk full & more"], 10: []}
    for event, fields in data.items():
        for kind in range(3):
            notify_seed(f"e{event:02}-k{kind}", event, kind | 16, "200", fields, b"ok")
    for i, text in enumerate(HOSTILE):
        for kind in range(3):
            notify_seed(f"hostile-{i}-k{kind}", 1, kind, "200", ["repo=acme/api", "number=1", f"title={text}",
                                                                  f"branch={text}", f"author={text}"])
    for kind in range(3):
        notify_seed(f"huge-title-k{kind}", 2, kind, "200", ["repo=acme/api", "number=9", "title*15000=<!here> "])
        notify_seed(f"huge-branch-k{kind}", 0, kind | 4, "200", ["repo=acme/api", "branch*100000=&x"])
    notify_seed("huge-json", 3, 1, "200", run + ['reasons=' + '["' + "<b>" * 3000 + '"]'])
    notify_seed("spoof-ids", 2, 0 | 8, "200", pr + ["late=\"spoof\"", "rule_id=rul_x", "notification_id=ntf_x"])
    notify_seed("data-not-object", 9, 0, "200", ['=["<!channel>", 1, null]'])
    notify_seed("data-null", 10, 2, "200", ["=null"])
    notify_seed("event-type", 2, 2, "200", pr, event_type="deploy <now>")
    # The receiver's answers.
    for status in ["200", "204", "301", "400", "404", "408", "410", "429", "500", "503", "599", "600", "100", "x"]:
        notify_seed(f"answer-{status}", 2, 0, status, pr, b'{"error":"<b>\x00\x1b[31m"}')
        notify_seed(f"answer-{status}-http", 2, 32 | 1, status, pr, b"nope", retry_after="120")
    notify_seed("answer-410-dispatch-http", 2, 32 | 2, "410", pr, b"gone")
    notify_seed("answer-timeout", 3, 0, "timeout", run, so_far=2)
    notify_seed("answer-unreachable", 3, 1, "unreachable connection reset \x01", run, so_far=4)
    notify_seed("answer-refused", 3, 2, "refused 10.0.0.1 is private", run)
    notify_seed("last-attempt", 2, 0, "503", pr, so_far=5, attempts=5)
    notify_seed("one-attempt", 2, 0, "500", pr, attempts=0)
    notify_seed("twenty-attempts", 2, 0, "429", pr, so_far=18, attempts=19)
    notify_seed("retry-after-huge", 2, 32, "503", pr, b"slow down", retry_after="999999999")
    notify_seed("retry-after-date", 2, 32, "429", pr, retry_after="Wed, 21 Oct 2015 07:28:00 GMT")
    notify_seed("big-answer-http", 2, 32, "500 *30000", pr, b"<!here>\x00")
    notify_seed("big-answer", 2, 1, "502 *30000", pr, "\u202e\u0000".encode())
    notify_seed("disabled", 2, 64, "200", pr)
    notify_seed("deleted", 2, 128 | 1, "200", pr)


if __name__ == "__main__":
    webhook(); api(); cursors(); searches(); github(); aws(); notify()
