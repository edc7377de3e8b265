package session

import (
	"bytes"
	"encoding/base64"
	"errors"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

func newSealer(t testing.TB, keys ...[]byte) *Sealer {
	t.Helper()
	s, err := NewSealer(keys)
	if err != nil {
		t.Fatalf("NewSealer: %v", err)
	}
	return s
}

func TestNewSealerRejectsBadKeys(t *testing.T) {
	tests := []struct {
		name string
		keys [][]byte
	}{
		{name: "no keys", keys: nil},
		{name: "short key", keys: [][]byte{make([]byte, 16)}},
		{name: "long key", keys: [][]byte{make([]byte, 33)}},
		{name: "second key bad", keys: [][]byte{testKey(1), make([]byte, 31)}},
		{name: "empty key", keys: [][]byte{{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if s, err := NewSealer(tt.keys); err == nil {
				t.Errorf("NewSealer() = %v, nil; want an error", s)
			}
		})
	}
}

func TestSealRoundTrip(t *testing.T) {
	s := newSealer(t, testKey(1))
	tests := []struct {
		name      string
		plaintext []byte
	}{
		{name: "empty", plaintext: nil},
		{name: "short", plaintext: []byte("hello")},
		{name: "binary", plaintext: []byte{0, 1, 2, 255, 254}},
		{name: "6 KB", plaintext: bytes.Repeat([]byte("x"), 6<<10)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := s.Seal("authgate", tt.plaintext)
			if err != nil {
				t.Fatalf("Seal: %v", err)
			}
			if strings.ContainsAny(v, "+/=") {
				t.Errorf("Seal() = %q, want raw base64url", v)
			}
			if want := base64.RawURLEncoding.EncodedLen(sealOverhead + len(tt.plaintext)); len(v) != want {
				t.Errorf("len(Seal()) = %d, want %d", len(v), want)
			}
			got, err := s.Open("authgate", v)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if !bytes.Equal(got, tt.plaintext) {
				t.Errorf("Open() = %q, want %q", got, tt.plaintext)
			}
		})
	}
}

func TestSealUsesFreshNonce(t *testing.T) {
	s := newSealer(t, testKey(1))
	a, _ := s.Seal("authgate", []byte("same"))
	b, _ := s.Seal("authgate", []byte("same"))
	if a == b {
		t.Errorf("two Seals of the same plaintext are equal (%q): nonce reused", a)
	}
}

func TestOpenRejectsTampering(t *testing.T) {
	s := newSealer(t, testKey(1))
	v, err := s.Seal("authgate", []byte("the session"))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(v)

	// Flip each bit of every byte: the version/hint byte, nonce,
	// ciphertext and tag.
	for i := range raw {
		for bit := 0; bit < 8; bit++ {
			bad := bytes.Clone(raw)
			bad[i] ^= 1 << bit
			got, err := s.Open("authgate", base64.RawURLEncoding.EncodeToString(bad))
			if !errors.Is(err, ErrNotFound) {
				t.Fatalf("Open(byte %d bit %d flipped) = %q, %v; want ErrNotFound", i, bit, got, err)
			}
		}
	}
	// Change each character of the encoded value, including the last
	// one, whose low bits base64 does not use.
	for i := range v {
		for _, c := range []byte("AB-_z9") {
			if v[i] == c {
				continue
			}
			bad := v[:i] + string(c) + v[i+1:]
			got, err := s.Open("authgate", bad)
			if !errors.Is(err, ErrNotFound) {
				t.Fatalf("Open(char %d = %q) = %q, %v; want ErrNotFound", i, c, got, err)
			}
		}
	}
}

func TestOpenRejectsMalformed(t *testing.T) {
	s := newSealer(t, testKey(1))
	v, _ := s.Seal("authgate", []byte("the session"))
	tests := []struct {
		name  string
		value string
	}{
		{name: "empty", value: ""},
		{name: "not base64", value: strings.Repeat("!", len(v))},
		{name: "padded", value: v + "=="},
		{name: "standard alphabet", value: strings.Repeat("+/", len(v)/2)},
		{name: "appended byte", value: v + "A"},
		{name: "appended bytes", value: v + "AAAA"},
		{name: "unknown version", value: base64.RawURLEncoding.EncodeToString(append([]byte{0xC0}, make([]byte, 40)...))},
		{name: "version zero", value: base64.RawURLEncoding.EncodeToString(make([]byte, 41))},
	}
	for n := 0; n < len(v); n++ {
		tests = append(tests, struct {
			name  string
			value string
		}{name: "truncated to " + strconv.Itoa(n), value: v[:n]})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Open("authgate", tt.value)
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("Open(%q) = %q, %v; want ErrNotFound", tt.value, got, err)
			}
		})
	}
}

func TestOpenRejectsOtherName(t *testing.T) {
	s := newSealer(t, testKey(1))
	v, _ := s.Seal("__Host-authgate", []byte("the session"))
	for _, name := range []string{"__Host-authgate_1", "authgate", "__Secure-authgate", "", "__host-authgate"} {
		t.Run(name, func(t *testing.T) {
			if got, err := s.Open(name, v); !errors.Is(err, ErrNotFound) {
				t.Errorf("Open(%q, value sealed for __Host-authgate) = %q, %v; want ErrNotFound", name, got, err)
			}
		})
	}
}

