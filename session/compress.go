package session

import (
	"bytes"
	"compress/flate"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"sync"

	kflate "github.com/klauspost/compress/flate"
)

// Compression of sealed sessions (format version 2, see seal.go).
//
// A session's size is mostly its tokens, and enterprise tokens are large:
// Entra ID puts up to 200 group GUIDs in both the ID token and the access
// token, Keycloak every role. The tokens are JWTs, base64url text that
// DEFLATE cannot compress well, and the same groups appear in both tokens
// and in Session.Groups. So the JWT segments are base64url-decoded first
// (exactly reversible: only segments whose strict decoding re-encodes to
// the same text are decoded), which lets DEFLATE see the JSON and find the
// repeats across tokens.

// maxInflated bounds what a compressed session may expand to. Sealed
// values are authenticated, so only a holder of the key could send a
// DEFLATE bomb; the bound keeps even that cheap.
const maxInflated = 1 << 20

// errInflate is returned for a compressed payload that does not expand to
// a packed session.
var errInflate = fmt.Errorf("%w: malformed compressed session", ErrNotFound)

// jwtB64 is the strict unpadded base64url of JWS compact serialisation
// (RFC 7515 section 7.1): a segment whose decoding re-encodes differently
// is left as text.
var jwtB64 = base64.RawURLEncoding.Strict()

// compress returns plaintext packed (packJWTs) and DEFLATE-compressed.
//
// The DEFLATE stream is written by klauspost/compress's stateless encoder
// because the standard library's is built for long streams: a
// flate.Writer holds 0.5–1 MB of match tables and window, and Reset
// clears them. Kept in a sync.Pool they are dropped at every GC, so under
// load each seal paid ~500 µs and 1 MB for a new writer; pinned for good
// they would cost about 1 MB per CPU. The stateless encoder keeps nothing
// between calls (a 16 KB table on the stack, small pooled buffers) and for
// a session of a few KB is about as small as flate.BestCompression (0.3–1%
// larger) at a third of the CPU. The output is plain DEFLATE (RFC 1951),
// read back with compress/flate.
func compress(plaintext []byte) []byte {
	var buf bytes.Buffer
	buf.Grow(len(plaintext) / 2)
	// A bytes.Buffer does not fail, so neither does the encoder.
	_ = kflate.StatelessDeflate(&buf, packRuns(packGUIDs(packJWTs(plaintext))), true, nil)
	return buf.Bytes()
}

// inflaters reuses flate readers (about 40 KB each: a 32 KB window and
// Huffman tables) across the opens of new cookies.
var inflaters sync.Pool

// decompress reverses compress. Every failure returns errInflate.
func decompress(c []byte) ([]byte, error) {
	src := bytes.NewReader(c)
	r, _ := inflaters.Get().(io.ReadCloser)
	if r == nil {
		r = flate.NewReader(src)
	} else if err := r.(flate.Resetter).Reset(src, nil); err != nil {
		return nil, errInflate
	}
	packed, err := io.ReadAll(io.LimitReader(r, maxInflated+1))
	inflaters.Put(r)
	if err != nil || len(packed) > maxInflated {
		return nil, errInflate
	}
	runs, err := unpackRuns(packed)
	if err != nil {
		return nil, err
	}
	unguided, err := unpackGUIDs(runs)
	if err != nil {
		return nil, err
	}
	return unpackJWTs(unguided)
}

// packJWTs replaces every JWT in b by its decoded segments. The result is
//
//	count uvarint, then for each JWT:
//	  length of the text before it (since the previous JWT) uvarint, that text,
//	  for each of its three segments: decoded length uvarint, decoded bytes;
//	then the text after the last JWT.
//
// A JWT here is three strict base64url segments joined by ".", the first
// starting with "eyJ" (`{"`, every JOSE header), the last possibly empty.
func packJWTs(b []byte) []byte {
	type span struct{ start, end int }
	var spans []span
	for i := 0; i+3 <= len(b); {
		j := bytes.Index(b[i:], []byte("eyJ"))
		if j < 0 {
			break
		}
		start := i + j
		if end, ok := jwtAt(b, start); ok {
			spans = append(spans, span{start, end})
			i = end
			continue
		}
		i = start + 1
	}
	out := make([]byte, 0, len(b))
	out = binary.AppendUvarint(out, uint64(len(spans)))
	prev := 0
	for _, s := range spans {
		out = binary.AppendUvarint(out, uint64(s.start-prev))
		out = append(out, b[prev:s.start]...)
		for _, seg := range bytes.SplitN(b[s.start:s.end], []byte("."), 3) {
			n := jwtB64.DecodedLen(len(seg))
			out = binary.AppendUvarint(out, uint64(n))
			out, _ = jwtB64.AppendDecode(out, seg) // checked by jwtAt
		}
		prev = s.end
	}
	return append(out, b[prev:]...)
}

