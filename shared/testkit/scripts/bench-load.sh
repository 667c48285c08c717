#!/usr/bin/env bash
# `make bench-load`: signed `pull_request` deliveries posted by `loadgen` to
# `octoscope serve` on loopback, each binary over a fresh data directory
# (with-server.sh): 2,000 deliveries of warm-up, then BENCH_REQUESTS (20,000)
# over BENCH_CONCURRENCY (16) connections. Prints loadgen's line (throughput
# and latency), the server's CPU time per delivery (user + system from
# /proc/PID/stat over the measured run: a figure that other load on the
# machine does not inflate, unlike the throughput) and its peak resident
# memory (VmHWM).
#
# Usage: bench-load.sh LOADGEN BINARY [BASE_BINARY]
#   With BASE_BINARY (e.g. a release build of the previous main), the two run
#   alternately, BENCH_ROUNDS (3) times each, so both see the same machine.
set -euo pipefail
secret=load-test-secret

if [ "${1:-}" = --measure ]; then # inside with-server.sh: $OCTOSCOPE_URL, $OCTOSCOPE_PID
  loadgen=$2
  cpu_ticks() { awk '{print $14 + $15}' "/proc/$OCTOSCOPE_PID/stat"; }
  "$loadgen" --url "$OCTOSCOPE_URL" --secret $secret --requests 2000 >/dev/null
  before=$(cpu_ticks)
  "$loadgen" --url "$OCTOSCOPE_URL" --secret $secret --requests "$BENCH_REQUESTS" --concurrency "$BENCH_CONCURRENCY"
  after=$(cpu_ticks)
  awk -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" -v n="$BENCH_REQUESTS" \
    'BEGIN { printf "server CPU per delivery: %.0f us (user + system)\n", t / hz / n * 1e6 }'
  awk '/VmHWM/ { printf "server peak memory (VmHWM): %.1f MiB\n", $2 / 1024 }' "/proc/$OCTOSCOPE_PID/status"
  exit 0
fi

loadgen=$1; shift
bins=("$@")
export BENCH_REQUESTS=${BENCH_REQUESTS:-20000} BENCH_CONCURRENCY=${BENCH_CONCURRENCY:-16}
rounds=${BENCH_ROUNDS:-3}
[ ${#bins[@]} -gt 1 ] || rounds=${BENCH_ROUNDS:-1}
here=$(cd "$(dirname "$0")" && pwd)

for round in $(seq 1 "$rounds"); do
  for bin in "${bins[@]}"; do
    if [ ${#bins[@]} -gt 1 ]; then echo "== $bin (round $round)"; fi
    "$here/with-server.sh" "$bin" $secret "$here/bench-load.sh" --measure "$loadgen"
  done
done
