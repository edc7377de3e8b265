#!/usr/bin/env bash
# Builds Ory Hydra v2.3.0 with SQLite (so that `hydra serve all --dev` runs with
# DSN=memory) in a scratch module outside authgate's, so that none of Hydra's
# dependencies enter our go.mod. The binary is cached: a second run on the same
# machine prints its path at once. Usage: build.sh [--check]  (prints the
# binary's path; --check fails instead of building when it is missing)
set -euo pipefail
version=v2.3.0
cache="${AUTHGATE_TOOL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/authgate}"
bin="$cache/hydra-$version/hydra"
if [ -x "$bin" ]; then echo "$bin"; exit 0; fi
if [ "${1:-}" = --check ]; then echo "hydra $version is not built at $bin" >&2; exit 1; fi

export GOTOOLCHAIN="${GOTOOLCHAIN:-go1.27.3}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat >"$work/main.go" <<'GO'
package main

import "github.com/ory/hydra/v2/cmd"

func main() { cmd.Execute() }
GO
cd "$work"
go mod init authgate.invalid/hydrabuild >/dev/null 2>&1
# Hydra v2.3.0 needs Ory's fork of pop; without it the module graph does not build.
go mod edit -replace github.com/gobuffalo/pop/v6=github.com/ory/pop/v6@v6.2.1-0.20241121111754-e5dfc0f3344b
go get "github.com/ory/hydra/v2@$version" >&2
go mod tidy >&2
mkdir -p "$(dirname "$bin")"
go build -tags sqlite,sqlite_omit_load_extension -trimpath -o "$bin.tmp" . >&2
mv "$bin.tmp" "$bin"
echo "$bin"
