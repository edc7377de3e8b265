package redisstore

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authgate/authgate/internal/redistest"
	"github.com/authgate/authgate/session"
)

var (
	testKeys  = [][]byte{bytes.Repeat([]byte{7}, session.KeySize)}
	otherKeys = [][]byte{bytes.Repeat([]byte{8}, session.KeySize)}
)

// clock is an injectable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now().Truncate(time.Millisecond)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newStore(t testing.TB, c redis.UniversalClient, now func() time.Time) *Store {
	t.Helper()
	st, err := New(Options{Client: c, Keys: testKeys, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// testSession returns a session whose every secret is a distinctive
// string, so a dump can be searched for it.
func testSession(id string, now time.Time) *session.Session {
	yes := true
	return &session.Session{
		ID:                id,
		Subject:           "subject-" + id,
		Email:             id + "@mail.example",
		EmailVerified:     &yes,
		PreferredUsername: "user-" + id,
		Name:              "Name " + id,
		Groups:            []string{"admins", "group-" + id},
		IDPSessionID:      "idpsid-" + id,
		AccessToken:       "access-token-" + id,
		RefreshToken:      "refresh-token-" + id,
		IDToken:           "id-token-" + id,
		Expiry:            now.Add(5 * time.Minute),
		IssuedAt:          now,
		ExpiresAt:         now.Add(time.Hour),
	}
}

func request(cookies []*http.Cookie) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "http://app.example/", nil)
	for _, c := range cookies {
		r.AddCookie(c)
	}
	return r
}

// save runs st.Save for a request carrying cookies and returns the cookies
// the response sets.
func save(t testing.TB, st *Store, sess *session.Session, cookies []*http.Cookie) []*http.Cookie {
	t.Helper()
	rec := httptest.NewRecorder()
	if err := st.Save(rec, request(cookies), sess); err != nil {
		t.Fatalf("Save(%s) = %v", sess.ID, err)
	}
	return rec.Result().Cookies()
}

func load(st *Store, cookies []*http.Cookie) (*session.Session, error) {
	return st.Load(request(cookies))
}

func sameSession(t testing.TB, got, want *session.Session) {
	t.Helper()
	if !bytes.Equal(session.Encode(got), session.Encode(want)) {
		t.Errorf("Load = %+v, want %+v", got, want)
	}
}

func TestRoundTrip(t *testing.T) {
	srv := redistest.Start(t)
	clk := newClock()
	st := newStore(t, storeClient(t, srv), clk.Now)
	want := testSession("s1", clk.Now())

	cookies := save(t, st, want, nil)
	if len(cookies) != 1 || cookies[0].Name != "authgate" {
		t.Fatalf("Save set cookies %v, want one named authgate", cookies)
	}
	if c := cookies[0]; !c.HttpOnly || c.Path != "/" || !c.Expires.Equal(want.ExpiresAt.Truncate(time.Second)) {
		t.Errorf("cookie = %+v, want HttpOnly, Path=/, Expires=%v", c, want.ExpiresAt)
	}
	if n := len(cookies[0].Value); n > 200 {
		t.Errorf("ticket cookie is %d bytes, want a small ticket", n)
	}
	got, err := load(st, cookies)
	if err != nil {
		t.Fatalf("Load = %v", err)
	}
	sameSession(t, got, want)
	if err := st.Ping(context.Background()); err != nil {
		t.Errorf("Ping = %v", err)
	}
}

func TestReplicasShareSessions(t *testing.T) {
	srv := redistest.Start(t)
	clk := newClock()
	a := newStore(t, storeClient(t, srv), clk.Now)
	b := newStore(t, storeClient(t, srv), clk.Now)
	s := testSession("shared", clk.Now())

	cookies := save(t, a, s, nil)
	got, err := load(b, cookies)
	if err != nil {
		t.Fatalf("replica b: Load = %v", err)
	}
	sameSession(t, got, s)

	// Replica b refreshes; replica a sees the new tokens with the same
	// cookie.
	next := *got
	next.AccessToken, next.RefreshToken = "access-token-2", "refresh-token-2"
	next.Expiry = clk.Now().Add(10 * time.Minute)
	if set := save(t, b, &next, cookies); len(set) != 0 {
		t.Errorf("refresh Save set cookies %v, want none", set)
	}
	got, err = load(a, cookies)
	if err != nil {
		t.Fatalf("replica a: Load = %v", err)
	}
	sameSession(t, got, &next)
}

