package session

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func boolPtr(v bool) *bool { return &v }

// sameSession compares sessions field by field, times with Equal.
func sameSession(t *testing.T, got, want *Session) {
	t.Helper()
	g, w := *got, *want
	for _, p := range []struct {
		name string
		g, w *time.Time
	}{{"Expiry", &g.Expiry, &w.Expiry}, {"IssuedAt", &g.IssuedAt, &w.IssuedAt}, {"ExpiresAt", &g.ExpiresAt, &w.ExpiresAt}, {"TokenIssuedAt", &g.TokenIssuedAt, &w.TokenIssuedAt}} {
		if !p.g.Equal(*p.w) {
			t.Errorf("%s = %v, want %v", p.name, *p.g, *p.w)
		}
		*p.g, *p.w = time.Time{}, time.Time{}
	}
	if (g.EmailVerified == nil) != (w.EmailVerified == nil) ||
		g.EmailVerified != nil && *g.EmailVerified != *w.EmailVerified {
		t.Errorf("EmailVerified = %s, want %s", fmtBool(g.EmailVerified), fmtBool(w.EmailVerified))
	}
	g.EmailVerified, w.EmailVerified = nil, nil
	if len(g.Groups) == 0 && len(w.Groups) == 0 {
		g.Groups, w.Groups = nil, nil
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("session = %+v, want %+v", g, w)
	}
}

func fmtBool(b *bool) string {
	switch {
	case b == nil:
		return "nil"
	case *b:
		return "true"
	default:
		return "false"
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	now := newClock().Now()
	tests := []struct {
		name string
		s    *Session
	}{
		{name: "empty", s: &Session{}},
		{name: "full", s: fullSession(now)},
		{name: "email verified false", s: &Session{ID: "a", EmailVerified: boolPtr(false)}},
		{name: "email verified true", s: &Session{ID: "a", EmailVerified: boolPtr(true)}},
		{name: "empty group name", s: &Session{Groups: []string{"", "x", ""}}},
		{name: "unicode", s: &Session{Name: "Zoë Ångström 日本", Groups: []string{"ü"}}},
		{name: "nanoseconds and zone", s: &Session{
			Expiry:    time.Date(2026, 1, 2, 3, 4, 5, 999999999, time.FixedZone("x", 3600)),
			IssuedAt:  time.Unix(0, 1),
			ExpiresAt: time.Unix(1<<40, 0),
		}},
		{name: "before 1970", s: &Session{IssuedAt: time.Date(1901, 1, 1, 0, 0, 0, 5, time.UTC)}},
		{name: "unix epoch is not zero", s: &Session{ExpiresAt: time.Unix(0, 0)}},
		{name: "monotonic reading dropped", s: &Session{ExpiresAt: time.Now()}},
		{name: "only one time", s: &Session{IssuedAt: now}},
		{name: "token issued at", s: &Session{Expiry: now.Add(time.Minute), TokenIssuedAt: now}},
		{name: "user claim", s: &Session{Subject: "00u1", User: "alice@example.com", IssuedAt: now}},
		{name: "user claim without times", s: &Session{User: "alice"}},
		{name: "kept claims and user claim", s: &Session{Subject: "s", Claims: `{"a":1}`, User: "alice", IssuedAt: now}},
		{name: "long token", s: &Session{AccessToken: strings.Repeat("t", 70000)}},
		{name: "many groups", s: &Session{Groups: strings.Split(strings.Repeat("g,", 300), ",")}},
		{name: "claims", s: &Session{ID: "a", Claims: `{"tenant":"acme","roles":["x"]}`}},
		{name: "claims and times", s: &Session{Claims: `{}`, IssuedAt: now, TokenIssuedAt: now}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := Encode(tt.s)
			if b[0] != encodingV1 {
				t.Errorf("Encode()[0] = %d, want version %d", b[0], encodingV1)
			}
			got, err := Decode(b)
			if err != nil {
				t.Fatalf("Decode(Encode()) error: %v", err)
			}
			sameSession(t, got, tt.s)
		})
	}
}

func TestEncodeNil(t *testing.T) {
	got, err := Decode(Encode(nil))
	if err != nil {
		t.Fatalf("Decode(Encode(nil)) error: %v", err)
	}
	sameSession(t, got, &Session{})
}

func TestEncodeIsCompact(t *testing.T) {
	s := fullSession(newClock().Now())
	var payload int
	for _, v := range []string{s.ID, s.Subject, s.Email, s.PreferredUsername, s.Name, s.IDPSessionID, s.AccessToken, s.RefreshToken, s.IDToken} {
		payload += len(v)
	}
	for _, g := range s.Groups {
		payload += len(g)
	}
	// 2 header bytes, 13 length bytes (most under 128), 3 times of ≤ 10 bytes.
	if got, limit := len(Encode(s)), payload+2+13+4+30; got > limit {
		t.Errorf("len(Encode(full session)) = %d, want <= %d (payload %d)", got, limit, payload)
	}
}

