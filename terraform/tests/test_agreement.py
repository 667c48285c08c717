#!/usr/bin/env python3
"""The Terraform and the Rust workspace agree.

    test_agreement.py [--repo DIR]   check the real workspace against terraform/
    test_agreement.py --self-test    show that the checker catches what it should

What is checked, for every Lambda crate (Cargo packages under functions/ that
link a Lambda runtime) and for the Fargate batch job:

1. Deployment. `make lambdas` (functions/scripts/build-lambdas.sh) builds
   exactly the Lambda crates as arm64 zips. Each Lambda crate has a
   `./modules/lambda-function` call, or an instance of one with `for_each`
   (over `toset()` of keys, settings from `local.M[each.key]`; keys behind a
   switch, `toset(concat([...], var.x ? [...] : []))`, are checked as deployed),
   in the root module (terraform/*.tf, one file per concern) whose zip_path is `<lambda_zip_dir>/<crate>/bootstrap.zip`
   (what `make lambdas` leaves), the module deploys handler `bootstrap` on
   `provided.al2023` / arm64, and no module call deploys a crate that does not
   exist. The batch job's module builds the `batch-job` container.

2. Environment. The variables a function reads are the string literals of the
   form OCTOSCOPE_*, GITHUB_*, RUST_LOG in its code path: the crate's src/
   (test modules left out) plus the impl blocks of the AWS configuration
   loader, `octoscope::config::aws` (shared/src/config/aws.rs), it calls
   (`WebhookConfig::load` -> `impl WebhookConfig`, and, to a fixed point,
   every config type and helper fn those blocks call), and the fns of
   shared/src/adapters/aws/mod.rs it calls by path (`aws::init_logging()`),
   and the impl blocks of the settings both modes share that the functions
   load themselves (SHARED_CONFIG_TYPES of shared/src/config/mod.rs:
   `NotifyConfig::load`). Every such name must be
   a key of the module call's `environment` map (values may be null when a
   setting is optional; the map may be written as `merge()` of local maps and
   an object, as the root does with local.common_environment and
   local.github_environment; a policy statement may be a local object, as
   local.store_read_write) and every key there must be read by the code. Names in
   TRANSLATED are the one-machine names that AWS mode fills from an SSM
   parameter value, never from the environment.

3. IAM. The AWS actions a function's code can call are found from the AWS SDK
   calls in the code it links: the crate's src/ plus every file of
   shared/src/ that is compiled with the octoscope-core features the crate
   enables (from `cargo metadata`: a module declared under
   `#[cfg(feature = "x")]` is linked only when feature x is on, features
   expanded through octoscope-core's feature table). A call is a zero-argument
   method call `.op()` whose name is in SDK_ACTIONS for an aws_sdk_<service>
   crate the file (or its module directory) uses; SDK_ACTIONS maps it to the
   IAM action(s) AWS authorises it with (e.g. `.send_message_batch()` ->
   sqs:SendMessage, since SQS batch calls are authorised per message).
   Requests of the OpenSearch adapter (a file declaring its transport
   module, `#[path = "opensearch_http.rs"]`: `.client.send(Method::Post, ...)`)
   map through OPENSEARCH_HTTP to the es:ESHttp<Method> of the HTTP method
   they send. SSM's GetParameter, sent on the same signed client without
   the SDK (`"AmazonSSM.GetParameter"`, its x-amz-target, in
   adapters/aws/ssm.rs), maps through SDK_ACTIONS as `.get_parameter()`.
   Then:
   - every action granted in the function's policy_statements (and by the
     module itself) is used: by a call, as IMPLIED by a call (the KMS use of
     encrypted resources, iam:PassRole for RunTask), or by the PLATFORM on the
     function's behalf (log delivery, X-Ray, environment decryption, the SQS
     event source mapping's polling);
   - every action a linked call needs is granted, or is listed in NOT_GRANTED
     with the reason the function never reaches that call (stale entries fail);
   - no granted action is "*" or "service:*".
   Every `resources = ["*"]` in terraform/ must carry a comment saying why.

4. Event source. A crate that answers SqsBatchResponse has an SQS event source
   mapping, one that answers DynamoDbEventResponse a DynamoDB stream event
   source mapping (event_source_arn a table's stream_arn, bisecting on
   errors, with an on-failure destination), each with
   function_response_types = ["ReportBatchItemFailures"]. The stream filters
   pass exactly the entities the code follows: local.rollup_entities
   (ledger_stream.tf) those rollups.rs facts_of counts, local.search_entities
   (search.tf) those search.rs searchable_change reads.

5. Cost. `make bench-cost` prices the webhook at the memory Terraform gives
   it: pricing.rs WEBHOOK_MEMORY_MB is functions.webhook's memory_size default.
"""

from __future__ import annotations

import argparse
import ast
import copy
import json
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

# --------------------------------------------------------------------------- tables

# (sdk service crate suffix, operation method) -> IAM actions that authorise it.
SDK_ACTIONS: dict[tuple[str, str], list[str]] = {
    ("dynamodb", "get_item"): ["dynamodb:GetItem"],
    ("dynamodb", "batch_get_item"): ["dynamodb:BatchGetItem"],
    ("dynamodb", "query"): ["dynamodb:Query"],
    ("dynamodb", "scan"): ["dynamodb:Scan"],
    ("dynamodb", "put_item"): ["dynamodb:PutItem"],
    ("dynamodb", "update_item"): ["dynamodb:UpdateItem"],
    ("dynamodb", "delete_item"): ["dynamodb:DeleteItem"],
    ("dynamodb", "batch_write_item"): ["dynamodb:BatchWriteItem"],
    # Transactions have no IAM action of their own: each item is authorised
    # by the action it performs.
    ("dynamodb", "transact_write_items"): [
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:ConditionCheckItem",
    ],
    ("dynamodb", "transact_get_items"): ["dynamodb:GetItem"],
    ("dynamodb", "create_table"): ["dynamodb:CreateTable"],
    ("dynamodb", "describe_table"): ["dynamodb:DescribeTable"],
    ("dynamodb", "update_time_to_live"): ["dynamodb:UpdateTimeToLive"],
    ("dynamodb", "delete_table"): ["dynamodb:DeleteTable"],
    ("s3", "put_object"): ["s3:PutObject"],
    ("s3", "get_object"): ["s3:GetObject"],
    ("s3", "head_object"): ["s3:GetObject"],
    ("s3", "list_objects_v2"): ["s3:ListBucket"],
    ("s3", "delete_object"): ["s3:DeleteObject"],
    ("s3", "copy_object"): ["s3:GetObject", "s3:PutObject"],
    ("s3", "create_multipart_upload"): ["s3:PutObject"],
    ("s3", "create_bucket"): ["s3:CreateBucket"],
    ("sqs", "send_message"): ["sqs:SendMessage"],
    ("sqs", "send_message_batch"): ["sqs:SendMessage"],
    ("sqs", "receive_message"): ["sqs:ReceiveMessage"],
    ("sqs", "delete_message"): ["sqs:DeleteMessage"],
    ("sqs", "delete_message_batch"): ["sqs:DeleteMessage"],
    ("sqs", "change_message_visibility"): ["sqs:ChangeMessageVisibility"],
    ("sqs", "change_message_visibility_batch"): ["sqs:ChangeMessageVisibility"],
    ("sqs", "get_queue_attributes"): ["sqs:GetQueueAttributes"],
    ("sqs", "get_queue_url"): ["sqs:GetQueueUrl"],
    ("sqs", "create_queue"): ["sqs:CreateQueue"],
    ("ecs", "run_task"): ["ecs:RunTask"],
    ("ecs", "describe_tasks"): ["ecs:DescribeTasks"],
    ("ecs", "list_tasks"): ["ecs:ListTasks"],
    ("ecs", "stop_task"): ["ecs:StopTask"],
    ("ecs", "tag_resource"): ["ecs:TagResource"],
    ("firehose", "put_record"): ["firehose:PutRecord"],
    ("firehose", "put_record_batch"): ["firehose:PutRecordBatch"],
    ("ssm", "get_parameter"): ["ssm:GetParameter"],
    ("ssm", "get_parameters"): ["ssm:GetParameters"],
    ("ssm", "get_parameters_by_path"): ["ssm:GetParametersByPath"],
    ("ssm", "put_parameter"): ["ssm:PutParameter"],
    ("opensearch", "describe_domain"): ["es:DescribeDomain"],
}

