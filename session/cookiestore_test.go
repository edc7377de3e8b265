package session

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func newStore(t testing.TB, clk *clock, keys ...[]byte) *CookieStore {
	t.Helper()
	s, err := NewCookieStore(CookieStoreOptions{
		Cookie: CookieOptions{Secure: true},
		Keys:   keys,
		Now:    clk.Now,
	})
	if err != nil {
		t.Fatalf("NewCookieStore: %v", err)
	}
	return s
}

// saved returns a browser holding the cookies Save wrote for sess.
func saved(t *testing.T, s *CookieStore, sess *Session) browser {
	t.Helper()
	b := browser{}
	w := httptest.NewRecorder()
	if err := s.Save(w, b.request(), sess); err != nil {
		t.Fatalf("Save: %v", err)
	}
	b.apply(t, w.Header())
	return b
}

func TestNewCookieStoreRejectsBadOptions(t *testing.T) {
	tests := []struct {
		name string
		o    CookieStoreOptions
	}{
		{name: "no keys", o: CookieStoreOptions{}},
		{name: "short key", o: CookieStoreOptions{Keys: [][]byte{make([]byte, 31)}}},
		{name: "bad cookie name", o: CookieStoreOptions{Keys: [][]byte{testKey(1)}, Cookie: CookieOptions{Name: "a=b"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if s, err := NewCookieStore(tt.o); err == nil {
				t.Errorf("NewCookieStore() = %v, nil; want an error", s)
			}
		})
	}
}

func TestCookieStoreRoundTrip(t *testing.T) {
	clk := newClock()
	s := newStore(t, clk, testKey(1))
	want := fullSession(clk.Now())
	b := saved(t, s, want)
	if len(b) != 1 {
		t.Errorf("cookies after Save = %v, want only %q", keys(b), s.Cookies().Name())
	}
	got, err := s.Load(b.request())
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	sameSession(t, got, want)
}

func TestCookieStoreSaveSetsExpiry(t *testing.T) {
	clk := newClock()
	s := newStore(t, clk, testKey(1))
	sess := fullSession(clk.Now())
	w := httptest.NewRecorder()
	if err := s.Save(w, httptest.NewRequest(http.MethodGet, "/", nil), sess); err != nil {
		t.Fatal(err)
	}
	ck := setCookies(t, w.Header())["__Host-authgate"]
	if ck == nil {
		t.Fatalf("Set-Cookie = %q, want __Host-authgate", w.Header().Values("Set-Cookie"))
	}
	if want := int(sess.ExpiresAt.Sub(clk.Now()).Seconds()); ck.MaxAge != want {
		t.Errorf("Max-Age = %d, want %d", ck.MaxAge, want)
	}
	if !ck.Expires.Equal(sess.ExpiresAt) {
		t.Errorf("Expires = %v, want %v", ck.Expires, sess.ExpiresAt)
	}
	if !ck.HttpOnly || !ck.Secure || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" {
		t.Errorf("Set-Cookie = %q, want HttpOnly; Secure; SameSite=Lax; Path=/", ck.Raw)
	}
}

