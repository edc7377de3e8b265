package redisstore

import (
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/redistest"
	"github.com/authgate/authgate/session"
)

// feedWait bounds how long a revocation may take to reach another replica
// in these tests (a delivery, or a reconnection after backoff).
const feedWait = 15 * time.Second

// replica is one authgate process's view: its own client, list and feed.
type replica struct {
	list *session.RevocationList
	rev  *Revocations
	done chan struct{}
	logs *syncBuffer
}

// startReplica runs a Revocations on a client for addr until the test
// ends, and waits until it is subscribed and loaded.
func startReplica(t *testing.T, addr string) *replica {
	t.Helper()
	c, err := NewClient(ClientOptions{URL: "redis://" + addr})
	if err != nil {
		t.Fatal(err)
	}
	r := &replica{list: session.NewRevocationList(nil), done: make(chan struct{}), logs: &syncBuffer{}}
	r.rev = NewRevocations(c, r.list, "", newLogger(r.logs))
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		r.rev.Run(ctx)
		close(r.done)
	}()
	t.Cleanup(func() {
		cancel()
		<-r.done
		c.Close()
	})
	redistest.Eventually(t, feedWait, "revocation feed healthy", r.rev.Healthy)
	return r
}

func TestRevocationsShared(t *testing.T) {
	srv := redistest.Start(t)
	a := startReplica(t, srv.Addr())
	b := startReplica(t, srv.Addr())
	ctx := context.Background()
	now := time.Now()
	until := now.Add(time.Hour)

	tests := []struct {
		name string
		rev  session.Revocation
		s    *session.Session
	}{
		{name: "session id", rev: session.Revocation{SessionID: "s1", Until: until},
			s: &session.Session{ID: "s1", IssuedAt: now}},
		{name: "idp session", rev: session.Revocation{IDPSessionID: "sid-1", Until: until},
			s: &session.Session{ID: "s2", IDPSessionID: "sid-1", IssuedAt: now}},
		{name: "subject issued before", rev: session.Revocation{Subject: "alice", IssuedBefore: now, Until: until},
			s: &session.Session{ID: "s3", Subject: "alice", IssuedAt: now.Add(-time.Minute)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if b.list.Revoked(tt.s) {
				t.Fatal("revoked before Publish")
			}
			if err := a.rev.Publish(ctx, tt.rev); err != nil {
				t.Fatalf("Publish = %v", err)
			}
			if !a.list.Revoked(tt.s) {
				t.Error("publisher's own list does not hold the revocation at once")
			}
			redistest.Eventually(t, feedWait, "other replica revokes", func() bool { return b.list.Revoked(tt.s) })
		})
	}
	later := &session.Session{ID: "s4", Subject: "alice", IssuedAt: now.Add(time.Minute)}
	if b.list.Revoked(later) {
		t.Error("a session issued after the subject's logout is revoked")
	}
}

func TestRevocationsLoadedAtStart(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	now := time.Now()
	pub := NewRevocations(storeClient(t, srv), session.NewRevocationList(nil), "", nil)
	revs := []session.Revocation{
		{SessionID: "gone", Until: now.Add(time.Hour)},
		{Subject: "bob", IssuedBefore: now, Until: now.Add(time.Hour)},
		{SessionID: "past", Until: now.Add(-time.Second)}, // not stored
		{Until: now.Add(time.Hour)},                       // no identifier: not stored
	}
	for _, r := range revs {
		if err := pub.Publish(ctx, r); err != nil {
			t.Fatalf("Publish = %v", err)
		}
	}
	if n := rawClient(t, srv).ZCard(ctx, DefaultPrefix+"revocations").Val(); n != 2 {
		t.Errorf("stored revocations = %d, want 2", n)
	}

	r := startReplica(t, srv.Addr())
	for _, s := range []*session.Session{{ID: "gone"}, {ID: "x", Subject: "bob", IssuedAt: now}} {
		if !r.list.Revoked(s) {
			t.Errorf("Revoked(%+v) = false after start, want true", s)
		}
	}
	if n := r.list.Len(); n != 2 {
		t.Errorf("list holds %d entries, want 2", n)
	}
}

func TestRevocationsSurviveOutage(t *testing.T) {
	srv := redistest.Start(t)
	p := startTCPProxy(t, srv.Addr())
	a := startReplica(t, srv.Addr())
	b := startReplica(t, p.addr()) // b reaches Redis through a link we can cut
	ctx := context.Background()
	now := time.Now()

	p.cut()
	redistest.Eventually(t, feedWait, "feed notices the cut", func() bool { return !b.rev.Healthy() })
	// Published while b cannot hear it.
	if err := a.rev.Publish(ctx, session.Revocation{SessionID: "during-outage", Until: now.Add(time.Hour)}); err != nil {
		t.Fatalf("Publish = %v", err)
	}
	if b.list.Revoked(&session.Session{ID: "during-outage"}) {
		t.Fatal("b learned the revocation through a cut link")
	}
	p.restore()
	redistest.Eventually(t, feedWait, "b reloads after reconnecting", func() bool {
		return b.list.Revoked(&session.Session{ID: "during-outage"})
	})
	redistest.Eventually(t, feedWait, "b healthy again", b.rev.Healthy)
	if err := a.rev.Publish(ctx, session.Revocation{SessionID: "after", Until: now.Add(time.Hour)}); err != nil {
		t.Fatalf("Publish = %v", err)
	}
	redistest.Eventually(t, feedWait, "b receives after reconnecting", func() bool {
		return b.list.Revoked(&session.Session{ID: "after"})
	})
	if !strings.Contains(b.logs.String(), "revocation feed interrupted") {
		t.Errorf("logs = %q, want a warning about the interruption", b.logs.String())
	}
}

