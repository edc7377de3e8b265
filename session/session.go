// Package session holds what authgate knows about a signed-in browser and
// keeps it between requests: the Session value, the Store interface and the
// sealed-cookie store that is the default for a single replica.
package session

import (
	"errors"
	"log/slog"
	"net/http"
	"time"
)

// ErrNotFound reports that a request carries no usable session: the cookie is
// missing, expired, tampered, truncated, sealed with a retired key or
// undecodable. It is never a system fault; callers start a fresh login.
var ErrNotFound = errors.New("session: no session")

// Session is one signed-in browser. Tokens are plain strings because they
// travel to the upstream verbatim; LogValue keeps them out of logs.
type Session struct {
	// ID is random (128 bits, base64url) and stable across refreshes. It
	// names the session in revocation lists and server-side stores.
	ID string

	Subject           string
	Email             string
	EmailVerified     *bool // nil when the IdP did not say
	PreferredUsername string
	Name              string
	Groups            []string
	// IDPSessionID is the ID token's "sid" claim, used by back-channel logout.
	IDPSessionID string
	// Claims are the user's merged ID-token and userinfo claims as a JSON
	// object, for route rules that read them; empty when no rule does
	// (cookies are size-limited, so they are kept only when needed).
	Claims string

	AccessToken  string
	RefreshToken string
	IDToken      string
	// Expiry is when the access token expires; zero means unknown (never
	// refreshed proactively).
	Expiry time.Time
	// TokenIssuedAt is when authgate obtained the access token (at login or
	// the latest refresh); with Expiry it gives the token's lifetime, which
	// bounds how early a refresh may start. Zero means unknown.
	TokenIssuedAt time.Time

	// IssuedAt is when the user logged in; ExpiresAt is the absolute end of
	// the session (IssuedAt + the configured session TTL).
	IssuedAt  time.Time
	ExpiresAt time.Time

	// User is what X-Forwarded-User says when it is not Subject (a
	// configured user claim); empty means Subject.
	User string
}

// LogValue reports only non-secret identifiers, so a Session passed to a
// logger never leaks a token.
func (s *Session) LogValue() slog.Value {
	if s == nil {
		return slog.StringValue("<nil>")
	}
	return slog.GroupValue(
		slog.String("session_id", s.ID),
		slog.String("sub", s.Subject),
	)
}

// Store keeps sessions between requests.
//
// Load returns ErrNotFound for every client-side fault (missing, expired,
// tampered, undecodable); any other error is a system fault (for example a
// store that cannot be reached) and must not end the user's session.
// Save writes the session and whatever cookie points at it to w. Delete
// removes the session and clears its cookies.
type Store interface {
	Load(r *http.Request) (*Session, error)
	Save(w http.ResponseWriter, r *http.Request, s *Session) error
	Delete(w http.ResponseWriter, r *http.Request, s *Session) error
}
