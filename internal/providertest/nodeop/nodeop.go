// Package nodeop runs node-oidc-provider (the npm package oidc-provider,
// the OpenID Certified provider library many products are built on) as a
// child process for authgate's tests. The provider script is
// testdata/provider.mjs; install.sh installs the package into a cache
// directory outside authgate's repository.
//
// The provider has one user, "alice", and accepts every login and consent
// at once. Its configuration is node-oidc-provider's defaults except where
// a test needs otherwise: notably it keeps the library's default that
// offline_access is granted only when the authorization request carries
// prompt=consent (OpenID Connect Core 11).
package nodeop

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/providertest"
)

// Version is the node-oidc-provider release install.sh installs.
const Version = "9.13.3"

// minNode is the oldest Node.js release oidc-provider 9 supports.
var minNode = [3]int{20, 19, 0}

// Options configures Start. The zero value runs a provider that offers
// every client authentication method and signs with RS256, ES256, PS256
// and EdDSA keys (each client picks its algorithm).
type Options struct {
	// AccessTokenTTL is the access tokens' lifetime; zero means 10 minutes.
	AccessTokenTTL time.Duration
	// ClientAuthMethods are the token endpoint authentication methods the
	// provider offers (and advertises); nil means client_secret_basic,
	// client_secret_post, private_key_jwt and none.
	ClientAuthMethods []string
}

// Client is one client registration.
type Client struct {
	ID string
	// Secret is the client secret; empty for a public client or one that
	// authenticates with private_key_jwt.
	Secret string
	// AuthMethod is token_endpoint_auth_method; empty means
	// client_secret_basic.
	AuthMethod             string
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	// BackchannelLogoutURI, when set, receives logout tokens.
	BackchannelLogoutURI string
	// IDTokenAlg is id_token_signed_response_alg; empty means RS256.
	IDTokenAlg string
	// Pairwise gives the client pairwise subject identifiers.
	Pairwise bool
	// RequirePKCE makes the provider refuse authorization requests of this
	// client without a code_challenge (public clients always need one).
	RequirePKCE bool
	// JWTAccessTokens gives the client JWT access tokens, audience
	// Provider.Resource, instead of opaque ones.
	JWTAccessTokens bool
	// JWKS is the client's public key set, for private_key_jwt.
	JWKS json.RawMessage
}

// Provider is a running node-oidc-provider.
type Provider struct {
	// Issuer is the issuer URL, without a trailing slash.
	Issuer string
	// Resource is the audience of JWT access tokens.
	Resource string

	t             testing.TB
	logs          *providertest.SyncBuffer
	introspector  Client
	introspectSet func(*http.Request, url.Values)
}

// Start installs (locally, if needed) and starts the provider on a free
// loopback port. It fails the test if Node.js is missing or too old, or on
// CI if the package is not installed. The process ends with the test.
func Start(t testing.TB, o Options) *Provider {
	t.Helper()
	node := nodeBinary(t)
	_, self, _, _ := runtime.Caller(0)
	pkgDir := filepath.Dir(self)
	dir := providertest.Tool(t, "AUTHGATE_NODEOP_DIR", filepath.Join(pkgDir, "install.sh"))

	// ESM resolves packages next to the script, not through NODE_PATH: run
	// a copy of the script beside a link to the cached node_modules.
	work := t.TempDir()
	if err := os.Symlink(filepath.Join(dir, "node_modules"), filepath.Join(work, "node_modules")); err != nil {
		t.Fatal(err)
	}
	script, err := os.ReadFile(filepath.Join(pkgDir, "testdata", "provider.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "provider.mjs"), script, 0o600); err != nil {
		t.Fatal(err)
	}

	p := &Provider{t: t, logs: &providertest.SyncBuffer{}}
	methods := o.ClientAuthMethods
	if methods == nil {
		methods = []string{"client_secret_basic", "client_secret_post", "private_key_jwt", "none"}
	}
	// The test's own client for introspection authenticates with a secret
	// in whichever way the provider allows.
	p.introspector = Client{ID: "test-introspector", Secret: "introspector-secret", AuthMethod: "client_secret_basic"}
	p.introspectSet = func(r *http.Request, _ url.Values) { r.SetBasicAuth(p.introspector.ID, p.introspector.Secret) }
	if !contains(methods, "client_secret_basic") {
		p.introspector.AuthMethod = "client_secret_post"
		p.introspectSet = func(_ *http.Request, form url.Values) {
			form.Set("client_id", p.introspector.ID)
			form.Set("client_secret", p.introspector.Secret)
		}
	}
	ttl := o.AccessTokenTTL
	if ttl == 0 {
		ttl = 10 * time.Minute
	}

	for attempt := 0; ; attempt++ {
		port := providertest.FreePort(t)
		p.Issuer = "http://127.0.0.1:" + strconv.Itoa(port)
		p.Resource = p.Issuer + "/api"
		cfg := map[string]any{
			"port":              port,
			"issuer":            p.Issuer,
			"resource":          p.Resource,
			"accessTokenTTL":    int(ttl.Seconds()),
			"clientAuthMethods": methods,
			"clients":           []any{p.introspector.metadata()},
		}
		b, _ := json.Marshal(cfg)
		cfgFile := filepath.Join(work, "config.json")
		if err := os.WriteFile(cfgFile, b, 0o600); err != nil {
			t.Fatal(err)
		}
		err := p.run(node, work, cfgFile)
		if err == nil {
			return p
		}
		if attempt == 2 || !strings.Contains(p.logs.String(), "EADDRINUSE") {
			t.Fatalf("start node-oidc-provider: %v\n%s", err, p.logs.String())
		}
	}
}

// run starts the process and waits for its "listening" line.
func (p *Provider) run(node, dir, cfgFile string) error {
	cmd := exec.Command(node, "provider.mjs", cfgFile)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "NODE_ENV=test")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = p.logs
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("run node: %w", err)
	}
	exited := make(chan struct{})
	listening := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		signalled := false
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(p.logs, line)
			if !signalled && strings.HasPrefix(line, "listening ") {
				signalled = true
				close(listening)
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	go func() { _ = cmd.Wait(); close(exited) }()
	p.t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if p.t.Failed() {
			p.t.Logf("node-oidc-provider output:\n%s", p.logs.String())
		}
	})
	select {
	case <-listening:
		return nil
	case <-exited:
		return fmt.Errorf("node-oidc-provider exited")
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		return fmt.Errorf("node-oidc-provider did not listen within 20s")
	}
}

