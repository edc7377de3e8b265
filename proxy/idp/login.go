package idp

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// NewAuthRequest starts a login: a fresh random state and nonce (256 bits
// each, base64url), a PKCE verifier (RFC 7636) and the authorization URL
// carrying the S256 challenge, the nonce, the scopes and the redirect URL.
// Before discovery it returns ErrNotReady.
func (p *Provider) NewAuthRequest() (*AuthRequest, error) {
	d, err := p.ready()
	if err != nil {
		return nil, err
	}
	state, err := randomString()
	if err != nil {
		return nil, err
	}
	nonce, err := randomString()
	if err != nil {
		return nil, err
	}
	verifier := oauth2.GenerateVerifier()
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce)}
	if p.prompt != "" {
		opts = append(opts, oauth2.SetAuthURLParam("prompt", p.prompt))
	}
	authURL := d.oauth.AuthCodeURL(state, opts...)
	if len(p.authParams) > 0 {
		// AuthCodeURL sets one value per name; extra parameters may repeat
		// (RFC 8707 resource), so they are added to the finished URL.
		// New has refused every name AuthCodeURL sets.
		u, err := url.Parse(authURL)
		if err != nil {
			return nil, fmt.Errorf("build authorization URL: %w", err)
		}
		q := u.Query()
		for k, vs := range p.authParams {
			for _, v := range vs {
				q.Add(k, v)
			}
		}
		u.RawQuery = q.Encode()
		authURL = u.String()
	}
	return &AuthRequest{
		State:        state,
		Nonce:        nonce,
		CodeVerifier: verifier,
		URL:          authURL,
	}, nil
}

// wantsOffline reports whether the login asks for a refresh token: the
// offline_access scope (OpenID Connect Core 11) or Google's
// access_type=offline.
func (p *Provider) wantsOffline() bool {
	return slices.Contains(p.scopes, "offline_access") || slices.Contains(p.authParams["access_type"], "offline")
}

// warnNoRefreshToken logs, once per process, that a refresh token was asked
// for and none came: sessions then end with the first access token, and the
// provider does not say why.
func (p *Provider) warnNoRefreshToken() {
	p.noRefreshWarned.Do(func() {
		p.log.Warn("a refresh token was requested (offline_access) but the token response had none: sessions will end when the access token expires",
			keyIssuer, p.issuer,
			keyHint, "node-oidc-provider and providers following OpenID Connect Core 11 grant offline_access only with prompt=consent: set AUTHGATE_PROMPT=consent; "+
				"Google needs AUTHGATE_AUTH_PARAMS=access_type=offline (and AUTHGATE_PROMPT=consent to get one again for a user who already consented); "+
				"otherwise allow the refresh_token grant and offline_access for this client at the provider")
	})
}

