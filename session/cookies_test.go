package session

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestCookiesName(t *testing.T) {
	tests := []struct {
		name string
		o    CookieOptions
		want string
	}{
		{name: "zero value", o: CookieOptions{}, want: "authgate"},
		{name: "custom name", o: CookieOptions{Name: "sess"}, want: "sess"},
		{name: "secure host-only", o: CookieOptions{Secure: true}, want: "__Host-authgate"},
		{name: "secure with domain", o: CookieOptions{Secure: true, Domain: "example.com"}, want: "__Secure-authgate"},
		{name: "insecure with domain", o: CookieOptions{Domain: "example.com"}, want: "authgate"},
		{name: "secure custom", o: CookieOptions{Name: "sess", Secure: true}, want: "__Host-sess"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NewCookies(tt.o).Name(); got != tt.want {
				t.Errorf("Name() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestCookieOptionsValidate(t *testing.T) {
	tests := []struct {
		name    string
		o       CookieOptions
		wantErr string // "" means valid
	}{
		{name: "zero value", o: CookieOptions{}},
		{name: "full", o: CookieOptions{Name: "s", Domain: ".example.com", Secure: true, SameSite: http.SameSiteStrictMode}},
		{name: "none with secure", o: CookieOptions{Secure: true, SameSite: http.SameSiteNoneMode}},
		{name: "space in name", o: CookieOptions{Name: "a b"}, wantErr: "token"},
		{name: "semicolon in name", o: CookieOptions{Name: "a;b"}, wantErr: "token"},
		{name: "host prefix", o: CookieOptions{Name: "__Host-x"}, wantErr: "prefix"},
		{name: "secure prefix any case", o: CookieOptions{Name: "__secure-x"}, wantErr: "prefix"},
		{name: "bad domain", o: CookieOptions{Domain: "exa mple.com"}, wantErr: "domain"},
		{name: "domain with port", o: CookieOptions{Domain: "example.com:443"}, wantErr: "domain"},
		{name: "none without secure", o: CookieOptions{SameSite: http.SameSiteNoneMode}, wantErr: "Secure"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.o.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("Validate() = %v, want an error mentioning %q", err, tt.wantErr)
			}
		})
	}
}

func TestCookiesOwns(t *testing.T) {
	c := NewCookies(CookieOptions{Secure: true})
	tests := []struct {
		cookie string
		want   bool
	}{
		{"__Host-authgate", true},
		{"__Host-authgate_1", true},
		{"__Host-authgate_9", true},
		{"__Host-authgate_10", true}, // beyond MaxChunks: still ours to strip
		{"__Host-authgate_99", true},
		{"__Host-authgate_100", false},
		{"__Host-authgate_0", false},
		{"__Host-authgate_01", false},
		{"__Host-authgate_", false},
		{"__Host-authgate_x", false},
		{"__Host-authgate-1", false},
		{"__Host-authgatex", false},
		{"authgate", false},
		{"__host-authgate", false},
		{"other", false},
		{"", false},
	}
	for _, tt := range tests {
		t.Run(tt.cookie, func(t *testing.T) {
			if got := c.Owns(tt.cookie); got != tt.want {
				t.Errorf("Owns(%q) = %v, want %v", tt.cookie, got, tt.want)
			}
		})
	}
}

func TestCookiesRead(t *testing.T) {
	c := NewCookies(CookieOptions{})
	var many []string
	for i := 0; i < 12; i++ {
		n := "authgate"
		if i > 0 {
			n += "_" + strconv.Itoa(i)
		}
		many = append(many, n+"="+strconv.Itoa(i))
	}
	tests := []struct {
		name    string
		headers []string
		want    string
		wantOK  bool
	}{
		{name: "no header"},
		{name: "other cookies only", headers: []string{"a=1; b=2"}},
		{name: "single", headers: []string{"a=1; authgate=v0; b=2"}, want: "v0", wantOK: true},
		{name: "chunks in order", headers: []string{"authgate=a; authgate_1=b; authgate_2=c"}, want: "abc", wantOK: true},
		{name: "chunks out of order", headers: []string{"authgate_2=c; authgate=a; authgate_1=b"}, want: "abc", wantOK: true},
		{name: "chunks across headers", headers: []string{"authgate_1=b", "x=y; authgate=a"}, want: "ab", wantOK: true},
		{name: "missing base", headers: []string{"authgate_1=b; authgate_2=c"}},
		{name: "gap in the middle", headers: []string{"authgate=a; authgate_2=c"}},
		{name: "first duplicate wins", headers: []string{"authgate=a; authgate=z; authgate_1=b"}, want: "ab", wantOK: true},
		{name: "quoted value", headers: []string{`authgate="a"; authgate_1=b`}, want: "ab", wantOK: true},
		{name: "whitespace", headers: []string{"  authgate = a ;\tauthgate_1=b  "}, want: "ab", wantOK: true},
		{name: "prefix of name is not it", headers: []string{"authgatex=a; xauthgate=b"}},
		{name: "leading zero chunk ignored", headers: []string{"authgate=a; authgate_01=b"}, want: "a", wantOK: true},
		{name: "chunks beyond MaxChunks ignored", headers: []string{strings.Join(many, "; ")}, want: "0123456789", wantOK: true},
		{name: "empty value", headers: []string{"authgate="}, want: "", wantOK: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			for _, h := range tt.headers {
				r.Header.Add("Cookie", h)
			}
			got, ok := c.Read(r)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("Read(Cookie %q) = %q, %v; want %q, %v", tt.headers, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

// setCookies returns the Set-Cookie headers of h parsed, keyed by name.
func setCookies(t *testing.T, h http.Header) map[string]*http.Cookie {
	t.Helper()
	out := make(map[string]*http.Cookie)
	for _, c := range (&http.Response{Header: h}).Cookies() {
		if _, dup := out[c.Name]; dup {
			t.Errorf("Set-Cookie for %q appears twice", c.Name)
		}
		out[c.Name] = c
	}
	return out
}

func TestCookiesWriteAttributes(t *testing.T) {
	clk := newClock()
	expires := clk.Now().Add(8 * time.Hour)
	tests := []struct {
		name string
		o    CookieOptions
		want []string // substrings of the Set-Cookie header
		not  []string
	}{
		{
			name: "secure host-only",
			o:    CookieOptions{Secure: true},
			want: []string{"__Host-authgate=value", "Path=/", "HttpOnly", "Secure", "SameSite=Lax", "Max-Age=28800", "Expires=Sun, 01 Mar 2026 20:00:00 GMT"},
			not:  []string{"Domain="},
		},
		{
			name: "secure with domain",
			o:    CookieOptions{Secure: true, Domain: "example.com"},
			want: []string{"__Secure-authgate=value", "Path=/", "Domain=example.com", "HttpOnly", "Secure", "SameSite=Lax"},
		},
		{
			name: "insecure development",
			o:    CookieOptions{},
			want: []string{"authgate=value", "Path=/", "HttpOnly", "SameSite=Lax"},
			not:  []string{"Secure", "Domain="},
		},
		{
			name: "strict",
			o:    CookieOptions{Secure: true, SameSite: http.SameSiteStrictMode},
			want: []string{"SameSite=Strict"},
			not:  []string{"SameSite=Lax"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.o.Now = clk.Now
			c := NewCookies(tt.o)
			w := httptest.NewRecorder()
			if err := c.Write(w, httptest.NewRequest(http.MethodGet, "/", nil), "value", expires); err != nil {
				t.Fatalf("Write: %v", err)
			}
			got := w.Header().Values("Set-Cookie")
			if len(got) != 1 {
				t.Fatalf("Set-Cookie = %q, want one header", got)
			}
			for _, s := range tt.want {
				if !strings.Contains(got[0], s) {
					t.Errorf("Header(%q) = %q, want it to contain %q", "Set-Cookie", got[0], s)
				}
			}
			for _, s := range tt.not {
				if strings.Contains(got[0], s) {
					t.Errorf("Header(%q) = %q, want it not to contain %q", "Set-Cookie", got[0], s)
				}
			}
		})
	}
}

func TestCookiesWriteSessionCookie(t *testing.T) {
	c := NewCookies(CookieOptions{Secure: true})
	w := httptest.NewRecorder()
	if err := c.Write(w, httptest.NewRequest(http.MethodGet, "/", nil), "v", time.Time{}); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if got := w.Header().Get("Set-Cookie"); strings.Contains(got, "Max-Age") || strings.Contains(got, "Expires") {
		t.Errorf("Header(%q) = %q, want neither Max-Age nor Expires for a zero expiry", "Set-Cookie", got)
	}
}

func TestCookiesWriteChunks(t *testing.T) {
	clk := newClock()
	expires := clk.Now().Add(24 * time.Hour)
	tests := []struct {
		name       string
		o          CookieOptions
		size       int
		wantChunks int
	}{
		{name: "small", o: CookieOptions{Secure: true}, size: 100, wantChunks: 1},
		{name: "just under one chunk", o: CookieOptions{Secure: true}, size: 3900, wantChunks: 1},
		{name: "two chunks", o: CookieOptions{Secure: true}, size: 4096, wantChunks: 2},
		{name: "8 KB", o: CookieOptions{Secure: true, Domain: "a-rather-long-domain-name.example.com"}, size: 8 << 10, wantChunks: 3},
		{name: "largest", o: CookieOptions{Secure: true}, size: 39000, wantChunks: 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.o.Now = clk.Now
			c := NewCookies(tt.o)
			value := strings.Repeat("v", tt.size)
			w := httptest.NewRecorder()
			if err := c.Write(w, httptest.NewRequest(http.MethodGet, "/", nil), value, expires); err != nil {
				t.Fatalf("Write: %v", err)
			}
			headers := w.Header().Values("Set-Cookie")
			if len(headers) != tt.wantChunks {
				t.Errorf("%d Set-Cookie headers, want %d", len(headers), tt.wantChunks)
			}
			for _, h := range headers {
				if len(h) >= 4096 {
					t.Errorf("len(Set-Cookie %.30q…) = %d, want < 4096", h, len(h))
				}
			}
			b := browser{}
			b.apply(t, w.Header())
			if got, ok := c.Read(b.request()); !ok || got != value {
				t.Errorf("Read() after Write = %d bytes, %v; want %d bytes, true", len(got), ok, len(value))
			}
		})
	}
}

func TestCookiesWriteTooLarge(t *testing.T) {
	c := NewCookies(CookieOptions{Secure: true})
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	err := c.Write(w, r, strings.Repeat("v", 41000), time.Time{})
	if !errors.Is(err, ErrCookieTooLarge) {
		t.Errorf("Write(41000 bytes) = %v, want ErrCookieTooLarge", err)
	}
	if got := w.Header().Values("Set-Cookie"); len(got) != 0 {
		t.Errorf("Set-Cookie = %q after a failed Write, want none", got)
	}
}

func TestCookiesWriteClearsStaleChunks(t *testing.T) {
	clk := newClock()
	c := NewCookies(CookieOptions{Secure: true, Now: clk.Now})
	b := browser{"other": "keep"}
	w := httptest.NewRecorder()
	if err := c.Write(w, b.request(), strings.Repeat("x", 13000), time.Time{}); err != nil {
		t.Fatal(err)
	}
	b.apply(t, w.Header())
	if _, ok := b["__Host-authgate_3"]; !ok || len(b) != 5 {
		t.Fatalf("browser cookies %v: want other and 4 chunks after a 13000-byte write", keys(b))
	}
	// A chunk left over from a build with a larger MaxChunks.
	b["__Host-authgate_12"] = "stale-from-long-ago"

	w = httptest.NewRecorder()
	if err := c.Write(w, b.request(), "small", time.Time{}); err != nil {
		t.Fatal(err)
	}
	sc := setCookies(t, w.Header())
	for _, name := range []string{"__Host-authgate_1", "__Host-authgate_2", "__Host-authgate_3", "__Host-authgate_12"} {
		ck, ok := sc[name]
		switch {
		case !ok:
			t.Errorf("no Set-Cookie clearing stale chunk %q; got %v", name, w.Header().Values("Set-Cookie"))
		case ck.MaxAge >= 0:
			t.Errorf("Set-Cookie %q MaxAge = %d, want < 0", name, ck.MaxAge)
		case !ck.Secure || !ck.HttpOnly || ck.Path != "/":
			// A __Host- clear without Secure and Path=/ is rejected
			// by browsers, leaving the stale chunk behind.
			t.Errorf("Set-Cookie %q = %q, want Secure, HttpOnly, Path=/", name, ck.Raw)
		}
	}
	if ck := sc["__Host-authgate"]; ck == nil || ck.Value != "small" {
		t.Errorf("Set-Cookie __Host-authgate = %v, want value %q", ck, "small")
	}
	if _, ok := sc["other"]; ok {
		t.Errorf("Write touched a cookie it does not own: %v", w.Header().Values("Set-Cookie"))
	}
	b.apply(t, w.Header())
	if got, ok := c.Read(b.request()); !ok || got != "small" {
		t.Errorf("Read() = %q, %v; want %q, true", got, ok, "small")
	}
	if len(b) != 2 {
		t.Errorf("browser keeps %v, want only __Host-authgate and other", keys(b))
	}
}

func TestCookiesClear(t *testing.T) {
	c := NewCookies(CookieOptions{Secure: true, Domain: "example.com"})
	tests := []struct {
		name      string
		cookie    string
		wantClear []string
	}{
		{name: "nothing present", wantClear: []string{"__Secure-authgate"}},
		{name: "base only", cookie: "__Secure-authgate=a", wantClear: []string{"__Secure-authgate"}},
		{name: "chunks and strays", cookie: "__Secure-authgate=a; __Secure-authgate_1=b; __Secure-authgate_12=c; x=y",
			wantClear: []string{"__Secure-authgate", "__Secure-authgate_1", "__Secure-authgate_12"}},
		{name: "chunk without base", cookie: "__Secure-authgate_2=b", wantClear: []string{"__Secure-authgate", "__Secure-authgate_2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			if tt.cookie != "" {
				r.Header.Set("Cookie", tt.cookie)
			}
			w := httptest.NewRecorder()
			c.Clear(w, r)
			sc := setCookies(t, w.Header())
			if len(sc) != len(tt.wantClear) {
				t.Errorf("Set-Cookie = %q, want clears of %q", w.Header().Values("Set-Cookie"), tt.wantClear)
			}
			for _, name := range tt.wantClear {
				ck := sc[name]
				if ck == nil || ck.MaxAge >= 0 || ck.Domain != "example.com" || !ck.Secure {
					t.Errorf("Set-Cookie %q = %v, want Max-Age<0 with Domain=example.com and Secure", name, ck)
				}
			}
		})
	}
}

func TestCookiesWriteExpiredClears(t *testing.T) {
	clk := newClock()
	c := NewCookies(CookieOptions{Now: clk.Now})
	w := httptest.NewRecorder()
	if err := c.Write(w, httptest.NewRequest(http.MethodGet, "/", nil), "v", clk.Now()); err != nil {
		t.Fatal(err)
	}
	if ck := setCookies(t, w.Header())["authgate"]; ck == nil || ck.MaxAge >= 0 {
		t.Errorf("Set-Cookie after writing an expired value = %q, want a clear", w.Header().Values("Set-Cookie"))
	}
}

func keys(b browser) []string {
	var out []string
	for k := range b {
		out = append(out, k)
	}
	return out
}

func BenchmarkCookiesRead(b *testing.B) {
	c := NewCookies(CookieOptions{Secure: true})
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Cookie", "_ga=GA1.2.3; theme=dark; __Host-authgate="+strings.Repeat("v", 3000)+"; csrftoken=abc")
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := c.Read(r); !ok {
			b.Fatal("not found")
		}
	}
}
