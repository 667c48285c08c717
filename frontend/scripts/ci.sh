#!/usr/bin/env bash
# The dashboard's CI on a fresh Debian machine: Chromium (apt) if missing,
# the npm packages (npm ci), then the build and the browser tests (which also
# build octoscope with cargo and start it on free loopback ports).
#
#   frontend/scripts/ci.sh          from anywhere; needs node >= 20.19, npm, cargo
#   CHROMIUM=/path/to/chromium      another browser binary (default /usr/bin/chromium)
#   OCTOSCOPE_BIN=/path/octoscope   skip the cargo build
set -euo pipefail
cd "$(dirname "$0")/.."

chromium="${CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$chromium" ]; then
  echo "ci.sh: installing chromium (apt)" >&2
  sudo=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
fi

command -v node >/dev/null || { echo "ci.sh: node (>= 20.19) is required" >&2; exit 1; }
npm ci --no-audit --no-fund
npm run build
# The tests build again only if asked; dist/ is fresh.
SKIP_FRONTEND_BUILD=1 npm test
