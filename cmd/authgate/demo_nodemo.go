//go:build nodemo

package main

import (
	"context"
	"fmt"
	"io"
)

// runDemo, in a binary built with -tags nodemo (the container image's
// production binary), explains where the demo went. Leaving the demo
// identity provider and whoami out drops the zitadel op, chi, html/template
// and their dependencies from the binary: 34.5 -> 20.6 MB, idle RSS 15.2
// -> 12.7 MiB (deploy/bench/NOTES.md).
func runDemo(_ context.Context, _ []string, _, stderr io.Writer) int {
	fmt.Fprintln(stderr, "authgate: this binary was built without the demo (-tags nodemo); run `go run ./cmd/authgate demo` from the source tree or use the authgate-demo image")
	return 2
}
