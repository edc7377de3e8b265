package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/authgate/authgate/cmd/authgate-bench/internal/benchnet"
)

// landingPath is the rd of every benchmark login; the browser stops at the
// redirect to it rather than loading it through the proxy.
const landingPath = "/bench-landed"

// benchCookieName is AUTHGATE_COOKIE_NAME for every authgate started here.
// AUTHGATE_COOKIE_SECURE is false (plain http on loopback), so the name
// carries no __Host- prefix.
const benchCookieName = "authgate"

// browser is a cookie jar and a client that performs the login dance the
// way a browser does, on loopback only.
type browser struct {
	jar    *cookiejar.Jar
	client *http.Client
	issuer *url.URL
}

func newBrowser(tr http.RoundTripper, issuer string) (*browser, error) {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, fmt.Errorf("create cookie jar: %w", err)
	}
	iss, err := url.Parse(issuer)
	if err != nil {
		return nil, fmt.Errorf("parse issuer: %w", err)
	}
	b := &browser{jar: jar, issuer: iss}
	b.client = &http.Client{
		Transport: tr,
		Jar:       jar,
		Timeout:   30 * time.Second,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if err := benchnet.RequireLoopbackURL(req.URL.String()); err != nil {
				return err
			}
			if len(via) >= 10 {
				return errors.New("stopped after 10 redirects")
			}
			if req.URL.Path == landingPath {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}
	return b, nil
}

// login signs in at start (see loginStart): → IdP authorize → login page
// (filled in when the IdP has no session for this browser yet; with one,
// the IdP signs in at once) → IdP callback → the proxy's callback, which
// sets the session cookie and redirects to landingPath. It returns whether
// the password form was used.
func (b *browser) login(ctx context.Context, start string) (usedForm bool, err error) {
	if err := benchnet.RequireLoopbackURL(start); err != nil {
		return false, err
	}
	// Sign in as a user without a proxy session (the IdP's session stays):
	// mod_auth_openidc would otherwise serve the landing page at once.
	if u, err := url.Parse(start); err == nil {
		b.forgetSession(u)
	}
	resp, err := b.get(ctx, start)
	if err != nil {
		return false, fmt.Errorf("start login: %w", err)
	}
	if resp.StatusCode == http.StatusOK && resp.Request.URL.Path == "/login" {
		usedForm = true
		id := resp.Request.URL.Query().Get("authRequestID")
		form := url.Values{"authRequestID": {id}, "username": {benchUser}, "password": {benchPassword}}
		loginURL := b.issuer.ResolveReference(&url.URL{Path: "/login"}).String()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, loginURL, strings.NewReader(form.Encode()))
		if err != nil {
			return usedForm, fmt.Errorf("submit login form: %w", err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if resp, err = b.do(req); err != nil {
			return usedForm, fmt.Errorf("submit login form: %w", err)
		}
	}
	if loc, _ := url.Parse(resp.Header.Get("Location")); resp.StatusCode != http.StatusFound || loc == nil || loc.Path != landingPath {
		return usedForm, fmt.Errorf("login ended at %s %s with status %d, want a 302 to %s",
			resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, landingPath)
	}
	if sessionCookieHeader(b.jar.Cookies(resp.Request.URL), benchCookieName) == "" {
		return usedForm, errors.New("login set no session cookie")
	}
	return usedForm, nil
}

// forgetSession expires the session cookie and its chunks for u's host.
// The IdP's cookies share the host (cookies ignore ports) and stay.
func (b *browser) forgetSession(u *url.URL) {
	var expired []*http.Cookie
	for _, c := range b.jar.Cookies(u) {
		if _, ok := chunkIndex(c.Name, benchCookieName); ok {
			expired = append(expired, &http.Cookie{Name: c.Name, Path: "/", MaxAge: -1})
		}
	}
	b.jar.SetCookies(u, expired)
}

func (b *browser) get(ctx context.Context, u string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	// A navigation, as a browser sends it: mod_auth_openidc answers 401
	// instead of starting a login for a request that does not accept HTML.
	req.Header.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
	return b.do(req)
}

// do sends req, following redirects, and returns the last response with
// its body read and closed.
func (b *browser) do(req *http.Request) (*http.Response, error) {
	resp, err := b.client.Do(req)
	if err != nil {
		return nil, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	return resp, nil
}

// sessionCookie returns the Cookie header value carrying this browser's
// authgate session for base.
func (b *browser) sessionCookie(base string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("parse %q: %w", base, err)
	}
	c := sessionCookieHeader(b.jar.Cookies(u), benchCookieName)
	if c == "" {
		return "", errors.New("no session cookie in the jar")
	}
	return c, nil
}

// sessionCookieHeader returns "name=value; name_1=value…" for the session
// cookie called name and its chunks (name_1 … name_99), in chunk order,
// leaving out every other cookie: the IdP's, which shares the host because
// cookies ignore ports (RFC 6265 section 8.5), and login-flow cookies
// (name_flow_…).
func sessionCookieHeader(cookies []*http.Cookie, name string) string {
	type part struct {
		index int
		text  string
	}
	var parts []part
	for _, c := range cookies {
		idx, ok := chunkIndex(c.Name, name)
		if !ok || c.Value == "" {
			continue
		}
		parts = append(parts, part{idx, c.Name + "=" + c.Value})
	}
	slices.SortFunc(parts, func(a, b part) int { return a.index - b.index })
	texts := make([]string, len(parts))
	for i, p := range parts {
		texts[i] = p.text
	}
	return strings.Join(texts, "; ")
}

// chunkIndex orders the parts of a session cookie called name: name_chunks
// (mod_auth_openidc's count of chunks) is -2, name itself -1, and name_n is
// n (0 ≤ n ≤ 99: authgate counts from 1, oauth2-proxy and mod_auth_openidc
// from 0).
func chunkIndex(cookie, name string) (int, bool) {
	if cookie == name {
		return -1, true
	}
	rest, ok := strings.CutPrefix(cookie, name+"_")
	if ok && rest == "chunks" {
		return -2, true
	}
	if !ok || len(rest) == 0 || len(rest) > 2 || (rest[0] == '0' && len(rest) > 1) {
		return 0, false
	}
	n := 0
	for _, c := range rest {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// cookieSet is a client's view of its cookies for one host, updated from
// Set-Cookie answers the way a browser would (a plain map; the benchmark's
// cookies all have Path=/ and no Domain).
type cookieSet map[string]string

// parseCookieHeader turns "a=1; b=2" into a cookieSet.
func parseCookieHeader(h string) cookieSet {
	s := make(cookieSet)
	for part := range strings.SplitSeq(h, ";") {
		name, value, ok := strings.Cut(strings.TrimSpace(part), "=")
		if ok && name != "" {
			s[name] = value
		}
	}
	return s
}

// update applies resp's Set-Cookie headers: a past expiry or negative
// Max-Age deletes.
func (s cookieSet) update(resp *http.Response, now time.Time) {
	for _, c := range resp.Cookies() {
		if c.MaxAge < 0 || (!c.Expires.IsZero() && !c.Expires.After(now)) || c.Value == "" {
			delete(s, c.Name)
			continue
		}
		s[c.Name] = c.Value
	}
}

// header returns the session cookie header (see sessionCookieHeader).
func (s cookieSet) header(name string) string {
	cookies := make([]*http.Cookie, 0, len(s))
	for n, v := range s {
		cookies = append(cookies, &http.Cookie{Name: n, Value: v})
	}
	return sessionCookieHeader(cookies, name)
}
