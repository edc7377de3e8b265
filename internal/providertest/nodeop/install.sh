#!/usr/bin/env bash
# Installs node-oidc-provider (npm package oidc-provider) 9.13.3 into a cache
# directory outside authgate's repository and prints that directory, whose
# node_modules the test provider script runs with. A second run on the same
# machine prints it at once. Needs Node.js >= 20.19 and npm.
# Usage: install.sh [--check]   (--check: print the directory, or fail if it
# is not installed; never install)
set -euo pipefail
version=9.13.3
cache="${AUTHGATE_TOOL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/authgate}"
dir="$cache/nodeop-$version"
if [ -f "$dir/node_modules/oidc-provider/package.json" ]; then echo "$dir"; exit 0; fi
if [ "${1:-}" = --check ]; then echo "oidc-provider $version is not installed in $dir" >&2; exit 1; fi

mkdir -p "$cache"
work=$(mktemp -d "$cache/nodeop-install.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"
echo '{"name":"authgate-nodeop","private":true,"type":"module"}' >package.json
npm install --no-audit --no-fund --loglevel=error "oidc-provider@$version" >&2
rm -rf "$dir"
mv "$work" "$dir"
trap - EXIT
echo "$dir"
