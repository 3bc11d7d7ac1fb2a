#!/usr/bin/env bash
# clang-format over the project's C++ sources: --check (default) or --fix.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:---check}
mapfile -t files < <(git ls-files -co --exclude-standard -- '*.hpp' '*.cpp' | grep -v '^build/')
if [[ "$mode" == "--fix" ]]; then
  clang-format -i "${files[@]}"
  exit 0
fi
bad=0
for f in "${files[@]}"; do
  if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
    echo "needs formatting: $f (run scripts/format.sh --fix)"
    bad=1
  fi
done
[[ $bad == 0 ]] && echo "format: ${#files[@]} files clean"
exit $bad
