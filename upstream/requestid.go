package upstream

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
)

// maxRequestIDLen bounds a client-sent request id kept as is.
const maxRequestIDLen = 128

// EnsureRequestID returns r's request id from header (e.g. "X-Request-Id";
// empty means that one) and makes sure r carries it. A client-sent id is kept
// when it is a single value of 1 to 128 printable ASCII characters; otherwise
// a random one (16 bytes, hex) replaces it in r.Header. The outer handler
// calls it first, so that its logs, the Proxy's logs and the upstream share
// the id; Proxy.ServeHTTP calls it again, which then changes nothing.
func EnsureRequestID(r *http.Request, header string) string {
	if header == "" {
		header = DefaultRequestIDHeader
	}
	key := http.CanonicalHeaderKey(header)
	if v := r.Header[key]; len(v) == 1 && validRequestID(v[0]) {
		return v[0]
	}
	id := newRequestID()
	if r.Header == nil {
		r.Header = make(http.Header)
	}
	r.Header[key] = []string{id}
	return id
}

func validRequestID(s string) bool {
	if s == "" || len(s) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		// Visible ASCII only: no spaces or controls to forge log lines with.
		if s[i] < '!' || s[i] > '~' {
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [16]byte
	rand.Read(b[:]) // never returns an error (crypto/rand, Go 1.24+)
	return hex.EncodeToString(b[:])
}
