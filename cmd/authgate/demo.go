package main

import (
	"context"
	"fmt"
	"io"
)

// runDemo is wired once the demo provider lands.
func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "authgate demo: not built yet")
	return 1
}
