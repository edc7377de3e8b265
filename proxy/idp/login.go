package idp

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"

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
	return &AuthRequest{
		State:        state,
		Nonce:        nonce,
		CodeVerifier: verifier,
		URL:          d.oauth.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce)),
	}, nil
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
	tok, err := p.oauthConfig(d).Exchange(oidc.ClientContext(ctx, p.client), code, oauth2.VerifierOption(codeVerifier))
	if err != nil {
		return nil, nil, fmt.Errorf("exchange code: %w", classifyTokenError(err))
	}
	tokens := tokensFrom(tok, "")
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
	id := claims.identity(idt.Subject, p.groupsClaim)
	id.IssuedAt = idt.IssuedAt
	// Userinfo costs a round trip on every login, so it is asked only for
	// what is missing: the email, or the groups when access depends on them.
	if (id.Email == "" || (p.needGroups && id.Groups == nil)) && d.provider.UserInfoEndpoint() != "" {
		if err := p.addUserinfo(ctx, d, tok, id); err != nil {
			return nil, nil, fmt.Errorf("exchange code: %w", err)
		}
	}
	p.log.Debug("code exchanged", keySubject, id.Subject, keyTokens, tokens)
	return tokens, id, nil
}

// addUserinfo fills what the ID token lacked from the userinfo endpoint.
func (p *Provider) addUserinfo(ctx context.Context, d *discovered, tok *oauth2.Token, id *Identity) error {
	info, err := d.provider.UserInfo(oidc.ClientContext(ctx, p.apiClient), oauth2.StaticTokenSource(tok))
	if err != nil {
		if transient(err) {
			return fmt.Errorf("fetch userinfo: %w: %w", ErrUnavailable, err)
		}
		// The access token was minted a moment ago: a refusal is the
		// provider contradicting itself, and the login cannot proceed.
		return fmt.Errorf("fetch userinfo: %w: %w", ErrInvalidToken, err)
	}
	// OpenID Connect Core 5.3.2: the userinfo sub MUST equal the ID token's,
	// or the answer must not be used (token substitution).
	if info.Subject != id.Subject {
		p.log.Warn("userinfo subject differs from id token subject", keyIssuer, p.issuer)
		return fmt.Errorf("fetch userinfo: %w: subject mismatch", ErrInvalidToken)
	}
	var c claimSet
	if err := info.Claims(&c); err != nil {
		return fmt.Errorf("decode userinfo: %w: %w", ErrInvalidToken, err)
	}
	from := c.identity(info.Subject, p.groupsClaim)
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