# The OpenSearch adapter's requests (shared/src/adapters/opensearch_http.rs,
# on the SDK's HTTPS client; on AWS SigV4-signed for service `es`): the HTTP
# method of a `.client.send(Method::<M>, ...)` -> its IAM action. Data-plane
# actions are es:ESHttp<Method>, scoped by the request's path (<domain
# ARN>/<index>...). A method missing here is an error, so a new kind of
# request is never left ungranted silently.
OPENSEARCH_HTTP: dict[str, str] = {
    "Head": "es:ESHttpHead",  # HEAD /<index>
    "Get": "es:ESHttpGet",  # GET /<index>/_doc/<id>
    "Put": "es:ESHttpPut",  # PUT /<index>
    "Post": "es:ESHttpPost",  # POST /<index>/_bulk, /<index>/_search
    "Delete": "es:ESHttpDelete",  # DELETE /<index>
}
OPENSEARCH_USE_RE = re.compile(r'#\[path\s*=\s*"opensearch_http\.rs"\]|\buse\s+super::opensearch_http::')
# Requests of an AWS JSON protocol sent without the SDK, on the same signed
# client (the SSM secret reader, shared/src/adapters/aws/ssm.rs: the operation
# `"AmazonSSM.GetParameter"`, its x-amz-target): mapped through SDK_ACTIONS as
# the SDK's `.get_parameter()` would be.
JSON_TARGET_RE = re.compile(r'"AmazonSSM\.(\w+)"')
JSON_TARGET_SERVICE = "ssm"
OPENSEARCH_CALL_RE = re.compile(r"\.client\.send\(Method::(\w+)[,)]")

# action -> actions AWS also checks when that call runs against this stack.
IMPLIED: dict[str, list[str]] = {
    # The stack's resources are encrypted with its KMS key (SSE-KMS).
    "ssm:GetParameter": ["kms:Decrypt"],  # SecureString, with_decryption
    "s3:PutObject": ["kms:GenerateDataKey"],
    "s3:GetObject": ["kms:Decrypt"],
    "sqs:SendMessage": ["kms:GenerateDataKey", "kms:Decrypt"],
    "sqs:ReceiveMessage": ["kms:Decrypt"],
    # RunTask hands the task definition's task and execution roles to ECS.
    "ecs:RunTask": ["iam:PassRole"],
}
# RunTask with tags (`.tags(` in the same file) also needs ecs:TagResource.
RUN_TASK_TAGS = "ecs:TagResource"

# Granted because AWS acts with the function's role, not because its code calls them.
PLATFORM_ALL_LAMBDAS = {
    "logs:CreateLogStream": "the Lambda runtime ships the function's logs",
    "logs:PutLogEvents": "the Lambda runtime ships the function's logs",
    "kms:Decrypt": "Lambda decrypts the environment (encrypted with the stack's key) with the role",
    "xray:PutTraceSegments": "active X-Ray tracing",
    "xray:PutTelemetryRecords": "active X-Ray tracing",
}
PLATFORM_SQS_EVENT_SOURCE = {
    "sqs:ReceiveMessage": "the SQS event source mapping polls with the function's role",
    "sqs:DeleteMessage": "the event source mapping deletes what the function processed",
    "sqs:GetQueueAttributes": "the event source mapping reads the queue's attributes",
    "kms:Decrypt": "messages on the SSE-KMS queue are decrypted for the poller",
}

PLATFORM_STREAM_EVENT_SOURCE = {
    "dynamodb:DescribeStream": "the DynamoDB stream event source mapping reads the stream with the function's role",
    "dynamodb:GetRecords": "the DynamoDB stream event source mapping reads the stream with the function's role",
    "dynamodb:GetShardIterator": "the DynamoDB stream event source mapping reads the stream with the function's role",
    "dynamodb:ListStreams": "the DynamoDB stream event source mapping reads the stream with the function's role",
    "sqs:SendMessage": "the event source mapping sends a batch that kept failing to its on-failure queue",
    "kms:GenerateDataKey": "the on-failure queue is SSE-KMS: sending to it makes a data key",
    "kms:Decrypt": "the table's stream is encrypted with the stack's key",
}

# One-machine variable names that AWS mode resolves from an SSM parameter's
# value (the key is read from the parameter named by the value here).
TRANSLATED = {
    "GITHUB_TOKEN": "GITHUB_TOKEN_PARAM",
    "GITHUB_APP_PRIVATE_KEY": "GITHUB_APP_PRIVATE_KEY_PARAM",
    "GITHUB_WEBHOOK_SECRET": "GITHUB_WEBHOOK_SECRET_PARAM",
    "OCTOSCOPE_API_TOKENS": "OCTOSCOPE_API_TOKENS_PARAM",
}
# Set per run by the dispatcher's RunTask override, not by Terraform.
SET_AT_RUN_TIME = {"batch-job": {"OCTOSCOPE_JOB_ID"}}

_LINKED_NOT_CALLED = "linked with the Store adapter but"
# Actions a linked call would need that a function deliberately lacks, and why
# it never reaches that call. An entry whose action is not linked fails (stale).
_STORE_ADMIN = {
    "dynamodb:CreateTable": "create_table() is the test harness's table setup; the table is Terraform's",
    "dynamodb:UpdateTimeToLive": "create_table() is the test harness's table setup; TTL is set by Terraform",
    "dynamodb:Scan": "the Scans are Store::reset_entities (`octoscope replay` alone, which is not deployed) and DynamoStore::upgrade (the batch job's `upgrade` job)",
}
NOT_GRANTED: dict[str, dict[str, str]] = {
    "webhook": {
        **_STORE_ADMIN,
    },
    "api": {
        **_STORE_ADMIN,
        "dynamodb:PutItem": "the api writes only rules and notifications (RuleStore, NotificationSink on DynamoDB: conditional UpdateItem, DeleteItem of a rule); every other route reads",
        "dynamodb:BatchWriteItem": "the api writes only rules and notifications (RuleStore, NotificationSink on DynamoDB: conditional UpdateItem, DeleteItem of a rule); every other route reads",
        "es:ESHttpHead": "the api only searches the index (OpenSearchIndex::at, no ensure_index): creating it (HEAD, PUT) is the indexer's, at its init",
        "es:ESHttpPut": "the api only searches the index (OpenSearchIndex::at, no ensure_index): creating it (HEAD, PUT) is the indexer's, at its init",
    },
    "integrity-check": {
        **{k: v for k, v in _STORE_ADMIN.items() if k != "dynamodb:Scan"},
        "es:ESHttpHead": "the check only reads and writes the index (OpenSearchIndex::at, no ensure_index): creating it (HEAD, PUT) is the indexer's, at its init",
        "es:ESHttpPut": "the check only reads and writes the index (OpenSearchIndex::at, no ensure_index): creating it (HEAD, PUT) is the indexer's, at its init",
    },
    "dispatcher": {
        **_STORE_ADMIN,
        "sqs:SendMessage": "SqsGapQueue (the producer) is the integrity check's; the dispatcher only parses messages the event source delivers",
    },
    "batch-job": {k: v for k, v in _STORE_ADMIN.items() if k != "dynamodb:Scan"},
    "indexer": {
        **_STORE_ADMIN,
        **{
            a: "the indexer only reads the table (SearchLookups: GetItem, BatchGetItem of aliases, Query of the registry); its writes go to the search index"
            for a in ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem")
        },
    },
    "notifier": {
        **_STORE_ADMIN,
        **{
            a: "the notifier reads a notification and its rule (GetItem) and records attempts and a disabled target with conditional UpdateItems (Sender::send_one over NotificationLog, RuleStore); it never lists, deletes or batch-writes"
            for a in ("dynamodb:PutItem", "dynamodb:Query", "dynamodb:BatchGetItem", "dynamodb:BatchWriteItem", "dynamodb:DeleteItem")
        },
    },
    "ledger-stream": {
        **_STORE_ADMIN,
        "dynamodb:PutItem": "DynamoStore::apply_stream writes page items (BatchWriteItem), counters and activity (UpdateItem); mark_rollups writes its mark and settle_rollups cells and mark deletions with BatchWriteItem only (the settle's lock: UpdateItem, released with DeleteItem, granted)",
    },
}

