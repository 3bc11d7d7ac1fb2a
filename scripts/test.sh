#!/usr/bin/env bash
# Quick start 2: install what is missing, then build and run the whole test
# suite in the default, asan and tsan presets, plus a bounded fuzz run.
# Ends with ctest's summary for each preset; exits non-zero on any failure.
#   POLYMAP_PRESETS="default asan tsan"   which presets to run
#   POLYMAP_FUZZ_SECONDS=30               per fuzz target (0 skips fuzzing)
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --with-peers || exit 1
export POLYMAP_REQUIRE_ETCD=1  # the etcd tests fail instead of skipping where etcd is missing
start=$(date +%s)
status=0
summary=()

echo "== format check (clang-format, .clang-format) =="
if scripts/format.sh --check; then summary+=("format: ok"); else summary+=("format: FAILED"); status=1; fi

jobs=$(nproc)
for preset in ${POLYMAP_PRESETS:-default asan tsan}; do
  t0=$(date +%s)
  echo "== [$preset] build =="
  if ! scripts/build.sh "$preset"; then
    summary+=("$preset: BUILD FAILED")
    status=1
    continue
  fi
  echo "== [$preset] ctest =="
  if ctest --preset "$preset" -j"$jobs" --timeout 900 --output-on-failure; then
    summary+=("$preset: all tests passed ($(( $(date +%s) - t0 )) s)")
  else
    summary+=("$preset: TESTS FAILED ($(( $(date +%s) - t0 )) s)")
    # Name the failed tests in the summary, which is what a truncated CI log keeps.
    failed_log="build/$preset/Testing/Temporary/LastTestsFailed.log"
    if [[ -f "$failed_log" ]]; then
      while IFS= read -r line; do summary+=("  $preset failed: ${line:0:200}"); done < "$failed_log"
    fi
    status=1
  fi
done

if [[ "${POLYMAP_FUZZ_SECONDS:-30}" != "0" && -f fuzz/run.sh ]]; then
  t0=$(date +%s)
  echo "== [fuzz] build + bounded run =="
  if scripts/build.sh fuzz && bash fuzz/run.sh build/fuzz; then
    summary+=("fuzz: no crash or mismatch ($(( $(date +%s) - t0 )) s)")
  else
    summary+=("fuzz: FAILED")
    status=1
  fi
fi

echo
echo "== summary ($(( $(date +%s) - start )) s) =="
printf '  %s\n' "${summary[@]}"
exit $status
