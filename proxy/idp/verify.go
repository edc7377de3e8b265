package idp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

const (
	// clockSkew is how far the provider's clock may run ahead of ours.
	clockSkew = 2 * time.Minute
	// maxIDTokenAge bounds how old a freshly exchanged ID token may be.
	// Providers mint it at the authorization or the token request, and an
	// authorization code lives at most 10 minutes (RFC 6749 section 4.1.2),
	// so an older one is a replay or a badly wrong clock (OpenID Connect
	// Core 3.1.3.7 step 10 leaves the bound to the client).
	maxIDTokenAge = 10 * time.Minute
)

// verifyIDToken runs go-oidc's checks (signature with an advertised
// algorithm, iss, aud contains ClientID, exp, nbf) and then what go-oidc
// leaves to the caller, except the nonce: aud is exactly [ClientID], azp,
// iat and at_hash. fresh adds the maximum age, for ID tokens from a code
// exchange. Failures wrap ErrInvalidToken, or ErrUnavailable when the
// provider's keys could not be fetched.
func (p *Provider) verifyIDToken(ctx context.Context, d *discovered, raw, accessToken string, fresh bool) (*oidc.IDToken, *claimSet, error) {
	note := &keyFetchNote{}
	idt, err := d.verifier.Verify(context.WithValue(ctx, keyFetchNoteKey{}, note), raw)
	if err != nil {
		if note.err != nil {
			return nil, nil, fmt.Errorf("verify id token: %w: fetch keys: %w", ErrUnavailable, note.err)
		}
		return nil, nil, fmt.Errorf("verify id token: %w: %w", ErrInvalidToken, err)
	}
	var c claimSet
	if err := idt.Claims(&c); err != nil {
		return nil, nil, fmt.Errorf("verify id token: %w: %w", ErrInvalidToken, err)
	}
	if err := checkNumericDates(c.Rest); err != nil {
		return nil, nil, fmt.Errorf("verify id token: %w: %w", ErrInvalidToken, err)
	}
	if err := p.checkClaims(idt, &c, accessToken, fresh); err != nil {
		return nil, nil, fmt.Errorf("verify id token: %w: %w", ErrInvalidToken, err)
	}
	return idt, &c, nil
}

func (p *Provider) checkClaims(idt *oidc.IDToken, c *claimSet, accessToken string, fresh bool) error {
	if idt.Subject == "" {
		return errors.New("no sub")
	}
	// OpenID Connect Core 3.1.3.7 steps 4 and 5: several audiences need an
	// azp, and an azp must be us.
	if c.AZP != nil && *c.AZP != p.clientID {
		return fmt.Errorf("azp %q is not the client ID", *c.AZP)
	}
	if len(idt.Audience) > 1 && c.AZP == nil {
		return errors.New("several audiences and no azp")
	}
	// Step 3 lets a client reject audiences it does not trust; authgate
	// trusts none but itself, so a token also meant for another party
	// (which could replay it to us, or we to it) is refused.
	if len(idt.Audience) != 1 || idt.Audience[0] != p.clientID {
		return fmt.Errorf("audience %q is not exactly the client ID", idt.Audience)
	}
	// iat is REQUIRED (Core section 2); step 10 leaves its bounds to us.
	if len(c.IAT) == 0 || string(c.IAT) == "null" {
		return errors.New("no iat")
	}
	now := p.now()
	if idt.IssuedAt.After(now.Add(clockSkew)) {
		return fmt.Errorf("iat %s is in the future", idt.IssuedAt.UTC().Format(time.RFC3339))
	}
	if fresh && idt.IssuedAt.Before(now.Add(-maxIDTokenAge-clockSkew)) {
		return fmt.Errorf("iat %s is too old", idt.IssuedAt.UTC().Format(time.RFC3339))
	}
	// Core 3.1.3.8: in the code flow at_hash is optional; when present it
	// must match the access token we were given with it.
	if idt.AccessTokenHash != "" {
		if err := idt.VerifyAccessToken(accessToken); err != nil {
			return fmt.Errorf("check at_hash: %w", err)
		}
	}
	return nil
}

// claimSet holds the claims authgate reads from an ID token or a userinfo
// answer beyond those go-oidc parses.
type claimSet struct {
	IAT               json.RawMessage            `json:"iat"`
	AZP               *string                    `json:"azp"`
	SID               string                     `json:"sid"`
	Email             string                     `json:"email"`
	EmailVerified     *flexBool                  `json:"email_verified"`
	Name              string                     `json:"name"`
	PreferredUsername string                     `json:"preferred_username"`
	Rest              map[string]json.RawMessage `json:"-"`
}

// UnmarshalJSON decodes the known claims and keeps all of them in Rest, for
// the configurable groups claim.
func (c *claimSet) UnmarshalJSON(b []byte) error {
	type plain claimSet
	if err := json.Unmarshal(b, (*plain)(c)); err != nil {
		return err
	}
	return json.Unmarshal(b, &c.Rest)
}

// identity reads who the user is from c, with the configured claim names:
// groups at the groups path, the email from the email claim (its
// email_verified only when that claim is "email"), the user from the user
// claim ("sub" by default).
func (p *Provider) identity(sub string, c *claimSet) *Identity {
	id := &Identity{
		Subject:           sub,
		User:              sub,
		PreferredUsername: c.PreferredUsername,
		Name:              c.Name,
		SessionID:         c.SID,
	}
	if raw, ok := lookupClaim(c.Rest, p.groupsClaim); ok {
		id.Groups = groups(raw)
	}
	if p.emailClaim == "email" {
		id.Email = c.Email
		if c.EmailVerified != nil {
			v := bool(*c.EmailVerified)
			id.EmailVerified = &v
		}
	} else {
		// email_verified speaks of "email", not of this claim.
		id.Email = stringClaim(c.Rest, p.emailClaim)
	}
	if p.userClaim != "sub" {
		id.User = stringClaim(c.Rest, p.userClaim)
	}
	return id
}

// groups accepts a JSON array of strings or a single string; anything else
// (absent, null, objects) gives no groups, which grants nothing.
func groups(raw json.RawMessage) []string {
	if len(raw) == 0 {
		return nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err == nil {
		return list
	}
	var one string
	if err := json.Unmarshal(raw, &one); err == nil && one != "" {
		return []string{one}
	}
	return nil
}

// flexBool accepts true and "true": some providers (AWS Cognito) send
// email_verified as a string. Any other value reads as false, never as an
// error that would fail the login.
type flexBool bool

func (b *flexBool) UnmarshalJSON(data []byte) error {
	s := string(data)
	*b = flexBool(s == "true" || s == `"true"`)
	return nil
}
