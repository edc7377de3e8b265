package session

import (
	"bytes"
	"encoding/base64"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestEnterpriseSessionFitsBehindIngress is issue 11's goal: a session
// whose ID token and access token each carry 200 Entra group GUIDs fits in
// a Cookie header of at most 8 KB (ingress-nginx's default
// large_client_header_buffers), and loads back unchanged.
func TestEnterpriseSessionFitsBehindIngress(t *testing.T) {
	clk := newClock()
	s := newStore(t, clk, testKey(1))
	sess := entraSession(clk.Now(), 200)
	w := httptest.NewRecorder()
	if err := s.Save(w, httptest.NewRequest("GET", "/", nil), sess); err != nil {
		t.Fatalf("Save: %v", err)
	}
	header, n := cookieHeader(t, w)
	if len(header) > 8192 {
		t.Errorf("Cookie header for 2×200 Entra groups = %d bytes in %d cookies, want ≤ 8192", len(header), n)
	}
	b := browser{}
	b.apply(t, w.Header())
	got, err := s.Load(b.request())
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	sameSession(t, got, sess)
}

// TestCompressedRoundTripShapes: every realistic shape seals compressed
// and opens to the same session.
func TestCompressedRoundTripShapes(t *testing.T) {
	clk := newClock()
	s := newStore(t, clk, testKey(1))
	for _, shape := range tokenShapes {
		t.Run(shape.name, func(t *testing.T) {
			sess := shape.make(clk.Now())
			b := saved(t, s, sess)
			v1, _ := v1CookieHeader(t, s, sess)
			header := b.request().Header.Get("Cookie")
			if len(header) >= len(v1) {
				t.Errorf("compressed Cookie header %d bytes, uncompressed %d: want smaller", len(header), len(v1))
			}
			raw, _ := base64.RawURLEncoding.DecodeString(strings.Join([]string{b["__Host-authgate"]}, ""))
			if raw[0]>>hintBits != sealVersionDeflate {
				t.Errorf("format version %d, want %d", raw[0]>>hintBits, sealVersionDeflate)
			}
			got, err := s.Load(b.request())
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			sameSession(t, got, sess)
		})
	}
}

// TestUncompressedCookiesStillOpen: cookies written before compression
// (format version 1) keep working.
func TestUncompressedCookiesStillOpen(t *testing.T) {
	clk := newClock()
	s := newStore(t, clk, testKey(1))
	sess := entraSession(clk.Now(), 50)
	v, err := s.sealer.seal(s.aad, Encode(sess))
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	if err := s.cookies.Write(w, httptest.NewRequest("GET", "/", nil), v, sess.ExpiresAt); err != nil {
		t.Fatal(err)
	}
	b := browser{}
	b.apply(t, w.Header())
	got, err := s.Load(b.request())
	if err != nil {
		t.Fatalf("Load(version 1 cookie): %v", err)
	}
	sameSession(t, got, sess)
}

// TestCompressedVersionIsAuthenticated: relabelling a value's format
// version (1 as 2, or 2 as 1) makes it not open.
func TestCompressedVersionIsAuthenticated(t *testing.T) {
	s := newSealer(t, testKey(1))
	plain := Encode(entraSession(newClock().Now(), 20))
	v1, _ := s.seal([]byte("n"), plain)
	v2, _ := s.sealCompressed([]byte("n"), plain)
	for name, v := range map[string]string{"1 as 2": v1, "2 as 1": v2} {
		raw, _ := base64.RawURLEncoding.DecodeString(v)
		raw[0] ^= 3 << hintBits // 1 <-> 2
		if got, err := s.Open("n", base64.RawURLEncoding.EncodeToString(raw)); !errors.Is(err, ErrNotFound) {
			t.Errorf("Open(%s) = %d bytes, %v; want ErrNotFound", name, len(got), err)
		}
	}
	if got, err := s.Open("n", v2); err != nil || !bytes.Equal(got, plain) {
		t.Errorf("Open(compressed) = %d bytes, %v; want the plaintext", len(got), err)
	}
}

func TestPackJWTs(t *testing.T) {
	idt := jwt(newRNG(9), map[string]any{"alg": "RS256"}, map[string]any{"sub": "x"})
	for _, in := range []string{
		"",
		"no tokens here",
		"\x05" + idt + "\x03abc" + idt,
		idt,
		"eyJ",                                   // a start that is no token
		"eyJhbGc.eyJz",                          // two segments
		"eyJ.x.y",                               // undecodable first segment (length 3 is fine; padding bits)
		"eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",  // unsecured JWT, empty signature
		"eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.e", // segment of length 1 mod 4
		"xeyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.abcd.efgh", // JWE-like tail stays text
		"eyJhbGciOiJub25lIn1.eyJzdWIiOiJ4In0.abc",        // non-canonical trailing bits stay text
	} {
		packed := packJWTs([]byte(in))
		out, err := unpackJWTs(packed)
		if err != nil || string(out) != in {
			t.Errorf("unpackJWTs(packJWTs(%.40q)) = %.40q, %v", in, out, err)
		}
	}
	if p := packJWTs([]byte(idt)); len(p) >= len(idt) {
		t.Errorf("packJWTs(JWT of %d bytes) = %d bytes, want the segments decoded (shorter)", len(idt), len(p))
	}
}

func TestDecompressRejectsGarbage(t *testing.T) {
	for _, c := range [][]byte{nil, {0xff}, []byte("not deflate"), compress([]byte("x"))[:2]} {
		if _, err := decompress(c); !errors.Is(err, ErrNotFound) {
			t.Errorf("decompress(%q) error = %v, want ErrNotFound", c, err)
		}
	}
	// A packed payload that claims more JWTs than it holds.
	if _, err := unpackJWTs([]byte{0x05, 0x00}); !errors.Is(err, ErrNotFound) {
		t.Errorf("unpackJWTs(truncated) error = %v, want ErrNotFound", err)
	}
}

func FuzzPackJWTs(f *testing.F) {
	f.Add([]byte(jwt(newRNG(1), map[string]any{"alg": "RS256"}, map[string]any{"groups": []string{"a", "b"}})))
	f.Add(Encode(fullSession(newClock().Now())))
	f.Add([]byte("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."))
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := unpackJWTs(packJWTs(in))
		if err != nil || !bytes.Equal(out, in) {
			t.Fatalf("round trip of %q = %q, %v", in, out, err)
		}
		if out, err := decompress(compress(in)); err != nil || !bytes.Equal(out, in) {
			t.Fatalf("decompress(compress(%q)) = %q, %v", in, out, err)
		}
		// Whatever the input, unpacking arbitrary bytes never panics.
		_, _ = unpackJWTs(in)
		_, _ = unpackGUIDs(in)
		_, _ = unpackRuns(in)
		_, _ = decompress(in)
	})
}