LAMBDA_MODULE = "./modules/lambda-function"
BATCH_MODULE = "./modules/batch"
LAMBDA_RUNTIMES = {"lambda_runtime", "lambda_http"}
ENV_RE = re.compile(r'"((?:OCTOSCOPE|GITHUB)_[A-Z0-9_]+|RUST_LOG)"')
CALL_RE = re.compile(r"\.\s*([a-z_][a-z0-9_]*)\s*\(\s*\)")
SDK_RE = re.compile(r"\baws_sdk_([a-z0-9]+)\b")


# --------------------------------------------------------------------------- rust side


def strip_tests(src: str) -> str:
    """Drop `#[cfg(test)] mod ... { }` blocks (brace-matched)."""
    out, i = [], 0
    for m in re.finditer(r"#\[cfg\(test\)\]\s*(pub\s+)?mod\s+\w+\s*\{", src):
        if m.start() < i:
            continue
        out.append(src[i : m.start()])
        j = block_end(src, m.end() - 1)
        i = j
    out.append(src[i:])
    return "".join(out)


def block_end(src: str, open_brace: int) -> int:
    """Index after the brace matching src[open_brace] (strings and comments are rare enough to ignore braces in)."""
    depth = 0
    k = open_brace
    in_str = False
    while k < len(src):
        c = src[k]
        if in_str:
            if c == "\\":
                k += 2
                continue
            if c == '"':
                in_str = False
        elif c == '"':
            in_str = True
        elif src.startswith("//", k):
            nl = src.find("\n", k)
            k = len(src) if nl < 0 else nl
            continue
        elif c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return k + 1
        k += 1
    return len(src)


@dataclass
class Crate:
    name: str
    src: str  # the crate's own non-test sources, concatenated
    linked: dict[str, str]  # path -> non-test source of every linked shared file
    deps: set[str] = field(default_factory=set)

    @property
    def is_lambda(self) -> bool:
        return bool(self.deps & LAMBDA_RUNTIMES)


def read_rs(d: Path) -> str:
    return "\n".join(strip_tests(p.read_text()) for p in sorted(d.rglob("*.rs")))


def gated_modules(shared_src: Path) -> dict[Path, str]:
    """Module paths (file or directory, without extension) -> the feature that gates them."""
    gated = {}
    for f in shared_src.rglob("*.rs"):
        text = f.read_text()
        for m in re.finditer(r'#\[cfg\(feature\s*=\s*"([\w-]+)"\)\]\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;', text):
            base = f.parent if f.name in ("mod.rs", "lib.rs") else f.parent / f.stem
            gated[base / m.group(2)] = m.group(1)
    return gated


def expand_features(enabled: set[str], table: dict[str, list[str]]) -> set[str]:
    todo, out = list(enabled), set()
    while todo:
        f = todo.pop()
        if f in out or f.startswith("dep:"):
            continue
        out.add(f)
        todo += [x for x in table.get(f, []) if "/" not in x]
    return out


def linked_shared_files(shared_src: Path, features: set[str]) -> dict[str, str]:
    gated = gated_modules(shared_src)
    files = {}
    for f in sorted(shared_src.rglob("*.rs")):
        off = False
        for base, feat in gated.items():
            if feat in features:
                continue
            if f == base.with_suffix(".rs") or base in f.parents:
                off = True
                break
        if not off:
            files[str(f)] = strip_tests(f.read_text())
    return files


