package proxy

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/authgate/authgate/session"
)

// problemSessionTooLarge names the cause and the fix of a session the
// cookie store cannot hold: it is the deployment's fault, not the user's
// nor an outage, so 503 (try again) would mislead.
var problemSessionTooLarge = problem{
	Status: http.StatusInternalServerError,
	Code:   "session_too_large",
	Description: "Your sign-in succeeded, but the identity provider's tokens are too large to keep in a browser cookie " +
		"(too many groups or roles in them). The operator can fix this by setting AUTHGATE_SESSION_STORE=redis, " +
		"which keeps sessions in Redis and only a short ticket in the cookie, or by asking the identity provider for fewer claims.",
}

// sessionTooLarge reports whether err says that s does not fit in the
// cookie store. The first time, it logs the sizes (not the tokens) so that
// the operator sees why; later ones are logged at Debug, since every login
// of such a user would repeat the same line.
func (h *Handler) sessionTooLarge(r *http.Request, s *session.Session, err error) bool {
	var tl *session.TooLargeError
	if !errors.As(err, &tl) {
		return false
	}
	level := slog.LevelDebug
	h.tooLargeOnce.Do(func() { level = slog.LevelError })
	h.log.LogAttrs(r.Context(), level, "session too large for the cookie store: set AUTHGATE_SESSION_STORE=redis",
		slog.String(attrRequestID, r.Header.Get(h.requestIDHeader)),
		slog.Int("sealed_bytes", tl.Bytes),
		slog.Int("cookies_needed", tl.Chunks),
		slog.Int("cookies_allowed", session.MaxChunks),
		slog.Int("access_token_bytes", len(s.AccessToken)),
		slog.Int("id_token_bytes", len(s.IDToken)),
		slog.Int("refresh_token_bytes", len(s.RefreshToken)),
		slog.Int("groups", len(s.Groups)))
	return true
}
