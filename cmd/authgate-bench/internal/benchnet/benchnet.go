// Package benchnet holds what authgate-bench and the bare proxy it
// measures share: the loopback-only checks on every address they listen on
// or send to, and the HTTP server settings and serve loop of authgate's
// proxy listener, so that both sides of a comparison run the same server.
package benchnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"time"
)

// ErrNotLoopback is wrapped when a target or listen address is not a
// loopback IP: the benchmark puts load on this machine only.
var ErrNotLoopback = errors.New("authgate-bench: not a loopback address")

// RequireLoopbackURL accepts http URLs whose host is a literal loopback IP
// (127.0.0.0/8 or ::1). Names such as "localhost" are refused: what they
// resolve to is not this program's to decide.
func RequireLoopbackURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%w: %q is not a URL", ErrNotLoopback, raw)
	}
	if u.Scheme != "http" {
		return fmt.Errorf("%w: %q is not http://", ErrNotLoopback, raw)
	}
	if !isLoopbackIP(u.Hostname()) {
		return fmt.Errorf("%w: %q", ErrNotLoopback, u.Host)
	}
	return nil
}

// RequireLoopbackAddr accepts host:port with a literal loopback IP.
func RequireLoopbackAddr(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || !isLoopbackIP(host) {
		return fmt.Errorf("%w: %q", ErrNotLoopback, addr)
	}
	return nil
}

func isLoopbackIP(host string) bool {
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// NewServer returns an http.Server for h with the settings of authgate's
// proxy listener (cmd/authgate's defaults).
func NewServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
}

// Serve runs srv on ln until ctx ends (SIGTERM), then shuts it down. It
// returns the process exit code, having written any error to stderr.
func Serve(ctx context.Context, stderr io.Writer, ln net.Listener, srv *http.Server) int {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		fmt.Fprintf(stderr, "serve: %v\n", err)
		return 1
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintf(stderr, "shutdown: %v\n", err)
		return 1
	}
	return 0
}