def workspace_crates(repo: Path) -> dict[str, Crate]:
    out = subprocess.run(
        ["cargo", "metadata", "--no-deps", "--format-version", "1"],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    meta = json.loads(out)
    core = next(p for p in meta["packages"] if p["name"] == "octoscope-core")
    shared_src = Path(core["manifest_path"]).parent / "src"
    crates = {}
    for p in meta["packages"]:
        manifest = Path(p["manifest_path"])
        rel = manifest.parent.relative_to(repo).as_posix()
        if not (rel.startswith("functions/") or rel == "batch-job"):
            continue
        dep = next((d for d in p["dependencies"] if d["name"] == "octoscope-core" and d["kind"] is None), None)
        feats = set(dep["features"]) if dep else set()
        if dep and dep["uses_default_features"]:
            feats |= set(core["features"].get("default", []))
        feats = expand_features(feats, core["features"])
        crates[p["name"]] = Crate(
            name=p["name"],
            src=read_rs(manifest.parent / "src"),
            linked=linked_shared_files(shared_src, feats) if dep else {},
            deps={d["name"] for d in p["dependencies"] if d["kind"] is None},
        )
    return crates


def sdk_actions(files: dict[str, str]) -> dict[str, set[str]]:
    """IAM action -> the files whose SDK calls need it."""
    by_dir: dict[str, set[str]] = {}
    for path, text in files.items():
        by_dir.setdefault(str(Path(path).parent), set()).update(SDK_RE.findall(text))
    found: dict[str, set[str]] = {}
    for path, text in files.items():
        services = set(SDK_RE.findall(text)) or by_dir.get(str(Path(path).parent), set())
        for op in CALL_RE.findall(text):
            for svc in services:
                for action in SDK_ACTIONS.get((svc, op), []):
                    found.setdefault(action, set()).add(path)
        if "ecs" in services and ".run_task()" in re.sub(r"\s+", "", text) and ".tags(" in text:
            found.setdefault(RUN_TASK_TAGS, set()).add(path)
        for op in JSON_TARGET_RE.findall(text):
            snake = re.sub(r"(?<!^)(?=[A-Z])", "_", op).lower()
            for action in SDK_ACTIONS.get((JSON_TARGET_SERVICE, snake), [f"(no IAM action known for the SSM request {op}: add it to SDK_ACTIONS)"]):
                found.setdefault(action, set()).add(path)
        if OPENSEARCH_USE_RE.search(text):
            for call in OPENSEARCH_CALL_RE.findall(re.sub(r"\s+", "", text)):
                action = OPENSEARCH_HTTP.get(call, f"(no IAM action known for the OpenSearch request method {call}: add it to OPENSEARCH_HTTP)")
                found.setdefault(action, set()).add(path)
    return found


# The AWS configuration loader, `octoscope::config::aws` (either file layout of
# that module), and the AWS adapters' shared module.
CONFIG_AWS = ("shared/src/config/aws.rs", "shared/src/config/aws/mod.rs")
AWS_ADAPTERS = "shared/src/adapters/aws/mod.rs"
# Settings of both modes (shared/src/config/mod.rs) that AWS functions load
# as they are (the api, integrity check, batch job and notifier:
# `NotifyConfig::load(env)`): their impl blocks join the configuration sources.
SHARED_CONFIG = "shared/src/config/mod.rs"
SHARED_CONFIG_TYPES = ("NotifyConfig",)


def config_aws_files(repo: Path) -> list[Path]:
    """The files of `octoscope::config::aws`: config/aws.rs, or config/aws/ as a directory module."""
    for rel in CONFIG_AWS:
        f = repo / rel
        if f.exists():
            return [f] if f.name != "mod.rs" else sorted(f.parent.rglob("*.rs"))
    return []


def config_sources(repo: Path) -> str:
    """The AWS configuration loader (`config::aws`) and the AWS adapters' shared
    module (SDK config, logging: `aws::init_logging()` reads RUST_LOG), whose
    fns a function calls by path."""
    files = config_aws_files(repo) + [repo / AWS_ADAPTERS]
    return "\n".join([f.read_text() for f in files] + shared_config_impls(repo))


def shared_config_impls(repo: Path) -> list[str]:
    """The `impl T { }` blocks of SHARED_CONFIG_TYPES in shared/src/config/mod.rs."""
    f = repo / SHARED_CONFIG
    if not f.exists():
        return []
    src = strip_tests(f.read_text())
    out = []
    for t in SHARED_CONFIG_TYPES:
        for m in re.finditer(r"^impl\s+" + t + r"\s*\{", src, re.M):
            out.append(src[m.start() : block_end(src, m.end() - 1)])
    return out


def missing_config(repo: Path) -> str | None:
    """Why the configuration sources cannot be read, or None."""
    if not config_aws_files(repo):
        return f"{' or '.join(CONFIG_AWS)} is missing: the functions' configuration loader (octoscope::config::aws)"
    if not (repo / AWS_ADAPTERS).exists():
        return f"{AWS_ADAPTERS} is missing: the AWS adapters' shared module (SDK config, logging)"
    return None


def config_items(config_src: str) -> dict[str, str]:
    """Name -> source of each `impl Name { }` block and top-level `fn name()` of the configuration sources."""
    items: dict[str, str] = {}
    for m in re.finditer(r"^impl\s+(\w+)\s*\{", config_src, re.M):
        items[m.group(1)] = items.get(m.group(1), "") + config_src[m.start() : block_end(config_src, m.end() - 1)]
    for m in re.finditer(r"^(?:pub(?:\([^)]*\))?\s+)?(?:async\s+|const\s+)*fn\s+(\w+)[^{]*\{", config_src, re.M):
        items["fn " + m.group(1)] = config_src[m.start() : block_end(config_src, m.end() - 1)]
    return items


COMMENT_LINE_RE = re.compile(r"^[ \t]*//[^\n]*$", re.M)


def env_reads(crate: Crate, config_src: str) -> set[str]:
    """Environment names the crate's code path reads."""
    items = config_items(strip_tests(config_src))
    text, seen = crate.src, set()
    while True:
        new = set()
        # Calls are looked for outside comment lines: a doc comment's "stream (new
        # and old images)" is no call of fn stream().
        code = COMMENT_LINE_RE.sub("", text)
        for name in items:
            if name in seen:
                continue
            if name.startswith("fn "):
                fn = re.escape(name[3:])
                if re.search(r"(?<![\w.:])" + fn + r"\s*\(", code) or re.search(r"\baws::" + fn + r"\s*\(", code):
                    new.add(name)
            elif re.search(r"\b" + name + r"::", code) or re.search(r"\b" + name + r"\b", code) and name.endswith("Params"):
                new.add(name)
        if not new:
            break
        seen |= new
        text += "\n".join(items[n] for n in new)
    return set(ENV_RE.findall(text))


# --------------------------------------------------------------------------- terraform side


def load_hcl(d: Path) -> dict:
    """Every block of the module in `d`, as tf_config.py (`make tf-check`) reads it."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    from tf_config import load_module

    return load_module(d)


def one(v):
    return v[0] if isinstance(v, list) and len(v) == 1 else v


def resolve_list(expr, locals_: dict) -> list[str] | None:
    """A literal list, `${local.x}` or `${concat(local.a, local.b, ...)}` -> list of strings."""
    if isinstance(expr, list) and len(expr) == 1 and (isinstance(expr[0], list) or str(expr[0]).startswith("${")):
        expr = expr[0]  # top-level attributes come wrapped in a list
    if isinstance(expr, list):
        return [e for e in expr if isinstance(e, str)]
    if not isinstance(expr, str):
        return None
    m = re.fullmatch(r"\$\{local\.(\w+)\}", expr)
    if m:
        return resolve_list(locals_.get(m.group(1)), locals_)
    m = re.fullmatch(r"\$\{concat\(([^)]*)\)\}", expr)
    if m:
        out = []
        for part in m.group(1).split(","):
            part = part.strip()
            sub = resolve_list("${" + part + "}", locals_) if part.startswith("local.") else None
            if sub is None:
                return None
            out += sub
        return out
    return None


def split_args(s: str) -> list[str]:
    """Top-level comma-separated arguments of a call's argument string."""
    parts, depth, quote, cur = [], 0, None, []
    for c in s:
        if quote:
            if c == quote:
                quote = None
        elif c in "'\"":
            quote = c
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c == "," and depth == 0:
            parts.append("".join(cur).strip())
            cur = []
            continue
        cur.append(c)
    if "".join(cur).strip():
        parts.append("".join(cur).strip())
    return parts


def resolve_keys(expr, locals_: dict) -> set[str] | None:
    """The keys of a map: a literal map, `local.x`, or `merge()` of those (as
    `environment = merge(local.common_environment, { ... })` writes it).
    None when the expression is anything else."""
    expr = one(expr)
    if isinstance(expr, dict):
        return {k for k in expr if not k.startswith("__")}
    if not isinstance(expr, str):
        return None
    inner = expr[2:-1].strip() if expr.startswith("${") and expr.endswith("}") else expr.strip()
    m = re.fullmatch(r"local\.(\w+)", inner)
    if m:
        return resolve_keys(locals_.get(m.group(1)), locals_) if m.group(1) in locals_ else None
    if inner.startswith("{") and inner.endswith("}"):
        # An object inside an expression comes back from hcl2 as a Python dict's repr.
        try:
            obj = ast.literal_eval(inner)
        except (ValueError, SyntaxError):
            return None
        return {k for k in obj if isinstance(k, str)} if isinstance(obj, dict) else None
    m = re.fullmatch(r"merge\((.*)\)", inner, re.S)
    if m:
        keys: set[str] = set()
        for arg in split_args(m.group(1)):
            sub = resolve_keys(arg, locals_)
            if sub is None:
                return None
            keys |= sub
        return keys
    return None


def resolve_object(expr, locals_: dict) -> dict | None:
    """An object, or `local.x` naming one: a policy statement (as `store =
    local.store_read_write` shares the store's), a function's settings."""
    expr = one(expr)
    if isinstance(expr, dict):
        return expr
    m = re.fullmatch(r"\$\{local\.(\w+)\}", expr) if isinstance(expr, str) else None
    if m and m.group(1) in locals_:
        return resolve_object(locals_[m.group(1)], locals_)
    return None


def instances(name: str, body: dict, locals_: dict) -> list[tuple[str, dict]] | None:
    """A module call's instances as (address, arguments): the call itself, or,
    with `for_each` over `toset([...])` of keys (or an object of objects), one
    per key with `local.M[each.key].X` (`each.value.X`) and `each.key` (also as
    `replace(each.key, "_", "-")`) put in. None when anything is left unresolved."""
    if "for_each" not in body:
        return [(name, body)]
    each = one(body["for_each"])
    if isinstance(each, dict):
        values = {k: v for k, v in each.items() if not k.startswith("__")}
    else:
        keys = toset_keys(each)
        if keys is None:
            return None
        values = {k: None for k in keys}
    out = []
    for key, ref in values.items():
        args = {}
        for arg, expr in body.items():
            e = one(expr)
            m = re.fullmatch(r"\$\{(?:each\.value|local\.(\w+)\[each\.key\])\.(\w+)\}", e) if isinstance(e, str) else None
            if m:
                value = resolve_object(ref if m.group(1) is None else (resolve_object(f"${{local.{m.group(1)}}}", locals_) or {}).get(key), locals_)
                if value is None or m.group(2) not in value:
                    return None
                args[arg] = value[m.group(2)]
            elif isinstance(e, str) and "each.key" in e:
                e = e.replace('${replace(each.key, "_", "-")}', key.replace("_", "-")).replace("${each.key}", key)
                # A template wrapped whole (`${"…"}`) is its text.
                args[arg] = e[3:-2] if e.startswith('${"') and e.endswith('"}') else e
            else:
                args[arg] = expr
        out.append((f'{name}["{key}"]', args))
    return out


def toset_keys(each) -> list[str] | None:
    """The keys of `toset([...])`, of `toset(var.x ? [...] : [...])` or of
    `toset(concat([...], var.x ? [...] : [], ...))` (instances switched on by a
    variable): every key that any setting of the switch deploys, so a
    switched-off function is checked all the same."""
    if not isinstance(each, str):
        return None
    quoted = r"['\"]([\w-]+)['\"]"
    m = re.fullmatch(r"\$\{toset\(\[(.*)\]\)\}", each)
    if m:
        return re.findall(quoted, m.group(1))
    m = re.fullmatch(r"\$\{toset\(var\.\w+\s*\?\s*\[([^\]]*)\]\s*:\s*\[([^\]]*)\]\)\}", each)
    if m:
        return list(dict.fromkeys(re.findall(quoted, m.group(1)) + re.findall(quoted, m.group(2))))
    m = re.fullmatch(r"\$\{toset\(concat\((.*)\)\)\}", each, re.S)
    if not m:
        return None
    keys: list[str] = []
    for arg in split_args(m.group(1)):
        lit = re.fullmatch(r"\[(.*)\]", arg.strip(), re.S) or re.fullmatch(r"var\.\w+\s*\?\s*\[(.*)\]\s*:\s*\[\]", arg.strip(), re.S)
        if not lit:
            return None
        keys += re.findall(quoted, lit.group(1))
    return keys


@dataclass
class Deployed:
    module: str
    zip_path: str | None
    environment: set[str]
    statements: dict[str, list[str]]  # statement key -> actions
    is_lambda: bool


def terraform_side(tf: Path) -> tuple[dict[str, Deployed], dict, list[str]]:
    root = load_hcl(tf)
    locals_ = {k: v for entry in root.get("locals", []) for k, v in entry.items()}
    errors: list[str] = []
    deployed: dict[str, Deployed] = {}
    for entry in root.get("module", []):
        for call, call_body in entry.items():
            source = one(call_body.get("source"))
            if source not in (LAMBDA_MODULE, BATCH_MODULE):
                continue
            each = instances(call, call_body, locals_)
            if each is None:
                errors.append(f"module {call}: for_each must be toset() of keys (settings as local.M[each.key].X) or an object of objects (each.value.X)")
                continue
            for name, body in each:
                deployed[name] = deployed_from(name, body, source, locals_, errors)
    return deployed, root, errors


def deployed_from(name: str, body: dict, source: str, locals_: dict, errors: list[str]) -> Deployed:
    """What one module instance deploys: its zip, environment keys and statements."""
    env = resolve_keys(body.get("environment"), locals_) if "environment" in body else set()
    if env is None:
        errors.append(f"module {name}: environment must be a map, a local map, or merge() of those")
        env = set()
    stmts_key = "policy_statements" if source == LAMBDA_MODULE else "task_policy_statements"
    stmts = {}
    for key, st in (one(body.get(stmts_key)) or {}).items():
        if key.startswith("__"):
            continue
        st = resolve_object(st, locals_)
        if st is None:
            errors.append(f"module {name}: statement {key} must be an object or a local one")
            st = {}
        actions = resolve_list(st.get("actions"), locals_)
        if actions is None:
            errors.append(f"module {name}: statement {key}: actions must be a literal list or local lists")
            actions = []
        stmts[key] = actions
    zip_path = one(body.get("zip_path"))
    return Deployed(
        module=name,
        zip_path=zip_path,
        environment=env,
        statements=stmts,
        is_lambda=source == LAMBDA_MODULE,
    )


def module_fixed_actions(tf: Path) -> set[str]:
    """Actions the lambda-function module grants by itself."""
    mod = load_hcl(tf / LAMBDA_MODULE)
    actions: set[str] = set()
    for s in json_strings(mod.get("data", [])):
        actions.update(re.findall(r"\b(?:logs|kms|xray):[A-Za-z]+\b", s))
    return actions


def json_strings(node) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in json_strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in json_strings(v)]
    return []


