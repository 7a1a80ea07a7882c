#!/usr/bin/env bash
# Makes Debian's redis-server available for the tests of keepers running as several instances on one Redis
# (test/keepers/redis-cluster.test.ts starts its own instance on a free port; nothing is started here).
#   scripts/redis-server.sh     install redis-server when missing; prints its version
# Needs root for the install. Safe to run repeatedly.
set -euo pipefail

if ! command -v redis-server >/dev/null 2>&1; then
  echo "[redis] installing redis-server ..." >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends redis-server >&2
fi
command -v redis-server >/dev/null 2>&1 || { echo "[redis] redis-server is still missing after the install" >&2; exit 1; }
echo "[redis] $(redis-server --version)" >&2
