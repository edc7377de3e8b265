#!/usr/bin/env bash
# smoke.sh IMAGE VERSION DEMO_IMAGE
#
# Checks a built authgate image without a container daemon (buildah run,
# chroot isolation, the host's loopback network):
#   - its configuration: user 65532, entrypoint /authgate, ports, HEALTHCHECK;
#   - its filesystem: the binary and the CA bundle, nothing else (no shell);
#   - the binary: static (CGO_ENABLED=0), -trimpath, the Go of go.mod, VERSION;
#   - `/authgate --help` and `/authgate version` inside it; no `demo` in it
#     (built with -tags nodemo), and none of the demo's modules;
#   - `/authgate healthcheck` inside it: 1 with nothing listening, then 0
#     against a running authgate that fronts the demo IdP and whoami app,
#     the IdP and app run from DEMO_IMAGE (the Dockerfile's demo target) as
#     in deploy/compose/compose.yaml;
#   - that authgate answers a browser without a session with a redirect to
#     the IdP, and /readyz with 200.
set -euo pipefail

image=${1:?usage: smoke.sh IMAGE VERSION DEMO_IMAGE}
version=${2:?usage: smoke.sh IMAGE VERSION DEMO_IMAGE}
demo_image=${3:?usage: smoke.sh IMAGE VERSION DEMO_IMAGE}
driver=${STORAGE_DRIVER:-vfs}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)

bh() { buildah --storage-driver "$driver" "$@"; }
fail() {
	echo "smoke.sh: FAIL: $*" >&2
	exit 1
}
ok() { echo "smoke.sh: ok: $*"; }

containers=()
pids=()
tmp=$(mktemp -d)
cleanup() {
	local pid ctr
	for pid in "${pids[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	for ctr in "${containers[@]}"; do
		bh umount "$ctr" >/dev/null 2>&1 || true
		bh rm "$ctr" >/dev/null 2>&1 || true
	done
	rm -rf "$tmp"
}
trap cleanup EXIT

# new_container [IMAGE] sets ctr to a fresh working container of IMAGE
# (default: the image under test), not in a subshell, so that cleanup knows it.
new_container() {
	ctr=$(bh from --pull-never --quiet "${1:-$image}")
	containers+=("$ctr")
}

# in_image CTR ARGS...: runs ARGS in the container (stdin closed).
in_image() {
	local ctr=$1
	shift
	bh run --isolation chroot --volume "$tmp/secrets:/run/secrets:ro" "$ctr" -- "$@" </dev/null
}

# start_in_image LOG CTR ARGS...: like in_image, in the background; the pid
# recorded is buildah's own (exec), whose end stops the process it runs.
start_in_image() {
	local log=$1 ctr=$2
	shift 2
	(exec buildah --storage-driver "$driver" run --isolation chroot \
		--volume "$tmp/secrets:/run/secrets:ro" "$ctr" -- "$@" </dev/null >"$log" 2>&1) &
	pids+=($!)
}

# free_port VAR sets VAR to a loopback TCP port nothing listens on, below the
# kernel's ephemeral range: a port there may be the local end of an
# outgoing connection, which a connect probe does not see but which cannot
# be bound. Ports handed out before (used_ports) are skipped.
used_ports=" "
free_port() {
	local port tries low
	low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
	for ((tries = 0; tries < 50; tries++)); do
		port=$((10000 + RANDOM % (low - 10000)))
		[[ $used_ports == *" $port "* ]] && continue
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			used_ports+="$port "
			printf -v "$1" '%s' "$port"
			return 0
		fi
	done
	fail "no free port"
}

# --- image configuration --------------------------------------------------
cfg=$(bh inspect --type image "$image")
check_cfg() {
	local what=$1 query=$2 want=$3 got
	got=$(jq -c "$query" <<<"$cfg")
	[[ $got == "$want" ]] || fail "$what = $got, want $want"
}
check_cfg user '.OCIv1.config.User' '"65532:65532"'
check_cfg entrypoint '.OCIv1.config.Entrypoint' '["/authgate"]'
check_cfg cmd '.OCIv1.config.Cmd' 'null'
check_cfg ports '.OCIv1.config.ExposedPorts | keys' '["4180/tcp","4181/tcp"]'
check_cfg healthcheck '.Docker.config.Healthcheck.Test' '["CMD","/authgate","healthcheck"]'
ok "image configuration (user 65532, entrypoint, ports, HEALTHCHECK)"

# --- filesystem and binary ------------------------------------------------
new_container
hc_ctr=$ctr
mnt=$(bh mount "$ctr")
files=$(cd "$mnt" && find . -mindepth 1 ! -type d | sort | tr '\n' ' ')
[[ $files == "./authgate ./etc/ssl/certs/ca-certificates.crt " ]] ||
	fail "image files: $files, want only /authgate and the CA bundle"
[[ -s $mnt/etc/ssl/certs/ca-certificates.crt ]] || fail "empty CA bundle"
info=$(go version -m "$mnt/authgate")
want_go=go$(awk '$1 == "go" { print $2 }' "$root/go.mod")
grep -q "^$mnt/authgate: $want_go\$" <<<"$info" || fail "binary built with $(head -1 <<<"$info"), want $want_go"
for setting in 'CGO_ENABLED=0' '-trimpath=true' 'GOOS=linux'; do
	grep -qF -- "build	$setting" <<<"$info" || fail "binary lacks build setting $setting"
