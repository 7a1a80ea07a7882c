#!/usr/bin/env bash
# Makes Debian's Chromium available for the dashboard's browser tests (test/keepers/dashboard.test.ts drives
# it headless with playwright-core; no browser download is possible here, so playwright's own builds are
# never used):
#   scripts/chromium.sh     install chromium when missing; prints the browser binary's path on stdout
# Needs root for the install. Safe to run repeatedly.
set -euo pipefail

find_chromium() {
  for candidate in /usr/lib/chromium/chromium /usr/bin/chromium /usr/bin/chromium-browser; do
    if [ -x "$candidate" ]; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

if ! find_chromium >/dev/null; then
  echo "[chromium] installing chromium ..." >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends chromium >&2
fi
path="$(find_chromium)" || { echo "[chromium] chromium is still missing after the install" >&2; exit 1; }
echo "[chromium] $("$path" --version 2>/dev/null || echo "version unknown") at $path" >&2
echo "$path"
