#!/usr/bin/env bash
# deploy/check.sh [all|artefacts|image]
#
# Checks authgate's deployment artefacts where no container daemon runs:
#   artefacts  helm lint --strict and helm template of every documented values
#              scenario and of the sidecar example chart, every rendered object
#              and plain manifest strictly decoded into k8s.io/api types, the
#              Compose files loaded with compose-go, and the drift checks
#              against cmd/authgate/config.go and README.md
#              (go test ./deploy/..., which runs helm itself);
#   image      the Dockerfile built with buildah (the build stage from the
#              local Go toolchain, since no base image can be pulled here),
#              then deploy/image/smoke.sh: --help, version and healthcheck run
#              inside the image against a running authgate.
# It installs what it lacks: helm (go install), buildah, jq and curl (apt).
# Idempotent; a second run reuses the build-stage image and the Go caches.
set -euo pipefail

step=${1:-all}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

go_version=$(awk '$1 == "go" { print $2 }' go.mod)
export GOTOOLCHAIN=go$go_version
PATH="$(go env GOPATH)/bin:$PATH"
export PATH
export STORAGE_DRIVER=${STORAGE_DRIVER:-vfs}
helm_version=v3.22.0
image=localhost/authgate:check
demo_image=localhost/authgate:check-demo
go_image=localhost/authgate-go:$go_version

log() { echo "check.sh: $*"; }

timed() {
	local start=$SECONDS
	"$@"
	log "$1 took $((SECONDS - start))s"
}

need_helm() {
	# A helm built by go install reports only "v3.22", not the patch level.
	if [[ $(helm version --short 2>/dev/null) != "${helm_version%.*}"* ]]; then
		log "installing helm $helm_version"
		go install "helm.sh/helm/v3/cmd/helm@$helm_version"
	fi
}

# need_apt CMD:PACKAGE... installs the packages whose command is missing.
need_apt() {
	local pair missing=()
	for pair in "$@"; do
		command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
	done
	if ((${#missing[@]} > 0)); then
		log "installing ${missing[*]}"
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
	fi
}

artefacts() {
	need_helm
	go test -count=1 ./deploy/...
}

image() {
	need_apt buildah:buildah jq:jq curl:curl
	bh() { buildah --storage-driver "$STORAGE_DRIVER" "$@"; }

	deploy/image/build-stage.sh "$go_image"
	# The build reads modules from this machine's module cache (offline).
	go list -deps ./cmd/authgate >/dev/null
	local version old
	version=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
	old=$(bh images --quiet --no-trunc "$image" 2>/dev/null || true)
	bh bud --isolation chroot --pull=never --layers=false --format docker --quiet \
		--build-arg "GO_IMAGE=$go_image" \
		--build-arg "GOPROXY=file:///goproxy" \
		--build-arg "VERSION=$version" \
		--volume "$(go env GOMODCACHE)/cache/download:/goproxy:ro" \
		--tag "$image" . >/dev/null
	# Drop the previous build, now untagged.
	local new
	new=$(bh images --quiet --no-trunc "$image")
	if [[ -n $old && $old != "$new" ]]; then
		bh rmi "$old" >/dev/null 2>&1 || true
	fi
	log "built $image ($version)"
	# The demo image (Dockerfile target demo): the binary with `authgate demo`,
	# which Compose runs for the IdP and the app.
	old=$(bh images --quiet --no-trunc "$demo_image" 2>/dev/null || true)
	bh bud --isolation chroot --pull=never --layers=false --format docker --quiet \
		--build-arg "GO_IMAGE=$go_image" \
		--build-arg "GOPROXY=file:///goproxy" \
		--build-arg "VERSION=$version" \
		--volume "$(go env GOMODCACHE)/cache/download:/goproxy:ro" \
		--target demo --tag "$demo_image" . >/dev/null
	new=$(bh images --quiet --no-trunc "$demo_image")
	if [[ -n $old && $old != "$new" ]]; then
		bh rmi "$old" >/dev/null 2>&1 || true
	fi
	log "built $demo_image ($version)"
	deploy/image/smoke.sh "$image" "$version" "$demo_image"
}

case $step in
artefacts) timed artefacts ;;
image) timed image ;;
all)
	timed artefacts
	timed image
	;;
*)
	echo "usage: deploy/check.sh [all|artefacts|image]" >&2
	exit 2
	;;
esac
log "passed"
