package idp

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
)

const (
	// bearerKeysRefetchMin is the least time between two fetches of the
	// provider's JWKS for bearer tokens. A token naming an unknown key
	// triggers a fetch (the provider may have rotated its keys), but a
	// stream of forged tokens with made-up key ids must not turn authgate
	// into a flood of requests at the provider: go-oidc's RemoteKeySet
	// refetches on every failed signature, which is why bearer tokens use
	// their own key cache.
	bearerKeysRefetchMin = 10 * time.Second
	// bearerKeysMaxAge is how long fetched keys are used before they are
	// fetched again, so that a key the provider withdrew (because it leaked)
	// stops verifying tokens. A failed refetch keeps the old keys.
	bearerKeysMaxAge = 15 * time.Minute
	// bearerKeysFetchTimeout bounds one JWKS fetch, which runs detached from
	// the request that triggered it.
	bearerKeysFetchTimeout = 15 * time.Second
	// maxJWKSSize bounds the JWKS document read.
	maxJWKSSize = 1 << 20
	// maxBearerLen bounds a token before it is parsed.
	maxBearerLen = 16 << 10
)

// TokenError is a bearer token refusal. It wraps ErrInvalidToken, and its
// Description is short, fixed text that is safe to send to the client as
// the error_description of a WWW-Authenticate challenge (RFC 6750 section
// 3): it never contains the token, a claim value or a key.
type TokenError struct {
	Description string
	err         error
}

func (e *TokenError) Error() string {
	if e.err == nil {
		return "verify bearer token: " + e.Description
	}
	return "verify bearer token: " + e.Description + ": " + e.err.Error()
}

// Unwrap returns ErrInvalidToken and the underlying cause, if any.
func (e *TokenError) Unwrap() []error {
	if e.err == nil {
		return []error{ErrInvalidToken}
	}
	return []error{ErrInvalidToken, e.err}
}

func tokenError(desc string, err error) error { return &TokenError{Description: desc, err: err} }

// acceptedTokenTypes are the JWS "typ" headers a bearer token may carry:
// none, plain JWT, or the RFC 9068 access-token types. Other typed JWTs
// (logout tokens, DPoP proofs, security events) are not access tokens.
var acceptedTokenTypes = []string{"", "jwt", "at+jwt", "application/at+jwt"}

// VerifyBearer verifies an API client's own access token, a JWT sent as
// "Authorization: Bearer" (RFC 6750 section 2.1), and returns who it names.
// The token must be signed by the issuer with a key from its JWKS (found
// through discovery, cached, and fetched again when a token names an
// unknown key, at most every 10 s) using an algorithm the discovery
// document advertises for ID tokens (RS256 when it advertises none); HMAC
// algorithms and "none" are never accepted, so a token "signed" with the
// public key as an HMAC secret fails. "iss" must be the issuer, "exp" in the
// future, "nbf" (when present) past, "sub" present, and "aud" must contain
// at least one of audiences other than authgate's own client ID; with no
// audiences every token is refused.
//
// The identity comes from the token's claims alone (email, email_verified,
// preferred_username, name and the groups claim); userinfo is not asked.
//
// Errors wrap ErrNotReady before discovery; ErrUnavailable when the keys
// could not be fetched and none is cached; otherwise a *TokenError, which
// wraps ErrInvalidToken.
func (p *Provider) VerifyBearer(ctx context.Context, token string, audiences []string) (*Identity, error) {
	d, err := p.ready()
	if err != nil {
		return nil, err
	}
	if token == "" || len(token) > maxBearerLen {
		return nil, tokenError("malformed token", nil)
	}
	algs := signingAlgs(d.meta.IDTokenSigningAlgs)
	if len(algs) == 0 {
		algs = []string{oidc.RS256} // OpenID Connect Core 15.1, as go-oidc
	}
	if err := checkHeader(token, algs); err != nil {
		return nil, err
	}
	bv := p.bearerVerifier(d, algs)
	note := &bearerNote{}
	idt, err := bv.verifier.Verify(context.WithValue(ctx, bearerNoteKey{}, note), token)
	if err != nil {
		var expired *oidc.TokenExpiredError
		switch {
		case note.fetchErr != nil:
			return nil, fmt.Errorf("verify bearer token: %w: fetch keys: %w", ErrUnavailable, note.fetchErr)
		case note.reason != "":
			return nil, tokenError(note.reason, err)
		case errors.As(err, &expired):
			return nil, tokenError("token expired", err)
		case note.verified && note.issuer != p.issuer:
			return nil, tokenError("token issued by another issuer", err)
		case note.verified:
			return nil, tokenError("token not yet valid", err)
		}
		return nil, tokenError("malformed token", err)
	}
	if idt.Subject == "" {
		return nil, tokenError("token has no subject", nil)
	}
	// authgate's own client ID never counts: an ID token issued to
	// authgate (which travels in the browser as id_token_hint at sign-out)
	// must not double as an API token.
	if !slices.ContainsFunc(idt.Audience, func(a string) bool { return a != p.clientID && slices.Contains(audiences, a) }) {
		return nil, tokenError("audience not accepted", nil)
	}
	var c claimSet
	if err := idt.Claims(&c); err != nil {
		return nil, tokenError("malformed claims", err)
	}
	if err := checkNumericDates(c.Rest); err != nil {
		return nil, tokenError("token dates are not numbers", err)
	}
	id := p.identity(idt.Subject, &c)
	id.IssuedAt = idt.IssuedAt
	if p.keepClaims {
		if id.Claims, err = mergeClaims(c.Rest, nil); err != nil {
			return nil, tokenError("malformed claims", err)
		}
	}
	return id, nil
}