func TestRevocationsIgnoreMalformed(t *testing.T) {
	srv := redistest.Start(t)
	r := startReplica(t, srv.Addr())
	ctx := context.Background()
	raw := rawClient(t, srv)
	if err := raw.Publish(ctx, DefaultPrefix+"revocations", "{not json").Err(); err != nil {
		t.Fatal(err)
	}
	pub := NewRevocations(raw, session.NewRevocationList(nil), "", nil)
	if err := pub.Publish(ctx, session.Revocation{SessionID: "ok", Until: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	redistest.Eventually(t, feedWait, "valid revocation after a malformed one", func() bool {
		return r.list.Revoked(&session.Session{ID: "ok"})
	})
	if !strings.Contains(r.logs.String(), "ignore malformed revocation message") {
		t.Errorf("logs = %q, want a warning about the malformed message", r.logs.String())
	}
}

func TestRevocationsRunStops(t *testing.T) {
	srv := redistest.Start(t)
	rev := NewRevocations(storeClient(t, srv), session.NewRevocationList(nil), "x:", nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { rev.Run(ctx); close(done) }()
	redistest.Eventually(t, feedWait, "healthy", rev.Healthy)
	cancel()
	select {
	case <-done:
	case <-time.After(feedWait):
		t.Fatal("Run did not return after its context ended")
	}
	if rev.Healthy() {
		t.Error("Healthy() = true after Run returned")
	}
}

func TestRevocationWireFormat(t *testing.T) {
	at := time.Date(2030, 1, 2, 3, 4, 5, 6, time.FixedZone("x", 3600))
	tests := []struct {
		name string
		rev  session.Revocation
		want string
	}{
		{name: "session", rev: session.Revocation{SessionID: "s", Until: at},
			want: `{"session_id":"s","until":"2030-01-02T02:04:05.000000006Z"}`},
		{name: "subject", rev: session.Revocation{Subject: "u", IDPSessionID: "i", IssuedBefore: at, Until: at},
			want: `{"idp_session_id":"i","sub":"u","issued_before":"2030-01-02T02:04:05.000000006Z","until":"2030-01-02T02:04:05.000000006Z"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := marshalRevocation(tt.rev)
			if err != nil || string(b) != tt.want {
				t.Fatalf("marshal = %s, %v; want %s", b, err, tt.want)
			}
			got, err := unmarshalRevocation(b)
			if err != nil || got.SessionID != tt.rev.SessionID || got.Subject != tt.rev.Subject ||
				got.IDPSessionID != tt.rev.IDPSessionID || !got.IssuedBefore.Equal(tt.rev.IssuedBefore) || !got.Until.Equal(tt.rev.Until) {
				t.Errorf("unmarshal = %+v, %v; want %+v", got, err, tt.rev)
			}
		})
	}
}

// tcpProxy forwards loopback connections to a Redis server and can cut
// them all, like a network partition between one replica and Redis.
type tcpProxy struct {
	l      net.Listener
	target string

	mu    sync.Mutex
	down  bool
	conns map[net.Conn]struct{}
}

func startTCPProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{l: l, target: target, conns: make(map[net.Conn]struct{})}
	go p.serve()
	t.Cleanup(func() {
		l.Close()
		p.cut()
	})
	return p
}

func (p *tcpProxy) addr() string { return p.l.Addr().String() }

func (p *tcpProxy) serve() {
	for {
		in, err := p.l.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		down := p.down
		p.mu.Unlock()
		if down {
			in.Close()
			continue
		}
		out, err := net.Dial("tcp", p.target)
		if err != nil {
			in.Close()
			continue
		}
		p.mu.Lock()
		p.conns[in], p.conns[out] = struct{}{}, struct{}{}
		p.mu.Unlock()
		go func() { io.Copy(out, in); out.Close() }()
		go func() { io.Copy(in, out); in.Close() }()
	}
}

// cut closes every forwarded connection and refuses new ones.
func (p *tcpProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

// restore forwards new connections again.
func (p *tcpProxy) restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
}

func TestPublishWithRedisDown(t *testing.T) {
	srv := redistest.Start(t)
	list := session.NewRevocationList(nil)
	rev := NewRevocations(storeClient(t, srv), list, "", nil)
	srv.Kill()
	s := &session.Session{ID: "local"}
	err := rev.Publish(context.Background(), session.Revocation{SessionID: s.ID, Until: time.Now().Add(time.Hour)})
	if err == nil {
		t.Error("Publish with Redis down = nil error, want an error")
	}
	if !list.Revoked(s) {
		t.Error("Publish with Redis down did not revoke locally")
	}
}