// jwtAt reports whether a JWT starts at b[start] and where it ends.
func jwtAt(b []byte, start int) (end int, ok bool) {
	i := start
	for seg := 0; seg < 3; seg++ {
		s := i
		for i < len(b) && isB64URL(b[i]) {
			i++
		}
		if seg < 2 && (i == s || i >= len(b) || b[i] != '.') {
			return 0, false
		}
		if seg == 2 {
			// The signature's run may have swallowed the next field's
			// first bytes (a length byte such as '2'): take the longest
			// prefix that decodes exactly, leaving the rest as text.
			for e := i; e >= s && e > i-4; e-- {
				if _, err := jwtB64.DecodeString(string(b[s:e])); err == nil {
					return e, true
				}
			}
			return 0, false
		}
		if _, err := jwtB64.DecodeString(string(b[s:i])); err != nil {
			return 0, false
		}
		i++ // the "."
	}
	return i, true
}

func isB64URL(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}

// unpackJWTs reverses packJWTs.
func unpackJWTs(p []byte) ([]byte, error) {
	d := decoder{s: string(p)}
	n := d.uvarint()
	if d.bad || n > uint64(len(p)) {
		return nil, errInflate
	}
	out := make([]byte, 0, len(p)*4/3)
	for range n {
		out = append(out, d.string()...)
		for seg := 0; seg < 3; seg++ {
			if seg > 0 {
				out = append(out, '.')
			}
			out = jwtB64.AppendEncode(out, []byte(d.string()))
		}
		if d.bad {
			return nil, errInflate
		}
	}
	return append(out, d.s...), nil
}

// guidEscape starts an escape in packGUIDs' output. guidEscape then:
//   - escLiteral: a literal guidEscape byte;
//   - escLower or escUpper, 16 bytes: a GUID in lower or upper case hex;
//   - escList, kind (escLower or escUpper), count uvarint, separator length
//     uvarint, separator, count×16 bytes: count GUIDs of one case, each
//     pair separated by the same bytes.
//
// The list form matters: the same groups appear in the ID token (JSON,
// `","` between them), the access token (JSON) and Session.Groups (binary,
// a length byte between them). As lists their 16-byte ids become the same
// contiguous block each time, which DEFLATE repeats with a few long
// back-references instead of one per GUID.
const (
	guidEscape   = 0xff
	escLiteral   = 0
	escLower     = 1
	escUpper     = 2
	escList      = 3
	guidLen      = 36 // 8-4-4-4-12
	maxSeparator = 8
)

// packGUIDs replaces every GUID in canonical text form (all lower or all
// upper case hex, RFC 9562 section 4), and every list of them, by escapes.
func packGUIDs(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); {
		if b[i] == guidEscape {
			out = append(out, guidEscape, escLiteral)
			i++
			continue
		}
		kind, ok := guidKindAt(b, i)
		if !ok {
			out = append(out, b[i])
			i++
			continue
		}
		sep, count := guidList(b, i, kind)
		if count < 2 {
			out = append(out, guidEscape, kind)
			out = appendGUIDBytes(out, b[i:i+guidLen])
			i += guidLen
			continue
		}
		out = append(out, guidEscape, escList, kind)
		out = binary.AppendUvarint(out, uint64(count))
		out = binary.AppendUvarint(out, uint64(len(sep)))
		out = append(out, sep...)
		for range count {
			out = appendGUIDBytes(out, b[i:i+guidLen])
			i += guidLen + len(sep)
		}
		i -= len(sep)
	}
	return out
}

// guidKindAt reports whether a GUID starts at b[i].
func guidKindAt(b []byte, i int) (byte, bool) {
	if i+guidLen > len(b) {
		return 0, false
	}
	return guidAt(b[i : i+guidLen])
}

// guidList returns how many GUIDs of kind follow each other from b[i]
// with one separator of at most maxSeparator bytes (without guidEscape)
// between each pair, and that separator.
func guidList(b []byte, i int, kind byte) (sep []byte, count int) {
	j := i + guidLen
	for l := 1; l <= maxSeparator && j+l <= len(b); l++ {
		if b[j+l-1] == guidEscape {
			break
		}
		if k, ok := guidKindAt(b, j+l); ok && k == kind {
			sep = b[j : j+l]
			break
		}
	}
	if sep == nil {
		return nil, 1
	}
	count = 1
	for j+len(sep) <= len(b) && bytes.Equal(b[j:j+len(sep)], sep) {
		k, ok := guidKindAt(b, j+len(sep))
		if !ok || k != kind {
			break
		}
		count++
		j += len(sep) + guidLen
	}
	return sep, count
}