def star_resource_comments(tf: Path) -> list[str]:
    errors = []
    for f in sorted(tf.rglob("*.tf")):
        lines = f.read_text().splitlines()
        for i, line in enumerate(lines):
            if re.search(r'resources\s*=\s*\[\s*"\*"\s*\]', line):
                context = "\n".join(lines[max(0, i - 12) : i])
                if "#" not in context:
                    errors.append(f'{f.relative_to(tf)}:{i + 1}: resources = ["*"] without a comment saying why AWS requires it')
    return errors


# --------------------------------------------------------------------------- the check


def check(crates: dict[str, Crate], config_src: str, tf: Path) -> tuple[list[str], list[str]]:
    """Returns (errors, report lines)."""
    errors: list[str] = []
    report: list[str] = []
    deployed, root, errs = terraform_side(tf)
    errors += errs
    fixed = module_fixed_actions(tf)

    # The lambda module deploys the `make lambdas` artefact as the contract says.
    lam = (tf / LAMBDA_MODULE / "main.tf").read_text()
    for needle in ('handler          = "bootstrap"', 'runtime          = "provided.al2023"', 'architectures    = ["arm64"]'):
        if needle.split("=")[1].strip() not in lam:
            errors.append(f"{LAMBDA_MODULE}: expected {needle.strip()}")

    lambdas = {n: c for n, c in crates.items() if c.is_lambda}

    # `make lambdas` builds exactly these crates, as arm64 zips.
    build = tf.parent / "functions" / "scripts" / "build-lambdas.sh"
    if build.exists():
        text = build.read_text()
        m = re.search(r"FUNCTIONS=\(([^)]*)\)", text)
        built = set(m.group(1).split()) if m else set()
        if m and built != set(lambdas):
            errors.append(f"functions/scripts/build-lambdas.sh builds {sorted(built)}, the Lambda crates are {sorted(lambdas)}")
        for flag in ("--arm64", "--output-format zip"):
            if flag not in text:
                errors.append(f"functions/scripts/build-lambdas.sh: expected cargo lambda build {flag}")
    if not lambdas:
        errors.append("no Lambda crates found under functions/ (packages depending on lambda_runtime or lambda_http)")
    if "batch-job" not in crates:
        errors.append("the batch-job crate (batch-job/Cargo.toml) is missing")

    by_crate: dict[str, Deployed] = {}
    for d in deployed.values():
        if d.is_lambda:
            m = re.search(r"/([\w-]+)/bootstrap\.zip$", d.zip_path or "")
            if not m:
                errors.append(f"module {d.module}: zip_path {d.zip_path!r} is not <dir>/<crate>/bootstrap.zip")
                continue
            if m.group(1) not in lambdas:
                errors.append(f"module {d.module} deploys {m.group(1)}, which is not a Lambda crate of the workspace")
            by_crate[m.group(1)] = d
        else:
            by_crate["batch-job"] = d
    for name in sorted(lambdas):
        if name not in by_crate:
            errors.append(f"Lambda crate {name} has no module \"{name.replace('-', '_')}\" (source {LAMBDA_MODULE}) with zip_path .../{name}/bootstrap.zip")

    esm_targets = set()
    stream_targets = set()
    for entry in root.get("resource", []):
        for rtype, named in entry.items():
            if rtype != "aws_lambda_event_source_mapping":
                continue
            for _, body in named.items():
                m = re.search(r"module\.(\w+(?:\[\"[\w-]+\"\])?)\.", str(one(body.get("function_name"))))
                if m and "stream_arn" in str(one(body.get("event_source_arn"))):
                    stream_targets.add(m.group(1))
                    if one(body.get("bisect_batch_on_function_error")) is not True:
                        errors.append(f"stream event source mapping of module.{m.group(1)}: bisect_batch_on_function_error must be true")
                    if "on_failure" not in str(body.get("destination_config")):
                        errors.append(f"stream event source mapping of module.{m.group(1)}: needs an on_failure destination")
                elif m:
                    esm_targets.add(m.group(1))
                if m:
                    if one(body.get("function_response_types")) != ["ReportBatchItemFailures"] and body.get(
                        "function_response_types"
                    ) != ["ReportBatchItemFailures"]:
                        errors.append(f"event source mapping of module.{m.group(1)}: function_response_types must be [\"ReportBatchItemFailures\"]")

    for name, crate in sorted(crates.items()):
        if not (crate.is_lambda or name == "batch-job"):
            continue
        d = by_crate.get(name)
        if d is None:
            continue
        files = {f"functions/{name}/src": crate.src, **crate.linked}
        if not crate.src.strip() or "fn main" not in crate.src:
            errors.append(f"{name}: the crate has no main yet (src/ holds no code): it cannot be checked")

        # Environment.
        reads = env_reads(crate, config_src)
        needed = set()
        for v in reads:
            if v in TRANSLATED and TRANSLATED[v] in reads:
                continue
            if v in SET_AT_RUN_TIME.get(name, set()):
                continue
            needed.add(v)
        for v in sorted(needed - d.environment):
            errors.append(f"{name}: reads {v} but module {d.module} does not set it")
        for v in sorted(d.environment - reads):
            errors.append(f"{name}: module {d.module} sets {v} but the code never reads it")
        for v in sorted(SET_AT_RUN_TIME.get(name, set())):
            if not any(v in c.src or any(v in t for t in c.linked.values()) for c in crates.values() if c.name == "dispatcher"):
                errors.append(f"{name}: {v} is said to be set at run time by the dispatcher, but the dispatcher's code never names it")

        # IAM.
        used = sdk_actions(files)
        implied = {a for u in used for a in IMPLIED.get(u, [])}
        platform = dict(PLATFORM_ALL_LAMBDAS) if d.is_lambda else {}
        if d.module in esm_targets:
            platform.update(PLATFORM_SQS_EVENT_SOURCE)
            if "SqsBatchResponse" not in crate.src:
                errors.append(f"{name}: has an SQS event source but does not answer SqsBatchResponse (partial batch failures)")
        elif "SqsBatchResponse" in crate.src:
            errors.append(f"{name}: answers SqsBatchResponse but no aws_lambda_event_source_mapping targets module.{d.module}")
        if d.module in stream_targets:
            platform.update(PLATFORM_STREAM_EVENT_SOURCE)
            if "DynamoDbEventResponse" not in crate.src:
                errors.append(f"{name}: has a DynamoDB stream event source but does not answer DynamoDbEventResponse (partial batch failures)")
        elif "DynamoDbEventResponse" in crate.src:
            errors.append(f"{name}: answers DynamoDbEventResponse but no stream event source mapping targets module.{d.module}")

        granted = {a for acts in d.statements.values() for a in acts}
        if d.is_lambda:
            granted_all = granted | fixed
        else:
            granted_all = granted
        for a in sorted(granted_all):
            if a == "*" or a.endswith(":*"):
                errors.append(f"{name}: grants wildcard action {a}")
        for key, acts in sorted(d.statements.items()):
            for a in acts:
                if a not in used and a not in implied and a not in platform:
                    errors.append(f"{name}: statement {key} grants {a}, which no code path of {name} uses")
        if d.is_lambda:
            for a in sorted(fixed):
                if a not in used and a not in implied and a not in platform:
                    errors.append(f"{name}: the lambda-function module grants {a}, which nothing explains")
        exempt = NOT_GRANTED.get(name, {})
        for a in sorted(used):
            if a in granted_all:
                continue
            if a in exempt:
                continue
            where = ", ".join(sorted(Path(p).name for p in used[a]))
            errors.append(f"{name}: linked code calls {a} ({where}) but it is not granted: grant it in module {d.module}, or record in NOT_GRANTED why {name} never reaches that call")
        for a, why in sorted(exempt.items()):
            if a not in used:
                errors.append(f"{name}: NOT_GRANTED lists {a}, which its linked code no longer calls: remove the entry")
            elif a in granted_all:
                errors.append(f"{name}: NOT_GRANTED lists {a}, but module {d.module} grants it")

        report.append(f"{name} (module.{d.module}):")
        report.append(f"  environment (set and read): {', '.join(sorted(d.environment))}")
        report.append(f"  granted by its statements: {', '.join(sorted(granted))}")
        calls = sorted(a for a in used if a in granted_all)
        report.append(f"  of which SDK calls: {', '.join(calls)}")
        report.append(f"  implied by a call or by the platform: {', '.join(sorted(granted_all - set(used)))}")
        if exempt:
            report.append(f"  linked, never reached (NOT_GRANTED): {', '.join(sorted(exempt))}")

    # The Firehose stream the webhook writes the archive through is the one its policy allows.
    root_text = "\n".join(f.read_text() for f in sorted(tf.glob("*.tf")))
    env_stream = re.search(r"OCTOSCOPE_ARCHIVE_STREAM\s*=\s*module\.(\w+)\.stream_name", root_text)
    put_stream = re.search(r'"firehose:PutRecord"[^\]]*\]\s*\n\s*resources\s*=\s*\[module\.(\w+)\.stream_arn\]', root_text)
    if "webhook" in crates and (not env_stream or not put_stream or env_stream.group(1) != put_stream.group(1)):
        errors.append(
            "webhook: OCTOSCOPE_ARCHIVE_STREAM must be module.<m>.stream_name and its firehose:PutRecord "
            f"statement scoped to module.<m>.stream_arn of the same module (found {env_stream and env_stream.group(0)!r}, "
            f"{put_stream and put_stream.group(0)!r})"
        )

    # The stream mapping passes the changes of exactly the entities whose facts the rollup cells follow.
    rollups_rs = tf.parent / "shared/src/adapters/aws/dynamodb/rollups.rs"
    ledger_stream_tf = tf / "ledger_stream.tf"
    if rollups_rs.exists() and ledger_stream_tf.exists():
        body = re.search(r"fn facts_of\(.*?\n\}", rollups_rs.read_text(), re.S)
        followed = set(re.findall(r'"(\w+)"\s*=>', body.group(0))) if body else set()
        local = re.search(r"rollup_entities\s*=\s*\[([^\]]*)\]", ledger_stream_tf.read_text())
        filtered = set(re.findall(r'"(\w+)"', local.group(1))) if local else set()
        if not followed or followed != filtered:
            errors.append(
                f"ledger-stream: local.rollup_entities {sorted(filtered)} (ledger_stream.tf) must be the entities "
                f"rollups.rs facts_of follows {sorted(followed)}: a change the filter drops never reaches the cells"
            )

    # The cost the bench prints is the webhook's at the memory Terraform gives it.
    pricing_rs = tf.parent / "shared/src/adapters/aws/pricing.rs"
    variables_tf = tf / "variables.tf"
    if pricing_rs.exists() and variables_tf.exists():
        priced = re.search(r"pub const WEBHOOK_MEMORY_MB: f64 = ([0-9.]+);", pricing_rs.read_text())
        sized = re.search(r"webhook = optional\(object\(\{\s*memory_size\s*=\s*optional\(number, (\d+)\)", variables_tf.read_text())
        if not priced or not sized or float(priced.group(1)) != float(sized.group(1)):
            errors.append(
                f"webhook: functions.webhook.memory_size defaults to {sized.group(1) if sized else '?'} MB (variables.tf) but "
                f"pricing.rs WEBHOOK_MEMORY_MB is {priced.group(1) if priced else '?'}: make bench-cost would price another size"
            )

    # The indexer's mapping passes the changes of exactly the entities that have search documents.
    # (search.rs as the crates link it: the check also runs on copies of terraform/ elsewhere.)
    search_rs = next(
        (t for c in crates.values() for p, t in c.linked.items() if Path(p).as_posix().endswith("adapters/aws/dynamodb/search.rs")),
        None,
    )
    search_tf = tf / "search.tf"
    if search_rs is not None and search_tf.exists():
        body = re.search(r"fn searchable_change\(.*?\n\}", search_rs, re.S)
        documented = set(re.findall(r'"(\w+)"\s*=>', body.group(0))) if body else set()
        local = re.search(r"search_entities\s*=\s*\[([^\]]*)\]", search_tf.read_text())
        filtered = set(re.findall(r'"(\w+)"', local.group(1))) if local else set()
        if not documented or documented != filtered:
            errors.append(
                f"indexer: local.search_entities {sorted(filtered)} (search.tf) must be the entities "
                f"searchable_change (search.rs) reads {sorted(documented)}: a change the filter drops never reaches the index"
            )

    errors += star_resource_comments(tf)
    return errors, report