// Logs returns the provider's output so far.
func (p *Provider) Logs() string { return p.logs.String() }

// Register adds a client. Registering rebuilds the provider in place;
// sessions, grants and tokens survive.
func (p *Provider) Register(c Client) {
	p.t.Helper()
	p.post("/__test/clients", c.metadata(), nil)
}

// RotateKey adds a new signing key for alg, which the provider signs with
// from now on (its older keys stay published), and returns its kid.
func (p *Provider) RotateKey(alg string) string {
	p.t.Helper()
	var out struct{ Kid string }
	p.post("/__test/rotate", map[string]string{"alg": alg}, &out)
	return out.Kid
}

// Introspection is the provider's answer about a token (RFC 7662).
type Introspection struct {
	Active    bool   `json:"active"`
	Sub       string `json:"sub"`
	ClientID  string `json:"client_id"`
	TokenType string `json:"token_type"`
}

// Introspect asks the provider's introspection endpoint about token.
func (p *Provider) Introspect(token string) Introspection {
	p.t.Helper()
	form := url.Values{"token": {token}}
	req, _ := http.NewRequest(http.MethodPost, p.Issuer+"/token/introspection", nil)
	p.introspectSet(req, form)
	req.Body = io.NopCloser(strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatalf("introspect: %v", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out Introspection
	if err := json.Unmarshal(raw, &out); err != nil || resp.StatusCode != http.StatusOK {
		p.t.Fatalf("introspect: %d %s", resp.StatusCode, raw)
	}
	return out
}

func (p *Provider) post(path string, body, out any) {
	p.t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post(p.Issuer+path, "application/json", strings.NewReader(string(b)))
	if err != nil {
		p.t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		p.t.Fatalf("POST %s: %d %s", path, resp.StatusCode, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			p.t.Fatalf("POST %s: %v", path, err)
		}
	}
}

// metadata is the client's registration in node-oidc-provider's terms.
func (c Client) metadata() map[string]any {
	m := map[string]any{
		"client_id":     c.ID,
		"redirect_uris": c.RedirectURIs,
		"grant_types":   []string{"authorization_code", "refresh_token"},
		"scope":         "openid offline_access email profile groups",
	}
	if c.RedirectURIs == nil {
		m["redirect_uris"] = []string{"http://127.0.0.1/unused"}
	}
	if c.Secret != "" {
		m["client_secret"] = c.Secret
	}
	method := c.AuthMethod
	if method == "" {
		method = "client_secret_basic"
	}
	m["token_endpoint_auth_method"] = method
	if c.PostLogoutRedirectURIs != nil {
		m["post_logout_redirect_uris"] = c.PostLogoutRedirectURIs
	}
	if c.BackchannelLogoutURI != "" {
		m["backchannel_logout_uri"] = c.BackchannelLogoutURI
		m["backchannel_logout_session_required"] = true
	}
	if c.IDTokenAlg != "" {
		m["id_token_signed_response_alg"] = c.IDTokenAlg
	}
	if c.Pairwise {
		m["subject_type"] = "pairwise"
	}
	if c.RequirePKCE {
		m["require_pkce"] = true
	}
	if c.JWTAccessTokens {
		m["jwt_access_token"] = true
	}
	if c.JWKS != nil {
		m["jwks"] = c.JWKS
	}
	return m
}

// nodeBinary finds node and checks its version.
func nodeBinary(t testing.TB) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node not found (apt-get install -y nodejs; Node.js >= 20.19): %v", err)
	}
	out, err := exec.Command(node, "--version").Output()
	if err != nil {
		t.Fatalf("node --version: %v", err)
	}
	v := strings.TrimPrefix(strings.TrimSpace(string(out)), "v")
	var got [3]int
	for i, part := range strings.SplitN(v, ".", 3) {
		got[i], _ = strconv.Atoi(part)
	}
	for i := range got {
		if got[i] != minNode[i] {
			if got[i] < minNode[i] {
				t.Fatalf("node %s is too old: oidc-provider %s needs >= %d.%d", v, Version, minNode[0], minNode[1])
			}
			break
		}
	}
	return node
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
