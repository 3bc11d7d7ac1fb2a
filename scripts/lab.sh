#!/usr/bin/env bash
# Quick start 1: install what is missing, build, and run the main job, `polymap lab`.
# Extra arguments go to `polymap lab` (e.g. --rounds 500 --json lab.json).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
echo "== building (preset default) =="
scripts/build.sh default polymap_cli
echo "== polymap lab =="
exec build/default/tools/polymap/polymap lab "$@"
