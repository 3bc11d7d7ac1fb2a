#!/usr/bin/env bash
# Installs the Debian 12 packages polymap needs (skips what is present).
# Usage: scripts/setup.sh [--with-peers]   (peers: benchmark-only libraries)
set -euo pipefail
pkgs=(cmake ninja-build g++ clang-14 clang-format libgtest-dev libgmock-dev libbenchmark-dev
      libboost1.81-dev libxxhash-dev libfmt-dev libcli11-dev nlohmann-json3-dev
      libtomlplusplus-dev libclang-rt-14-dev libfuzzer-14-dev git pkg-config
      libcurl4-openssl-dev etcd-server etcd-client)
if [[ "${1:-}" == "--with-peers" || "${POLYMAP_PEERS:-0}" == "1" ]]; then
  pkgs+=(libtbb-dev libcuckoo-dev libcds-dev libxenium-dev prometheus)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "setup: all ${#pkgs[@]} packages present"
fi
