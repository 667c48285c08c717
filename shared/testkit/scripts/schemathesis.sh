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
# Schemathesis keeps its state in the working directory: a scratch one.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
OCTOSCOPE_DEMO=1 "$here/with-server.sh" "$bin" schemathesis-secret \
  bash -c 'schemathesis run "$OCTOSCOPE_URL/api/openapi.json" --url "$OCTOSCOPE_URL" --checks all "$@"' schemathesis "$@"