// guidAt reports whether g (guidLen bytes) is a GUID in one case.
func guidAt(g []byte) (kind byte, ok bool) {
	lower, upper := true, true
	for i, c := range g {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if c != '-' {
				return 0, false
			}
			continue
		}
		switch {
		case '0' <= c && c <= '9':
		case 'a' <= c && c <= 'f':
			upper = false
		case 'A' <= c && c <= 'F':
			lower = false
		default:
			return 0, false
		}
	}
	switch {
	case lower:
		return escLower, true
	case upper:
		return escUpper, true
	}
	return 0, false
}

func appendGUIDBytes(out, g []byte) []byte {
	var hi byte
	n := 0
	for _, c := range g {
		if c == '-' {
			continue
		}
		v := hexVal(c)
		if n%2 == 0 {
			hi = v << 4
		} else {
			out = append(out, hi|v)
		}
		n++
	}
	return out
}

func hexVal(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

// unpackGUIDs reverses packGUIDs.
func unpackGUIDs(p []byte) ([]byte, error) {
	out := make([]byte, 0, len(p)+len(p)/2)
	for i := 0; i < len(p); i++ {
		if p[i] != guidEscape {
			out = append(out, p[i])
			continue
		}
		if i+1 >= len(p) {
			return nil, errInflate
		}
		switch p[i+1] {
		case escLiteral:
			out = append(out, guidEscape)
			i++
		case escLower, escUpper:
			if i+2+16 > len(p) {
				return nil, errInflate
			}
			out = appendGUIDText(out, p[i+1], p[i+2:i+18])
			i += 17
		case escList:
			d := decoder{s: string(p[i+2:])}
			if len(d.s) == 0 {
				return nil, errInflate
			}
			kind := d.s[0]
			d.s = d.s[1:]
			count := d.uvarint()
			sep := d.string()
			if d.bad || kind != escLower && kind != escUpper || count < 2 || len(sep) > maxSeparator ||
				count > uint64(len(d.s))/16 {
				return nil, errInflate
			}
			ids := d.s[:count*16]
			for n := range int(count) {
				if n > 0 {
					out = append(out, sep...)
				}
				out = appendGUIDText(out, kind, []byte(ids[n*16:n*16+16]))
			}
			i = len(p) - len(d.s) + int(count)*16 - 1
		default:
			return nil, errInflate
		}
	}
	return out, nil
}

// appendGUIDText appends the 16 bytes id as GUID text in kind's case.
func appendGUIDText(out []byte, kind byte, id []byte) []byte {
	digits := "0123456789abcdef"
	if kind == escUpper {
		digits = "0123456789ABCDEF"
	}
	for j, c := range id {
		if j == 4 || j == 6 || j == 8 || j == 10 {
			out = append(out, '-')
		}
		out = append(out, digits[c>>4], digits[c&15])
	}
	return out
}

// runEscape starts an escape in packRuns' output: runEscape then 0 is a
// literal runEscape byte; runEscape then a uvarint q (at least
// minRunQuads) is followed by the 3q bytes that 4q characters of base64url
// text decode to.
const (
	runEscape   = 0xfe
	minRunQuads = 10 // 40 characters: shorter runs are mostly words
)

// packRuns replaces every run of at least 4·minRunQuads base64url
// characters, in whole groups of four, by its decoding. Decoding whole
// groups is always exact: no padding, no trailing bits.
func packRuns(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); {
		if b[i] == runEscape {
			out = append(out, runEscape, 0)
			i++
			continue
		}
		j := i
		for j < len(b) && isB64URL(b[j]) {
			j++
		}
		q := (j - i) / 4
		if q < minRunQuads {
			if j == i {
				j++
			}
			out = append(out, b[i:j]...)
			i = j
			continue
		}
		out = append(out, runEscape)
		out = binary.AppendUvarint(out, uint64(q))
		out, _ = base64.RawURLEncoding.AppendDecode(out, b[i:i+4*q]) // whole groups always decode
		i += 4 * q
	}
	return out
}

// unpackRuns reverses packRuns.
func unpackRuns(p []byte) ([]byte, error) {
	out := make([]byte, 0, len(p)+len(p)/3)
	for i := 0; i < len(p); {
		if p[i] != runEscape {
			out = append(out, p[i])
			i++
			continue
		}
		d := decoder{s: string(p[i+1:])}
		q := d.uvarint()
		switch {
		case d.bad:
			return nil, errInflate
		case q == 0:
			out = append(out, runEscape)
		case q < minRunQuads || q > uint64(len(d.s))/3:
			return nil, errInflate
		default:
			out = base64.RawURLEncoding.AppendEncode(out, []byte(d.s[:3*q]))
			d.s = d.s[3*q:]
		}
		i = len(p) - len(d.s)
	}
	return out, nil
}
