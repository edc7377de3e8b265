package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/authgate/authgate/session/redisstore"
)

// checkTimeout bounds the whole of `authgate check`.
const checkTimeout = 30 * time.Second

// checkResult is one line of `authgate check`.
type checkResult struct {
	name string
	// err is the reason the check failed; nil is ok.
	err error
	// note qualifies an ok (what was found) or says why a check did not
	// apply; it never fails the run.
	note string
}

// discoveryDoc holds the discovery fields the checks read (OpenID Connect
// Discovery 1.0 section 3; RFC 8414 section 2).
type discoveryDoc struct {
	Issuer                     string   `json:"issuer"`
	AuthorizationEndpoint      string   `json:"authorization_endpoint"`
	TokenEndpoint              string   `json:"token_endpoint"`
	JWKSURI                    string   `json:"jwks_uri"`
	EndSessionEndpoint         string   `json:"end_session_endpoint"`
	BackchannelLogoutSupported bool     `json:"backchannel_logout_supported"`
	TokenEndpointAuthMethods   []string `json:"token_endpoint_auth_methods_supported"`
	CodeChallengeMethods       []string `json:"code_challenge_methods_supported"`
}

// runCheck is `authgate check`: the configuration as startup loads it, then
// the provider, Redis and the upstream, one line per check. It exits 0
// when every check passed, 1 otherwise. No line carries a secret: the
// configuration errors never do, and the others name URLs without
// credentials.
func runCheck(ctx context.Context, stdout io.Writer) int {
	cfg, err := loadConfig()
	if err != nil {
		for _, e := range unjoin(err) {
			fmt.Fprintf(stdout, "config: FAIL: %v\n", e)
		}
		return 1
	}
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	failed := false
	for _, r := range checkAll(ctx, cfg) {
		switch {
		case r.err != nil:
			failed = true
			fmt.Fprintf(stdout, "%s: FAIL: %v\n", r.name, r.err)
		case r.note != "":
			fmt.Fprintf(stdout, "%s: ok (%s)\n", r.name, r.note)
		default:
			fmt.Fprintf(stdout, "%s: ok\n", r.name)
		}
	}
	if failed {
		return 1
	}
	return 0
}

// checkAll runs every check against a valid cfg.
func checkAll(ctx context.Context, cfg *Config) []checkResult {
	results := []checkResult{{name: "config"}}
	add := func(name string, err error, note string) {
		results = append(results, checkResult{name: name, err: err, note: note})
	}

	add("scopes", checkScopes(cfg.Scopes), strings.Join(cfg.Scopes, " "))
	if cfg.TLSCertFile != "" {
		_, err := tls.LoadX509KeyPair(cfg.TLSCertFile, cfg.TLSKeyFile)
		add("tls", err, "")
	}

	oidcTLS, err := tlsClientConfig(cfg.OIDCCAFile)
	client := newHTTPClient(oidcTLS, cfg.OIDCTimeout)
	if err != nil {
		add("discovery", fmt.Errorf("AUTHGATE_OIDC_CA_FILE: %w", err), "")
	} else {
		doc, err := fetchDiscovery(ctx, client, cfg.IssuerURL)
		add("discovery", err, "")
		if err == nil {
			n, err := fetchJWKS(ctx, client, doc.JWKSURI)
			add("jwks", err, fmt.Sprintf("%d signing keys", n))
			add("pkce", checkPKCE(doc), "S256")
			method, err := checkClientAuth(doc, cfg.clientAuthMethods())
			add("client authentication", err, method)
			note, err := checkEndSession(doc, cfg)
			add("end_session", err, note)
			if doc.BackchannelLogoutSupported {
				add("backchannel logout", nil, "supported: register "+strings.TrimSuffix(cfg.PathPrefix, "/")+"/backchannel_logout")
			} else {
				add("backchannel logout", nil, "not advertised: sessions end at sign-out or expiry only")
			}
		}
	}

	if cfg.RedisURL != "" || len(cfg.RedisAddrs) > 0 {
		add("redis", pingRedis(ctx, cfg), "")
	} else {
		add("redis", nil, "not configured")
	}
	add("upstream", dialUpstream(ctx, cfg), redactURL(cfg.Upstream))
	return results
}

func checkScopes(scopes []string) error {
	if !slices.Contains(scopes, "openid") {
		return errors.New("AUTHGATE_SCOPES lacks openid")
	}
	return nil
}

// fetchDiscovery reads the issuer's discovery document and checks what
// authgate needs of it.
func fetchDiscovery(ctx context.Context, client *http.Client, issuer string) (*discoveryDoc, error) {
	wellKnown := strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
	var doc discoveryDoc
	if err := getJSON(ctx, client, wellKnown, &doc); err != nil {
		return nil, err
	}
	// OpenID Connect Discovery 1.0 section 4.3: the issuer must be
	// identical to the one the document was fetched for.
	if doc.Issuer != issuer {
		return nil, fmt.Errorf("document's issuer %q is not AUTHGATE_OIDC_ISSUER_URL %q (mind the trailing slash)", doc.Issuer, issuer)
	}
	var missing []string
	for _, f := range []struct{ name, v string }{
		{"authorization_endpoint", doc.AuthorizationEndpoint},
		{"token_endpoint", doc.TokenEndpoint},
		{"jwks_uri", doc.JWKSURI},
	} {
		if f.v == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s lacks %s", wellKnown, strings.Join(missing, ", "))
	}
	return &doc, nil
}

