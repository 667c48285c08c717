#!/usr/bin/env bash
# `make bench-load`: signed `pull_request` deliveries posted by `loadgen` to
# `octoscope serve` on loopback, each binary over a fresh data directory:
# 2,000 deliveries of warm-up, then BENCH_REQUESTS (20,000) over
# BENCH_CONCURRENCY (16) connections. Prints loadgen's line (throughput and
# latency), the server's CPU time per delivery (user + system from
# /proc/PID/stat over the measured run: a figure that other load on the
# machine does not inflate, unlike the throughput) and its peak resident
# memory (VmHWM).
#
# Usage: bench-load.sh LOADGEN BINARY [BASE_BINARY]
#   With BASE_BINARY (e.g. a release build of the previous main), the two run
#   alternately, BENCH_ROUNDS (3) times each, so both see the same machine.
set -euo pipefail
loadgen=$1; shift
bins=("$@")
requests=${BENCH_REQUESTS:-20000}
concurrency=${BENCH_CONCURRENCY:-16}
rounds=${BENCH_ROUNDS:-3}
[ ${#bins[@]} -gt 1 ] || rounds=${BENCH_ROUNDS:-1}
secret=load-test-secret
ticks=$(getconf CLK_TCK)

cpu_ticks() { # utime + stime of a process, in clock ticks
  awk '{print $14 + $15}' "/proc/$1/stat"
}

run_one() {
  local bin=$1 data pid url before after
  data=$(mktemp -d)
  : >"$data/serve.log"
  GITHUB_WEBHOOK_SECRET=$secret "$bin" serve --listen 127.0.0.1:0 --data-dir "$data" >"$data/serve.log" 2>&1 &
  pid=$!
  url=
  for _ in $(seq 1 100); do
    url=$(sed -n 's/^octoscope listening on //p' "$data/serve.log")
    [ -n "$url" ] && break
    kill -0 $pid 2>/dev/null || { cat "$data/serve.log"; exit 1; }
    sleep 0.1
  done
  [ -n "$url" ] || { echo "server did not start:"; cat "$data/serve.log"; kill $pid; exit 1; }
  "$loadgen" --url "$url" --secret $secret --requests 2000 >/dev/null
  before=$(cpu_ticks $pid)
  "$loadgen" --url "$url" --secret $secret --requests "$requests" --concurrency "$concurrency"
  after=$(cpu_ticks $pid)
  awk -v t=$((after - before)) -v hz="$ticks" -v n="$requests" \
    'BEGIN { printf "server CPU per delivery: %.0f us (user + system)\n", t / hz / n * 1e6 }'
  grep VmHWM "/proc/$pid/status" | awk '{ printf "server peak memory (VmHWM): %.1f MiB\n", $2 / 1024 }'
  kill $pid; wait $pid 2>/dev/null || true
  rm -rf "$data"
}

for round in $(seq 1 "$rounds"); do
  for bin in "${bins[@]}"; do
    [ ${#bins[@]} -gt 1 ] && echo "== $bin (round $round)"
    run_one "$bin"
  done
done
