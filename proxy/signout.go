package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/authgate/authgate/session"
)

// revokeTimeout bounds the best-effort refresh-token revocation at sign-out.
const revokeTimeout = 5 * time.Second

// serveSignOut ends the session: it remembers the session as revoked (so a
// captured cookie replayed later is refused), revokes the refresh token at
// the IdP when it offers a revocation endpoint (RFC 7009), clears every
// cookie chunk, and ends the IdP session through its end_session_endpoint
// (OpenID Connect RP-Initiated Logout 1.0) when discovery offers one. When
// the session store cannot be read it answers 503 and changes nothing.
func (h *Handler) serveSignOut(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		h.writeError(w, r, problem{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed", Description: "Use GET or POST."})
		return
	}
	rd := r.URL.Query().Get("rd")
	if r.Method == http.MethodPost && rd == "" {
		rd = r.PostFormValue("rd")
	}
	rdGiven := rd != ""
	rd = h.safeRedirect(rd)
	reqID := slog.String(attrRequestID, r.Header.Get(h.requestIDHeader))
	switch signOutDecision(r) {
	case signOutConfirm:
		h.confirmSignOut(w, r, rd)
		return
	case signOutRefuse:
		h.log.LogAttrs(r.Context(), slog.LevelWarn, "cross-site sign-out refused", reqID,
			slog.String(attrReason, "Sec-Fetch-Site "+truncate(r.Header.Get("Sec-Fetch-Site"), 32)+", Origin "+truncate(r.Header.Get("Origin"), 100)))
		h.writeError(w, r, problem{Status: http.StatusForbidden, Code: "cross_site_sign_out",
			Description: "Sign-out was requested by another site and was refused."})
		return
	}

	s, err := h.store.Load(r)
	switch {
	case errors.Is(err, session.ErrNotFound):
		s = nil // nothing to end; still clear whatever cookies are there
	case err != nil:
		// The store is down: the session cannot be ended, and clearing the
		// cookie alone would leave it alive for any copy of the ticket.
		// Keep the cookie so that the user can try again.
		h.log.LogAttrs(r.Context(), slog.LevelError, "sign-out: session store unavailable", reqID, slog.String(attrError, err.Error()))
		h.writeError(w, r, problemStoreUnavailable)
		return
	}
	var idTokenHint string
	if s != nil {
		idTokenHint = s.IDToken
		h.revoke(r.Context(), session.Revocation{SessionID: s.ID, Until: s.ExpiresAt})
		if s.RefreshToken != "" {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), revokeTimeout)
			if err := h.provider.Revoke(ctx, s.RefreshToken); err != nil {
				h.log.LogAttrs(r.Context(), slog.LevelWarn, "refresh token revocation failed", reqID, slog.String(attrError, err.Error()))
			}
			cancel()
		}
		h.log.LogAttrs(r.Context(), slog.LevelInfo, "sign-out", reqID, slog.Any(attrSession, s))
	}
	if err := h.store.Delete(w, r, s); err != nil {
		h.log.LogAttrs(r.Context(), slog.LevelError, "delete session", reqID, slog.String(attrError, err.Error()))
	}

	if idTokenHint != "" {
		if u, ok := h.provider.EndSessionURL(idTokenHint, h.postLogoutRedirectURL, ""); ok {
			redirect(w, u)
			return
		}
	}
	if !rdGiven && h.postLogoutRedirectURL != "" {
		// No end_session_endpoint (Google): land where the IdP would have
		// sent the browser back to, as with one.
		redirect(w, h.postLogoutRedirectURL)
		return
	}
	redirect(w, rd)
}

// serveUserinfo returns the session's identity as JSON, never its tokens.
func (h *Handler) serveUserinfo(w http.ResponseWriter, r *http.Request) {
	s, ok := h.loadSession(w, r)
	if !ok {
		return
	}
	if s == nil {
		h.writeError(w, r, problemUnauthenticated)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	info := struct {
		Subject           string    `json:"sub"`
		Email             string    `json:"email,omitempty"`
		EmailVerified     *bool     `json:"email_verified,omitempty"`
		PreferredUsername string    `json:"preferred_username,omitempty"`
		Name              string    `json:"name,omitempty"`
		Groups            []string  `json:"groups,omitempty"`
		SessionExpiresAt  time.Time `json:"session_expires_at"`
		TokenExpiresAt    time.Time `json:"access_token_expires_at,omitzero"`
	}{s.Subject, s.Email, s.EmailVerified, s.PreferredUsername, s.Name, s.Groups, s.ExpiresAt.UTC(), s.Expiry.UTC()}
	_ = json.NewEncoder(w).Encode(info)
}