def run(repo: Path) -> int:
    tf = repo / "terraform"
    why = missing_config(repo)
    if why:
        print(f"FAIL {why}")
        return 1
    crates = workspace_crates(repo)
    expected = {"webhook", "api", "integrity-check", "dispatcher"}
    missing = sorted(expected - {n for n, c in crates.items() if c.is_lambda})
    errors, report = check(crates, config_sources(repo), tf)
    for m in missing:
        errors.insert(0, f"Lambda crate {m} is missing: expected functions/{m} (a Cargo package with a bin {m} on lambda_runtime/lambda_http)")
    print("\n".join(report))
    for e in errors:
        print(f"FAIL {e}")
    names = sorted(set(expected) | {c.name for c in crates.values() if c.is_lambda or c.name == "batch-job"} | {"batch-job"})
    bad = {n for n in names if any(e.startswith(f"{n}:") or f" {n} " in e or e.endswith(f" {n}") for e in errors)}
    general = [e for e in errors if not any(e.startswith(f"{n}:") for n in names)]
    print(f"agreement: {len(errors)} disagreements ({len(general)} not specific to one deployable)")
    print(f"agreement: {len(names) - len(bad)} passed, {len(bad) + len(general)} failed")
    return 1 if errors else 0


# --------------------------------------------------------------------------- self-test


