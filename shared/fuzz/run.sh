#!/usr/bin/env bash
# Runs every fuzz target (or those named in FUZZ_TARGETS), one after another:
#   run.sh smoke   each for FUZZ_SMOKE_SECONDS (default 20): CI's `make fuzz-smoke`
#   run.sh long    each for FUZZ_SECONDS (default 3600) or FUZZ_RUNS executions: `make fuzz`
# cargo-fuzz (libFuzzer, AddressSanitizer with leak detection) on the stable
# toolchain: RUSTC_BOOTSTRAP=1 lets it pass its -Z flags. The instrumented
# build goes to $CARGO_TARGET_DIR/fuzz: unoptimised (`--dev`, quick to build)
# for smoke and with FUZZ_DEV=1; otherwise optimised with debug assertions and
# overflow checks (`-a`), for the long campaign. The committed
# corpus/<target> and the generated seeds/<target> (make-corpus.py; new
# inputs land there, not committed) are the starting points; found/<target>/
# (inputs that once failed, kept as regressions) is replayed before each
# target runs. A crash, a timeout (FUZZ_TIMEOUT seconds per input, default
# 10) or a leak stops the run and fails it, its input saved under
# artifacts/<target>/. One line per target goes to $FUZZ_LOG (default
# fuzz-results.txt here): executions, exec/s, coverage, seconds, result
# (`ok`, `stopped by hand, nothing found` after a SIGINT to the fuzzer, or
# FAILED).
set -euo pipefail
cd "$(dirname "$0")"
fuzz_dir="$PWD"
mode="${1:-smoke}"
targets="${FUZZ_TARGETS:-webhook api cursor search notify github aws_events}"
export RUSTC_BOOTSTRAP=1
target_dir="${CARGO_TARGET_DIR:-$fuzz_dir/target}/fuzz"
log="${FUZZ_LOG:-$fuzz_dir/fuzz-results.txt}"
build="-a"
if [ "$mode" = smoke ] || [ -n "${FUZZ_DEV:-}" ]; then build="--dev"; fi
case "$mode" in
  smoke) limit="-max_total_time=${FUZZ_SMOKE_SECONDS:-20}" ;;
  long) if [ -n "${FUZZ_RUNS:-}" ]; then limit="-runs=$FUZZ_RUNS"; else limit="-max_total_time=${FUZZ_SECONDS:-3600}"; fi ;;
  *) echo "usage: $0 smoke|long" >&2; exit 2 ;;
esac
# Every target's features, whichever targets run: one build serves any subset
# (a build with fewer features would rebuild the crates and replace the binaries).
features="github aws"
python3 make-corpus.py seeds
# `cargo fuzz` finds fuzz/ under the crate it runs from: shared/.
cd ..
# shellcheck disable=SC2086
cargo fuzz build $build --target-dir "$target_dir" --features "$features"
failed=0
for t in $targets; do
  mkdir -p "$fuzz_dir/artifacts/$t" "$fuzz_dir/corpus/$t" "$fuzz_dir/seeds/$t"
  mkdir -p "$fuzz_dir/logs"; out="$fuzz_dir/logs/$t.txt"
  # Inputs that once failed (found/<target>/) are replayed first, all in one
  # process in name order: the stateful targets keep a store across inputs,
  # so a failing sequence is kept as files named in its order. Any failure
  # stops this target here.
  shopt -s nullglob; found=("$fuzz_dir/found/$t"/*); shopt -u nullglob
  if [ "${#found[@]}" -gt 0 ] && ! cargo fuzz run $build --target-dir "$target_dir" --features "$features" "$t" "${found[@]}" -- \
      -timeout="${FUZZ_TIMEOUT:-10}" -rss_limit_mb=4096 >"$fuzz_dir/logs/$t.found.txt" 2>&1; then
    tail -40 "$fuzz_dir/logs/$t.found.txt"
    echo "$(date -u +%FT%TZ) $mode ${build/-a/release} $t: FAILED replaying found/$t (see logs/$t.found.txt)" | tee -a "$log"
    failed=1; continue
  fi
  start=$(date +%s)
  # FUZZ_JOBS processes of the same target side by side (default 1), each
  # with its share of FUZZ_RUNS, on the same corpus directories: libFuzzer
  # writes what one finds there and the others load it (-reload). Their
  # executions add up; coverage is the largest any of them reached.
  jobs="${FUZZ_JOBS:-1}"; job_limit="$limit"
  if [ "$mode" = long ] && [ -n "${FUZZ_RUNS:-}" ]; then job_limit="-runs=$(( (FUZZ_RUNS + jobs - 1) / jobs ))"; fi
  pids=()
  for j in $(seq 1 "$jobs"); do
    if [ "$jobs" -eq 1 ]; then jout="$out"; else jout="$fuzz_dir/logs/$t.$j.txt"; fi
    cargo fuzz run $build --target-dir "$target_dir" --features "$features" "$t" "$fuzz_dir/seeds/$t" "$fuzz_dir/corpus/$t" -- \
      $job_limit -timeout="${FUZZ_TIMEOUT:-10}" -rss_limit_mb=4096 -print_final_stats=1 \
      -artifact_prefix="$fuzz_dir/artifacts/$t/" >"$jout" 2>&1 &
    pids+=("$!")
  done
  rc=0
  set +e
  # The first to fail stops the others (SIGINT: they print their figures).
  for _ in "${pids[@]}"; do
    wait -n; r=$?
    if [ "$r" -ne 0 ] && [ "$rc" -eq 0 ]; then rc=$r; for p in "${pids[@]}"; do pkill -INT -P "$p" 2>/dev/null; done; fi
  done
  set -e
  if [ "$jobs" -gt 1 ]; then cat "$fuzz_dir/logs/$t".[0-9]*.txt >"$out"; fi
  secs=$(( $(date +%s) - start ))
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out" | awk '{s+=$1} END {if (NR) print s}')
  rate=$(( ${runs:-0} / (secs > 0 ? secs : 1) ))
  # Coverage as libFuzzer counts it at the end: edges (cov) and features (ft).
  cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$out" | sort -t' ' -k2,2n | tail -1 || true)
  if [ "$rc" -eq 0 ]; then
    result=ok
  elif grep -q 'libFuzzer: run interrupted' "$out" && ! grep -qE '^==[0-9]+== ERROR|panicked at' "$out"; then
    # Stopped by hand (SIGINT): nothing found; the executions so far count.
    result="stopped by hand, nothing found"
  else
    result="FAILED (exit $rc; see $out)"; failed=1; tail -40 "$out"
  fi
  procs=""; [ "$jobs" -gt 1 ] && procs=" ($jobs processes)"
  line="$(date -u +%FT%TZ) $mode ${build/-a/release} $t: ${runs:-?} executions$procs, ${rate:-?} exec/s, ${cov:-cov: ?}, ${secs} s, $result"
  echo "$line" | tee -a "$log"
done
exit "$failed"
