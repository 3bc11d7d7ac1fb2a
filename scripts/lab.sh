#!/usr/bin/env bash
# Quick start 1: install what is missing (with the benchmark peers), build, and run the main job, `polymap lab`.
# Extra arguments go to `polymap lab` (e.g. --rounds 500 --json lab.json).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --with-peers  # the peers too, so that `polymap bench` has them
echo "== building (preset default) =="
scripts/build.sh default polymap_cli
echo "== polymap lab =="
exec build/default/tools/polymap/polymap lab "$@"
