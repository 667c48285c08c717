#!/usr/bin/env bash
# Fails when src/api-types.ts is not what openapi-typescript makes of the API
# contract (shared/docs/openapi.json): run `npm run generate:types` and commit.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
npx --no-install openapi-typescript ../shared/docs/openapi.json -o "$tmp/api-types.ts" >/dev/null
if ! diff -u src/api-types.ts "$tmp/api-types.ts" >"$tmp/diff"; then
  head -40 "$tmp/diff" >&2
  echo "check:types: src/api-types.ts is not generated from shared/docs/openapi.json; run \`npm run generate:types\` (or \`make openapi\`) and commit it" >&2
  exit 1
fi