// checkHeader reads the JOSE header of a compact JWS and refuses what
// go-oidc would refuse with an unhelpful message: not three parts, an
// algorithm not in algs (among them "none" and every HS*), or a "typ" that
// is not an access token's.
func checkHeader(token string, algs []string) error {
	if strings.Count(token, ".") != 2 {
		return tokenError("malformed token", nil)
	}
	raw, err := base64.RawURLEncoding.DecodeString(token[:strings.IndexByte(token, '.')])
	if err != nil {
		return tokenError("malformed token", err)
	}
	var h struct {
		Alg  string `json:"alg"`
		Typ  string `json:"typ"`
		Crit []any  `json:"crit"`
	}
	if err := json.Unmarshal(raw, &h); err != nil {
		return tokenError("malformed token", err)
	}
	if !slices.Contains(algs, h.Alg) {
		return tokenError("signing algorithm not accepted", nil)
	}
	if !slices.Contains(acceptedTokenTypes, strings.ToLower(h.Typ)) {
		return tokenError("not an access token", nil)
	}
	if len(h.Crit) > 0 {
		// RFC 7515 section 4.1.11: extensions we do not understand must
		// make the token invalid.
		return tokenError("unsupported critical header", nil)
	}
	return nil
}

// bearerVerifier is the go-oidc verifier for bearer tokens of one
// discovered provider, with its own key cache.
type bearerVerifier struct {
	verifier *oidc.IDTokenVerifier
}

// bearerVerifier returns the discovery result's bearer verifier, built on
// first use (most deployments never verify a bearer token).
func (p *Provider) bearerVerifier(d *discovered, algs []string) *bearerVerifier {
	d.bearerOnce.Do(func() {
		keys := &bearerKeys{url: d.meta.JWKSURI, client: p.apiClient, now: p.now}
		for _, a := range algs {
			keys.algs = append(keys.algs, jose.SignatureAlgorithm(a))
		}
		d.bearer = &bearerVerifier{verifier: oidc.NewVerifier(p.issuer, keys, &oidc.Config{
			// The audience is checked against the configured list afterwards:
			// a bearer token is meant for an API, not for authgate's client.
			SkipClientIDCheck:    true,
			SupportedSigningAlgs: algs,
			Now:                  p.now,
		})}
	})
	return d.bearer
}

// bearerNote carries, for one verification, what the key set learnt past
// go-oidc, which flattens the key set's errors into text.
type bearerNote struct {
	// fetchErr is a transient failure to fetch keys when no key could be
	// tried: the provider is down, the token may be fine.
	fetchErr error
	// reason is the key set's verdict when it refused the signature.
	reason string
	// verified is true once the signature has been verified; issuer is
	// then the token's verified "iss".
	verified bool
	issuer   string
}

type bearerNoteKey struct{}

// bearerKeys is a key set for oidc.NewVerifier that caches the provider's
// JWKS, fetches it again when a token names a key id it does not know (at
// most every bearerKeysRefetchMin) or when it is older than
// bearerKeysMaxAge, and keeps the cached keys when a fetch fails.
type bearerKeys struct {
	url    string
	client *http.Client
	now    func() time.Time
	algs   []jose.SignatureAlgorithm

	mu       sync.Mutex
	keys     []jose.JSONWebKey
	fetched  time.Time // last successful fetch
	tried    time.Time // last attempt
	lastErr  error     // error of the last attempt, nil after a success
	inflight *keyFetch
}

type keyFetch struct {
	done chan struct{}
}

