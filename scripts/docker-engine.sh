#!/usr/bin/env bash
# Makes a local Docker engine available for the miner's task runtime and its tests:
# installs Debian's docker.io and busybox-static when missing, starts dockerd when nothing answers on
# /var/run/docker.sock (no iptables, no bridge: containers use network none or host only), and builds
# the local image `computenet/busybox:latest` from /bin/busybox (no image registry is reachable here).
#   scripts/docker-engine.sh          ensure all of the above; prints the engine version
# Needs root for the install and for dockerd. Safe to run repeatedly.
set -euo pipefail
log="${DOCKERD_LOG:-/tmp/computenet-dockerd.log}"

if ! command -v dockerd >/dev/null 2>&1 || [ ! -x /bin/busybox ]; then
  echo "[docker] installing docker.io and busybox-static ..." >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq docker.io busybox-static >&2
fi

if ! docker version --format '{{.Server.Version}}' >/dev/null 2>&1; then
  echo "[docker] starting dockerd (log: $log) ..." >&2
  nohup dockerd --iptables=false --ip6tables=false --bridge=none >"$log" 2>&1 &
  for _ in $(seq 1 60); do
    docker version --format '{{.Server.Version}}' >/dev/null 2>&1 && break
    sleep 0.5
  done
fi
docker version --format '{{.Server.Version}}' >/dev/null 2>&1 || { echo "[docker] dockerd did not start; see $log" >&2; exit 1; }

if ! docker image inspect computenet/busybox:latest >/dev/null 2>&1; then
  echo "[docker] building image computenet/busybox:latest from /bin/busybox ..." >&2
  dir="$(mktemp -d)"
  mkdir -p "$dir/bin" "$dir/tmp" "$dir/data"
  cp /bin/busybox "$dir/bin/busybox"
  for tool in sh ls cat echo sleep sha256sum wc head tail date env mkdir rm cp mv true false yes dd seq grep; do
    ln -s busybox "$dir/bin/$tool"
  done
  tar -C "$dir" -c . | docker import -c 'ENV PATH=/bin' - computenet/busybox:latest >/dev/null
  rm -rf "$dir"
fi
echo "[docker] engine $(docker version --format '{{.Server.Version}}'), image computenet/busybox:latest ready" >&2
