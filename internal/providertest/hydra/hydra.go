// Package hydra runs Ory Hydra v2 (built by build.sh with SQLite, outside
// authgate's module) as a child process for authgate's tests, with an
// in-memory database and a small login, consent and logout app that
// accepts everything at once through Hydra's admin API.
//
// Hydra signs in one user, "alice", remembered for an hour, and grants
// every scope the client asked for (offline_access included, so refresh
// tokens are issued). Hydra's refresh tokens rotate on every use, and a
// spent one redeemed again revokes the whole chain: Introspect tells a
// test whether that happened.
package hydra

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
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

// Version is the Hydra release build.sh builds.
const Version = "v2.3.0"

// Options configures Start. The zero value runs Hydra's defaults with
// opaque access tokens, PKCE optional and public subject identifiers only.
type Options struct {
	// AccessTokenTTL is the access tokens' lifetime; zero means 10 minutes.
	AccessTokenTTL time.Duration
	// EnforcePKCE makes Hydra refuse authorization requests without a
	// code_challenge for every client (OAUTH2_PKCE_ENFORCED).
	EnforcePKCE bool
	// Pairwise lets clients ask for pairwise subject identifiers.
	Pairwise bool
}

// Client is one client registration (Hydra's admin API field names).
type Client struct {
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
	// Pairwise gives the client pairwise subject identifiers (needs
	// Options.Pairwise).
	Pairwise bool
	// JWTAccessTokens gives the client JWT access tokens instead of opaque
	// ones (access_token_strategy).
	JWTAccessTokens bool
	// JWKS is the client's public key set, for private_key_jwt.
	JWKS json.RawMessage
}

// Hydra is a running Hydra with its login and consent app.
type Hydra struct {
	// Issuer is the issuer URL (the public port), without a trailing slash.
	Issuer string
	// Admin is the admin API's base URL.
	Admin string

	t    testing.TB
	logs *providertest.SyncBuffer
	app  *httptest.Server
}

// IDTokenKeySet and AccessTokenKeySet are the JSON Web Key Sets Hydra
// signs ID tokens and JWT access tokens with.
const (
	IDTokenKeySet     = "hydra.openid.id-token"
	AccessTokenKeySet = "hydra.jwt.access-token"
)

// Start builds Hydra (locally, once) and starts `hydra serve all --dev`
// with DSN=memory on free loopback ports. On CI the binary must already be
// built (.ci/test does it); a missing one fails the test. The process ends
// with the test.
func Start(t testing.TB, o Options) *Hydra {
	t.Helper()
	_, self, _, _ := runtime.Caller(0)
	bin := providertest.Tool(t, "AUTHGATE_HYDRA", filepath.Join(filepath.Dir(self), "build.sh"))

	h := &Hydra{t: t, logs: &providertest.SyncBuffer{}}
	h.app = httptest.NewServer(http.HandlerFunc(h.serveApp))
	t.Cleanup(h.app.Close)

	ttl := o.AccessTokenTTL
	if ttl == 0 {
		ttl = 10 * time.Minute
	}
	for attempt := 0; ; attempt++ {
		pub, admin := providertest.FreePort(t), providertest.FreePort(t)
		h.Issuer = "http://127.0.0.1:" + strconv.Itoa(pub)
		h.Admin = "http://127.0.0.1:" + strconv.Itoa(admin)
		env := []string{
			"DSN=memory",
			"LOG_LEVEL=info",
			"LOG_LEAK_SENSITIVE_VALUES=false",
			"SERVE_PUBLIC_HOST=127.0.0.1",
			"SERVE_PUBLIC_PORT=" + strconv.Itoa(pub),
			"SERVE_ADMIN_HOST=127.0.0.1",
			"SERVE_ADMIN_PORT=" + strconv.Itoa(admin),
			"URLS_SELF_ISSUER=" + h.Issuer,
			"URLS_LOGIN=" + h.app.URL + "/login",
			"URLS_CONSENT=" + h.app.URL + "/consent",
			"URLS_LOGOUT=" + h.app.URL + "/logout",
			"URLS_POST_LOGOUT_REDIRECT=" + h.app.URL + "/logged-out",
			"SECRETS_SYSTEM=authgate-test-system-secret-0123456789",
			"TTL_ACCESS_TOKEN=" + ttl.String(),
			"TTL_ID_TOKEN=1h",
			"TTL_REFRESH_TOKEN=24h",
			"OAUTH2_PKCE_ENFORCED=" + strconv.FormatBool(o.EnforcePKCE),
			"OAUTH2_PKCE_ENFORCED_FOR_PUBLIC_CLIENTS=true",
			"SQA_OPT_OUT=true",
		}
		if o.Pairwise {
			env = append(env,
				"OIDC_SUBJECT_IDENTIFIERS_SUPPORTED_TYPES=public,pairwise",
				"OIDC_SUBJECT_IDENTIFIERS_PAIRWISE_SALT=authgate-test-pairwise-salt")
		}
		err := h.run(bin, env)
		if err == nil {
			// Hydra would generate 4096-bit RSA keys on first use, about
			// five seconds each on a small machine: give it 2048-bit ones.
			h.putKey(IDTokenKeySet, "initial-id-token-key")
			h.putKey(AccessTokenKeySet, "initial-access-token-key")
			return h
		}
		if attempt == 2 || !strings.Contains(h.logs.String(), "address already in use") {
			t.Fatalf("start hydra: %v\n%s", err, h.logs.String())
		}
	}
}

