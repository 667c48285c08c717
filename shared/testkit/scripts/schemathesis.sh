#!/usr/bin/env bash
# Schemathesis against `octoscope serve` with the demo organisation: every
# operation of the generated contract, every check. The contract is as strict
# as the server, so it should report no server error, no response that breaks
# the schema, and no schema-valid request rejected.
# Usage: schemathesis.sh [BINARY] [schemathesis run options...]
#   BINARY defaults to target/debug/octoscope (built with cargo if missing);
#   needs `pip install schemathesis`.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${1:-}
[ $# -gt 0 ] && shift
if [ -z "$bin" ]; then
  target=$(cargo metadata --format-version 1 --no-deps --manifest-path "$here/../../../Cargo.toml" | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
  cargo build -q -p octoscope --manifest-path "$here/../../../Cargo.toml"
  bin=$target/debug/octoscope
fi
command -v schemathesis >/dev/null || { echo "schemathesis.sh: pip install schemathesis" >&2; exit 1; }
data=$(mktemp -d)
log=$data/serve.log
"$bin" demo --data-dir "$data/db" >/dev/null
"$bin" serve --listen 127.0.0.1:0 --data-dir "$data/db" >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 1 100); do
  url=$(sed -n 's/^octoscope listening on //p' "$log")
  [ -n "$url" ] && break
  kill -0 $pid 2>/dev/null || { cat "$log"; exit 1; }
  sleep 0.1
done
[ -n "$url" ] || { echo "server did not start:"; cat "$log"; exit 1; }
cd "$data"
schemathesis run "$url/api/openapi.json" --url "$url" --checks all "$@"