func TestCookieStoreLoadNotFound(t *testing.T) {
	clk := newClock()
	oldKey, newKey := testKey(1), testKey(2)
	s := newStore(t, clk, oldKey)
	sess := fullSession(clk.Now())
	good := saved(t, s, sess)
	value := good["__Host-authgate"]
	big := fullSession(clk.Now())
	big.AccessToken = incompressible(6 << 10)
	chunked := saved(t, s, big)

	other, err := NewCookieStore(CookieStoreOptions{Cookie: CookieOptions{Name: "other", Secure: true}, Keys: [][]byte{oldKey}, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	garbage, _ := s.sealer.Seal("__Host-authgate", []byte("not an encoded session"))

	tests := []struct {
		name   string
		store  *CookieStore
		cookie browser
		now    time.Time
	}{
		{name: "no cookie", store: s, cookie: browser{}},
		{name: "empty value", store: s, cookie: browser{"__Host-authgate": ""}},
		{name: "truncated", store: s, cookie: browser{"__Host-authgate": value[:len(value)-1]}},
		{name: "truncated to half", store: s, cookie: browser{"__Host-authgate": value[:len(value)/2]}},
		{name: "unprefixed name", store: s, cookie: browser{"authgate": value}},
		{name: "value from another cookie name", store: other, cookie: browser{"__Host-other": value}},
		{name: "undecodable plaintext", store: s, cookie: browser{"__Host-authgate": garbage}},
		{name: "missing middle chunk", store: s, cookie: without(chunked, "__Host-authgate_1")},
		{name: "missing last chunk", store: s, cookie: without(chunked, "__Host-authgate_2")},
		{name: "chunks swapped", store: s, cookie: swapped(chunked, "__Host-authgate", "__Host-authgate_1")},
		{name: "removed key", store: newStore(t, clk, newKey), cookie: good},
		{name: "expired exactly", store: s, cookie: good, now: sess.ExpiresAt},
		{name: "expired", store: s, cookie: good, now: sess.ExpiresAt.Add(time.Second)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !tt.now.IsZero() {
				saved := clk.t
				clk.t = tt.now
				defer func() { clk.t = saved }()
			}
			got, err := tt.store.Load(tt.cookie.request())
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("Load() = %v, %v; want ErrNotFound", got, err)
			}
		})
	}
	// The good cookie itself must load, or the cases above prove nothing.
	if _, err := s.Load(good.request()); err != nil {
		t.Errorf("Load(good) = %v", err)
	}
	if _, err := s.Load(chunked.request()); err != nil {
		t.Errorf("Load(chunked) = %v", err)
	}
}

func without(b browser, name string) browser {
	out := browser{}
	for k, v := range b {
		if k != name {
			out[k] = v
		}
	}
	return out
}

func swapped(b browser, x, y string) browser {
	out := without(b, "")
	out[x], out[y] = b[y], b[x]
	return out
}

func TestCookieStoreLoadTampered(t *testing.T) {
	clk := newClock()
	s := newStore(t, clk, testKey(1))
	sess := fullSession(clk.Now())
	sess.AccessToken = incompressible(5000) // two chunks
	b := saved(t, s, sess)
	for name, v := range b {
		for i := range v {
			c := byte('A')
			if v[i] == c {
				c = 'B'
			}
			bad := without(b, "")
			bad[name] = v[:i] + string(c) + v[i+1:]
			if got, err := s.Load(bad.request()); !errors.Is(err, ErrNotFound) {
				t.Fatalf("Load(%s char %d changed) = %v, %v; want ErrNotFound", name, i, got, err)
			}
		}
	}
}

func TestCookieStoreKeyRotation(t *testing.T) {
	clk := newClock()
	oldKey, newKey := testKey(1), testKey(2)
	sess := fullSession(clk.Now())
	b := saved(t, newStore(t, clk, oldKey), sess)

	rotated := newStore(t, clk, newKey, oldKey)
	got, err := rotated.Load(b.request())
	if err != nil {
		t.Fatalf("Load(old-key cookie) during rotation = %v, want the session", err)
	}
	sameSession(t, got, sess)

	// Re-saving seals with the new key, which survives the old key's removal.
	b2 := saved(t, rotated, got)
	if _, err := newStore(t, clk, newKey).Load(b2.request()); err != nil {
		t.Errorf("Load(re-saved cookie) after removing old key = %v, want the session", err)
	}
	if _, err := newStore(t, clk, newKey).Load(b.request()); !errors.Is(err, ErrNotFound) {
		t.Errorf("Load(old-key cookie) after removing old key = %v, want ErrNotFound", err)
	}
}

func TestCookieStoreLargeSession(t *testing.T) {
	clk := newClock()
	s := newStore(t, clk, testKey(1))
	sess := fullSession(clk.Now())
	sess.AccessToken = incompressible(6 << 10)
	w := httptest.NewRecorder()
	if err := s.Save(w, httptest.NewRequest(http.MethodGet, "/", nil), sess); err != nil {
		t.Fatalf("Save: %v", err)
	}
	headers := w.Header().Values("Set-Cookie")
	if len(headers) < 3 {
		t.Errorf("%d Set-Cookie headers for a 6 KB token plus a 1 KB ID token, want at least 3", len(headers))
	}
	for _, h := range headers {
		if len(h) >= 4096 {
			t.Errorf("len(Set-Cookie %.30q…) = %d, want < 4096", h, len(h))
		}
	}
	b := browser{}
	b.apply(t, w.Header())
	got, err := s.Load(b.request())
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	sameSession(t, got, sess)
}