// randomString returns 256 random bits, base64url without padding; state
// and nonce need at least 128 (RFC 6749 section 10.10).
func randomString() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("read random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// CheckResponseIssuer is the mix-up defence of RFC 9207 section 2.4, run on
// the callback before the code is redeemed: when discovery advertised
// authorization_response_iss_parameter_supported, the "iss" parameter must be
// present; whenever it is present, it must equal the issuer exactly. present
// tells an absent parameter from an empty one. Failures wrap
// ErrIssuerMismatch; before discovery it returns ErrNotReady.
func (p *Provider) CheckResponseIssuer(iss string, present bool) error {
	d, err := p.ready()
	if err != nil {
		return err
	}
	switch {
	case !present && d.meta.AuthorizationResponseIss:
		return fmt.Errorf("%w: no iss parameter, though discovery advertises authorization_response_iss_parameter_supported", ErrIssuerMismatch)
	case present && iss != p.issuer:
		return fmt.Errorf("%w: iss parameter %q is not the issuer %q", ErrIssuerMismatch, truncate(iss, 200), p.issuer)
	}
	return nil
}

// Exchange finishes a login: it redeems the authorization code with the PKCE
// verifier, verifies the ID token (OpenID Connect Core 3.1.3.7) and returns
// the tokens and who the user is. When the ID token has no email it asks the
// userinfo endpoint, whose "sub" must match (Core 5.3.2).
//
// Errors wrap ErrNotReady before discovery; ErrInvalidGrant when the
// provider rejects the code or verifier; ErrInvalidToken when the ID token
// or userinfo answer fails a check; ErrUnavailable on a network fault,
// timeout or 5xx. Other errors (for example invalid_client) mean a
// misconfiguration.
func (p *Provider) Exchange(ctx context.Context, code, codeVerifier, nonce string) (*Tokens, *Identity, error) {
	d, err := p.ready()
	if err != nil {
		return nil, nil, err
	}
	if code == "" {
		return nil, nil, fmt.Errorf("exchange code: %w: empty code", ErrInvalidGrant)
	}
	if codeVerifier == "" || nonce == "" {
		return nil, nil, errors.New("exchange code: empty code verifier or nonce")
	}
	tok, err := p.oauthConfig(d).Exchange(oidc.ClientContext(ctx, d.tokenClient), code, oauth2.VerifierOption(codeVerifier))
	if err != nil {
		return nil, nil, fmt.Errorf("exchange code: %w", classifyTokenError(err))
	}
	tokens := tokensFrom(tok, "")
	if tokens.RefreshToken == "" && p.wantsOffline() {
		p.warnNoRefreshToken()
	}
	if tokens.IDToken == "" {
		// OpenID Connect Core 3.1.3.3: a successful answer carries an ID token.
		return nil, nil, fmt.Errorf("exchange code: %w: token response has no id_token", ErrInvalidToken)
	}
	idt, claims, err := p.verifyIDToken(ctx, d, tokens.IDToken, tokens.AccessToken, true)
	if err != nil {
		return nil, nil, fmt.Errorf("exchange code: %w", err)
	}
	// Core 3.1.3.7 step 11. go-oidc leaves the nonce to the caller.
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
		return nil, nil, fmt.Errorf("exchange code: %w: nonce mismatch", ErrInvalidToken)
	}
	id := p.identity(idt.Subject, claims)
	id.IssuedAt = idt.IssuedAt
	// Userinfo costs a round trip on every login, so it is asked only for
	// what is missing: the email, the user claim, or the groups when access
	// depends on them. Kept claims are the merged set, so userinfo is always
	// asked then.
	var infoClaims map[string]json.RawMessage
	if (id.Email == "" || id.User == "" || (p.needGroups && id.Groups == nil) || p.keepClaims) && d.provider.UserInfoEndpoint() != "" {
		if infoClaims, err = p.addUserinfo(ctx, d, tok, id); err != nil {
			return nil, nil, fmt.Errorf("exchange code: %w", err)
		}
	}
	if id.Groups == nil {
		// Keycloak puts realm roles in the access token only, by default.
		id.Groups = p.accessTokenGroups(ctx, d, tokens.AccessToken)
	}
	if id.User == "" {
		return nil, nil, fmt.Errorf("exchange code: %w: user claim %q is in neither the id token nor userinfo", ErrInvalidToken, p.userClaim)
	}
	if id.Groups == nil && p.needGroups && groupsOverage(claims.Rest, p.groupsClaim) {
		return nil, nil, fmt.Errorf("exchange code: %w (claim %q; _claim_names points elsewhere)", ErrGroupsOverage, p.groupsClaim)
	}
	if p.keepClaims {
		if id.Claims, err = mergeClaims(claims.Rest, infoClaims); err != nil {
			return nil, nil, fmt.Errorf("exchange code: %w: %w", ErrInvalidToken, err)
		}
	}
	p.log.DebugContext(ctx, "code exchanged", keySubject, id.Subject, keyTokens, tokens)
	return tokens, id, nil
}

