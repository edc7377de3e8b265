# syntax=docker/dockerfile:1
#
# authgate container image: a static binary on an empty base.
#
#   docker build --build-arg VERSION=$(git describe --tags --always) -t authgate .
#   docker build --target demo -t authgate:demo .   # with `authgate demo`
#
# The build stage uses exec-form RUN only, so it also runs in a base image with
# no shell: CI here cannot pull golang:*, and deploy/image/build-stage.sh makes
# an equivalent local image from the Go toolchain in the module cache
# (deploy/check.sh passes it as GO_IMAGE). Exec form does no variable
# expansion, which is why the build flags travel in GOFLAGS (ENV does expand).

ARG GO_IMAGE=docker.io/library/golang:1.27.3-bookworm

FROM ${GO_IMAGE} AS build
# VERSION is stamped into main.version; it is what `authgate --help` and the
# logs report.
ARG VERSION=dev
# GOPROXY lets an offline build read a module cache mounted into the build
# (deploy/check.sh: file:///goproxy); the default is the public proxy.
ARG GOPROXY=https://proxy.golang.org,direct
ENV CGO_ENABLED=0 \
    GOOS=linux \
    GOTOOLCHAIN=local \
    GOPATH=/go \
    GOCACHE=/root/.cache/go-build \
    GOPROXY=${GOPROXY} \
    GOFLAGS="-trimpath -buildvcs=false -mod=readonly -ldflags=-X=main.version=${VERSION}"
WORKDIR /src
# .dockerignore keeps the context to the Go sources the binary is built from.
COPY . .
# -tags nodemo leaves `authgate demo` (the demo IdP, whoami, and the zitadel
# op, chi and html/template they bring) out of the production binary: 34.5 ->
# 20.6 MB, and idle RSS 15.2 -> 12.7 MiB per pod (issue 12,
# deploy/bench/RESULTS.md). The demo image below has the full binary.
RUN --mount=type=cache,id=authgate-gomod,target=/go/pkg/mod \
    --mount=type=cache,id=authgate-gocache,target=/root/.cache/go-build \
    ["go", "build", "-tags", "nodemo", "-o", "/out/authgate", "./cmd/authgate"]

# The demo image (`--target demo`): the same, with `authgate demo` in it, for
# deploy/compose and the example app. Only built when asked for.
FROM build AS build-demo
RUN --mount=type=cache,id=authgate-gomod,target=/go/pkg/mod \
    --mount=type=cache,id=authgate-gocache,target=/root/.cache/go-build \
    ["go", "build", "-o", "/out/authgate", "./cmd/authgate"]

FROM scratch AS demo
COPY --from=build-demo /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build-demo /out/authgate /authgate
USER 65532:65532
EXPOSE 4180 4181
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["/authgate", "healthcheck"]
ENTRYPOINT ["/authgate"]

# The runtime stage (the default target) is empty apart from the binary and
# the CA bundle (for an https:// issuer or upstream). The binary needs no
# shell, libc, passwd entry or writable filesystem: run it with a read-only
# root.
FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/authgate /authgate
# 65532 is distroless's "nonroot"; numeric so that Kubernetes' runAsNonRoot
# can verify it without a passwd file.
USER 65532:65532
EXPOSE 4180 4181
# Probes the internal listener's /healthz (AUTHGATE_INTERNAL_ADDR); no curl needed.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["/authgate", "healthcheck"]
ENTRYPOINT ["/authgate"]
