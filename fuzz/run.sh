#!/usr/bin/env bash
# Runs every built fuzz target for a bounded time, starting from its committed
# seed corpus (fuzz/corpus/<target>/); fails on any crash, leak, timeout or
# model mismatch. Builds nothing: build first with the `fuzz` preset
#   cmake --preset fuzz && cmake --build --preset fuzz
# Usage: fuzz/run.sh [build-dir]        (default: build/fuzz)
# Env:   POLYMAP_FUZZ_SECONDS  seconds per target (default 30)
#        POLYMAP_FUZZ_ARGS     extra libFuzzer flags
# New inputs go to a temporary directory, never into the committed corpus;
# a crashing input is saved as <build-dir>/crash-<target>-* for replay:
#   <build-dir>/fuzz/<target> <that file>
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=${1:-$here/../build/fuzz}
secs=${POLYMAP_FUZZ_SECONDS:-30}
if ! [[ $secs =~ ^[0-9]+$ ]] || ((secs < 1)); then
  echo "fuzz/run.sh: POLYMAP_FUZZ_SECONDS must be a positive integer, not '$secs'" >&2
  exit 2
fi
shopt -s nullglob
targets=("$build"/fuzz/fuzz_*)
if ((${#targets[@]} == 0)); then
  echo "fuzz/run.sh: no fuzz targets in $build/fuzz (build with: cmake --preset fuzz && cmake --build --preset fuzz)" >&2
  exit 2
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=()
for exe in "${targets[@]}"; do
  [[ -f $exe && -x $exe ]] || continue
  name=$(basename "$exe")
  seeds=$here/corpus/$name
  mkdir -p "$work/$name"
  echo "fuzz: $name for ${secs}s"
  # shellcheck disable=SC2086
  if "$exe" -max_total_time="$secs" -timeout=20 -rss_limit_mb=3072 -max_len=4096 -print_final_stats=1 \
      -artifact_prefix="$build/crash-$name-" ${POLYMAP_FUZZ_ARGS:-} "$work/$name" "$seeds" >"$work/$name.log" 2>&1; then
    grep -E "stat::number_of_executed_units|Done [0-9]+ runs" "$work/$name.log" | sed 's/^/  /' || true
  else
    echo "fuzz: $name FAILED; last lines of its log:"
    tail -n 40 "$work/$name.log" | sed 's/^/  /'
    failed+=("$name")
  fi
done
if ((${#failed[@]})); then
  echo "fuzz: FAILED: ${failed[*]}"
  exit 1
fi
echo "fuzz: all ${#targets[@]} targets ran ${secs}s each without a failure"