func TestRedisHoldsNoSecrets(t *testing.T) {
	srv := redistest.Start(t)
	clk := newClock()
	st := newStore(t, storeClient(t, srv), clk.Now)
	s := testSession("dumped", clk.Now())
	cookies := save(t, st, s, nil)
	if _, ok, err := st.LockRefresh(context.Background(), s.ID, time.Minute); !ok || err != nil {
		t.Fatalf("LockRefresh = %v, %v; want true, nil", ok, err)
	}
	if _, err := st.ClaimJTI(context.Background(), "jti-secret-value", time.Minute); err != nil {
		t.Fatal(err)
	}

	// Dump every key name and value the way an attacker with read access
	// would.
	raw := rawClient(t, srv)
	ctx := context.Background()
	keys, err := raw.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) < 4 {
		t.Fatalf("KEYS * = %q, want the session, two indexes, a lock and a jti", keys)
	}
	var dump strings.Builder
	for _, k := range keys {
		dump.WriteString(k + "\n")
		switch typ := raw.Type(ctx, k).Val(); typ {
		case "string":
			dump.WriteString(raw.Get(ctx, k).Val())
		case "zset":
			dump.WriteString(strings.Join(raw.ZRange(ctx, k, 0, -1).Val(), "\n"))
		default:
			t.Errorf("key %q has type %q, want string or zset", k, typ)
		}
		dump.WriteString("\n")
	}
	for _, secret := range []string{s.AccessToken, s.RefreshToken, s.IDToken, s.Email, s.Subject,
		s.IDPSessionID, s.Name, "jti-secret-value", cookies[0].Value} {
		if strings.Contains(dump.String(), secret) {
			t.Errorf("Redis dump contains %q", secret)
		}
	}
	// The cookie keys alone do not open the stored value either.
	sealer, err := session.NewSealer(testKeys)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sealer.Open(st.sessionKey(s.ID), raw.Get(ctx, st.sessionKey(s.ID)).Val()); err == nil {
		t.Error("stored session opens with the cookie keys, want only with the ticket's key")
	}
}

