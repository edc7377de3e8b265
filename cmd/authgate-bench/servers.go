package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/authgate/authgate/cmd/authgate-bench/internal/benchnet"
)

// cmdUpstream is a hidden subcommand: the benchmark re-executes itself to
// run the upstream in a process of its own.
const cmdUpstream = "upstream"

// listeningPrefix starts the first line a server subcommand prints.
const listeningPrefix = "listening "

// Transport settings of authgate's upstream package (its newTransport with
// every Options field zero), which the bare proxies (./bareproxy) copy and
// the benchmark's own clients use too.
const (
	bareDialTimeout           = 5 * time.Second
	bareResponseHeaderTimeout = 60 * time.Second
	bareIdleConnTimeout       = 90 * time.Second
	bareMaxIdleConnsPerHost   = 128
)

// transportSettings describes the shared transport for the results.
const transportSettings = "MaxIdleConnsPerHost 128, IdleConnTimeout 90s, dial timeout 5s, ResponseHeaderTimeout 60s, DisableCompression, ForceAttemptHTTP2 (HTTP/1.1 to a plain-http upstream)"

// newBareTransport is authgate's default upstream transport, rebuilt, for
// the benchmark's own clients.
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
	if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		echoUpgrade(w)
		return
	}
	h := w.Header()
	h["Content-Type"] = []string{"text/plain"}
	w.Write(f.body)
}

// echoUpgrade answers a WebSocket upgrade (the soak's) with 101 and then
// echoes every byte back until the client closes: the proxy in between
// sees a real upgraded connection, and framing does not matter to it.
func echoUpgrade(w http.ResponseWriter) {
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	if brw.Flush() != nil {
		return
	}
	io.Copy(conn, brw)
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
		if err := benchnet.RequireLoopbackAddr(a); err != nil {
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
	srv := benchnet.NewServer(f)
	srv.ConnState = f.connState
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stats", f.serveStats)
	stats := benchnet.NewServer(mux)
	go benchnet.Serve(ctx, io.Discard, statsLn, stats)
	return benchnet.Serve(ctx, stderr, ln, srv)
}
