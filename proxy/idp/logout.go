package idp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// backchannelLogoutEvent is the member of a logout token's "events" claim
// that makes it a logout token (OpenID Connect Back-Channel Logout 1.0
// section 2.4).
const backchannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout"

// MaxLogoutTokenAge bounds how old (by "iat") a logout token may be. The
// caller must remember seen "jti" values at least this long plus the clock
// skew, so that a replayed token is refused for as long as it is accepted.
const MaxLogoutTokenAge = 5 * time.Minute

// Logout is what a verified back-channel logout token asks for: end every
// session of Subject, or the one IdP session SessionID, or both.
type Logout struct {
	Subject   string
	SessionID string
	// JTI identifies the token; the caller refuses one it has seen before.
	JTI      string
	IssuedAt time.Time
}

// VerifyLogoutToken verifies a back-channel logout token as OpenID Connect
// Back-Channel Logout 1.0 section 2.6 requires: signature with the
// provider's keys and an advertised algorithm, iss, aud containing our
// client ID, iat (present, not in the future, at most MaxLogoutTokenAge
// old), a jti, the back-channel logout event, sub or sid, and no nonce (so
// that an ID token cannot be passed off as a logout token). A "typ" header,
// when present, must be "logout+jwt" (section 2.4). Replay of the jti is
// the caller's to check. Failures wrap ErrInvalidToken, or ErrUnavailable
// when the provider's keys could not be fetched.
func (p *Provider) VerifyLogoutToken(ctx context.Context, raw string) (*Logout, error) {
	d, err := p.ready()
	if err != nil {
		return nil, err
	}
	if len(raw) > maxBearerLen {
		return nil, fmt.Errorf("verify logout token: %w: too long", ErrInvalidToken)
	}
	algs := make([]jose.SignatureAlgorithm, 0, 10)
	for _, a := range signingAlgs(d.meta.IDTokenSigningAlgs) {
		algs = append(algs, jose.SignatureAlgorithm(a))
	}
	if len(algs) == 0 {
		algs = append(algs, jose.RS256)
	}
	jws, err := jose.ParseSignedCompact(raw, algs)
	if err != nil {
		return nil, fmt.Errorf("verify logout token: %w: %w", ErrInvalidToken, err)
	}
	if typ, ok := jws.Signatures[0].Header.ExtraHeaders[jose.HeaderType].(string); ok && typ != "logout+jwt" && typ != "application/logout+jwt" {
		return nil, fmt.Errorf("verify logout token: %w: typ %q is not logout+jwt", ErrInvalidToken, typ)
	}

	note := &keyFetchNote{}
	idt, err := d.verifier.Verify(context.WithValue(ctx, keyFetchNoteKey{}, note), raw)
	if err != nil {
		if note.err != nil {
			return nil, fmt.Errorf("verify logout token: %w: fetch keys: %w", ErrUnavailable, note.err)
		}
		return nil, fmt.Errorf("verify logout token: %w: %w", ErrInvalidToken, err)
	}
	var c struct {
		IAT    *json.Number               `json:"iat"`
		JTI    string                     `json:"jti"`
		SID    string                     `json:"sid"`
		Nonce  *json.RawMessage           `json:"nonce"`
		Events map[string]json.RawMessage `json:"events"`
	}
	if err := idt.Claims(&c); err != nil {
		return nil, fmt.Errorf("verify logout token: %w: %w", ErrInvalidToken, err)
	}
	if err := checkLogoutClaims(c.IAT != nil, idt.IssuedAt, c.JTI, idt.Subject, c.SID, c.Nonce != nil, c.Events, p.now()); err != nil {
		return nil, fmt.Errorf("verify logout token: %w: %w", ErrInvalidToken, err)
	}
	return &Logout{Subject: idt.Subject, SessionID: c.SID, JTI: c.JTI, IssuedAt: idt.IssuedAt}, nil
}

func checkLogoutClaims(hasIAT bool, iat time.Time, jti, sub, sid string, hasNonce bool, events map[string]json.RawMessage, now time.Time) error {
	switch {
	case !hasIAT:
		return errors.New("no iat")
	case iat.After(now.Add(clockSkew)):
		return errors.New("iat is in the future")
	case iat.Before(now.Add(-MaxLogoutTokenAge - clockSkew)):
		return errors.New("iat is too old")
	case jti == "":
		return errors.New("no jti")
	case sub == "" && sid == "":
		return errors.New("neither sub nor sid")
	case hasNonce:
		// Section 2.4: a logout token must not carry a nonce, which keeps
		// an ID token from being accepted as one.
		return errors.New("nonce present")
	}
	event, ok := events[backchannelLogoutEvent]
	if !ok {
		return errors.New("no back-channel logout event")
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(event, &obj); err != nil || obj == nil {
		return errors.New("back-channel logout event is not a JSON object")
	}
	return nil
}

// BackchannelLogoutSupported reports what discovery advertised: whether the
// provider sends back-channel logout tokens at all, and whether they carry
// "sid" (OpenID Connect Back-Channel Logout 1.0 section 2.1). Both are false
// before discovery.
func (p *Provider) BackchannelLogoutSupported() (supported, sessionSupported bool) {
	d, err := p.ready()
	if err != nil {
		return false, false
	}
	return d.meta.BackchannelLogoutSupported, d.meta.BackchannelLogoutSessionSupported
}
