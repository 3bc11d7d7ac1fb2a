#!/usr/bin/env bash
# Renders an HTML report (default docs/bench/report.html) to a PNG with
# headless Chromium (Debian's `chromium`), for a person to look at.
# Usage: scripts/render_report.sh [report.html] [out.png] [width] [height]
set -euo pipefail
cd "$(dirname "$0")/.."
html=${1:-docs/bench/report.html}
png=${2:-${html%.html}.png}
width=${3:-1400}
height=${4:-3000}
[[ -r "$html" ]] || { echo "render_report: cannot read $html" >&2; exit 1; }
browser=$(command -v chromium || command -v chromium-browser || true)
[[ -n "$browser" ]] || { echo "render_report: chromium not found (apt install chromium)" >&2; exit 1; }
"$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --screenshot="$(realpath -m "$png")" \
  --window-size="$width,$height" "file://$(realpath "$html")" 2>/dev/null
[[ -s "$png" ]] || { echo "render_report: no PNG written" >&2; exit 1; }
echo "wrote $png ($(du -k "$png" | cut -f1) KiB)"