func TestDecodeRejectsGarbage(t *testing.T) {
	good := Encode(fullSession(newClock().Now()))
	tests := []struct {
		name string
		b    []byte
	}{
		{name: "nil", b: nil},
		{name: "version only", b: []byte{encodingV1}},
		{name: "version zero", b: append([]byte{0}, good[1:]...)},
		{name: "future version", b: append([]byte{2}, good[1:]...)},
		{name: "unknown flag", b: append([]byte{encodingV1, 0x80}, good[2:]...)},
		{name: "claims flagged but missing", b: append([]byte{encodingV1, good[1] | flagClaims}, good[2:]...)},
		{name: "claims flagged but empty", b: append(append([]byte{encodingV1, good[1] | flagClaims}, good[2:]...), 0)},
		{name: "verified value without known", b: []byte{encodingV1, flagEmailVerified, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
		{name: "trailing byte", b: append(append([]byte{}, good...), 0)},
		{name: "length beyond end", b: []byte{encodingV1, 0, 0x7f, 'a'}},
		{name: "varint overflow", b: []byte{encodingV1, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}},
		{name: "unterminated varint", b: []byte{encodingV1, 0, 0x80, 0x80}},
		{name: "huge group count", b: []byte{encodingV1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}},
		{name: "nanoseconds out of range", b: withIssuedAt(1, int64(time.Second))},
		{name: "negative nanoseconds", b: withIssuedAt(1, -1)},
		{name: "zero time flagged", b: withIssuedAt(time.Time{}.Unix(), 0)},
		{name: "time missing", b: withIssuedAt(1, 0)[:12]},
	}
	for n := 0; n < len(good); n++ {
		tests = append(tests, struct {
			name string
			b    []byte
		}{name: "truncated", b: good[:n]})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := Decode(tt.b); !errors.Is(err, ErrNotFound) {
				t.Errorf("Decode(%x) = %+v, %v; want ErrNotFound", tt.b, got, err)
			}
		})
	}
}

// withIssuedAt returns an encoded empty session whose IssuedAt has the
// given raw seconds and nanoseconds.
func withIssuedAt(sec, nsec int64) []byte {
	b := []byte{encodingV1, flagIssuedAt, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	b = binary.AppendVarint(b, sec)
	return binary.AppendUvarint(b, uint64(nsec))
}

func TestWithIssuedAt(t *testing.T) {
	// The hand-made vectors above are only meaningful if a valid one
	// decodes.
	want := time.Unix(1700000000, 5)
	s, err := Decode(withIssuedAt(want.Unix(), 5))
	if err != nil || !s.IssuedAt.Equal(want) {
		t.Fatalf("Decode(withIssuedAt) = %+v, %v; want IssuedAt %v", s, err, want)
	}
}

// TestDecodeOlderEncoding: a session sealed before Claims existed (no
// claims flag, nothing after the times) still decodes, with no claims.
func TestDecodeOlderEncoding(t *testing.T) {
	s := fullSession(newClock().Now())
	s.Claims = ""
	old := Encode(s)
	if old[1]&flagClaims != 0 {
		t.Fatalf("Encode(no claims) sets the claims flag")
	}
	// The layout of the version that had no Claims field: every byte of it
	// is what Encode writes today for a session without claims.
	got, err := Decode(old)
	if err != nil {
		t.Fatalf("Decode(older encoding) error: %v", err)
	}
	sameSession(t, got, s)
	s.Claims = `{"a":1}`
	with := Encode(s)
	if !bytes.HasPrefix(with[2:], old[2:]) {
		t.Errorf("Encode with claims does not append them after the older layout")
	}
}

func FuzzDecode(f *testing.F) {
	now := newClock().Now()
	for _, s := range []*Session{{}, fullSession(now), {ID: "x", EmailVerified: boolPtr(false), Groups: []string{""}}, {ID: "c", Claims: `{"x":[1]}`, IssuedAt: now}} {
		f.Add(Encode(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Decode(b)
		if err != nil {
			if !errors.Is(err, ErrNotFound) {
				t.Fatalf("Decode error %v does not wrap ErrNotFound", err)
			}
			if _, err := decodeOwned(bytes.Clone(b)); err == nil {
				t.Fatalf("decodeOwned succeeded, Decode failed")
			}
			return
		}
		// The zero-copy decoder the store uses must agree.
		owned, err := decodeOwned(bytes.Clone(b))
		if err != nil {
			t.Fatalf("decodeOwned error %v, Decode succeeded", err)
		}
		sameSession(t, owned, s)
		// Whatever decodes must survive a second round trip unchanged.
		again, err := Decode(Encode(s))
		if err != nil {
			t.Fatalf("Decode(Encode(Decode(b))) error: %v", err)
		}
		sameSession(t, again, s)
	})
}

func BenchmarkEncode(b *testing.B) {
	s := fullSession(newClock().Now())
	b.ReportAllocs()
	for b.Loop() {
		Encode(s)
	}
}

func BenchmarkDecode(b *testing.B) {
	enc := Encode(fullSession(newClock().Now()))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(enc); err != nil {
			b.Fatal(err)
		}
	}
}
