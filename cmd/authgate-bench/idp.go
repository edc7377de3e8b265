package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/authgate/authgate/internal/demoidp"

	"github.com/authgate/authgate/cmd/authgate-bench/internal/benchnet"
)

// Demo IdP settings. The main IdP's access tokens live an hour, so that
// nothing refreshes in the cases that do not mean to. The refresh cases get
// an IdP of their own whose access tokens live refreshTokenLifetime:
// authgate refreshes a token at most half its lifetime before it expires
// (proxy.refreshSkew), so a session is due for a refresh again about a
// second after its last one.
const (
	benchClientID        = "authgate-bench"
	benchUser            = "alice"
	benchPassword        = "alice-pw"
	benchTokenLifetime   = time.Hour
	refreshTokenLifetime = 2 * time.Second
)

// benchIdP is the demo OpenID Provider, served in this process (it is not
// measured), with a count of requests per path.
type benchIdP struct {
	issuer string
	srv    *http.Server
	ln     net.Listener

	mu     sync.Mutex
	counts map[string]int64 // "METHOD /path" → requests
}

// startIdP serves demoidp on a loopback port with one confidential client
// allowed to redirect to each of redirectURIs. Access tokens live
// accessLifetime; ID tokens an hour.
func startIdP(secret string, redirectURIs []string, accessLifetime time.Duration) (*benchIdP, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen for the IdP: %w", err)
	}
	b := &benchIdP{issuer: "http://" + ln.Addr().String() + "/", ln: ln, counts: make(map[string]int64)}
	p, err := demoidp.New(demoidp.Options{
		Issuer:              b.issuer,
		Clients:             []demoidp.Client{{ID: benchClientID, Secret: secret, RedirectURIs: redirectURIs}},
		AccessTokenLifetime: accessLifetime,
		IDTokenLifetime:     benchTokenLifetime,
		Logger:              slog.New(slog.DiscardHandler),
	})
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("create the IdP: %w", err)
	}
	// The op package logs protocol errors to slog.Default(): keep them out
	// of the results on stdout.
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	b.srv = benchnet.NewServer(b.count(p.Handler()))
	go b.srv.Serve(ln)
	return b, nil
}

func (b *benchIdP) count(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Method + " " + r.URL.Path
		if r.URL.Path == idpTokenPath && r.Method == http.MethodPost {
			// The op handler parses the form again; ParseForm keeps it.
			if r.ParseForm() == nil {
				key += " " + r.PostForm.Get("grant_type")
			}
		}
		b.mu.Lock()
		b.counts[key]++
		b.mu.Unlock()
		next.ServeHTTP(w, r)
	})
}

// Paths of the demo IdP (zitadel op defaults) that the results name.
const (
	idpDiscoveryPath = "/.well-known/openid-configuration"
	idpKeysPath      = "/keys"
	idpTokenPath     = "/oauth/token"
	idpUserinfoPath  = "/userinfo"
)

// Keys of benchIdP.snapshot for the calls that matter to authgate.
const (
	idpDiscovery    = "GET " + idpDiscoveryPath
	idpKeys         = "GET " + idpKeysPath
	idpTokenCode    = "POST " + idpTokenPath + " authorization_code"
	idpTokenRefresh = "POST " + idpTokenPath + " refresh_token"
	idpUserinfoGET  = "GET " + idpUserinfoPath
	idpUserinfoPOST = "POST " + idpUserinfoPath
)

// snapshot returns the request counts so far; a nil IdP has none.
func (b *benchIdP) snapshot() map[string]int64 {
	if b == nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return maps.Clone(b.counts)
}

// since returns the calls in after that were not in before.
func since(before, after map[string]int64) map[string]int64 {
	d := make(map[string]int64)
	for k, v := range after {
		if n := v - before[k]; n != 0 {
			d[k] = n
		}
	}
	return d
}

func (b *benchIdP) close() {
	if b == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	b.srv.Shutdown(ctx)
}
