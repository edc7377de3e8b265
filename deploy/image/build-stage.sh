#!/usr/bin/env bash
# build-stage.sh IMAGE
#
# Creates the image the Dockerfile's build stage runs in (GO_IMAGE) where no
# base image can be pulled: an empty image holding the Go toolchain that go.mod
# names (taken from the module cache, where GOTOOLCHAIN puts it) and the CA
# bundle, with the environment of the official golang image. It has no shell,
# which the Dockerfile allows for. Does nothing when IMAGE already exists.
set -euo pipefail

image=${1:?usage: build-stage.sh IMAGE}
driver=${STORAGE_DRIVER:-vfs}
bh() { buildah --storage-driver "$driver" "$@"; }

if bh inspect --type image "$image" >/dev/null 2>&1; then
	echo "build-stage.sh: $image exists"
	exit 0
fi

goroot=$(go env GOROOT)
if [[ ! -x $goroot/bin/go ]]; then
	echo "build-stage.sh: no Go toolchain at $goroot" >&2
	exit 1
fi

ctr=$(bh from scratch)
trap 'bh rm "$ctr" >/dev/null 2>&1 || true' EXIT
mnt=$(bh mount "$ctr")

mkdir -p "$mnt/usr/local/go" "$mnt/etc/ssl/certs" "$mnt/go" "$mnt/root" "$mnt/tmp"
chmod 1777 "$mnt/tmp"
# The parts of GOROOT a build reads; test/, doc/, api/ and misc/ are not needed.
for part in VERSION go.env bin lib pkg src; do
	if [[ -e $goroot/$part ]]; then
		cp -a "$goroot/$part" "$mnt/usr/local/go/"
	fi
done
# The module cache keeps files read-only; the image need not.
chmod -R u+w "$mnt/usr/local/go"
cp /etc/ssl/certs/ca-certificates.crt "$mnt/etc/ssl/certs/ca-certificates.crt"

bh unmount "$ctr" >/dev/null
bh config \
	--env PATH=/usr/local/go/bin:/go/bin:/usr/local/bin:/usr/bin:/bin \
	--env GOPATH=/go \
	--env GOTOOLCHAIN=local \
	--env HOME=/root \
	--workingdir /go \
	--label org.opencontainers.image.description="local Go build stage for authgate (from $(go env GOVERSION))" \
	"$ctr"
bh commit --quiet --rm "$ctr" "$image" >/dev/null
trap - EXIT
echo "build-stage.sh: created $image"
