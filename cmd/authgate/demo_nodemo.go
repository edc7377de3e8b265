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
// and their dependencies from the binary: 13 MB smaller and about 6 MiB
// less idle RSS (deploy/bench/RESULTS.md).
func runDemo(_ context.Context, _ []string, _, stderr io.Writer) int {
	fmt.Fprintln(stderr, "authgate: this binary was built without the demo (-tags nodemo); run `go run ./cmd/authgate demo` from the source tree or use the authgate-demo image")
	return 2
}