func TestLoadNotFound(t *testing.T) {
	srv := redistest.Start(t)
	raw := rawClient(t, srv)
	clk := newClock()
	st := newStore(t, storeClient(t, srv), clk.Now)
	ctx := context.Background()
	a := testSession("a", clk.Now())
	b := testSession("b", clk.Now())
	aCookies := save(t, st, a, nil)
	bCookies := save(t, st, b, nil)

	other, err := New(Options{Client: storeClient(t, srv), Keys: otherKeys, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	otherCookies := save(t, other, testSession("o", clk.Now()), nil)

	// A browser still holding a sealed-cookie session from before the
	// switch to Redis (same keys, same cookie name).
	cs, err := session.NewCookieStore(session.CookieStoreOptions{Keys: testKeys, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	if err := cs.Save(rec, request(nil), &session.Session{ID: "tiny", ExpiresAt: clk.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	cookieStoreCookies := rec.Result().Cookies()
	if _, err := cs.Load(request(aCookies)); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("CookieStore.Load(ticket) = %v, want ErrNotFound", err)
	}

	tampered := *aCookies[0]
	v := []byte(tampered.Value)
	if v[len(v)/2] == 'A' {
		v[len(v)/2] = 'B'
	} else {
		v[len(v)/2] = 'A'
	}
	tampered.Value = string(v)

	tests := []struct {
		name    string
		cookies []*http.Cookie
		prepare func()
	}{
		{name: "no cookie"},
		{name: "garbage", cookies: []*http.Cookie{{Name: "authgate", Value: "garbage"}}},
		{name: "tampered ticket", cookies: []*http.Cookie{&tampered}},
		{name: "ticket sealed with other keys", cookies: otherCookies},
		{name: "sealed-cookie session", cookies: cookieStoreCookies},
		{name: "session gone from redis", cookies: aCookies, prepare: func() {
			raw.Del(ctx, st.sessionKey(a.ID))
		}},
		{name: "value of another session", cookies: bCookies, prepare: func() {
			raw.Set(ctx, st.sessionKey(b.ID), raw.Get(ctx, st.sessionKey("o")).Val(), time.Hour)
		}},
		{name: "tampered value", cookies: bCookies, prepare: func() {
			raw.Set(ctx, st.sessionKey(b.ID), "AQ"+strings.Repeat("x", 60), time.Hour)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.prepare != nil {
				tt.prepare()
			}
			got, err := load(st, tt.cookies)
			if !errors.Is(err, session.ErrNotFound) {
				t.Errorf("Load = %v, %v; want ErrNotFound", got, err)
			}
		})
	}
}

func TestLoadExpired(t *testing.T) {
	srv := redistest.Start(t)
	clk := newClock()
	st := newStore(t, storeClient(t, srv), clk.Now)
	s := testSession("e", clk.Now())
	cookies := save(t, st, s, nil)
	clk.Add(time.Hour)
	if got, err := load(st, cookies); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("Load at ExpiresAt = %v, %v; want ErrNotFound", got, err)
	}
}

func TestTTLFollowsSession(t *testing.T) {
	srv := redistest.Start(t)
	raw := rawClient(t, srv)
	clk := newClock()
	st := newStore(t, storeClient(t, srv), clk.Now)
	ctx := context.Background()

	s := testSession("ttl", clk.Now())
	s.ExpiresAt = clk.Now().Add(90 * time.Minute)
	save(t, st, s, nil)
	// Redis counts down in real time; the store computed the TTL from the
	// injected clock, which equals real time at the start of the test.
	want := 90 * time.Minute
	for _, key := range []string{st.sessionKey(s.ID), st.subjectKey(s.Subject), st.idpSessionKey(s.IDPSessionID)} {
		got := raw.PTTL(ctx, key).Val()
		if got > want || got < want-10*time.Second {
			t.Errorf("PTTL(%q) = %v, want about %v", key, got, want)
		}
	}

	// An index lives as long as its longest session.
	long := testSession("ttl2", clk.Now())
	long.Subject = s.Subject
	long.ExpiresAt = clk.Now().Add(3 * time.Hour)
	save(t, st, long, nil)
	if got := raw.PTTL(ctx, st.subjectKey(s.Subject)).Val(); got < 3*time.Hour-10*time.Second {
		t.Errorf("subject index PTTL = %v, want about 3h", got)
	}

	// Saving a session already expired deletes it.
	s.ExpiresAt = clk.Now().Add(-time.Second)
	rec := httptest.NewRecorder()
	if err := st.Save(rec, request(nil), s); err != nil {
		t.Fatalf("Save(expired) = %v", err)
	}
	if n := raw.Exists(ctx, st.sessionKey(s.ID)).Val(); n != 0 {
		t.Errorf("expired session still stored after Save")
	}
}

func TestSaveCookie(t *testing.T) {
	srv := redistest.Start(t)
	clk := newClock()
	st := newStore(t, storeClient(t, srv), clk.Now)
	s := testSession("c", clk.Now())
	first := save(t, st, s, nil)

	tests := []struct {
		name       string
		change     func(s *session.Session)
		cookies    []*http.Cookie
		wantCookie bool
	}{
		{name: "refresh with ticket", change: func(s *session.Session) { s.AccessToken = "new" }, cookies: first},
		{name: "refresh without ticket", change: func(s *session.Session) { s.AccessToken = "newer" }, wantCookie: true},
		{name: "new expiry", change: func(s *session.Session) { s.ExpiresAt = s.ExpiresAt.Add(time.Hour) }, cookies: first, wantCookie: true},
		{name: "other session", change: func(s *session.Session) { s.ID = "c2" }, cookies: first, wantCookie: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next := *s
			tt.change(&next)
			set := save(t, st, &next, tt.cookies)
			if got := len(set) > 0; got != tt.wantCookie {
				t.Fatalf("Save set cookies %v, want cookie: %v", set, tt.wantCookie)
			}
			c := tt.cookies
			if tt.wantCookie {
				c = set
			}
			got, err := load(st, c)
			if err != nil {
				t.Fatalf("Load = %v", err)
			}
			sameSession(t, got, &next)
		})
	}
}

func TestRefreshDoesNotResurrect(t *testing.T) {
	srv := redistest.Start(t)
	clk := newClock()
	st := newStore(t, storeClient(t, srv), clk.Now)
	s := testSession("r", clk.Now())
	cookies := save(t, st, s, nil)

	// A back-channel logout lands while a refresh is at the IdP.
	if n, err := st.DeleteBySubject(context.Background(), s.Subject); n != 1 || err != nil {
		t.Fatalf("DeleteBySubject = %d, %v; want 1, nil", n, err)
	}
	next := *s
	next.AccessToken = "refreshed"
	err := st.Save(httptest.NewRecorder(), request(cookies), &next)
	if !errors.Is(err, session.ErrNotFound) {
		t.Errorf("Save after delete = %v, want ErrNotFound", err)
	}
	if got, err := load(st, cookies); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("Load = %v, %v; want ErrNotFound", got, err)
	}
}

func TestDelete(t *testing.T) {
	srv := redistest.Start(t)
	raw := rawClient(t, srv)
	clk := newClock()
	st := newStore(t, storeClient(t, srv), clk.Now)
	ctx := context.Background()

	tests := []struct {
		name    string
		nilSess bool
	}{
		{name: "session"},
		{name: "nil session, from ticket", nilSess: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := testSession("d-"+tt.name[:3], clk.Now())
			cookies := save(t, st, s, nil)
			rec := httptest.NewRecorder()
			arg := s
			if tt.nilSess {
				arg = nil
			}
			if err := st.Delete(rec, request(cookies), arg); err != nil {
				t.Fatalf("Delete = %v", err)
			}
			set := rec.Result().Cookies()
			if len(set) != 1 || set[0].Name != "authgate" || set[0].MaxAge >= 0 {
				t.Errorf("Delete set cookies %v, want authgate cleared", set)
			}
			if n := raw.Exists(ctx, st.sessionKey(s.ID)).Val(); n != 0 {
				t.Errorf("session key still exists")
			}
			if got, err := load(st, cookies); !errors.Is(err, session.ErrNotFound) {
				t.Errorf("Load after Delete = %v, %v; want ErrNotFound", got, err)
			}
			wantIndexed := int64(0)
			if tt.nilSess {
				wantIndexed = 1 // unknown without the session; pruned by expiry
			}
			if n := raw.ZCard(ctx, st.subjectKey(s.Subject)).Val(); n != wantIndexed {
				t.Errorf("subject index has %d entries, want %d", n, wantIndexed)
			}
		})
	}
}

func TestDeleteByIndex(t *testing.T) {
	srv := redistest.Start(t)
	clk := newClock()
	a := newStore(t, storeClient(t, srv), clk.Now)
	b := newStore(t, storeClient(t, srv), clk.Now)
	ctx := context.Background()
	now := clk.Now()

	mk := func(id, sub, sid string) *session.Session {
		s := testSession(id, now)
		s.Subject, s.IDPSessionID = sub, sid
		return s
	}
	sessions := []*session.Session{
		mk("alice-laptop", "alice", "idp-1"),
		mk("alice-phone", "alice", "idp-2"),
		mk("alice-tablet", "alice", "idp-2"),
		mk("bob-laptop", "bob", "idp-3"),
		mk("bob-phone", "bob", ""),
	}
	cookies := map[string][]*http.Cookie{}
	for i, s := range sessions {
		st := a
		if i%2 == 1 {
			st = b
		}
		cookies[s.ID] = save(t, st, s, nil)
	}

	tests := []struct {
		name      string
		del       func() (int, error)
		wantN     int
		wantGone  []string
		wantStays []string
	}{
		{
			name:      "idp session on other replica",
			del:       func() (int, error) { return b.DeleteByIDPSession(ctx, "idp-2") },
			wantN:     2,
			wantGone:  []string{"alice-phone", "alice-tablet"},
			wantStays: []string{"alice-laptop", "bob-laptop", "bob-phone"},
		},
		{
			name:      "subject",
			del:       func() (int, error) { return a.DeleteBySubject(ctx, "alice") },
			wantN:     1, // the other two are already gone
			wantGone:  []string{"alice-laptop"},
			wantStays: []string{"bob-laptop", "bob-phone"},
		},
		{
			name:     "subject without sid",
			del:      func() (int, error) { return b.DeleteBySubject(ctx, "bob") },
			wantN:    2,
			wantGone: []string{"bob-laptop", "bob-phone"},
		},
		{
			name: "unknown",
			del:  func() (int, error) { return a.DeleteBySubject(ctx, "carol") },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := tt.del()
			if n != tt.wantN || err != nil {
				t.Errorf("delete = %d, %v; want %d, nil", n, err, tt.wantN)
			}
			for _, id := range tt.wantGone {
				if _, err := load(a, cookies[id]); !errors.Is(err, session.ErrNotFound) {
					t.Errorf("Load(%s) = %v, want ErrNotFound", id, err)
				}
			}
			for _, id := range tt.wantStays {
				if _, err := load(b, cookies[id]); err != nil {
					t.Errorf("Load(%s) = %v, want the session", id, err)
				}
			}
		})
	}
	if _, err := a.DeleteBySubject(ctx, ""); err == nil {
		t.Error("DeleteBySubject(\"\") = nil error, want an error")
	}
}

