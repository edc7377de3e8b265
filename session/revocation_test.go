package session

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"
)

func TestRevocationListRevoked(t *testing.T) {
	clk := newClock()
	now := clk.Now()
	until := now.Add(24 * time.Hour)
	sess := &Session{ID: "sid-1", IDPSessionID: "idp-1", Subject: "alice", IssuedAt: now.Add(-time.Hour)}
	tests := []struct {
		name string
		rev  Revocation
		want bool
	}{
		{name: "session id", rev: Revocation{SessionID: "sid-1", Until: until}, want: true},
		{name: "other session id", rev: Revocation{SessionID: "sid-2", Until: until}},
		{name: "idp session id", rev: Revocation{IDPSessionID: "idp-1", Until: until}, want: true},
		{name: "other idp session id", rev: Revocation{IDPSessionID: "idp-2", Until: until}},
		{name: "session id issued before login", rev: Revocation{SessionID: "sid-1", IssuedBefore: now.Add(-2 * time.Hour), Until: until}},
		{name: "session id issued after login", rev: Revocation{SessionID: "sid-1", IssuedBefore: now, Until: until}, want: true},
		{name: "idp session id issued before login", rev: Revocation{IDPSessionID: "idp-1", IssuedBefore: now.Add(-2 * time.Hour), Until: until}},
		{name: "subject logged out after login", rev: Revocation{Subject: "alice", IssuedBefore: now, Until: until}, want: true},
		{name: "subject logged out at login instant", rev: Revocation{Subject: "alice", IssuedBefore: sess.IssuedAt, Until: until}, want: true},
		{name: "subject logged out before login", rev: Revocation{Subject: "alice", IssuedBefore: now.Add(-2 * time.Hour), Until: until}},
		{name: "subject with zero IssuedBefore", rev: Revocation{Subject: "alice", Until: until}},
		{name: "other subject", rev: Revocation{Subject: "bob", IssuedBefore: now, Until: until}},
		{name: "any identifier matches", rev: Revocation{SessionID: "nope", IDPSessionID: "idp-1", Subject: "bob", Until: until}, want: true},
		{name: "until already passed", rev: Revocation{SessionID: "sid-1", Until: now}},
		{name: "zero until", rev: Revocation{SessionID: "sid-1"}},
		{name: "no identifier", rev: Revocation{IssuedBefore: now, Until: until}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := NewRevocationList(clk.Now)
			l.Add(tt.rev)
			if got := l.Revoked(sess); got != tt.want {
				t.Errorf("Revoked(%v) after Add(%+v) = %v, want %v", sess, tt.rev, got, tt.want)
			}
			// A session with empty identifiers never matches an
			// empty key.
			if l.Revoked(&Session{IssuedAt: sess.IssuedAt}) {
				t.Errorf("Revoked(empty session) = true, want false")
			}
		})
	}
}

func TestRevocationListNil(t *testing.T) {
	l := NewRevocationList(nil)
	l.Add(Revocation{SessionID: "a", Until: time.Now().Add(time.Hour)})
	if l.Revoked(nil) {
		t.Errorf("Revoked(nil) = true, want false")
	}
	if !l.Revoked(&Session{ID: "a"}) {
		t.Errorf("Revoked with the real clock = false, want true")
	}
}

func TestRevocationListExpiry(t *testing.T) {
	clk := newClock()
	l := NewRevocationList(clk.Now)
	sess := &Session{ID: "a", Subject: "alice", IssuedAt: clk.Now()}
	l.Add(Revocation{SessionID: "a", Until: clk.Now().Add(time.Hour)})
	l.Add(Revocation{Subject: "alice", IssuedBefore: clk.Now(), Until: clk.Now().Add(2 * time.Hour)})
	if got := l.Len(); got != 2 {
		t.Errorf("Len() = %d, want 2", got)
	}

	clk.Advance(time.Hour)
	if !l.Revoked(sess) {
		t.Errorf("Revoked() = false with the subject entry in force, want true")
	}
	if got := l.Len(); got != 1 {
		t.Errorf("Len() after the session entry's Until = %d, want 1", got)
	}

	clk.Advance(time.Hour)
	if l.Revoked(sess) {
		t.Errorf("Revoked() = true after every Until passed, want false")
	}
	if got := l.Len(); got != 0 {
		t.Errorf("Len() = %d, want 0", got)
	}
}

func TestRevocationListPurgesOnAdd(t *testing.T) {
	clk := newClock()
	l := NewRevocationList(clk.Now)
	for i := 0; i < 100; i++ {
		l.Add(Revocation{SessionID: fmt.Sprint(i), Until: clk.Now().Add(time.Minute)})
	}
	clk.Advance(purgeInterval + time.Minute)
	l.Add(Revocation{SessionID: "new", Until: clk.Now().Add(time.Minute)})
	l.mu.RLock()
	n := len(l.byID)
	l.mu.RUnlock()
	if n != 1 {
		t.Errorf("entries after Add past purgeInterval = %d, want 1 (expired ones swept)", n)
	}
}

