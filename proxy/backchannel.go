package proxy

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/authgate/authgate/proxy/idp"
	"github.com/authgate/authgate/session"
)

// jtiMemory is how long a logout token id is remembered: longer than a
// token is accepted (idp.MaxLogoutTokenAge plus clock skew), so that a
// replayed token is refused for as long as it would verify.
const jtiMemory = idp.MaxLogoutTokenAge + 5*time.Minute

// maxLogoutRequest bounds the form the IdP posts.
const maxLogoutRequest = 64 << 10

// serveBackchannelLogout ends sessions on the IdP's word (OpenID Connect
// Back-Channel Logout 1.0 section 2.5): a POSTed logout_token that verifies
// and was not seen before ends the IdP session it names ("sid"), or every
// session of its subject logged in before now ("sub" alone). The end is
// recorded in the revocation list (shared with the other replicas when a
// feed is configured), which every request checks and which closes the
// session's WebSockets and event streams; a shared store also deletes the
// sessions. Answers are 200, or 400 with an OAuth error body (section 2.8);
// 503 when the IdP's keys or the replay store cannot be reached, so that
// the IdP tries again.
func (h *Handler) serveBackchannelLogout(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		h.writeError(w, r, problem{Status: http.StatusMethodNotAllowed, Code: "invalid_request", Description: "Use POST."})
		return
	}
	reqID := slog.String(attrRequestID, r.Header.Get(h.requestIDHeader))
	r.Body = http.MaxBytesReader(w, r.Body, maxLogoutRequest)
	raw := r.PostFormValue("logout_token")
	if raw == "" {
		h.logoutRejected(w, r, "no logout_token in the form", "The logout_token parameter is required.")
		return
	}
	lo, err := h.logout.VerifyLogoutToken(r.Context(), raw)
	switch {
	case errors.Is(err, idp.ErrUnavailable), errors.Is(err, idp.ErrNotReady):
		h.log.LogAttrs(r.Context(), slog.LevelWarn, "back-channel logout deferred: identity provider keys unavailable", reqID, slog.String(attrError, err.Error()))
		h.writeError(w, r, problem{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable", Description: "Try again shortly.", RetryAfter: 5})
		return
	case err != nil:
		h.logoutRejected(w, r, err.Error(), "The logout_token is not valid.")
		return
	}
	fresh, err := h.claimJTI(r.Context(), lo.JTI)
	if err != nil {
		h.log.LogAttrs(r.Context(), slog.LevelError, "back-channel logout deferred: replay store unavailable", reqID, slog.String(attrError, err.Error()))
		h.writeError(w, r, problem{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable", Description: "Try again shortly.", RetryAfter: 5})
		return
	}
	if !fresh {
		h.logoutRejected(w, r, "logout token replayed (jti seen before)", "The logout_token was already used.")
		return
	}

	now := h.now()
	rev := session.Revocation{Until: now.Add(h.sessionTTL)}
	if lo.SessionID != "" {
		rev.IDPSessionID = lo.SessionID
	} else {
		rev.Subject, rev.IssuedBefore = lo.Subject, now
	}
	h.revoke(r.Context(), rev)
	deleted := 0
	if h.shared != nil {
		// Best effort: the revocation above already refuses these sessions
		// on every replica; deleting them frees the store.
		ctx := context.WithoutCancel(r.Context())
		if lo.SessionID != "" {
			deleted, err = h.shared.DeleteByIDPSession(ctx, lo.SessionID)
		} else {
			deleted, err = h.shared.DeleteBySubject(ctx, lo.Subject)
		}
		if err != nil {
			h.log.LogAttrs(r.Context(), slog.LevelError, "back-channel logout: delete sessions", reqID, slog.String(attrError, err.Error()))
		}
	}
	h.log.LogAttrs(r.Context(), slog.LevelInfo, "back-channel logout", reqID,
		slog.String(attrSubject, lo.Subject), slog.Bool("by_sid", lo.SessionID != ""), slog.Int("sessions_deleted", deleted))
	w.WriteHeader(http.StatusOK)
}

func (h *Handler) logoutRejected(w http.ResponseWriter, r *http.Request, why, desc string) {
	h.log.LogAttrs(r.Context(), slog.LevelWarn, "back-channel logout rejected",
		slog.String(attrRequestID, r.Header.Get(h.requestIDHeader)), slog.String(attrReason, why))
	h.writeError(w, r, problem{Status: http.StatusBadRequest, Code: "invalid_request", Description: desc})
}

// claimJTI reports whether a logout token id is new, across replicas when a
// ReplayGuard is configured.
func (h *Handler) claimJTI(ctx context.Context, jti string) (bool, error) {
	if h.replay != nil {
		return h.replay.ClaimJTI(ctx, jti, jtiMemory)
	}
	return h.jtis.claim(jti, h.now().Add(jtiMemory)), nil
}

// revoke ends sessions before their cookies expire: in this process at
// once, and on the other replicas through the feed when there is one.
func (h *Handler) revoke(ctx context.Context, rev session.Revocation) {
	if h.feed == nil {
		h.revocations.Add(rev)
		return
	}
	if err := h.feed.Publish(context.WithoutCancel(ctx), rev); err != nil {
		// Publish has added it here already; the other replicas learn of
		// it when the feed reloads the stored list after the outage.
		h.log.LogAttrs(ctx, slog.LevelError, "share revocation with other replicas", slog.String(attrError, err.Error()))
	}
}