func TestIndexDropsExpiredEntries(t *testing.T) {
	srv := redistest.Start(t)
	raw := rawClient(t, srv)
	clk := newClock()
	st := newStore(t, storeClient(t, srv), clk.Now)
	ctx := context.Background()

	old := testSession("old", clk.Now())
	old.ExpiresAt = clk.Now().Add(time.Minute)
	save(t, st, old, nil)
	clk.Add(2 * time.Minute)
	fresh := testSession("fresh", clk.Now())
	fresh.Subject = old.Subject
	save(t, st, fresh, nil)

	got := raw.ZRange(ctx, st.subjectKey(old.Subject), 0, -1).Val()
	if len(got) != 1 || got[0] != "fresh" {
		t.Errorf("subject index = %q, want [fresh]", got)
	}
}

func TestNewErrors(t *testing.T) {
	srv := redistest.Start(t)
	c := storeClient(t, srv)
	tests := []struct {
		name string
		o    Options
		want string
	}{
		{name: "no client", o: Options{Keys: testKeys}, want: "Client is required"},
		{name: "no keys", o: Options{Client: c}, want: "no sealing keys"},
		{name: "short key", o: Options{Client: c, Keys: [][]byte{{1, 2}}}, want: "32 bytes"},
		{name: "bad cookie", o: Options{Client: c, Keys: testKeys, Cookie: session.CookieOptions{Name: "a b"}}, want: "not an RFC 6265 token"},
		{name: "cache without feed", o: Options{Client: c, Keys: testKeys, CacheTTL: time.Second}, want: "CacheTTL needs Options.Feed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestSaveErrors(t *testing.T) {
	srv := redistest.Start(t)
	clk := newClock()
	st := newStore(t, storeClient(t, srv), clk.Now)
	noExpiry := testSession("x", clk.Now())
	noExpiry.ExpiresAt = time.Time{}
	tests := []struct {
		name string
		s    *session.Session
	}{
		{name: "nil"},
		{name: "no ExpiresAt", s: noExpiry},
		{name: "empty ID", s: testSession("", clk.Now())},
		{name: "brace in ID", s: testSession("a}b", clk.Now())},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			if err := st.Save(rec, request(nil), tt.s); err == nil {
				t.Error("Save = nil error, want an error")
			}
			if h := rec.Header().Get("Set-Cookie"); h != "" {
				t.Errorf("Header(%q) = %q, want empty", "Set-Cookie", h)
			}
		})
	}
}