func TestSealerKeyRotation(t *testing.T) {
	oldKey, newKey, otherKey := testKey(1), testKey(2), testKey(3)
	before := newSealer(t, oldKey)
	oldValue, _ := before.Seal("authgate", []byte("old"))

	during := newSealer(t, newKey, oldKey)
	newValue, _ := during.Seal("authgate", []byte("new"))

	after := newSealer(t, newKey)
	stranger := newSealer(t, otherKey)

	tests := []struct {
		name   string
		sealer *Sealer
		value  string
		want   string // "" means ErrNotFound
	}{
		{name: "old key still opens during rotation", sealer: during, value: oldValue, want: "old"},
		{name: "new key opens during rotation", sealer: during, value: newValue, want: "new"},
		{name: "new value opens after rotation", sealer: after, value: newValue, want: "new"},
		{name: "removed key no longer opens", sealer: after, value: oldValue},
		{name: "new value not readable by old-only sealer", sealer: before, value: newValue},
		{name: "unrelated key", sealer: stranger, value: oldValue},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.sealer.Open("authgate", tt.value)
			if tt.want == "" {
				if !errors.Is(err, ErrNotFound) {
					t.Errorf("Open() = %q, %v; want ErrNotFound", got, err)
				}
				return
			}
			if err != nil || string(got) != tt.want {
				t.Errorf("Open() = %q, %v; want %q, nil", got, err, tt.want)
			}
		})
	}
}

// TestSealerHintCollision covers two keys with the same 6-bit hint: Open
// must try both, and a failed attempt must not spoil the next one.
func TestSealerHintCollision(t *testing.T) {
	a := testKey(1)
	var b []byte
	for i := 2; i < 256; i++ {
		if k := testKey(byte(i)); keyHint(k) == keyHint(a) {
			b = k
			break
		}
	}
	if b == nil {
		t.Fatal("no key with a colliding hint among 254 candidates")
	}
	sealedByA, _ := newSealer(t, a).Seal("authgate", []byte("by a"))
	sealedByB, _ := newSealer(t, b).Seal("authgate", []byte("by b"))
	both := newSealer(t, a, b)
	for _, tt := range []struct{ name, value, want string }{
		{name: "first key", value: sealedByA, want: "by a"},
		{name: "second key", value: sealedByB, want: "by b"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := both.Open("authgate", tt.value)
			if err != nil || string(got) != tt.want {
				t.Errorf("Open() = %q, %v; want %q, nil", got, err, tt.want)
			}
		})
	}
}

func BenchmarkSeal(b *testing.B) {
	s := newSealer(b, testKey(1))
	pt := Encode(fullSession(newClock().Now()))
	b.SetBytes(int64(len(pt)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Seal("__Host-authgate", pt); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	s := newSealer(b, testKey(1), testKey(2), testKey(3))
	pt := Encode(fullSession(newClock().Now()))
	v, _ := s.Seal("__Host-authgate", pt)
	aad := []byte("__Host-authgate")
	b.SetBytes(int64(len(pt)))
	b.Run("Open", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Open("__Host-authgate", v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("open-preconverted-aad", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.open(aad, v); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestSealerSetKeys: a new first key keeps old values opening; retiring a
// key makes its values "not found"; a bad key set is refused and the keys
// in use are kept.
func TestSealerSetKeys(t *testing.T) {
	a, b := bytes.Repeat([]byte{'a'}, KeySize), bytes.Repeat([]byte{'b'}, KeySize)
	s, err := NewSealer([][]byte{a})
	if err != nil {
		t.Fatal(err)
	}
	underA, err := s.Seal("c", []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetKeys([][]byte{b, a}); err != nil {
		t.Fatal(err)
	}
	if pt, err := s.Open("c", underA); err != nil || string(pt) != "hello" {
		t.Errorf("Open(sealed under the old key) after adding a new first key = %q, %v", pt, err)
	}
	underB, _ := s.Seal("c", []byte("new"))
	if err := s.SetKeys([][]byte{[]byte("short")}); err == nil {
		t.Error("SetKeys(short key) succeeded")
	}
	if _, err := s.Open("c", underA); err != nil {
		t.Errorf("a refused key set replaced the keys: %v", err)
	}
	if err := s.SetKeys([][]byte{b}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Open("c", underA); !errors.Is(err, ErrNotFound) {
		t.Errorf("Open(retired key) = %v, want ErrNotFound", err)
	}
	if pt, err := s.Open("c", underB); err != nil || string(pt) != "new" {
		t.Errorf("Open(new key) = %q, %v", pt, err)
	}
}

// TestCookieStoreRetiredKeyNotCached: a session opened (and cached) before
// its key was retired does not open after.
func TestCookieStoreRetiredKeyNotCached(t *testing.T) {
	a, b := bytes.Repeat([]byte{'a'}, KeySize), bytes.Repeat([]byte{'b'}, KeySize)
	sealer, _ := NewSealer([][]byte{a})
	s, err := NewCookieStore(CookieStoreOptions{Cookie: CookieOptions{Name: "s"}, Sealer: sealer})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "/", nil)
	if err := s.Save(rec, r, &Session{Subject: "alice", ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest("GET", "/", nil)
	for _, c := range rec.Result().Cookies() {
		req.AddCookie(c)
	}
	if _, err := s.Load(req); err != nil {
		t.Fatalf("Load = %v", err)
	}
	sealer.SetKeys([][]byte{b, a})
	if got, err := s.Load(req); err != nil || got.Subject != "alice" {
		t.Errorf("Load after a new first key = %v, %v", got, err)
	}
	sealer.SetKeys([][]byte{b})
	if _, err := s.Load(req); !errors.Is(err, ErrNotFound) {
		t.Errorf("Load after retiring the key = %v, want ErrNotFound", err)
	}
}
