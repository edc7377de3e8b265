package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"
)

// runHealthcheck probes the internal /healthz so that container healthchecks
// work in an image without a shell or curl. It reads AUTHGATE_INTERNAL_ADDR
// only, so it works whatever else the environment holds.
func runHealthcheck(ctx context.Context, stderr io.Writer) int {
	addr := os.Getenv("AUTHGATE_INTERNAL_ADDR")
	if addr == "" {
		addr = ":4181"
	}
	url, err := healthURL(addr)
	if err != nil {
		fmt.Fprintf(stderr, "healthcheck: AUTHGATE_INTERNAL_ADDR: %v\n", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		fmt.Fprintf(stderr, "healthcheck: %v\n", err)
		return 1
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "healthcheck: %v\n", err)
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "healthcheck: %s answered %s\n", url, resp.Status)
		return 1
	}
	return 0
}

// healthURL turns a listen address into the URL to probe: an empty or
// wildcard host means this machine's loopback.
func healthURL(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("%q is not host:port", addr)
	}
	switch host {
	case "", "0.0.0.0", "::":
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/healthz", nil
}
