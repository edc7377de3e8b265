package idp_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"

	"github.com/authgate/authgate/proxy/idp"
)

const (
	zitadelClientID     = "authgate-web"
	zitadelClientSecret = "s3cret/with+chars" // exercises RFC 6749 2.3.1 encoding
	zitadelRedirectURL  = "http://127.0.0.1:1/oauth2/callback"
)

// startZitadel runs the zitadel/oidc example OP in-process and returns its
// issuer (with the trailing slash go-oidc's issuer check needs).
func startZitadel(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	issuer := "http://" + ln.Addr().String() + "/"
	// RegisterClients writes a package-global map: tests using it do not
	// run in parallel.
	storage.RegisterClients(storage.WebClient(zitadelClientID, zitadelClientSecret, zitadelRedirectURL))
	st := storage.NewStorage(storage.NewUserStore(issuer))
	// A non-nil logger keeps the OP from logging every request; it also
	// becomes slog's default, which these tests never use.
	router := exampleop.SetupServer(issuer, st, slog.New(slog.DiscardHandler), false)
	srv := httptest.NewUnstartedServer(router)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return issuer
}

var loginIDField = regexp.MustCompile(`name="id" value="([^"]+)"`)

// browserLogin plays a browser: it follows the authorization URL, fills
// the example OP's login form and returns the code from the redirect to the
// callback, which it does not follow.
func browserLogin(t *testing.T, authURL, wantState string) string {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatalf("cookiejar: %v", err)
	}
	c := &http.Client{
		Jar: jar,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if strings.HasPrefix(req.URL.String(), zitadelRedirectURL) {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}
	resp, err := c.Get(authURL)
	if err != nil {
		t.Fatalf("GET authorization URL: %v", err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := loginIDField.FindSubmatch(page)
	if resp.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("authorization URL gave %s without a login form:\n%s", resp.Status, page)
	}
	loginURL := resp.Request.URL.ResolveReference(&url.URL{Path: "/login/username"})
	resp, err = c.PostForm(loginURL.String(), url.Values{
		"id":       {string(m[1])},
		"username": {"test-user@127.0.0.1"},
		"password": {"verysecure"},
	})
	if err != nil {
		t.Fatalf("POST login form: %v", err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || err != nil || !strings.HasPrefix(loc.String(), zitadelRedirectURL) {
		t.Fatalf("login answered %s Location %q, want 302 to the callback", resp.Status, resp.Header.Get("Location"))
	}
	if got := loc.Query().Get("state"); got != wantState {
		t.Fatalf("callback state = %q, want %q", got, wantState)
	}
	return loc.Query().Get("code")
}

// TestZitadel runs the whole life of a session against a real OpenID
// Provider: login, exchange, refresh, end-session URL, revocation.
func TestZitadel(t *testing.T) {
	issuer := startZitadel(t)
	logs := &logBuffer{}
	p := startProvider(t, idp.Options{
		IssuerURL:    issuer,
		ClientID:     zitadelClientID,
		ClientSecret: zitadelClientSecret,
		RedirectURL:  zitadelRedirectURL,
		// offline_access makes the example OP issue a refresh token.
		Scopes: []string{"openid", "email", "profile", "offline_access"},
		Logger: logs.logger(),
	})
	ctx := context.Background()

	ar, err := p.NewAuthRequest()
	if err != nil {
		t.Fatalf("NewAuthRequest() error = %v", err)
	}
	code := browserLogin(t, ar.URL, ar.State)

	tokens, id, err := p.Exchange(ctx, code, ar.CodeVerifier, ar.Nonce)
	if err != nil {
		t.Fatalf("Exchange() error = %v", err)
	}
	if id.Subject == "" {
		t.Errorf("Identity.Subject = %q, want non-empty", id.Subject)
	}
	// The example OP's ID token has no email: it comes from userinfo.
	if id.Email != "test-user@zitadel.ch" {
		t.Errorf("Identity.Email = %q, want %q", id.Email, "test-user@zitadel.ch")
	}
	if id.EmailVerified == nil || !*id.EmailVerified {
		t.Errorf("Identity.EmailVerified = %v, want true", id.EmailVerified)
	}
	if id.IssuedAt.IsZero() {
		t.Errorf("Identity.IssuedAt is zero")
	}
	if tokens.AccessToken == "" || tokens.IDToken == "" || tokens.RefreshToken == "" {
		t.Fatalf("Exchange() tokens = %v, want access, ID and refresh tokens", tokens)
	}

	// A code is single-use (RFC 6749 section 4.1.2).
	if _, _, err := p.Exchange(ctx, code, ar.CodeVerifier, ar.Nonce); !errors.Is(err, idp.ErrInvalidGrant) {
		t.Errorf("second Exchange() error = %v, want ErrInvalidGrant", err)
	}

	refreshed, err := p.Refresh(ctx, tokens.RefreshToken, id.Subject)
	if err != nil {
		t.Fatalf("Refresh() error = %v", err)
	}
	if refreshed.AccessToken == "" || refreshed.AccessToken == tokens.AccessToken {
		t.Errorf("Refresh() gave access token changed = %t, want a new one", refreshed.AccessToken != tokens.AccessToken)
	}
	if refreshed.RefreshToken == "" {
		t.Errorf("Refresh() RefreshToken is empty, want the rotated or old one")
	}
	// The example OP rotates refresh tokens: the old one is dead.
	if _, err := p.Refresh(ctx, tokens.RefreshToken, id.Subject); !errors.Is(err, idp.ErrInvalidGrant) {
		t.Errorf("Refresh(old token) error = %v, want ErrInvalidGrant", err)
	}

	idHint := refreshed.IDToken
	if idHint == "" {
		idHint = tokens.IDToken
	}
	end, ok := p.EndSessionURL(idHint, "", "st4te")
	if !ok {
		t.Fatalf("EndSessionURL() ok = false, want true")
	}
	resp, err := noRedirects(http.DefaultClient).Get(end)
	if err != nil {
		t.Fatalf("GET end-session URL: %v", err)
	}
	resp.Body.Close()
	// The OP accepted the hint and client_id and sends the browser to its
	// default signed-out page (no post-logout URI is registered).
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || !strings.Contains(loc, "/logged-out") {
		t.Errorf("end-session answered %s Location %q, want 302 to /logged-out", resp.Status, loc)
	}

	if err := p.Revoke(ctx, refreshed.RefreshToken); err != nil {
		t.Fatalf("Revoke() error = %v", err)
	}
	if _, err := p.Refresh(ctx, refreshed.RefreshToken, id.Subject); !errors.Is(err, idp.ErrInvalidGrant) {
		t.Errorf("Refresh(revoked token) error = %v, want ErrInvalidGrant", err)
	}

	assertNoSecrets(t, "logs", logs.String(), []string{
		code, tokens.AccessToken, tokens.RefreshToken, tokens.IDToken,
		refreshed.AccessToken, refreshed.RefreshToken, refreshed.IDToken,
	})
	if !strings.Contains(logs.String(), "code exchanged") {
		t.Errorf("logs lack the exchange line, so the leak check proves nothing:\n%s", logs)
	}
}