// BenchmarkSessionCookieSize reports, for realistic token shapes, the
// Cookie header a browser sends back: bytes and cookies, compressed (the
// current format) and uncompressed (format version 1, before).
func BenchmarkSessionCookieSize(b *testing.B) {
	clk := newClock()
	s := newStore(b, clk, testKey(1))
	r := httptest.NewRequest("GET", "/", nil)
	for _, shape := range tokenShapes {
		b.Run(shape.name, func(b *testing.B) {
			sess := shape.make(clk.Now())
			var header string
			var n int
			for b.Loop() {
				w := httptest.NewRecorder()
				if err := s.Save(w, r, sess); err != nil {
					b.Fatal(err)
				}
				header, n = cookieHeader(b, w)
			}
			v1, n1 := v1CookieHeader(b, s, sess)
			b.ReportMetric(float64(len(header)), "cookie-bytes")
			b.ReportMetric(float64(n), "cookies")
			b.ReportMetric(float64(len(v1)), "v1-cookie-bytes")
			b.ReportMetric(float64(n1), "v1-cookies")
		})
	}
}

func TestPackGUIDs(t *testing.T) {
	for _, in := range []string{
		"",
		"\xff",
		"\xff\x01\xff\x02",
		`["0f8fad5b-d9cb-469f-a165-70867728950e","0F8FAD5B-D9CB-469F-A165-70867728950E"]`,
		"0f8fad5b-d9cb-469f-a165-70867728950E", // mixed case stays text
		"0f8fad5b-d9cb-469f-a165-70867728950",  // short
		"x0f8fad5b-d9cb-469f-a165-70867728950e0f8fad5b-d9cb-469f-a165-70867728950e\xff",
		`["0f8fad5b-d9cb-469f-a165-70867728950e","1f8fad5b-d9cb-469f-a165-70867728950e","2F8FAD5B-D9CB-469F-A165-70867728950E"]`,
		"\x02\x240f8fad5b-d9cb-469f-a165-70867728950e\x241f8fad5b-d9cb-469f-a165-70867728950e\x24",
		"0f8fad5b-d9cb-469f-a165-70867728950e\xff1f8fad5b-d9cb-469f-a165-70867728950e",
		"0f8fad5b-d9cb-469f-a165-70867728950e123456789f8fad5b-d9cb-469f-a165-70867728950e",
		"0f8fad5b-d9cb-469f-a165-70867728950e,1f8fad5b-d9cb-469f-a165-70867728950e;2f8fad5b-d9cb-469f-a165-70867728950e",
	} {
		out, err := unpackGUIDs(packGUIDs([]byte(in)))
		if err != nil || string(out) != in {
			t.Errorf("unpackGUIDs(packGUIDs(%q)) = %q, %v", in, out, err)
		}
	}
	if p := packGUIDs([]byte("0f8fad5b-d9cb-469f-a165-70867728950e")); len(p) != 18 {
		t.Errorf("packGUIDs(GUID) = %d bytes, want 18", len(p))
	}
	for _, bad := range []string{"\xff", "\xff\x04", "\xff\x01abc", "\xff\x03", "\xff\x03\x01\x05\x01,abcd", "\xff\x03\x07\x02\x00" + strings.Repeat("a", 32)} {
		if _, err := unpackGUIDs([]byte(bad)); !errors.Is(err, ErrNotFound) {
			t.Errorf("unpackGUIDs(%q) error = %v, want ErrNotFound", bad, err)
		}
	}
}