func TestCookieStoreShrinkClearsStaleChunks(t *testing.T) {
	clk := newClock()
	s := newStore(t, clk, testKey(1))
	sess := fullSession(clk.Now())
	sess.AccessToken = incompressible(10 << 10)
	b := saved(t, s, sess)
	if _, ok := b["__Host-authgate_3"]; !ok {
		t.Fatalf("cookies %v: want at least 4 chunks for a 10 KB token", keys(b))
	}

	// A refresh brings a short token: the next Save must clear the tail.
	sess.AccessToken = "short"
	w := httptest.NewRecorder()
	if err := s.Save(w, b.request(), sess); err != nil {
		t.Fatal(err)
	}
	sc := setCookies(t, w.Header())
	for name := range b {
		if name == "__Host-authgate" {
			continue
		}
		if ck := sc[name]; ck == nil || ck.MaxAge >= 0 {
			t.Errorf("Set-Cookie for stale chunk %q = %v, want Max-Age<0", name, ck)
		}
	}
	b.apply(t, w.Header())
	if len(b) != 1 {
		t.Errorf("cookies after shrinking = %v, want only __Host-authgate", keys(b))
	}
	got, err := s.Load(b.request())
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got.AccessToken != "short" {
		t.Errorf("AccessToken after shrink has %d bytes, want %q", len(got.AccessToken), "short")
	}
}

func TestCookieStoreSaveErrors(t *testing.T) {
	clk := newClock()
	s := newStore(t, clk, testKey(1))
	huge := fullSession(clk.Now())
	huge.AccessToken = incompressible(40 << 10)
	noExpiry := fullSession(clk.Now())
	noExpiry.ExpiresAt = time.Time{}
	tests := []struct {
		name    string
		sess    *Session
		wantErr error // nil: any error
	}{
		{name: "nil session"},
		{name: "no ExpiresAt", sess: noExpiry},
		{name: "too large for cookies", sess: huge, wantErr: ErrCookieTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			err := s.Save(w, httptest.NewRequest(http.MethodGet, "/", nil), tt.sess)
			if err == nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("Save() = %v, want error %v", err, tt.wantErr)
			}
			if errors.Is(err, ErrNotFound) {
				t.Errorf("Save() = %v, a system fault must not wrap ErrNotFound", err)
			}
		})
	}
}

func TestCookieStoreDelete(t *testing.T) {
	clk := newClock()
	s := newStore(t, clk, testKey(1))
	sess := fullSession(clk.Now())
	sess.AccessToken = incompressible(6 << 10)
	b := saved(t, s, sess)
	n := len(b)
	if _, err := s.Load(b.request()); err != nil { // now cached
		t.Fatalf("Load: %v", err)
	}
	v, _ := s.cookies.Read(b.request())
	w := httptest.NewRecorder()
	if err := s.Delete(w, b.request(), sess); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, ok := s.cache.get(v, s.sealer.current()); ok {
		t.Errorf("deleted session still cached")
	}
	if got := len(setCookies(t, w.Header())); got != n {
		t.Errorf("Delete wrote %d Set-Cookie headers, want %d (one per chunk)", got, n)
	}
	b.apply(t, w.Header())
	if len(b) != 0 {
		t.Errorf("cookies after Delete = %v, want none", keys(b))
	}
	if _, err := s.Load(b.request()); !errors.Is(err, ErrNotFound) {
		t.Errorf("Load after Delete = %v, want ErrNotFound", err)
	}
}

