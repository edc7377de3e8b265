package idp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
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

// nbfLeeway is the clock skew allowed on "nbf", as go-oidc allows for ID
// tokens.
const nbfLeeway = 5 * time.Minute

// acceptedLogoutTypes are the JWS "typ" values (compared in lower case, as
// media types are) a logout token may carry besides none.
var acceptedLogoutTypes = []string{"logout+jwt", "application/logout+jwt", "jwt"}

// numericDate decodes a NumericDate (RFC 7519 section 2): seconds since the
// epoch, possibly with a fraction.
func numericDate(n json.Number) (time.Time, error) {
	f, err := n.Float64()
	if err != nil {
		return time.Time{}, fmt.Errorf("not a NumericDate: %w", err)
	}
	return time.Unix(int64(f), 0), nil
}

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
// old), exp (when present) not past, nbf (when present) reached, a jti, the
// back-channel logout event, sub or sid, and no nonce (so that an ID token
// cannot be passed off as a logout token). Dates must be JSON numbers
// (RFC 7519 section 2, NumericDate). Replay of the jti is the caller's to
// check. Failures wrap ErrInvalidToken, or ErrUnavailable when the
// provider's keys could not be fetched.
//
// Two things real providers send are accepted on purpose:
//   - "typ" absent or "JWT" (Ory Hydra v2 sends "JWT"). Section 2.4 asks for
//     "logout+jwt", but the events claim and the missing nonce already tell
//     a logout token from an ID token; a "typ" naming another kind of token
//     (at+jwt, a DPoP proof, …) is still refused.
//   - no "exp". Back-Channel Logout 1.0 before its errata set did not list
//     exp, and providers built to it omit it; the token's age is then
//     bounded by iat alone, which is checked in every case.
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
	if typ, present := jws.Signatures[0].Header.ExtraHeaders[jose.HeaderType]; present {
		s, _ := typ.(string)
		if !slices.Contains(acceptedLogoutTypes, strings.ToLower(s)) {
			return nil, fmt.Errorf("verify logout token: %w: typ %q is neither logout+jwt nor JWT", ErrInvalidToken, truncate(s, 32))
		}
	}

	note := &keyFetchNote{}
	idt, err := d.logoutVerifier.Verify(context.WithValue(ctx, keyFetchNoteKey{}, note), raw)
	if err != nil {
		if note.err != nil {
			return nil, fmt.Errorf("verify logout token: %w: fetch keys: %w", ErrUnavailable, note.err)
		}
		return nil, fmt.Errorf("verify logout token: %w: %w", ErrInvalidToken, err)
	}
	var c struct {
		IAT    *json.Number               `json:"iat"`
		EXP    *json.Number               `json:"exp"`
		NBF    *json.Number               `json:"nbf"`
		JTI    string                     `json:"jti"`
		SID    string                     `json:"sid"`
		Nonce  *json.RawMessage           `json:"nonce"`
		Events map[string]json.RawMessage `json:"events"`
	}
	if err := idt.Claims(&c); err != nil {
		return nil, fmt.Errorf("verify logout token: %w: %w", ErrInvalidToken, err)
	}
	var all map[string]json.RawMessage
	if err := idt.Claims(&all); err != nil {
		return nil, fmt.Errorf("verify logout token: %w: %w", ErrInvalidToken, err)
	}
	if err := checkNumericDates(all); err != nil {
		return nil, fmt.Errorf("verify logout token: %w: %w", ErrInvalidToken, err)
	}
	now := p.now()
	// The verifier skipped exp and nbf (go-oidc treats a missing exp as
	// expired); they are checked here, when present, as go-oidc would.
	if c.EXP != nil {
		exp, err := numericDate(*c.EXP)
		if err != nil {
			return nil, fmt.Errorf("verify logout token: %w: exp: %w", ErrInvalidToken, err)
		}
		if exp.Before(now) {
			return nil, fmt.Errorf("verify logout token: %w: token is expired", ErrInvalidToken)
		}
	}
	if c.NBF != nil {
		nbf, err := numericDate(*c.NBF)
		if err != nil {
			return nil, fmt.Errorf("verify logout token: %w: nbf: %w", ErrInvalidToken, err)
		}
		if nbf.After(now.Add(nbfLeeway)) {
			return nil, fmt.Errorf("verify logout token: %w: nbf is in the future", ErrInvalidToken)
		}
	}
	if err := checkLogoutClaims(c.IAT != nil, idt.IssuedAt, c.JTI, idt.Subject, c.SID, c.Nonce != nil, c.Events, now); err != nil {
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
