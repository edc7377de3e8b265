package upstream

import (
	"context"
	"net"
	"net/http"
	"time"
)

// newTransport builds the transport used when Options.Transport is nil.
// Unlike http.DefaultTransport it keeps many idle connections (one upstream
// host), ignores HTTP_PROXY (the upstream is a neighbour, not the Internet)
// and leaves compression to the client and the upstream: a proxy that asked
// for gzip itself would decompress every response for nothing.
func newTransport(o Options, t target) *http.Transport {
	dialTimeout := orDefault(o.DialTimeout, DefaultDialTimeout)
	d := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		DialContext:           d.DialContext,
		ForceAttemptHTTP2:     true, // h2 by ALPN for https targets that offer it
		TLSClientConfig:       o.TLSClientConfig.Clone(),
		TLSHandshakeTimeout:   dialTimeout,
		ResponseHeaderTimeout: orDefault(o.ResponseHeaderTimeout, DefaultResponseHeaderTimeout),
		IdleConnTimeout:       orDefault(o.IdleConnTimeout, DefaultIdleConnTimeout),
		MaxIdleConnsPerHost:   o.MaxIdleConnsPerHost,
		ExpectContinueTimeout: 1 * time.Second,
		DisableCompression:    true,
	}
	switch {
	case tr.MaxIdleConnsPerHost == 0:
		tr.MaxIdleConnsPerHost = DefaultMaxIdleConnsPerHost
	case tr.MaxIdleConnsPerHost < 0:
		tr.DisableKeepAlives = true
	}
	if t.socket != "" {
		path := t.socket
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", path)
		}
	}
	if t.h2c {
		// HTTP/2 with prior knowledge on http:// URLs (RFC 9113 section
		// 3.3): Protocols holding UnencryptedHTTP2 without HTTP1.
		var p http.Protocols
		p.SetUnencryptedHTTP2(true)
		tr.Protocols = &p
	}
	return tr
}

// orDefault maps zero to def and negative to 0, which net/http reads as "no
// limit".
func orDefault(d, def time.Duration) time.Duration {
	switch {
	case d == 0:
		return def
	case d < 0:
		return 0
	}
	return d
}
