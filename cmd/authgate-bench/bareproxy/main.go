// Command bareproxy is the benchmark's reference: httputil.ReverseProxy with
// authgate's default upstream transport and nothing else (no identity, no
// header stripping, no request id), in a binary of its own so that its
// memory is the floor a Go reverse proxy starts from. authgate-bench builds
// it the way it builds authgate (static, -trimpath) and runs it:
//
//	bareproxy -listen 127.0.0.1:0 -upstream http://127.0.0.1:PORT [-buffer-pool]
//
// It prints "listening ADDR" once it accepts connections, and stops on
// SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/authgate/authgate/cmd/authgate-bench/internal/benchnet"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// Transport settings of authgate's upstream package (its newTransport with
// every Options field zero, which is what cmd/authgate configures from the
// defaults of AUTHGATE_UPSTREAM_*), so that this proxy differs from
// authgate only by what authgate adds.
const (
	dialTimeout           = 5 * time.Second
	responseHeaderTimeout = 60 * time.Second
	idleConnTimeout       = 90 * time.Second
	maxIdleConnsPerHost   = 128
)

func newTransport() *http.Transport {
	d := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	return &http.Transport{
		DialContext:           d.DialContext,
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   dialTimeout,
		ResponseHeaderTimeout: responseHeaderTimeout,
		IdleConnTimeout:       idleConnTimeout,
		MaxIdleConnsPerHost:   maxIdleConnsPerHost,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
	}
}

// newProxy is httputil.ReverseProxy with the transport above. With pooled,
// copy buffers come from a sync.Pool instead of a new 32 KiB buffer per
// response (ReverseProxy.BufferPool).
func newProxy(target *url.URL, pooled bool) http.Handler {
	rp := &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(target) },
		Transport: newTransport(),
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

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bareproxy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:0", "loopback address to listen on")
	upstream := fs.String("upstream", "", "loopback http:// URL to forward to")
	pooled := fs.Bool("buffer-pool", false, "reuse copy buffers (ReverseProxy.BufferPool)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if benchnet.RequireLoopbackAddr(*listen) != nil {
		fmt.Fprintf(stderr, "bareproxy: -listen %q: want a loopback IP and port\n", *listen)
		return 2
	}
	target, err := url.Parse(*upstream)
	if err != nil || benchnet.RequireLoopbackURL(*upstream) != nil {
		fmt.Fprintf(stderr, "bareproxy: -upstream %q: want http://<loopback IP>:<port>\n", *upstream)
		return 2
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(stderr, "bareproxy: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "listening %s\n", ln.Addr())
	return benchnet.Serve(ctx, stderr, ln, benchnet.NewServer(newProxy(target, *pooled)))
}