done
grep -qF -- "$root" "$mnt/authgate" && fail "binary holds build paths ($root)"
grep -qaF -- "$version" "$mnt/authgate" || fail "binary does not hold the version $version"
grep -q 'github.com/zitadel/oidc' <<<"$info" && fail "production binary links the demo IdP (zitadel/oidc): built without -tags nodemo?"
bh umount "$ctr" >/dev/null
ok "files: /authgate and the CA bundle only; static, trimmed, $want_go, version $version"

# --- commands inside the image --------------------------------------------
mkdir -p "$tmp/secrets"
head -c 24 /dev/urandom | base64 >"$tmp/secrets/client_secret"
head -c 32 /dev/urandom | base64 >"$tmp/secrets/cookie_secret"
chmod 0755 "$tmp" "$tmp/secrets"
chmod 0644 "$tmp/secrets/"*

help=$(in_image "$hc_ctr" /authgate --help) || fail "authgate --help exited $?"
for name in AUTHGATE_UPSTREAM AUTHGATE_OIDC_ISSUER_URL AUTHGATE_INTERNAL_ADDR; do
	grep -q "$name" <<<"$help" || fail "authgate --help does not list $name"
done
got=$(in_image "$hc_ctr" /authgate version) || fail "authgate version exited $?"
[[ $got == "authgate $version" ]] || fail "authgate version = $got, want authgate $version"
if in_image "$hc_ctr" /authgate demo >/dev/null 2>&1; then
	fail "authgate demo ran in the production image, want it left out (-tags nodemo)"
fi
ok "authgate --help and version inside the image; no demo in it"

idp_port='' app_port='' proxy_port='' internal_port=''
free_port idp_port
free_port app_port
free_port proxy_port
free_port internal_port
issuer="http://127.0.0.1:$idp_port/"

# hc runs `authgate healthcheck` in the image against the internal port.
hc() {
	bh run --isolation chroot --env "AUTHGATE_INTERNAL_ADDR=127.0.0.1:$internal_port" "$hc_ctr" -- /authgate healthcheck </dev/null 2>/dev/null
}
if hc; then
	fail "authgate healthcheck exited 0 with nothing listening"
fi
ok "authgate healthcheck exits non-zero with nothing listening"

log=$tmp/log
new_container "$demo_image"
start_in_image "$log.idp" "$ctr" /authgate demo --idp-only --idp-listen "127.0.0.1:$idp_port" --issuer "$issuer" \
	--client-secret-file /run/secrets/client_secret \
	--redirect-url "http://127.0.0.1:$proxy_port/oauth2/callback"
new_container "$demo_image"
start_in_image "$log.app" "$ctr" /authgate demo --upstream-only --upstream-listen "127.0.0.1:$app_port"
for ((i = 0; ; i++)); do
	curl -fs -o /dev/null "${issuer}.well-known/openid-configuration" && break
	((i < 100)) || fail "demo IdP did not come up: $(cat "$log.idp")"
	sleep 0.1
done

# deploy/compose's IdP healthcheck: `authgate healthcheck` against the IdP.
bh run --isolation chroot --env "AUTHGATE_INTERNAL_ADDR=127.0.0.1:$idp_port" "$hc_ctr" -- /authgate healthcheck </dev/null ||
	fail "authgate healthcheck against the demo IdP's /healthz exited $?"
ok "authgate healthcheck passes against the demo IdP (Compose's idp healthcheck)"

new_container
(exec buildah --storage-driver "$driver" run --isolation chroot --volume "$tmp/secrets:/run/secrets:ro" \
	--env "AUTHGATE_UPSTREAM=http://127.0.0.1:$app_port" \
	--env "AUTHGATE_OIDC_ISSUER_URL=$issuer" \
	--env "AUTHGATE_CLIENT_ID=authgate-demo" \
	--env "AUTHGATE_CLIENT_SECRET_FILE=/run/secrets/client_secret" \
	--env "AUTHGATE_COOKIE_SECRET_FILE=/run/secrets/cookie_secret" \
	--env "AUTHGATE_REDIRECT_URL=http://127.0.0.1:$proxy_port/oauth2/callback" \
	--env "AUTHGATE_COOKIE_SECURE=false" \
	--env "AUTHGATE_LISTEN_ADDR=127.0.0.1:$proxy_port" \
	--env "AUTHGATE_INTERNAL_ADDR=127.0.0.1:$internal_port" \
	"$ctr" -- /authgate </dev/null >"$log.proxy" 2>&1) &
pids+=($!)
for ((i = 0; ; i++)); do
	hc && break
	((i < 40)) || fail "authgate healthcheck never exited 0: $(cat "$log.proxy")"
	sleep 0.2
done
ok "authgate healthcheck exits 0 against a running authgate (inside the image)"

code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$internal_port/readyz")
[[ $code == 200 ]] || fail "GET /readyz = $code, want 200: $(cat "$log.proxy")"
# Without Fetch Metadata (a browser with it gets the deep-link page, whose
# script keeps the URL fragment on the way to the same redirect).
read -r code location < <(curl -s -o /dev/null -H 'Accept: text/html' \
	-w '%{http_code} %{redirect_url}\n' "http://127.0.0.1:$proxy_port/")
[[ $code =~ ^30[27]$ && $location == "$issuer"* ]] ||
	fail "GET / without a session = $code to '$location', want a redirect to $issuer"
ok "authgate redirects a browser to the IdP ($code) and is ready"
