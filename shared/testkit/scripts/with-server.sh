#!/usr/bin/env bash
# Start `octoscope serve` on a free loopback port over a fresh data directory,
# run a command with the server's URL in $OCTOSCOPE_URL (its process id in
# $OCTOSCOPE_PID), then stop the server.
# Usage: with-server.sh BINARY SECRET COMMAND...
#   OCTOSCOPE_DEMO=1 loads the generated demo organisation first (`octoscope demo`).
set -euo pipefail
bin=$1 secret=$2; shift 2
data=$(mktemp -d)
log=$data/serve.log
: >"$log"
if [ "${OCTOSCOPE_DEMO:-}" = 1 ]; then
  "$bin" demo --data-dir "$data" >/dev/null
fi
GITHUB_WEBHOOK_SECRET=$secret "$bin" serve --listen 127.0.0.1:0 --data-dir "$data" >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 1 100); do
  url=$(sed -n 's/^octoscope listening on //p' "$log")
  [ -n "$url" ] && break
  kill -0 $pid 2>/dev/null || { cat "$log"; exit 1; }
  sleep 0.1
done
[ -n "$url" ] || { echo "server did not start:"; cat "$log"; exit 1; }
OCTOSCOPE_URL=$url OCTOSCOPE_PID=$pid "$@"