// addUserinfo fills what the ID token lacked from the userinfo endpoint,
// and returns every claim userinfo sent.
func (p *Provider) addUserinfo(ctx context.Context, d *discovered, tok *oauth2.Token, id *Identity) (map[string]json.RawMessage, error) {
	info, err := d.provider.UserInfo(oidc.ClientContext(ctx, p.apiClient), oauth2.StaticTokenSource(tok))
	if err != nil {
		if transient(err) {
			return nil, fmt.Errorf("fetch userinfo: %w: %w", ErrUnavailable, err)
		}
		// The access token was minted a moment ago: a refusal is the
		// provider contradicting itself, and the login cannot proceed.
		return nil, fmt.Errorf("fetch userinfo: %w: %w", ErrInvalidToken, err)
	}
	// OpenID Connect Core 5.3.2: the userinfo sub MUST equal the ID token's,
	// or the answer must not be used (token substitution).
	if info.Subject != id.Subject {
		p.log.WarnContext(ctx, "userinfo subject differs from id token subject", keyIssuer, p.issuer)
		return nil, fmt.Errorf("fetch userinfo: %w: subject mismatch", ErrInvalidToken)
	}
	var c claimSet
	if err := info.Claims(&c); err != nil {
		return nil, fmt.Errorf("decode userinfo: %w: %w", ErrInvalidToken, err)
	}
	from := p.identity(info.Subject, &c)
	if id.Email == "" {
		id.Email = from.Email
		id.EmailVerified = from.EmailVerified
	}
	if id.PreferredUsername == "" {
		id.PreferredUsername = from.PreferredUsername
	}
	if id.Name == "" {
		id.Name = from.Name
	}
	if id.Groups == nil {
		id.Groups = from.Groups
	}
	if id.User == "" {
		id.User = from.User
	}
	return c.Rest, nil
}

// accessTokenGroups reads the groups claim from the access token when it is
// a JWT that verifies against the issuer's keys: signature, iss and exp,
// not aud (it is meant for a resource server, not for authgate). Anything
// else (an opaque token, another issuer, no such claim) gives nil.
func (p *Provider) accessTokenGroups(ctx context.Context, d *discovered, accessToken string) []string {
	if accessToken == "" || strings.Count(accessToken, ".") != 2 || len(accessToken) > maxBearerLen {
		return nil
	}
	algs := signingAlgs(d.meta.IDTokenSigningAlgs)
	if len(algs) == 0 {
		algs = []string{oidc.RS256}
	}
	at, err := p.bearerVerifier(d, algs).verifier.Verify(ctx, accessToken)
	if err != nil {
		p.log.DebugContext(ctx, "access token not read for claims", keyError, err)
		return nil
	}
	var c claimSet
	if err := at.Claims(&c); err != nil {
		return nil
	}
	if err := checkNumericDates(c.Rest); err != nil {
		p.log.DebugContext(ctx, "access token not read for claims", keyError, err)
		return nil
	}
	if raw, ok := lookupClaim(c.Rest, p.groupsClaim); ok {
		return groups(raw)
	}
	return nil
}

// tokensFrom copies the token response; oldRefresh stays when the answer
// carries no refresh token (RFC 6749 section 6).
func tokensFrom(tok *oauth2.Token, oldRefresh string) *Tokens {
	t := &Tokens{
		AccessToken:  tok.AccessToken,
		RefreshToken: tok.RefreshToken,
		Expiry:       tok.Expiry,
	}
	if t.RefreshToken == "" {
		t.RefreshToken = oldRefresh
	}
	if raw, ok := tok.Extra("id_token").(string); ok {
		t.IDToken = raw
	}
	return t
}

// validationClaims only validate the token they came in; they say nothing
// about the user and would only make the session cookie larger.
var validationClaims = []string{"exp", "iat", "nbf", "nonce", "jti", "at_hash", "c_hash", "s_hash"}

// mergeClaims returns the ID token's claims, completed by userinfo's for
// names the ID token lacks, as a JSON object without validationClaims.
func mergeClaims(idToken, userinfo map[string]json.RawMessage) (string, error) {
	m := make(map[string]json.RawMessage, len(idToken)+len(userinfo))
	for k, v := range userinfo {
		m[k] = v
	}
	for k, v := range idToken {
		m[k] = v
	}
	for _, k := range validationClaims {
		delete(m, k)
	}
	b, err := json.Marshal(m)
	if err != nil {
		return "", fmt.Errorf("encode claims: %w", err)
	}
	return string(b), nil
}