func TestRevocationListMerge(t *testing.T) {
	clk := newClock()
	now := clk.Now()
	tests := []struct {
		name     string
		revs     []Revocation
		issuedAt time.Time
		advance  time.Duration
		want     bool
	}{
		{
			name: "later until wins",
			revs: []Revocation{
				{SessionID: "a", Until: now.Add(3 * time.Hour)},
				{SessionID: "a", Until: now.Add(time.Hour)},
			},
			advance: 2 * time.Hour, want: true,
		},
		{
			name: "broader subject IssuedBefore wins",
			revs: []Revocation{
				{Subject: "alice", IssuedBefore: now, Until: now.Add(time.Hour)},
				{Subject: "alice", IssuedBefore: now.Add(-time.Hour), Until: now.Add(time.Hour)},
			},
			issuedAt: now.Add(-time.Minute), want: true,
		},
		{
			name: "zero IssuedBefore for a session id means any time",
			revs: []Revocation{
				{SessionID: "a", Until: now.Add(time.Hour)},
				{SessionID: "a", IssuedBefore: now.Add(-time.Hour), Until: now.Add(time.Hour)},
			},
			issuedAt: now, want: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &clock{t: now}
			l := NewRevocationList(c.Now)
			for _, r := range tt.revs {
				l.Add(r)
			}
			c.Advance(tt.advance)
			s := &Session{ID: "a", Subject: "alice", IssuedAt: tt.issuedAt}
			if got := l.Revoked(s); got != tt.want {
				t.Errorf("Revoked() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRevocationListConcurrent(t *testing.T) {
	l := NewRevocationList(nil)
	until := time.Now().Add(time.Hour)
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				l.Add(Revocation{SessionID: fmt.Sprintf("%d-%d", w, i), Subject: "s", IssuedBefore: time.Now(), Until: until})
			}
		}()
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				l.Revoked(&Session{ID: fmt.Sprintf("%d-%d", w, i), Subject: "x"})
				_ = l.Len()
			}
		}()
	}
	wg.Wait()
	if got := l.Len(); got != 4*200+1 {
		t.Errorf("Len() = %d, want %d", got, 4*200+1)
	}
	for w := 0; w < 4; w++ {
		if !l.Revoked(&Session{ID: fmt.Sprintf("%d-199", w)}) {
			t.Errorf("Revoked(%d-199) = false after concurrent Adds, want true", w)
		}
	}
}

func TestRevokedDoesNotAllocate(t *testing.T) {
	clk := newClock()
	l := NewRevocationList(clk.Now)
	l.Add(Revocation{SessionID: "a", IDPSessionID: "b", Subject: "c", IssuedBefore: clk.Now(), Until: clk.Now().Add(time.Hour)})
	s := &Session{ID: "x", IDPSessionID: "y", Subject: "z"}
	if n := testing.AllocsPerRun(100, func() { l.Revoked(s) }); n != 0 {
		t.Errorf("Revoked allocates %v times per call, want 0", n)
	}
}

func BenchmarkRevoked(b *testing.B) {
	l := NewRevocationList(nil)
	until := time.Now().Add(time.Hour)
	for i := 0; i < 10000; i++ {
		l.Add(Revocation{SessionID: fmt.Sprint(i), Subject: fmt.Sprint("u", i), IssuedBefore: time.Now(), Until: until})
	}
	s := &Session{ID: "not-revoked", IDPSessionID: "idp", Subject: "someone", IssuedAt: time.Now()}
	b.ReportAllocs()
	for b.Loop() {
		if l.Revoked(s) {
			b.Fatal("revoked")
		}
	}
}

// TestRevocationListCopiesKeys: a decoded Session's strings share the whole
// decoded cookie, so a revocation must keep copies of them, not the cookie.
func TestRevocationListCopiesKeys(t *testing.T) {
	clk := newClock()
	l := NewRevocationList(clk.Now)
	cookie := strings.Repeat("x", 2048) + "sid-1" + "idp-1" + "sub-1"
	id, idp, sub := cookie[2048:2053], cookie[2053:2058], cookie[2058:]
	l.Add(Revocation{SessionID: id, IDPSessionID: idp, Subject: sub, Until: clk.Now().Add(time.Minute)})
	base := uintptr(unsafe.Pointer(unsafe.StringData(cookie)))
	for name, m := range map[string]map[string]revEntry{"byID": l.byID, "byIDP": l.byIDP, "bySubject": l.bySubject} {
		if len(m) != 1 {
			t.Fatalf("%s holds %d entries, want 1", name, len(m))
		}
		for k := range m {
			p := uintptr(unsafe.Pointer(unsafe.StringData(k)))
			if p >= base && p < base+uintptr(len(cookie)) {
				t.Errorf("%s key %q points into the caller's string, keeping all %d bytes alive", name, k, len(cookie))
			}
		}
	}
	if !l.Revoked(&Session{ID: "sid-1", IssuedAt: clk.Now().Add(-time.Second)}) {
		t.Error("the copied key does not match")
	}
}