func TestRedisOutage(t *testing.T) {
	srv := redistest.Start(t, "--appendonly", "yes", "--appendfsync", "always")
	clk := newClock()
	var logs syncBuffer
	c := storeClient(t, srv)
	st, err := New(Options{Client: c, Keys: testKeys, Now: clk.Now, Logger: newLogger(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	s := testSession("outage", clk.Now())
	cookies := save(t, st, s, nil)
	ctx := context.Background()

	srv.Kill()

	start := time.Now()
	got, err := load(st, cookies)
	t.Logf("Load with Redis down answered in %v", time.Since(start).Round(time.Microsecond))
	if err == nil || errors.Is(err, session.ErrNotFound) {
		t.Fatalf("Load with Redis down = %v, %v; want a non-ErrNotFound error", got, err)
	}
	if !strings.HasPrefix(err.Error(), "redisstore: load session: ") {
		t.Errorf("Load error = %q, want prefix %q", err, "redisstore: load session: ")
	}
	if err := st.Ping(ctx); err == nil {
		t.Error("Ping with Redis down = nil, want an error")
	}
	next := *s
	next.AccessToken = "during-outage"
	if err := st.Save(httptest.NewRecorder(), request(cookies), &next); err == nil || errors.Is(err, session.ErrNotFound) {
		t.Errorf("Save with Redis down = %v, want a non-ErrNotFound error", err)
	}
	if _, ok, err := st.LockRefresh(ctx, s.ID, time.Second); ok || err == nil {
		t.Errorf("LockRefresh with Redis down = %v, %v; want false and an error", ok, err)
	}
	if _, err := st.ClaimJTI(ctx, "j", time.Second); err == nil {
		t.Error("ClaimJTI with Redis down = nil error, want an error")
	}
	// Delete still clears the cookie.
	rec := httptest.NewRecorder()
	if err := st.Delete(rec, request(cookies), s); err == nil {
		t.Error("Delete with Redis down = nil error, want an error")
	}
	if set := rec.Result().Cookies(); len(set) != 1 || set[0].MaxAge >= 0 {
		t.Errorf("Delete with Redis down set cookies %v, want authgate cleared", set)
	}

	// Redis comes back with its data (append-only file); the same Store
	// recovers without being recreated.
	srv.Restart()
	start = time.Now()
	redistest.Eventually(t, 15*time.Second, "Load after restart", func() bool {
		_, err := load(st, cookies)
		return err == nil
	})
	t.Logf("Load works again %v after the restart", time.Since(start).Round(time.Millisecond))
	got, err = load(st, cookies)
	if err != nil {
		t.Fatalf("Load after restart = %v", err)
	}
	sameSession(t, got, s)
	if err := st.Ping(ctx); err != nil {
		t.Errorf("Ping after restart = %v", err)
	}
	for _, secret := range []string{s.AccessToken, s.RefreshToken, cookies[0].Value} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("logs contain %q", secret)
		}
	}
}

// TestRedisHangs covers a Redis that accepts connections but never
// answers (overloaded, or a half-open link): Load fails with a system
// error after the read timeout instead of hanging the request.
func TestRedisHangs(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	})

	// A ticket the store will try to resolve.
	real := redistest.Start(t)
	clk := newClock()
	cookies := save(t, newStore(t, storeClient(t, real), clk.Now), testSession("hang", clk.Now()), nil)

	c, err := NewClient(ClientOptions{URL: "redis://" + l.Addr().String(), ReadTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	st := newStore(t, c, clk.Now)
	start := time.Now()
	got, err := load(st, cookies)
	t.Logf("Load against a silent Redis answered in %v", time.Since(start).Round(time.Millisecond))
	if err == nil || errors.Is(err, session.ErrNotFound) {
		t.Errorf("Load = %v, %v; want a non-ErrNotFound error", got, err)
	}
}