// TestCookieStoreOverHTTPS runs the store behind a real TLS server with a
// real cookie jar: what the jar sends back is what a browser would.
func TestCookieStoreOverHTTPS(t *testing.T) {
	clk := newClock()
	s := newStore(t, clk, testKey(1))
	mux := http.NewServeMux()
	mux.HandleFunc("POST /save/{size}", func(w http.ResponseWriter, r *http.Request) {
		sess := fullSession(clk.Now())
		var n int
		fmt.Sscan(r.PathValue("size"), &n)
		sess.AccessToken = incompressible(n)
		if err := s.Save(w, r, sess); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	mux.HandleFunc("GET /whoami", func(w http.ResponseWriter, r *http.Request) {
		sess, err := s.Load(r)
		if errors.Is(err, ErrNotFound) {
			http.Error(w, "no session", http.StatusUnauthorized)
			return
		}
		fmt.Fprintf(w, "%s %d", sess.Subject, len(sess.AccessToken))
	})
	mux.HandleFunc("POST /signout", func(w http.ResponseWriter, r *http.Request) {
		s.Delete(w, r, nil)
	})
	srv := httptest.NewTLSServer(mux)
	defer srv.Close()
	client := srv.Client()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	client.Jar = jar

	steps := []struct {
		name       string
		method     string
		path       string
		wantStatus int
		wantBody   string
	}{
		{name: "anonymous", method: http.MethodGet, path: "/whoami", wantStatus: http.StatusUnauthorized, wantBody: "no session\n"},
		{name: "save large", method: http.MethodPost, path: "/save/9000", wantStatus: http.StatusOK},
		{name: "load large", method: http.MethodGet, path: "/whoami", wantStatus: http.StatusOK, wantBody: "248289761001 9000"},
		{name: "save small", method: http.MethodPost, path: "/save/10", wantStatus: http.StatusOK},
		{name: "load small", method: http.MethodGet, path: "/whoami", wantStatus: http.StatusOK, wantBody: "248289761001 10"},
		{name: "sign out", method: http.MethodPost, path: "/signout", wantStatus: http.StatusOK},
		{name: "signed out", method: http.MethodGet, path: "/whoami", wantStatus: http.StatusUnauthorized, wantBody: "no session\n"},
	}
	for _, st := range steps {
		req, _ := http.NewRequest(st.method, srv.URL+st.path, nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != st.wantStatus || st.wantBody != "" && string(body) != st.wantBody {
			t.Errorf("%s: %s %s = %d %q, want %d %q", st.name, st.method, st.path, resp.StatusCode, body, st.wantStatus, st.wantBody)
		}
		if st.name == "load small" {
			if n := len(jar.Cookies(req.URL)); n != 1 {
				t.Errorf("%s: jar holds %d cookies, want 1 (stale chunks cleared)", st.name, n)
			}
		}
	}
}

func TestCookieStoreCachedLoad(t *testing.T) {
	clk := newClock()
	s := newStore(t, clk, testKey(1))
	want := fullSession(clk.Now())
	b := saved(t, s, want)

	first, err := s.Load(b.request())
	if err != nil {
		t.Fatalf("first Load: %v", err)
	}
	// Callers own what Load returns: changing it must not leak into the
	// next Load (served from the cache).
	first.AccessToken = "changed"
	first.Groups[0] = "changed"
	*first.EmailVerified = false
	second, err := s.Load(b.request())
	if err != nil {
		t.Fatalf("second Load: %v", err)
	}
	if second == first {
		t.Fatalf("second Load returned the same *Session as the first")
	}
	sameSession(t, second, want)

	// A cached session still expires.
	clk.t = want.ExpiresAt
	if got, err := s.Load(b.request()); !errors.Is(err, ErrNotFound) {
		t.Errorf("Load of a cached session at its ExpiresAt = %v, %v; want ErrNotFound", got, err)
	}
}

func TestOpenCacheBounds(t *testing.T) {
	c := newOpenCache()
	sess := &Session{ID: "x"}
	val := strings.Repeat("v", 1000)
	for i := 0; i < cacheMaxEntries+100; i++ {
		c.put(fmt.Sprintf("%d-%s", i, val), nil, sess, 1000)
	}
	if n := len(c.m); n > cacheMaxEntries {
		t.Errorf("cache holds %d entries, want <= %d", n, cacheMaxEntries)
	}
	if c.bytes > cacheMaxBytes {
		t.Errorf("cache holds %d bytes, want <= %d", c.bytes, cacheMaxBytes)
	}
	var sum int
	for _, e := range c.m {
		sum += e.size
	}
	if sum != c.bytes {
		t.Errorf("cache accounts %d bytes, entries hold %d", c.bytes, sum)
	}
	huge := strings.Repeat("h", cacheMaxBytes/16+1)
	c.put(huge, nil, sess, 0)
	if _, ok := c.get(huge, nil); ok {
		t.Errorf("cache kept a %d-byte entry, want entries over %d bytes skipped", len(huge), cacheMaxBytes/16)
	}
	last := fmt.Sprintf("%d-%s", cacheMaxEntries+99, val)
	if got, ok := c.get(last, nil); !ok || got != sess {
		t.Errorf("get(most recent) = %v, %v; want the session, true", got, ok)
	}
	if _, ok := c.get(last[:len(last)-1], nil); ok {
		t.Errorf("get(prefix of a cached value) hit, want miss")
	}
}

func TestCookieStoreConcurrentLoad(t *testing.T) {
	clk := newClock()
	s := newStore(t, clk, testKey(1))
	b := saved(t, s, fullSession(clk.Now()))
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 50; j++ {
				if _, err := s.Load(b.request()); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent Load: %v", err)
	}
}

// BenchmarkCookieStoreLoad measures Load of a typical ~3 KB cookie without
// the open cache, with it (every Load a hit), with every Load a miss (the
// cost a cache adds to a cookie seen once, plus a remove), and hits from
// parallel goroutines (lock contention).
func BenchmarkCookieStoreLoad(b *testing.B) {
	for _, mode := range []string{"nocache", "hit", "miss", "hit-parallel"} {
		b.Run(mode, func(b *testing.B) {
			benchmarkCookieStoreLoad(b, mode)
		})
	}
}

func benchmarkCookieStoreLoad(b *testing.B, mode string) {
	clk := newClock()
	s := newStore(b, clk, testKey(1), testKey(2))
	if mode == "nocache" {
		s.cache = nil
	} else if s.cache == nil {
		s.cache = newOpenCache()
	}
	sess := fullSession(clk.Now())
	w := httptest.NewRecorder()
	if err := s.Save(w, httptest.NewRequest(http.MethodGet, "/", nil), sess); err != nil {
		b.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	for _, c := range (&http.Response{Header: w.Header()}).Cookies() {
		r.AddCookie(c)
	}
	r.Header.Add("Cookie", "_ga=GA1.2.3.4; theme=dark")
	v, _ := s.cookies.Read(r)
	b.ReportAllocs()
	if mode == "hit-parallel" {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := s.Load(r); err != nil {
					b.Error(err)
					return
				}
			}
		})
		return
	}
	for b.Loop() {
		if mode == "miss" {
			s.cache.remove(v)
		}
		if _, err := s.Load(r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCookieStoreLoadNoCookie(b *testing.B) {
	clk := newClock()
	s := newStore(b, clk, testKey(1))
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Add("Cookie", "_ga=GA1.2.3.4; theme=dark")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Load(r); !errors.Is(err, ErrNotFound) {
			b.Fatal(err)
		}
	}
}

// TestCookieStoreSaveReusesSealedValue: saving the same session again (the
// refresh grace window) gives the same value without sealing it anew; a
// changed session or a new key gives a new value, and every value opens.
func TestCookieStoreSaveReusesSealedValue(t *testing.T) {
	clk := newClock()
	s := newStore(t, clk, testKey(1))
	sess := fullSession(clk.Now())
	first := saved(t, s, sess)
	again := saved(t, s, sess)
	if !maps.Equal(first, again) {
		t.Error("saving the same session twice gave different cookies")
	}
	changed := *sess
	changed.AccessToken = "another-access-token"
	other := saved(t, s, &changed)
	if maps.Equal(first, other) {
		t.Error("a changed session was given the previous cookie")
	}
	if got, err := s.Load(other.request()); err != nil || got.AccessToken != changed.AccessToken {
		t.Errorf("Load of the changed session = %v, %v", got, err)
	}
	if err := s.sealer.SetKeys([][]byte{testKey(2), testKey(1)}); err != nil {
		t.Fatal(err)
	}
	rotated := saved(t, s, &changed)
	if maps.Equal(rotated, other) {
		t.Error("after a key rotation the session was given the cookie sealed with the old key")
	}
	for name, b := range map[string]browser{"first": first, "again": again, "rotated": rotated} {
		if got, err := s.Load(b.request()); err != nil || got.ID != sess.ID {
			t.Errorf("Load(%s) = %v, %v", name, got, err)
		}
	}
	only2 := newStore(t, clk, testKey(2))
	if _, err := only2.Load(rotated.request()); err != nil {
		t.Errorf("the value saved after the rotation does not open with the new key alone: %v", err)
	}
}
