#!/usr/bin/env python3
"""Lambda init time of the webhook function, measured locally.

Starts moto (SSM, DynamoDB, S3) and a minimal Lambda Runtime API emulator,
then starts the webhook binary (the `aws` profile, built for this machine) as
Lambda would, RUNS times, and prints per run:

  init   process start -> its first GET /runtime/invocation/next (what Lambda
         bills as Init: config, SDK config, clients, the SSM secret read)
  first  process start -> the response of the first event (a signed
         pull_request delivery: verify, DynamoDB claim, S3 put, DynamoDB write)

What it does not include: Lambda's own sandbox and Firecracker start, loading
the zip, the network latency of real AWS endpoints (moto on loopback answers in
about a millisecond; real SSM/DynamoDB/S3 calls from Lambda take several) and
the arm64 CPU of the function (this runs the x86_64 build of the same code).

With `--warm N` it instead starts the binary once and hands it N deliveries
one after another (GitHub's example payloads of `workflow_job`,
`workflow_run` and `pull_request`, jobs twice as often, each with a delivery
id of its own), and prints the CPU time (user + system, from
/proc/PID/stat) the process used per warm delivery after the first: the part
of a delivery's billed duration that scales with the memory size (Lambda's
CPU share is proportional to it), where waiting on DynamoDB and Firehose
does not (shared/docs/aws.md, "Duration and memory").

Usage: functions/scripts/bench-init.py [RUNS]   (needs moto_server and boto3)
       functions/scripts/bench-init.py --warm N
"""

import hashlib
import hmac
import http.server
import json
import os
import pathlib
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
import uuid

ROOT = pathlib.Path(__file__).resolve().parents[2]
WARM = int(sys.argv[2]) if len(sys.argv) > 2 and sys.argv[1] == "--warm" else 0
RUNS = int(sys.argv[1]) if len(sys.argv) > 1 and not WARM else 10
SECRET = "bench-webhook-secret"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def target_dir():
    meta = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps"], cwd=ROOT, check=True, capture_output=True
    )
    return pathlib.Path(json.loads(meta.stdout)["target_directory"])


