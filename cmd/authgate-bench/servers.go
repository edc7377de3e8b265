package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Hidden subcommands: the benchmark re-executes itself to run the bare
// proxy and the upstream in processes of their own, so that /proc measures
// each alone.
const (
	cmdBareProxy = "bare-proxy"
	cmdUpstream  = "upstream"
)

// listeningPrefix starts the first line a server subcommand prints.
const listeningPrefix = "listening "

// Transport settings shared with authgate's upstream package (its
// newTransport with every Options field zero, which is what
// cmd/authgate configures from the defaults of AUTHGATE_UPSTREAM_*), so
// that the bare proxy differs from authgate only by what authgate adds.
const (
	bareDialTimeout           = 5 * time.Second
	bareResponseHeaderTimeout = 60 * time.Second
	bareIdleConnTimeout       = 90 * time.Second
	bareMaxIdleConnsPerHost   = 128
)

// transportSettings describes the shared transport for the results.
const transportSettings = "MaxIdleConnsPerHost 128, IdleConnTimeout 90s, dial timeout 5s, ResponseHeaderTimeout 60s, DisableCompression, ForceAttemptHTTP2 (HTTP/1.1 to a plain-http upstream)"

// newBareTransport is authgate's default upstream transport, rebuilt.
func newBareTransport() *http.Transport {
	d := &net.Dialer{Timeout: bareDialTimeout, KeepAlive: 30 * time.Second}
	return &http.Transport{
		DialContext:           d.DialContext,
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   bareDialTimeout,
		ResponseHeaderTimeout: bareResponseHeaderTimeout,
		IdleConnTimeout:       bareIdleConnTimeout,
		MaxIdleConnsPerHost:   bareMaxIdleConnsPerHost,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
	}
}

// newBareProxy is the reference: httputil.ReverseProxy with the transport
// above and nothing else (no identity, no header stripping, no request id).
// With pooled, copy buffers come from a sync.Pool instead of a new 32 KiB
// buffer per response (ReverseProxy.BufferPool).
func newBareProxy(target *url.URL, pooled bool) http.Handler {
	rp := &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(target) },
		Transport: newBareTransport(),
	}
	if pooled {
		rp.BufferPool = &bufferPool{}
	}
	return rp
}

// bufferPool is an httputil.BufferPool of 32 KiB buffers, the size
// ReverseProxy allocates when it has none.
type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte {
	if v, ok := b.p.Get().(*[]byte); ok {
		return *v
	}
	return make([]byte, 32<<10)
}

func (b *bufferPool) Put(buf []byte) { b.p.Put(&buf) }

// newServer has the server settings authgate's proxy listener has
// (cmd/authgate defaults).
func newServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
}

// runBareProxy is `authgate-bench bare-proxy -listen ADDR -upstream URL`.
func runBareProxy(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(cmdBareProxy, flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:0", "loopback address to listen on")
	upstream := fs.String("upstream", "", "loopback http:// URL to forward to")
	pooled := fs.Bool("buffer-pool", false, "reuse copy buffers (ReverseProxy.BufferPool)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := requireLoopbackAddr(*listen); err != nil {
		fmt.Fprintf(stderr, "%s: -listen: %v\n", cmdBareProxy, err)
		return 2
	}
	if err := requireLoopbackURL(*upstream); err != nil {
		fmt.Fprintf(stderr, "%s: -upstream: %v\n", cmdBareProxy, err)
		return 2
	}
	target, _ := url.Parse(*upstream) // checked above
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", cmdBareProxy, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s%s\n", listeningPrefix, ln.Addr())
	return serve(ctx, stderr, ln, newServer(newBareProxy(target, *pooled)))
}

// upstreamCounters are what the upstream reports on its stats listener.
type upstreamCounters struct {
	NewConns int64 `json:"new_conns"`
	Requests int64 `json:"requests"`
}

// fixedBody answers every request with the same body, counting requests
// and (through ConnState) new connections.
type fixedBody struct {
	body               []byte
	newConns, requests atomic.Int64
}

func (f *fixedBody) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.requests.Add(1)
	h := w.Header()
	h["Content-Type"] = []string{"text/plain"}
	w.Write(f.body)
}

func (f *fixedBody) connState(_ net.Conn, s http.ConnState) {
	if s == http.StateNew {
		f.newConns.Add(1)
	}
}

func (f *fixedBody) serveStats(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(upstreamCounters{NewConns: f.newConns.Load(), Requests: f.requests.Load()})
}

// runUpstream is `authgate-bench upstream -listen ADDR -stats-listen ADDR
// -body-size N`: a fixed-body server whose counters are served on a second
// listener, so that reading them is not counted.
func runUpstream(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(cmdUpstream, flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:0", "loopback address to serve the body on")
	statsListen := fs.String("stats-listen", "127.0.0.1:0", "loopback address to serve GET /stats on")
	size := fs.Int("body-size", 128, "response body size in bytes")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	for _, a := range []string{*listen, *statsListen} {
		if err := requireLoopbackAddr(a); err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", cmdUpstream, err)
			return 2
		}
	}
	if *size < 0 || *size > 1<<20 {
		fmt.Fprintf(stderr, "%s: -body-size %d out of range 0..1048576\n", cmdUpstream, *size)
		return 2
	}
	f := &fixedBody{body: []byte(strings.Repeat("x", *size))}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", cmdUpstream, err)
		return 1
	}
	statsLn, err := net.Listen("tcp", *statsListen)
	if err != nil {
		ln.Close()
		fmt.Fprintf(stderr, "%s: %v\n", cmdUpstream, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s%s %s\n", listeningPrefix, ln.Addr(), statsLn.Addr())
	srv := newServer(f)
	srv.ConnState = f.connState
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stats", f.serveStats)
	stats := newServer(mux)
	go serve(ctx, io.Discard, statsLn, stats)
	return serve(ctx, stderr, ln, srv)
}

// serve runs srv on ln until ctx ends (SIGTERM), then shuts it down.
func serve(ctx context.Context, stderr io.Writer, ln net.Listener, srv *http.Server) int {
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
