package upstream

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"strings"
	"sync"
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
	id, val := newRequestID()
	if r.Header == nil {
		r.Header = make(http.Header)
	}
	r.Header[key] = val
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

// newRequestID returns a random id (16 bytes from crypto/rand, hex) and a
// one-element header value holding it. Ids are cut from batches
// (idBatch), so that a request costs no allocation of its own.
func newRequestID() (string, []string) {
	b := idBatches.Get().(*idBatch)
	if b.next == idsPerBatch {
		b.fill()
	}
	i := b.next
	b.next++
	id, val := b.ids[i*idLen:(i+1)*idLen], b.vals[i:i+1:i+1]
	idBatches.Put(b)
	return id, val
}

const (
	idsPerBatch = 64
	idLen       = 32 // hex of 16 random bytes
)

// idBatch is idsPerBatch request ids in one string and their header
// values in one array: two allocations every idsPerBatch requests instead
// of two a request (a held id keeps its batch's 3 KB alive). Each value's
// capacity is capped at one, so an append by a later user copies instead
// of overwriting a neighbour. A batch is used by one goroutine at a time
// (sync.Pool: per-CPU, no lock) and refilled into new memory, never
// overwritten, so an id handed out never changes.
type idBatch struct {
	ids  string
	vals []string
	next int
}

var idBatches = sync.Pool{New: func() any { return &idBatch{next: idsPerBatch} }}

func (b *idBatch) fill() {
	var raw [idsPerBatch * idLen / 2]byte
	rand.Read(raw[:]) // never returns an error (crypto/rand, Go 1.24+)
	var enc [idsPerBatch * idLen]byte
	hex.Encode(enc[:], raw[:])
	var s strings.Builder // one copy into the string, not two
	s.Grow(len(enc))
	s.Write(enc[:])
	b.ids = s.String()
	b.vals = make([]string, idsPerBatch)
	for i := range b.vals {
		b.vals[i] = b.ids[i*idLen : (i+1)*idLen]
	}
	b.next = 0
}