// VerifySignature implements oidc.KeySet.
func (k *bearerKeys) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	note, _ := ctx.Value(bearerNoteKey{}).(*bearerNote)
	if note == nil {
		note = &bearerNote{}
	}
	jws, err := jose.ParseSignedCompact(raw, k.algs)
	if err != nil {
		note.reason = "malformed token"
		return nil, fmt.Errorf("parse token: %w", err)
	}
	if len(jws.Signatures) != 1 {
		note.reason = "malformed token"
		return nil, errors.New("not exactly one signature")
	}
	kid := jws.Signatures[0].Header.KeyID
	keys, fetchErr := k.keysFor(ctx, kid)
	var tried bool
	for i := range keys {
		if kid != "" && keys[i].KeyID != kid {
			continue
		}
		if keys[i].Algorithm != "" && keys[i].Algorithm != jws.Signatures[0].Header.Algorithm {
			continue // RFC 7517 section 4.4: the key is meant for another algorithm
		}
		tried = true
		if payload, err := jws.Verify(&keys[i]); err == nil {
			note.verified = true
			var c struct {
				Issuer string `json:"iss"`
			}
			_ = json.Unmarshal(payload, &c)
			note.issuer = c.Issuer
			return payload, nil
		}
	}
	switch {
	case !tried && fetchErr != nil && transient(fetchErr):
		note.fetchErr = fetchErr
		return nil, fmt.Errorf("fetch keys: %w", fetchErr)
	case !tried:
		note.reason = "unknown signing key"
		return nil, fmt.Errorf("no key with id %q", kid)
	}
	note.reason = "invalid signature"
	return nil, errors.New("signature does not verify")
}

// keysFor returns the keys to try for a token naming kid, fetching them
// first when there are none yet, when they are old, or when kid is unknown,
// subject to the refetch limit. The error is that of the latest fetch
// attempt, for the caller to tell an outage from an unknown key.
func (k *bearerKeys) keysFor(ctx context.Context, kid string) ([]jose.JSONWebKey, error) {
	k.mu.Lock()
	now := k.now()
	stale := k.fetched.IsZero() || now.Sub(k.fetched) >= bearerKeysMaxAge ||
		kid != "" && !slices.ContainsFunc(k.keys, func(j jose.JSONWebKey) bool { return j.KeyID == kid })
	mayFetch := k.tried.IsZero() || now.Sub(k.tried) >= bearerKeysRefetchMin || now.Before(k.tried)
	if !stale || !mayFetch && k.inflight == nil {
		keys, err := k.keys, k.lastErr
		k.mu.Unlock()
		return keys, err
	}
	f := k.inflight
	if f == nil {
		f = &keyFetch{done: make(chan struct{})}
		k.inflight = f
		k.tried = now
		go k.fetch(f)
	}
	k.mu.Unlock()

	select {
	case <-f.done:
	case <-ctx.Done():
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.keys, k.lastErr
}

// fetch replaces the cached keys with the provider's current JWKS. It runs
// detached from any request, so that a client going away does not fail the
// fetch for the others waiting on it.
func (k *bearerKeys) fetch(f *keyFetch) {
	ctx, cancel := context.WithTimeout(context.Background(), bearerKeysFetchTimeout)
	defer cancel()
	keys, err := k.get(ctx)
	k.mu.Lock()
	k.lastErr = err
	if err == nil {
		k.keys = keys
		k.fetched = k.now()
	}
	k.inflight = nil
	k.mu.Unlock()
	close(f.done)
}

func (k *bearerKeys) get(ctx context.Context) ([]jose.JSONWebKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return nil, fmt.Errorf("build JWKS request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("get JWKS: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSSize+1))
	if err != nil {
		return nil, fmt.Errorf("read JWKS: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("get JWKS: provider answered %s", resp.Status)
	}
	if len(body) > maxJWKSSize {
		return nil, errors.New("JWKS larger than 1 MiB")
	}
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("decode JWKS: %w", err)
	}
	var keys []jose.JSONWebKey
	for _, raw := range doc.Keys {
		var key jose.JSONWebKey
		if err := json.Unmarshal(raw, &key); err != nil {
			continue // a key type we do not know; the others still count
		}
		if key.Use != "" && key.Use != "sig" {
			continue
		}
		switch key.Key.(type) {
		case []byte:
			continue // a symmetric key is never a provider's signing key
		}
		if !key.IsPublic() {
			key = key.Public() // a published private key: use only its public half
		}
		if key.Valid() {
			keys = append(keys, key)
		}
	}
	return keys, nil
}