def start_moto():
    port = free_port()
    proc = subprocess.Popen(
        [os.environ.get("MOTO_SERVER", "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            urllib.request.urlopen(url + "/moto-api/", timeout=1)
            return proc, url
        except OSError:
            time.sleep(0.1)
    proc.kill()
    sys.exit("moto_server did not start")


def aws_env(endpoint):
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def create_resources(endpoint):
    import boto3

    kw = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
    table, bucket, param = "octoscope-bench", "octoscope-bench-archive", "/octoscope/bench/webhook-secret"
    ddb = boto3.client("dynamodb", **kw)
    attrs = [{"AttributeName": n, "AttributeType": "S"} for n in ["pk", "sk"] + [f"gsi{i}{k}" for i in (1, 2, 3) for k in ("pk", "sk")]]
    ddb.create_table(
        TableName=table,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=attrs,
        GlobalSecondaryIndexes=[
            {
                "IndexName": f"gsi{i}",
                "KeySchema": [
                    {"AttributeName": f"gsi{i}pk", "KeyType": "HASH"},
                    {"AttributeName": f"gsi{i}sk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
            for i in (1, 2, 3)
        ],
    )
    boto3.client("s3", **kw).create_bucket(Bucket=bucket)
    stream = f"{bucket}-stream"
    boto3.client("firehose", **kw).create_delivery_stream(
        DeliveryStreamName=stream,
        DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={
            "RoleARN": "arn:aws:iam::123456789012:role/firehose",
            "BucketARN": f"arn:aws:s3:::{bucket}",
            "Prefix": "batched/",
        },
    )
    boto3.client("ssm", **kw).put_parameter(Name=param, Value=SECRET, Type="SecureString")
    return {"OCTOSCOPE_TABLE": table, "OCTOSCOPE_ARCHIVE_STREAM": stream, "GITHUB_WEBHOOK_SECRET_PARAM": param}


FIXTURES = ROOT / "shared/tests/fixtures/github-webhooks/api.github.com"


def webhook_event(name="pull_request", path=FIXTURES / "pull_request/opened.payload.json"):
    fixture = ROOT / "functions/webhook/tests/fixtures/apigw-v2-post-webhook.json"
    body = path.read_bytes()
    event = json.loads(fixture.read_text())
    event["body"] = body.decode()
    event["headers"]["x-github-event"] = name
    event["headers"]["content-length"] = str(len(body))
    event["headers"]["x-github-delivery"] = str(uuid.uuid4())
    event["headers"]["x-hub-signature-256"] = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return json.dumps(event).encode()


def hand_over(handler, body, request_id):
    """Answer a Runtime API `invocation/next` poll with one event, as Lambda does."""
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Lambda-Runtime-Aws-Request-Id", request_id)
    handler.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 30000))
    handler.send_header("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:webhook")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


class RuntimeApi(http.server.BaseHTTPRequestHandler):
    """One invocation: hand out the event, record when it was asked for and answered."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        state = self.server.state
        if self.path.endswith("/runtime/invocation/next"):
            if state.get("next_at") is None:
                state["next_at"] = time.perf_counter()
                hand_over(self, state["event"], "bench-request-1")
            else:
                time.sleep(30)  # the second poll waits, as Lambda freezes the sandbox
        else:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        payload = self.rfile.read(length)
        state = self.server.state
        state["done_at"] = time.perf_counter()
        state["path"] = self.path
        state["answer"] = payload
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()
        state["done"].set()


class QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # the function is killed while its second poll waits: expected


def one_run(binary, env):
    server = QuietServer(("127.0.0.1", 0), RuntimeApi)
    server.daemon_threads = True
    server.state = {"event": webhook_event(), "next_at": None, "done": threading.Event()}
    threading.Thread(target=server.serve_forever, daemon=True).start()
    run_env = dict(env)
    run_env["AWS_LAMBDA_RUNTIME_API"] = f"127.0.0.1:{server.server_address[1]}"
    start = time.perf_counter()
    proc = subprocess.Popen([str(binary)], env=run_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ok = server.state["done"].wait(30)
    proc.kill()
    _, err = proc.communicate()
    server.shutdown()
    state = server.state
    if not ok or not state["path"].endswith("/response"):
        sys.exit(f"the function did not answer: {state.get('path')} {state.get('answer')!r}\n{err.decode()}")
    answer = json.loads(state["answer"])
    if answer.get("statusCode") != 200:
        sys.exit(f"the function answered {answer}")
    return (state["next_at"] - start) * 1000, (state["done_at"] - start) * 1000


def warm_mix(n):
    """n events: GitHub's example payloads of the demo's commonest kinds, jobs twice."""
    paths = []
    for name, times in (("workflow_job", 2), ("workflow_run", 1), ("pull_request", 1)):
        paths += [(name, p) for p in sorted((FIXTURES / name).glob("*.json"))] * times
    return [webhook_event(*paths[i % len(paths)]) for i in range(n)]


def cpu_seconds(pid):
    """User + system CPU time of a process so far (/proc/PID/stat fields 14 and 15)."""
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class WarmApi(http.server.BaseHTTPRequestHandler):
    """Many invocations in one process: the CPU it used after the first answer."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        state = self.server.state
        if not state["events"]:
            time.sleep(30)
            return
        hand_over(self, state["events"].pop(0), str(uuid.uuid4()))

    def do_POST(self):
        payload = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        state = self.server.state
        answer = json.loads(payload) if self.path.endswith("/response") else {}
        state["answers"].append((self.path, answer.get("statusCode")))
        if len(state["answers"]) == 1:
            state["cpu_first"] = cpu_seconds(state["pid"])
            state["t_first"] = time.perf_counter()
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()
        if not state["events"]:
            state["cpu_last"] = cpu_seconds(state["pid"])
            state["t_last"] = time.perf_counter()
            state["done"].set()


def warm_run(binary, env, n):
    server = QuietServer(("127.0.0.1", 0), WarmApi)
    server.daemon_threads = True
    server.state = {"events": warm_mix(n + 1), "answers": [], "done": threading.Event()}
    threading.Thread(target=server.serve_forever, daemon=True).start()
    run_env = dict(env)
    run_env["AWS_LAMBDA_RUNTIME_API"] = f"127.0.0.1:{server.server_address[1]}"
    proc = subprocess.Popen([str(binary)], env=run_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    server.state["pid"] = proc.pid
    ok = server.state["done"].wait(600)
    proc.kill()
    _, err = proc.communicate()
    server.shutdown()
    state = server.state
    failed = [a for a in state["answers"] if a[1] != 200]
    if not ok or failed:
        sys.exit(f"the function did not answer every delivery with 200: {failed[:5]}\n{err.decode()[-2000:]}")
    cpu = (state["cpu_last"] - state["cpu_first"]) / n
    wall = (state["t_last"] - state["t_first"]) / n
    return cpu, wall


def main():
    binary = target_dir() / "aws" / "webhook"
    if os.environ.get("BENCH_NO_BUILD") != "1":
        subprocess.run(["cargo", "build", "--profile", "aws", "-p", "webhook"], cwd=ROOT, check=True)
    moto, endpoint = start_moto()
    try:
        env = {"PATH": os.environ["PATH"], "RUST_LOG": "warn"}
        env.update(aws_env(endpoint))
        env.update(create_resources(endpoint))
        env.update(
            {
                "AWS_LAMBDA_FUNCTION_NAME": "webhook",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
                "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/webhook",
            }
        )
        if WARM:
            cpu, wall = warm_run(binary, env, WARM)
            print(f"webhook ({binary}), one process, {WARM} warm deliveries after the first, against moto on loopback:")
            print(f"  CPU (user + system) per delivery: {cpu * 1000:6.2f} ms   wall per delivery: {wall * 1000:6.1f} ms (moto's)")
            return
        one_run(binary, env)  # warm the page cache and moto
        runs = [one_run(binary, env) for _ in range(RUNS)]
    finally:
        moto.kill()
    inits = sorted(r[0] for r in runs)
    firsts = sorted(r[1] for r in runs)
    size = binary.stat().st_size
    print(f"webhook ({binary}, {size / 1e6:.1f} MB), {RUNS} cold starts against moto on loopback:")
    print(f"  init  (start -> first poll):     median {statistics.median(inits):6.1f} ms, max {inits[-1]:6.1f} ms")
    print(f"  first (start -> first response): median {statistics.median(firsts):6.1f} ms, max {firsts[-1]:6.1f} ms")


if __name__ == "__main__":
    main()
