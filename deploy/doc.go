// Package deploy has no code of its own: its tests check authgate's
// deployment artefacts (the Dockerfile, charts/authgate, deploy/kubernetes and
// deploy/compose) against cmd/authgate/config.go and against Kubernetes' and
// Compose's own types, so that a misspelt field or a renamed variable fails CI.
// deploy/check.sh runs them with the tools they need, and builds the image.
package deploy
