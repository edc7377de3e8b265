package idp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// Refresh redeems a refresh token (RFC 6749 section 6) for the user whose
// ID token "sub" is subject. The answer keeps refreshToken when the provider
// sends no new one. When the provider sends a new ID token it is verified
// (signature, iss, aud, azp, exp, iat, at_hash; there is no nonce) and its
// "sub" must equal subject (OpenID Connect Core 12.2). When it sends none,
// or one whose signature cannot be checked (no key verifies it, or the keys
// cannot be fetched), Tokens.IDToken is empty and the caller keeps its old
// one.
//
// Errors wrap ErrNotReady, ErrInvalidGrant (the refresh token is dead, or
// the refreshed ID token was refused: the session is over) or
// ErrUnavailable (the token endpoint did not answer: keep the session and
// retry later), as for Exchange.
func (p *Provider) Refresh(ctx context.Context, refreshToken, subject string) (*Tokens, error) {
	d, err := p.ready()
	if err != nil {
		return nil, err
	}
	if refreshToken == "" {
		return nil, fmt.Errorf("refresh token: %w: empty refresh token", ErrInvalidGrant)
	}
	// An empty access token makes the token source refresh at once.
	src := p.oauthConfig(d).TokenSource(oidc.ClientContext(ctx, d.tokenClient), &oauth2.Token{RefreshToken: refreshToken})
	tok, err := src.Token()
	if err != nil {
		return nil, fmt.Errorf("refresh token: %w", classifyTokenError(err))
	}
	tokens := tokensFrom(tok, refreshToken)
	// From here on the provider has answered, and a provider that rotates
	// refresh tokens has spent the old one: an error that made the caller
	// keep the session would replay a spent refresh token later (Ory Hydra
	// then revokes the whole chain). So a refreshed ID token either is
	// dropped (the session keeps its login's ID token) or ends the session.
	if tokens.IDToken != "" {
		idt, _, err := p.verifyIDToken(ctx, d, tokens.IDToken, tokens.AccessToken, false)
		switch {
		case err == nil && idt.Subject != subject:
			p.log.WarnContext(ctx, "refreshed id token names another subject; session ended", keyIssuer, p.issuer)
			return nil, fmt.Errorf("refresh token: %w: %w: id token subject changed", ErrInvalidGrant, ErrInvalidToken)
		case err == nil:
		case errors.Is(err, ErrUnavailable) || signatureUnverified(err):
			// OpenID Connect Core 3.1.3.7 step 6: an ID token received
			// directly from the token endpoint may have its issuer
			// validated by TLS instead of its signature. Seen with Ory
			// Hydra v2.3.0, which after a key rotation signs refreshed ID
			// tokens with the new key under the old key's kid
			// (ory/hydra#3573). authgate takes no identity from a refreshed
			// ID token, so it keeps the login's and the new tokens.
			p.log.WarnContext(ctx, "refreshed id token not verified; keeping the session's id token from login", keyIssuer, p.issuer, keyError, err.Error())
			tokens.IDToken = ""
		default:
			p.log.WarnContext(ctx, "refreshed id token refused; session ended", keyIssuer, p.issuer, keyError, err.Error())
			return nil, fmt.Errorf("refresh token: %w: %w", ErrInvalidGrant, err)
		}
	}
	p.log.DebugContext(ctx, "token refreshed", keySubject, subject, keyTokens, tokens)
	return tokens, nil
}

// signatureUnverified reports whether err is go-oidc's failure to verify a
// token's signature (no key of the set verifies it), as opposed to a claim
// it refused. go-oidc formats that error with %v, so only its text tells.
func signatureUnverified(err error) bool {
	return err != nil && strings.Contains(err.Error(), "failed to verify signature")
}

// Revoke asks the provider to revoke a refresh token (RFC 7009), which per
// RFC 7009 section 2.1 may also end its access tokens. It is a no-op (nil)
// when the provider advertises no revocation_endpoint. Errors wrap
// ErrNotReady or ErrUnavailable, or report the provider's refusal.
func (p *Provider) Revoke(ctx context.Context, refreshToken string) error {
	d, err := p.ready()
	if err != nil {
		return err
	}
	if d.meta.RevocationEndpoint == "" || refreshToken == "" {
		return nil
	}
	form := url.Values{"token": {refreshToken}, "token_type_hint": {"refresh_token"}}
	// RFC 7009 section 2.1: the client authenticates as at the token
	// endpoint; a public client identifies itself with client_id.
	switch {
	case d.assertion != nil:
		// RFC 7523 section 2.2, with the token endpoint as audience
		// (OpenID Connect Core 9), as at the token endpoint.
		if err := d.assertion.addTo(form); err != nil {
			return fmt.Errorf("revoke token: %w", err)
		}
	case d.revokeStyle != oauth2.AuthStyleInHeader:
		form.Set("client_id", p.clientID)
		if secret := p.secret(); secret != "" {
			form.Set("client_secret", secret)
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.meta.RevocationEndpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return fmt.Errorf("revoke token: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if d.assertion == nil && d.revokeStyle == oauth2.AuthStyleInHeader {
		// RFC 6749 section 2.3.1: id and secret are form-encoded first.
		req.SetBasicAuth(url.QueryEscape(p.clientID), url.QueryEscape(p.secret()))
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("revoke token: %w: %w", ErrUnavailable, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	switch {
	case resp.StatusCode == http.StatusOK:
		// RFC 7009 section 2.2: 200 also for an already invalid token.
		return nil
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		return fmt.Errorf("revoke token: %w: provider answered %s", ErrUnavailable, resp.Status)
	}
	var e struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(body, &e)
	return fmt.Errorf("revoke token: provider answered %s %q", resp.Status, e.Error)
}

// EndSessionURL returns the provider's end_session_endpoint with the
// parameters of OpenID Connect RP-Initiated Logout 1.0 section 2:
// id_token_hint, post_logout_redirect_uri and state when not empty, and
// client_id always. It reports false before discovery or when the provider
// offers no end_session_endpoint.
func (p *Provider) EndSessionURL(idTokenHint, postLogoutRedirectURI, state string) (string, bool) {
	d := p.state.Load()
	if d == nil || d.meta.EndSessionEndpoint == "" {
		return "", false
	}
	u, err := url.Parse(d.meta.EndSessionEndpoint)
	if err != nil {
		return "", false
	}
	q := u.Query()
	// Parameters already in the endpoint URL (a configured override such as
	// Cognito's logout_uri, or client_id) are kept as given.
	set := func(k, v string) {
		if v != "" && !q.Has(k) {
			q.Set(k, v)
		}
	}
	set("id_token_hint", idTokenHint)
	set("post_logout_redirect_uri", postLogoutRedirectURI)
	set("client_id", p.clientID)
	set("state", state)
	u.RawQuery = q.Encode()
	return u.String(), true
}