// fetchJWKS reads the provider's key set and returns how many signing keys
// it holds.
func fetchJWKS(ctx context.Context, client *http.Client, jwksURI string) (int, error) {
	var set struct {
		Keys []struct {
			Kty string `json:"kty"`
			Use string `json:"use"`
		} `json:"keys"`
	}
	if err := getJSON(ctx, client, jwksURI, &set); err != nil {
		return 0, err
	}
	n := 0
	for _, k := range set.Keys {
		if k.Kty != "" && (k.Use == "" || k.Use == "sig") {
			n++
		}
	}
	if n == 0 {
		return 0, fmt.Errorf("%s holds no signing key", jwksURI)
	}
	return n, nil
}

func getJSON(ctx context.Context, client *http.Client, rawURL string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return fmt.Errorf("GET %s: %w", rawURL, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its message repeats the URL
		}
		return fmt.Errorf("GET %s: %w", rawURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: status %d", rawURL, resp.StatusCode)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(v); err != nil {
		return fmt.Errorf("GET %s: decode JSON: %w", rawURL, err)
	}
	return nil
}

// checkPKCE: authgate always sends an S256 code challenge. RFC 8414
// section 2: a provider that omits code_challenge_methods_supported does
// not support PKCE.
func checkPKCE(doc *discoveryDoc) error {
	if !slices.Contains(doc.CodeChallengeMethods, "S256") {
		return fmt.Errorf("code_challenge_methods_supported %q lacks S256, which authgate always sends", doc.CodeChallengeMethods)
	}
	return nil
}

// clientAuthMethods lists the token endpoint authentication methods the
// configuration can use, any one of which the provider must support. A
// new client authentication setting adds one case here.
func (c *Config) clientAuthMethods() []string {
	switch {
	case c.clientKey != nil:
		return []string{"private_key_jwt"}
	case c.ClientSecret == "":
		return []string{"none"}
	case c.ClientAuthMethod != "":
		return []string{c.ClientAuthMethod}
	default:
		return []string{"client_secret_basic", "client_secret_post"}
	}
}

// checkClientAuth returns the method authgate will use.
func checkClientAuth(doc *discoveryDoc, methods []string) (string, error) {
	advertised := doc.TokenEndpointAuthMethods
	if methods[0] == "none" {
		// Public clients: many providers (Keycloak among them) leave
		// "none" out of the list and still accept PKCE-only clients.
		return "none (public client)", nil
	}
	if len(advertised) == 0 {
		// OpenID Connect Discovery 1.0 section 3: the default.
		advertised = []string{"client_secret_basic"}
	}
	for _, m := range methods {
		if slices.Contains(advertised, m) {
			return m, nil
		}
	}
	return "", fmt.Errorf("token_endpoint_auth_methods_supported %q has none of %q, which the configuration needs", advertised, methods)
}

// checkEndSession: an explicit AUTHGATE_POST_LOGOUT_REDIRECT_URL needs the
// provider's end_session_endpoint (RP-Initiated Logout 1.0).
func checkEndSession(doc *discoveryDoc, cfg *Config) (string, error) {
	switch {
	case doc.EndSessionEndpoint != "":
		return "", nil
	case cfg.PostLogoutRedirectURL != "":
		return "", errors.New("AUTHGATE_POST_LOGOUT_REDIRECT_URL is set but the provider advertises no end_session_endpoint")
	default:
		return "not advertised: sign-out ends only authgate's session", nil
	}
}

// pingRedis connects with the configuration's Redis settings and sends
// PING.
func pingRedis(ctx context.Context, cfg *Config) error {
	opts, err := redisClientOptions(cfg)
	if err != nil {
		return err
	}
	// The result is this check's line; the client's own log would repeat it.
	redisstore.SetClientLogger(slog.New(slog.DiscardHandler))
	client, err := redisstore.NewClient(opts)
	if err != nil {
		return err
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		return opts.Redact(fmt.Errorf("PING: %w", err))
	}
	return nil
}

// dialUpstream checks that the upstream accepts a connection.
func dialUpstream(ctx context.Context, cfg *Config) error {
	u, err := url.Parse(cfg.Upstream)
	if err != nil {
		return fmt.Errorf("AUTHGATE_UPSTREAM: %w", err)
	}
	network, addr := "tcp", u.Host
	switch u.Scheme {
	case "unix":
		network, addr = "unix", u.Path
	case "https":
		if u.Port() == "" {
			addr = net.JoinHostPort(u.Hostname(), "443")
		}
	default:
		if u.Port() == "" {
			addr = net.JoinHostPort(u.Hostname(), "80")
		}
	}
	d := net.Dialer{Timeout: cfg.UpstreamDialTimeout}
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	return conn.Close()
}
