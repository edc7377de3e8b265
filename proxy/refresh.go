package proxy

import (
	"context"
	"crypto/sha256"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/authgate/authgate/proxy/idp"
	"github.com/authgate/authgate/session"
)

// refreshTimeout bounds one refresh at the IdP; it runs detached from the
// request that started it so that other waiters still get its result.
const refreshTimeout = 15 * time.Second

// failedRefreshMemory is how long a transient refresh failure is shared
// with later requests of the same session, so that a burst of requests
// against an IdP that is down makes one call, not hundreds.
const failedRefreshMemory = 2 * time.Second

// refresher runs at most one refresh per (session, refresh token) at a time
// and remembers the outcome for a grace window: requests that still carry
// the pre-refresh cookie get the refreshed session instead of redeeming a
// refresh token that a rotating IdP has already spent.
type refresher struct {
	provider Provider
	grace    time.Duration
	now      func() time.Time

	mu    sync.Mutex
	calls map[refreshKey]*refreshCall
	// sweepAt is when finished calls are next purged.
	sweepAt time.Time
}

type refreshKey struct {
	session string
	token   [sha256.Size]byte
}

type refreshCall struct {
	done     chan struct{}
	result   *session.Session
	err      error
	forgetAt time.Time // set when done
}

func newRefresher(p Provider, grace time.Duration, now func() time.Time) *refresher {
	return &refresher{provider: p, grace: grace, now: now, calls: make(map[refreshKey]*refreshCall)}
}

// refresh returns s with fresh tokens. shared reports that the result came
// from a refresh another request started.
func (f *refresher) refresh(ctx context.Context, s *session.Session) (fresh *session.Session, shared bool, err error) {
	key := refreshKey{session: s.ID, token: sha256.Sum256([]byte(s.RefreshToken))}
	f.mu.Lock()
	now := f.now()
	if now.After(f.sweepAt) {
		for k, c := range f.calls {
			if !c.forgetAt.IsZero() && now.After(c.forgetAt) {
				delete(f.calls, k)
			}
		}
		f.sweepAt = now.Add(f.grace)
	}
	if c, ok := f.calls[key]; ok && (c.forgetAt.IsZero() || now.Before(c.forgetAt)) {
		f.mu.Unlock()
		select {
		case <-c.done:
			return c.result, true, c.err
		case <-ctx.Done():
			return nil, true, ctx.Err()
		}
	}
	c := &refreshCall{done: make(chan struct{})}
	f.calls[key] = c
	f.mu.Unlock()

	// Detached: the request that happens to run the refresh may go away, but
	// the result belongs to every request of this session.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), refreshTimeout)
	tokens, err := f.provider.Refresh(rctx, s.RefreshToken, s.Subject)
	cancel()
	if err == nil {
		next := *s
		next.AccessToken = tokens.AccessToken
		next.Expiry = tokens.Expiry
		next.TokenIssuedAt = f.now()
		if tokens.RefreshToken != "" {
			next.RefreshToken = tokens.RefreshToken
		}
		if tokens.IDToken != "" {
			next.IDToken = tokens.IDToken
		}
		c.result = &next
	}
	c.err = err

	f.mu.Lock()
	memory := f.grace
	if err != nil && !errors.Is(err, idp.ErrInvalidGrant) {
		memory = failedRefreshMemory
	}
	c.forgetAt = f.now().Add(memory)
	f.mu.Unlock()
	close(c.done)
	return c.result, false, err
}

// refreshSkew is how long before expiry the session's token is refreshed:
// the configured skew, but at most half the token's lifetime, so that an IdP
// issuing tokens shorter than the skew does not get a refresh on every
// request.
func refreshSkew(configured time.Duration, s *session.Session) time.Duration {
	if s.TokenIssuedAt.IsZero() {
		return configured
	}
	if half := s.Expiry.Sub(s.TokenIssuedAt) / 2; half < configured {
		return max(half, 0)
	}
	return configured
}

// fresh returns a session whose access token is valid for at least the
// refresh skew, refreshing it when needed (the new cookie goes into w's
// headers). ok=false means the request has been answered: by
// unauthenticated when a new login is needed, or with 503 when the IdP is
// down and the token has expired.
func (h *Handler) fresh(w http.ResponseWriter, r *http.Request, s *session.Session, unauthenticated func()) (_ *session.Session, ok bool) {
	now := h.now()
	if s.Expiry.IsZero() || now.Before(s.Expiry.Add(-refreshSkew(h.refreshSkew, s))) {
		return s, true
	}
	valid := now.Before(s.Expiry)
	if s.RefreshToken == "" {
		if valid {
			return s, true
		}
		unauthenticated()
		return nil, false
	}

	reqID := slog.String(attrRequestID, r.Header.Get(h.requestIDHeader))
	next, shared, err := h.refresher.refresh(r.Context(), s)
	switch {
	case err == nil:
		if !shared {
			h.metrics.refresh(refreshSucceeded)
			h.log.LogAttrs(r.Context(), slog.LevelDebug, "access token refreshed", reqID, slog.Any(attrSession, next))
		}
		if err := h.store.Save(w, r, next); err != nil {
			// The refreshed tokens are good; serve this request with them
			// and let the next one try to store them again.
			h.log.LogAttrs(r.Context(), slog.LevelError, "save refreshed session", reqID, slog.String(attrError, err.Error()))
		}
		return next, true
	case errors.Is(err, idp.ErrInvalidGrant):
		if !shared {
			h.metrics.refresh(refreshRejected)
			h.log.LogAttrs(r.Context(), slog.LevelInfo, "refresh token rejected; session ended", reqID, slog.Any(attrSession, s))
		}
		_ = h.store.Delete(w, r, s)
		unauthenticated()
		return nil, false
	default:
		if !shared {
			h.metrics.refresh(refreshFailed)
		}
		h.log.LogAttrs(r.Context(), slog.LevelWarn, "refresh failed; session kept", reqID,
			slog.Bool("token_still_valid", valid), slog.String(attrError, err.Error()))
		if valid {
			return s, true
		}
		if r.Context().Err() != nil {
			return nil, false // the client went away while waiting
		}
		h.writeError(w, r, problemIdPUnavailable)
		h.metrics.request(outcomeError, problemIdPUnavailable.Status)
		return nil, false
	}
}