// run starts the process and waits until both ports are ready.
func (h *Hydra) run(bin string, env []string) error {
	cmd := exec.Command(bin, "serve", "all", "--dev", "--sqa-opt-out")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = h.logs, h.logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("run hydra: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	h.t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if h.t.Failed() {
			h.t.Logf("hydra output (last lines):\n%s", tail(h.logs.String(), 60))
		}
	})
	deadline := time.After(30 * time.Second)
	for {
		if ready(h.Issuer+"/health/ready") && ready(h.Admin+"/health/ready") {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("hydra exited")
		case <-deadline:
			_ = cmd.Process.Kill()
			return fmt.Errorf("hydra not ready within 30s")
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func ready(u string) bool {
	resp, err := http.Get(u)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// Logs returns Hydra's output so far.
func (h *Hydra) Logs() string { return h.logs.String() }

// Register creates a client and returns the client_id Hydra gave it.
func (h *Hydra) Register(c Client) string {
	h.t.Helper()
	method := c.AuthMethod
	if method == "" {
		method = "client_secret_basic"
	}
	body := map[string]any{
		"grant_types":                []string{"authorization_code", "refresh_token"},
		"response_types":             []string{"code"},
		"scope":                      "openid offline_access email profile groups",
		"redirect_uris":              c.RedirectURIs,
		"post_logout_redirect_uris":  c.PostLogoutRedirectURIs,
		"token_endpoint_auth_method": method,
	}
	if c.Secret != "" {
		body["client_secret"] = c.Secret
	}
	if c.BackchannelLogoutURI != "" {
		body["backchannel_logout_uri"] = c.BackchannelLogoutURI
		body["backchannel_logout_session_required"] = true
	}
	if c.Pairwise {
		body["subject_type"] = "pairwise"
	}
	if c.JWTAccessTokens {
		body["access_token_strategy"] = "jwt"
	}
	if c.JWKS != nil {
		body["jwks"] = c.JWKS
		body["token_endpoint_auth_signing_alg"] = "RS256"
	}
	var out struct {
		ClientID string `json:"client_id"`
	}
	h.adminJSON(http.MethodPost, "/admin/clients", body, &out)
	return out.ClientID
}

// RotateKey adds a new RS256 key to the ID token key set; Hydra signs with
// the newest key from then on and keeps publishing the older ones. It
// returns the new key's kid.
func (h *Hydra) RotateKey() string {
	h.t.Helper()
	kid := fmt.Sprintf("rotated-%d", time.Now().UnixNano())
	h.putKey(IDTokenKeySet, kid)
	return kid
}

// putKey adds a new 2048-bit RSA signing key kid to set.
func (h *Hydra) putKey(set, kid string) {
	h.t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		h.t.Fatal(err)
	}
	k.Precompute()
	b64 := func(i *big.Int) string { return base64.RawURLEncoding.EncodeToString(i.Bytes()) }
	jwk := map[string]string{
		"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
		"n": b64(k.N), "e": b64(big.NewInt(int64(k.E))), "d": b64(k.D),
		"p": b64(k.Primes[0]), "q": b64(k.Primes[1]),
		"dp": b64(k.Precomputed.Dp), "dq": b64(k.Precomputed.Dq), "qi": b64(k.Precomputed.Qinv),
	}
	h.adminJSON(http.MethodPut, "/admin/keys/"+set+"/"+kid, jwk, nil)
}

// Introspection is Hydra's answer about a token (RFC 7662).
type Introspection struct {
	Active    bool   `json:"active"`
	Sub       string `json:"sub"`
	ClientID  string `json:"client_id"`
	TokenUse  string `json:"token_use"`
	TokenType string `json:"token_type"`
}

// Introspect asks Hydra's admin introspection endpoint about token.
func (h *Hydra) Introspect(token string) Introspection {
	h.t.Helper()
	resp, err := http.PostForm(h.Admin+"/admin/oauth2/introspect", url.Values{"token": {token}})
	if err != nil {
		h.t.Fatalf("introspect: %v", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out Introspection
	if err := json.Unmarshal(raw, &out); err != nil || resp.StatusCode != http.StatusOK {
		h.t.Fatalf("introspect: %d %s", resp.StatusCode, raw)
	}
	return out
}

// adminJSON calls the admin API and decodes its answer into out.
func (h *Hydra) adminJSON(method, path string, body, out any) {
	h.t.Helper()
	if err := h.admin(method, path, body, out); err != nil {
		h.t.Fatal(err)
	}
}

func (h *Hydra) admin(method, path string, body, out any) error {
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, h.Admin+path, r)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%s %s: decode: %w", method, path, err)
		}
	}
	return nil
}

// User is the one user's claims, put into Hydra's ID tokens and userinfo.
var User = map[string]any{
	"email":              "alice@example.com",
	"email_verified":     true,
	"name":               "Alice Example",
	"preferred_username": "alice",
	"groups":             []string{"admins", "staff"},
}

// serveApp is the login, consent and logout app: it accepts every
// challenge at once and sends the browser on to where Hydra says.
func (h *Hydra) serveApp(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var (
		redirect struct {
			RedirectTo string `json:"redirect_to"`
		}
		err error
	)
	switch r.URL.Path {
	case "/login":
		ch := url.QueryEscape(q.Get("login_challenge"))
		err = h.admin(http.MethodPut, "/admin/oauth2/auth/requests/login/accept?login_challenge="+ch,
			map[string]any{"subject": "alice", "remember": true, "remember_for": 3600}, &redirect)
	case "/consent":
		ch := url.QueryEscape(q.Get("consent_challenge"))
		var req struct {
			RequestedScope    []string `json:"requested_scope"`
			RequestedAudience []string `json:"requested_access_token_audience"`
		}
		if err = h.admin(http.MethodGet, "/admin/oauth2/auth/requests/consent?consent_challenge="+ch, nil, &req); err != nil {
			break
		}
		err = h.admin(http.MethodPut, "/admin/oauth2/auth/requests/consent/accept?consent_challenge="+ch, map[string]any{
			"grant_scope":                 req.RequestedScope,
			"grant_access_token_audience": req.RequestedAudience,
			"remember":                    true,
			"remember_for":                3600,
			"session":                     map[string]any{"id_token": User, "access_token": map[string]any{"email": User["email"]}},
		}, &redirect)
	case "/logout":
		ch := url.QueryEscape(q.Get("logout_challenge"))
		err = h.admin(http.MethodPut, "/admin/oauth2/auth/requests/logout/accept?logout_challenge="+ch, nil, &redirect)
	case "/logged-out":
		fmt.Fprintln(w, "logged out at hydra")
		return
	default:
		http.NotFound(w, r)
		return
	}
	if err != nil {
		fmt.Fprintf(h.logs, "login app: %v\n", err)
		http.Error(w, "login app: "+err.Error(), http.StatusBadGateway)
		return
	}
	http.Redirect(w, r, redirect.RedirectTo, http.StatusFound)
}

func tail(s string, n int) string {
	sc := bufio.NewScanner(strings.NewReader(s))
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
