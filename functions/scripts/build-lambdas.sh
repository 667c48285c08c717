#!/usr/bin/env bash
# `make lambdas`: every AWS function as a provided.al2023 arm64 zip,
# target/lambda/<name>/bootstrap.zip (what Terraform deploys), each built as
# its own package so that it links only the adapters it uses, with the size
# profile `aws` of the root Cargo.toml. Then the sizes.
#
# Needs cargo-lambda (`pip install cargo-lambda`, which brings zig for the
# cross-compilation) and the Rust target aarch64-unknown-linux-gnu.
set -euo pipefail
cd "$(dirname "$0")/../.."

FUNCTIONS=(webhook api integrity-check dispatcher ledger-stream notifier indexer)
# The size budget per zip (2.5 MiB); over it is a warning, or a failure with
# LAMBDA_SIZE_STRICT=1 (the zips still deploy: Lambda takes up to 50 MB).
MAX_ZIP_BYTES=${MAX_ZIP_BYTES:-2621440}

if ! cargo lambda --version >/dev/null 2>&1; then
  echo "build-lambdas: cargo-lambda is missing: pip install cargo-lambda" >&2
  exit 1
fi
if ! rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-linux-gnu; then
  echo "build-lambdas: the Rust target is missing: rustup target add aarch64-unknown-linux-gnu" >&2
  exit 1
fi

target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
lambda_dir="${LAMBDA_DIR:-$target_dir/lambda}"

for f in "${FUNCTIONS[@]}"; do
  echo "build-lambdas: $f"
  cargo lambda build --profile aws --arm64 --output-format zip --lambda-dir "$lambda_dir" -p "$f"
done

echo
printf '%-18s %12s %12s\n' function "zip bytes" "bootstrap"
over=0
for f in "${FUNCTIONS[@]}"; do
  zip="$lambda_dir/$f/bootstrap.zip"
  size=$(stat -c %s "$zip")
  unzipped=$(python3 -c 'import sys,zipfile; print(sum(i.file_size for i in zipfile.ZipFile(sys.argv[1]).infolist()))' "$zip")
  printf '%-18s %12s %12s\n' "$f" "$size" "$unzipped"
  if [ "$size" -gt "$MAX_ZIP_BYTES" ]; then
    echo "build-lambdas: warning: $f is over the size budget of $MAX_ZIP_BYTES bytes" >&2
    [ "${LAMBDA_SIZE_STRICT:-0}" = 1 ] && over=1
  fi
done
echo "zips in $lambda_dir/<function>/bootstrap.zip"
exit "$over"