// TestPackJWTsFollowedByText: a JWT directly followed by base64url
// characters (the next field's length byte) is still found and decoded.
func TestPackJWTsFollowedByText(t *testing.T) {
	idt := jwt(newRNG(9), map[string]any{"alg": "RS256"}, map[string]any{"sub": "x"})
	for _, tail := range []string{"2", "2$", "ab", "abc", "abcd-"} {
		in := "\x05" + idt + tail
		p := packJWTs([]byte(in))
		if len(p) >= len(in)-len(idt)/5 {
			t.Errorf("packJWTs(JWT + %q) = %d bytes of %d, want the JWT decoded", tail, len(p), len(in))
		}
		if out, err := unpackJWTs(p); err != nil || string(out) != in {
			t.Errorf("round trip of JWT + %q = %.40q, %v", tail, out, err)
		}
	}
}

func TestPackRuns(t *testing.T) {
	long := opaque(newRNG(4), 1103)
	for _, in := range []string{
		"",
		"\xfe",
		"\xfe\x00\xfe",
		"short_run-of-text",
		long,
		"1.A" + long + "\x02",
		"x" + long[:41] + "." + long[:39] + "\xfe" + long[:80],
	} {
		out, err := unpackRuns(packRuns([]byte(in)))
		if err != nil || string(out) != in {
			t.Errorf("unpackRuns(packRuns(%.40q)) = %.40q, %v", in, out, err)
		}
	}
	if p := packRuns([]byte(long)); len(p) > len(long)*3/4+8 {
		t.Errorf("packRuns(%d base64url characters) = %d bytes, want about 3/4", len(long), len(p))
	}
	for _, bad := range []string{"\xfe", "\xfe\x05abc", "\xfe\x0aabc", "\xfe\x80"} {
		if _, err := unpackRuns([]byte(bad)); !errors.Is(err, ErrNotFound) {
			t.Errorf("unpackRuns(%q) error = %v, want ErrNotFound", bad, err)
		}
	}
}