def self_test(repo: Path) -> int:
    """The checker catches a missing variable, an unused action, a missing
    grant and an undeployed crate; and the SDK scanner maps calls as documented."""
    failures, passed = [], []

    def expect(cond: bool, what: str):
        print(("ok   " if cond else "FAIL ") + what)
        (passed if cond else failures).append(what)

    # 1. The SDK scanner on a snippet.
    snippet = """use aws_sdk_sqs::Client;
        async fn f(c: &Client) { c.send_message_batch().queue_url(u).send().await; c
            .delete_message()
            .send().await; x.iter().query(); }"""
    found = sdk_actions({"a.rs": snippet})
    expect(set(found) == {"sqs:SendMessage", "sqs:DeleteMessage"}, f"scanner: send_message_batch -> sqs:SendMessage, delete_message -> sqs:DeleteMessage, query() outside dynamodb ignored (got {sorted(found)})")
    found = sdk_actions({"b.rs": "use aws_sdk_ecs::types::Tag; client.run_task().tags(tag).send()"})
    expect(set(found) == {"ecs:RunTask", "ecs:TagResource"}, "scanner: run_task() with .tags( -> ecs:RunTask + ecs:TagResource")
    found = sdk_actions({"d/mod.rs": "use aws_sdk_dynamodb::Client;", "d/ops.rs": "self.client.transact_write_items().send()"})
    expect("dynamodb:ConditionCheckItem" in found, "scanner: a file using its module's SDK import; transact_write_items -> per-item actions")
    found = sdk_actions({"os.rs": """#[path = "opensearch_http.rs"]
        mod transport;
        async fn f(&self) { self
            .client
            .send(Method::Head, &path, None).await; self.client.send(Method::Post, &p, Some(b)).await;
            self.client.send(Method::Put, &path, Some(d)).await; self.client.send(Method::Patch, &p, None).await; }""",
        "d.rs": "async fn d(c: &aws_sdk_opensearch::Client) { c.describe_domain().domain_name(n).send().await }"})
    expect(
        {"es:ESHttpHead", "es:ESHttpPost", "es:ESHttpPut", "es:DescribeDomain"} <= set(found)
        and any("OPENSEARCH_HTTP" in a and "Patch" in a for a in found),
        f"scanner: OpenSearch requests -> es:ESHttp<Method>, an unmapped method named; describe_domain -> es:DescribeDomain (got {sorted(found)})",
    )
    found = sdk_actions({"ssm.rs": 'const GET_PARAMETER: &str = "AmazonSSM.GetParameter";', "x.rs": 'const T: &str = "AmazonSSM.DeleteParameter";',
                         "os.rs": "use super::opensearch_http::{Http, Method}; self.client.send(Method::Post, &p, Some(b))"})
    expect(
        found.get("ssm:GetParameter") == {"ssm.rs"} and any("DeleteParameter" in a for a in found) and found.get("es:ESHttpPost") == {"os.rs"},
        f"scanner: a signed JSON request AmazonSSM.GetParameter -> ssm:GetParameter, an unmapped one named; the shared transport's use -> es:ESHttp<Method> (got {sorted(found)})",
    )

    # 2. env_reads follows config types and helper fns of config::aws.
    cfg = """fn table(env: &E) -> R { required(env, "OCTOSCOPE_TABLE") }
fn required(env: &E, v: &str) -> R { x }
impl FooConfig {
    pub fn load(env: E) -> R { table(&env); set(&env, "OCTOSCOPE_FOO"); BarParams::load(&env) }
}
impl BarParams {
    pub fn load(env: &E) -> R { set(env, "GITHUB_BAR_PARAM") }
}
impl OtherConfig {
    pub fn load(env: E) -> R { set(&env, "OCTOSCOPE_OTHER") }
}
#[cfg(test)]
mod tests { fn t() { FooConfig::load(env(&[("OCTOSCOPE_TEST_ONLY", "x")])); } }
"""
    c = Crate("foo", 'let c = FooConfig::load(|k| std::env::var(k).ok()); EnvFilter::try_from_env("RUST_LOG")', {})
    expect(env_reads(c, cfg) == {"OCTOSCOPE_TABLE", "OCTOSCOPE_FOO", "GITHUB_BAR_PARAM", "RUST_LOG"}, f"env: follows FooConfig -> table(), BarParams; skips OtherConfig and tests (got {sorted(env_reads(c, cfg))})")

    # 3. "*" resources need a comment.
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "a.tf").write_text('data "aws_iam_policy_document" "x" {\n  statement {\n    actions   = ["s3:GetObject"]\n    resources = ["*"]\n  }\n}\n')
        bare = star_resource_comments(Path(tmp))
        Path(tmp, "a.tf").write_text('data "aws_iam_policy_document" "x" {\n  # X-Ray has no resource-level permissions: AWS requires "*".\n  statement {\n    actions   = ["xray:PutTraceSegments"]\n    resources = ["*"]\n  }\n}\n')
        commented = star_resource_comments(Path(tmp))
    expect(len(bare) == 1 and not commented, 'resources = ["*"] without a comment is caught; with one it passes')

    # 4. Feature gates on the workspace's layout: config::aws and
    # adapters::aws::dynamodb are linked only with their features.
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp)
        layout = {
            "lib.rs": "pub mod adapters;\npub mod config;\npub mod error;\n",
            "error.rs": "pub fn error_chain() {}\n",
            "config/mod.rs": '#[cfg(feature = "aws")]\npub mod aws;\n',
            "config/aws.rs": 'impl WebhookConfig { fn load() { "OCTOSCOPE_TABLE" } }\n',
            "adapters/mod.rs": '#[cfg(feature = "aws")]\npub mod aws;\n',
            "adapters/aws/mod.rs": '#[cfg(feature = "dynamodb")]\npub mod dynamodb;\n',
            "adapters/aws/dynamodb/ops.rs": "use aws_sdk_dynamodb::Client;\n",
        }
        for rel, text in layout.items():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            (src / rel).write_text(text)

        def linked(*features: str) -> set[str]:
            return {Path(f).relative_to(src).as_posix() for f in linked_shared_files(src, set(features))}

        none, aws, dynamodb = linked(), linked("aws"), linked("aws", "dynamodb")
        expect(
            "config/aws.rs" not in none
            and "config/aws.rs" in aws
            and "adapters/aws/dynamodb/ops.rs" not in aws
            and "adapters/aws/dynamodb/ops.rs" in dynamodb
            and "error.rs" in none,
            f"gates: config/aws.rs with aws, adapters/aws/dynamodb/ with dynamodb (got {sorted(none)}, {sorted(aws)}, {sorted(dynamodb)})",
        )

    # 5. Environment maps: literal, local, merge() of locals and an inline object.
    locals_ = {"common": [{"RUST_LOG": "${var.log_level}"}], "gh": [{"GITHUB_API_URL": "${var.github.api_url}"}]}
    expr = ["${merge(local.common,local.gh,{'OCTOSCOPE_TABLE': '${module.table.table_name}', 'OCTOSCOPE_ORGS': '${length(var.o) > 0 ? join(\",\",var.o) : None}'})}"]
    got = resolve_keys(expr, locals_)
    expect(got == {"RUST_LOG", "GITHUB_API_URL", "OCTOSCOPE_TABLE", "OCTOSCOPE_ORGS"}, f"environment: merge(local.a, local.b, {{...}}) resolves to the union of keys (got {sorted(got or [])})")
    expect(resolve_keys(["${merge(local.common,var.extra)}"], locals_) is None, "environment: merge() with anything but locals and objects is unresolved")
    st_locals = {"store": [{"actions": "${local.read}", "resources": "${local.arns}"}], "read": [["dynamodb:GetItem"]]}
    got_st = resolve_object("${local.store}", st_locals)
    expect(got_st is not None and resolve_list(got_st.get("actions"), st_locals) == ["dynamodb:GetItem"], f"statement: local.x naming an object resolves to its actions (got {got_st})")
    expect(resolve_object("${local.nope}", st_locals) is None and resolve_object("${var.x}", st_locals) is None, "statement: anything but an object or a local object is unresolved")

    # 6. The real workspace against deliberately wrong copies of terraform/.
    try:
        crates = workspace_crates(repo)
    except Exception as e:  # noqa: BLE001
        print(f"FAIL cannot read the workspace: {e}")
        return 1
    why = missing_config(repo)
    if why or not {"webhook", "integrity-check", "dispatcher"} <= set(crates):
        print(f"FAIL the mutation self-test needs the Lambda crates and the configuration sources: {why or 'a Lambda crate is missing'}")
        return 1
    config_src = config_sources(repo)

    def mutated(edit) -> list[str]:
        with tempfile.TemporaryDirectory() as tmp:
            tf = Path(tmp) / "terraform"
            shutil.copytree(repo / "terraform", tf, ignore=shutil.ignore_patterns(".terraform", "tests", "scripts"))
            # The root is split by concern: apply the edit to the file it changes.
            for f in sorted(tf.glob("*.tf")):
                text = f.read_text()
                new = edit(text)
                if new != text:
                    f.write_text(new)
                    break
            else:
                raise AssertionError("the mutation did not apply")
            return check(crates, config_src, tf)[0]

    baseline = check(crates, config_src, repo / "terraform")[0]

    def caught(errs: list[str], needle: str) -> bool:
        return any(needle in e for e in errs if e not in baseline)

    # Wrong copies: a regex replaced once in the first root file it changes,
    # what the checker must then say (every needle), and what that shows.
    lit = re.escape
    wrong_copies = [
        (r"\n\s*OCTOSCOPE_GAP_QUEUE_URL\s*=.*", "",
         ['integrity-check: reads OCTOSCOPE_GAP_QUEUE_URL but module function["integrity_check"] does not set it'],
         "missing env var: integrity-check without OCTOSCOPE_GAP_QUEUE_URL is caught"),
        (r"\bOCTOSCOPE_ECS_CLUSTER(\s*)=", r"OCTOSCOPE_ECS_CLUSTR \1=",
         ["sets OCTOSCOPE_ECS_CLUSTR but the code never reads it"],
         "misspelt env var: OCTOSCOPE_ECS_CLUSTR is caught (both ways)"),
        (r"(github_environment = \{[^}]*?)\n\s*GITHUB_API_URL\s*=[^\n]*", r"\1",
         ['integrity-check: reads GITHUB_API_URL but module function["integrity_check"] does not set it',
          "batch-job: reads GITHUB_API_URL but module batch does not set it"],
         "shared environment: GITHUB_API_URL left out of local.github_environment is caught for both its users"),
        (lit("merge(local.common_environment, {"), "merge(local.common_environment, local.no_such_map, {",
         ["environment must be a map, a local map, or merge() of those"],
         "an environment the checker cannot resolve is an error, not an empty set"),
        (lit('actions   = ["ecs:RunTask"]'), 'actions   = ["ecs:RunTask", "ecs:StopTask"]',
         ["dispatcher: statement run_task grants ecs:StopTask, which no code path of dispatcher uses"],
         "unused action: ecs:StopTask on the dispatcher is caught"),
        (lit('"firehose:PutRecordBatch"]'), '"firehose:PutRecordBatch", "firehose:DeleteDeliveryStream"]',
         ["webhook: statement archive grants firehose:DeleteDeliveryStream"],
         "unused action: firehose:DeleteDeliveryStream on the webhook is caught"),
        (lit('actions   = ["firehose:PutRecord", "firehose:PutRecordBatch"]'), 'actions   = ["firehose:PutRecord"]',
         ["webhook: linked code calls firehose:PutRecordBatch"],
         "missing grant: the webhook without firehose:PutRecordBatch (the parts of a large body) is caught"),
        (lit('actions   = ["ecs:RunTask"]'), 'actions   = ["ecs:DescribeTasks"]',
         ["dispatcher: linked code calls ecs:RunTask"],
         "missing grant: the dispatcher without ecs:RunTask is caught"),
        (lit("store_read       = { actions = local.dynamodb_read,"), "store_read       = { actions = local.dynamodb_write,",
         ["api: linked code calls dynamodb:Query"],
         "shared statement: local.store_read granting writes instead of reads is caught on the api"),
        (lit('actions   = ["ecs:RunTask"]'), 'actions   = ["ecs:*"]',
         ["grants wildcard action ecs:*"],
         "wildcard action ecs:* is caught"),
        (lit("    api             = local.api_function"), "    apis            = local.api_function",
         ["Lambda crate api has no module"],
         "wrong artefact: api deployed from .../apis/bootstrap.zip is caught"),
        (lit("policy_statements = local.functions[each.key].policy_statements"), "policy_statements = local.functions[each.key].statements",
         ["for_each must be toset() of keys"],
         "a for_each setting the checker cannot resolve is an error, not an empty set"),
        (lit("resources = [module.archive.stream_arn]"), "resources = [module.other_archive.stream_arn]",
         ["webhook: OCTOSCOPE_ARCHIVE_STREAM must be module.<m>.stream_name"],
         "archive stream: firehose:PutRecord scoped to another stream than the webhook's is caught"),
        (lit('function_response_types            = ["ReportBatchItemFailures"]'), "",
         ["function_response_types must be"],
         "event source without ReportBatchItemFailures is caught"),
        (lit("bisect_batch_on_function_error     = true"), "bisect_batch_on_function_error     = false",
         ["bisect_batch_on_function_error must be true"],
         "stream event source that does not bisect a failing batch is caught"),
        (lit('actions   = ["es:ESHttpHead", "es:ESHttpPut", "es:ESHttpPost"]'), 'actions   = ["es:ESHttpHead", "es:ESHttpPost"]',
         ["indexer: linked code calls es:ESHttpPut"],
         "missing grant: the indexer without es:ESHttpPut (creating the index) is caught"),
        (lit('actions   = ["es:ESHttpHead", "es:ESHttpPut", "es:ESHttpPost"]'), 'actions   = ["es:ESHttpHead", "es:ESHttpPut", "es:ESHttpPost", "es:ESHttpDelete"]',
         ["indexer: statement search_index grants es:ESHttpDelete, which no code path of indexer uses"],
         "unused action: es:ESHttpDelete on the indexer is caught"),
        (lit('"review", "commit", "team", "org_member"]'), '"review", "commit", "team"]',
         ["local.search_entities"],
         "the indexer's stream filter dropping an entity that has search documents (org_member) is caught"),
        (lit('"notifier", "indexer"] : ['), '"notifier"] : [',
         ["Lambda crate indexer has no module"],
         "the indexer left out of the functions' keys (not even behind enable_search) is caught"),
        (r"\n\s*OCTOSCOPE_SEARCH_ENDPOINT\s*=.*", "",
         ['reads OCTOSCOPE_SEARCH_ENDPOINT but module function['],
         "an optional variable the code reads (OCTOSCOPE_SEARCH_ENDPOINT) must still be in the map, as null"),
        (lit('actions   = ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"]'),
         'actions   = ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams", "dynamodb:DeleteTable"]',
         ["ledger-stream: statement table_stream grants dynamodb:DeleteTable"],
         "unused action: dynamodb:DeleteTable on the ledger-stream function is caught"),
        (r"\n\s*OCTOSCOPE_NOTIFY_LATE_WINDOW_HOURS\s*=.*", "",
         ['api: reads OCTOSCOPE_NOTIFY_LATE_WINDOW_HOURS but module function["api"] does not set it',
          "batch-job: reads OCTOSCOPE_NOTIFY_LATE_WINDOW_HOURS but module batch does not set it"],
         "shared settings: a variable of NotifyConfig::load (config/mod.rs) left out of local.notify_environment is caught"),
        (lit('actions   = ["dynamodb:UpdateItem", "dynamodb:DeleteItem"]'), 'actions   = ["dynamodb:UpdateItem"]',
         ["api: linked code calls dynamodb:DeleteItem"],
         "missing grant: the api without dynamodb:DeleteItem (a rule removed) is caught"),
    ]
    for pattern, replacement, needles, what in wrong_copies:
        errs = mutated(lambda t: re.sub(pattern, replacement, t, count=1))
        expect(all(caught(errs, n) for n in needles), what)

    print(f"self-test: {len(passed)} passed, {len(failures)} failed")
    return 1 if failures else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo", type=Path, default=Path(__file__).resolve().parents[2])
    ap.add_argument("--self-test", action="store_true")
    args = ap.parse_args()
    repo = args.repo.resolve()
    return self_test(repo) if args.self_test else run(repo)


if __name__ == "__main__":
    sys.exit(main())
