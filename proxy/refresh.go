package proxy

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"

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
	grace time.Duration
	now   func() time.Time

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

func newRefresher(grace time.Duration, now func() time.Time) *refresher {
	return &refresher{grace: grace, now: now, calls: make(map[refreshKey]*refreshCall)}
}

// refresh runs work at most once per (session, refresh token) at a time and
// shares its result with every concurrent request of that session and,
// for the grace window, with requests still carrying the old cookie.
// shared reports that the result came from a refresh another request ran.
// work runs detached from ctx, so that the request that happens to run it
// may go away without failing the others.
func (f *refresher) refresh(ctx context.Context, s *session.Session, work func(context.Context) (*session.Session, error)) (fresh *session.Session, shared bool, err error) {
	key := refreshKey{session: s.ID, token: sha256.Sum256([]byte(s.RefreshToken))}
	f.mu.Lock()
	now := f.now()
	if now.After(f.sweepAt) || len(f.calls) >= maxRefreshCalls {
		f.sweepLocked(now)
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
	// s.ID points into the whole decoded cookie; a copy lets that go while
	// the call is remembered.
	key.session = strings.Clone(key.session)
	f.calls[key] = c
	f.mu.Unlock()

	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), refreshTimeout)
	c.result, c.err = work(rctx)
	cancel()

	f.mu.Lock()
	memory := f.grace
	if c.err != nil && !errors.Is(c.err, idp.ErrInvalidGrant) && !errors.Is(c.err, errSessionEnded) {
		memory = failedRefreshMemory
	}
	c.forgetAt = f.now().Add(memory)
	f.mu.Unlock()
	close(c.done)
	return c.result, false, c.err
}

// maxRefreshCalls bounds the remembered refreshes: each holds a session
// (about 4 KB of tokens), so the bound keeps a refresh storm within about
// 1 MB, which the garbage collector doubles. Past it the oldest finished
// ones are forgotten early, which only shortens their grace window: at 256
// refreshes a second still a full second, far longer than a browser's
// burst of parallel requests after a refresh. 1024 cost about 6 MiB of
// peak RSS in the benchmark's refresh case (issue 12).
const maxRefreshCalls = 256

// refreshSweepInterval is how often finished refreshes past their grace
// window are forgotten.
const refreshSweepInterval = time.Second

// sweepLocked forgets finished refreshes whose memory has run out and, over
// the bound, the finished ones closest to running out.
func (f *refresher) sweepLocked(now time.Time) {
	for k, c := range f.calls {
		if !c.forgetAt.IsZero() && !now.Before(c.forgetAt) {
			delete(f.calls, k)
		}
	}
	for len(f.calls) >= maxRefreshCalls {
		var oldest refreshKey
		var oldestAt time.Time
		for k, c := range f.calls {
			if !c.forgetAt.IsZero() && (oldestAt.IsZero() || c.forgetAt.Before(oldestAt)) {
				oldest, oldestAt = k, c.forgetAt
			}
		}
		if oldestAt.IsZero() {
			break // all in flight
		}
		delete(f.calls, oldest)
	}
	f.sweepAt = now.Add(refreshSweepInterval)
}

// errSessionEnded reports that the session was ended (signed out, logged
// out through the back channel) while its refresh was under way.
var errSessionEnded = errors.New("proxy: session ended during refresh")

// redeem redeems s's refresh token at the IdP and returns the refreshed
// session.
func (h *Handler) redeem(ctx context.Context, s *session.Session) (*session.Session, error) {
	tokens, err := h.provider.Refresh(ctx, s.RefreshToken, s.Subject)
	if err != nil {
		return nil, err
	}
	next := *s
	next.AccessToken = tokens.AccessToken
	next.Expiry = tokens.Expiry
	next.TokenIssuedAt = h.now()
	if tokens.RefreshToken != "" {
		next.RefreshToken = tokens.RefreshToken
	}
	if tokens.IDToken != "" {
		next.IDToken = tokens.IDToken
	}
	return &next, nil
}

// redeemShared refreshes a session kept in a store shared by several
// replicas: the replica holding the session's refresh lock redeems the
// refresh token and stores the result before it lets go; the others wait
// for that result instead of redeeming a token that rotation has spent.
// It sets *redeemed when it calls the IdP.
func (h *Handler) redeemShared(ctx context.Context, w http.ResponseWriter, r *http.Request, s *session.Session, redeemed *bool) (*session.Session, error) {
	unlock, locked, err := h.shared.LockRefresh(ctx, s.ID, refreshTimeout)
	if err != nil {
		return nil, fmt.Errorf("lock refresh: %w", err)
	}
	if !locked {
		// Its own span: the time spent waiting on another replica's lock.
		wctx, span := h.startSpan(ctx, "session.refresh.wait")
		next, err := h.shared.WaitForRefresh(wctx, r.WithContext(wctx), s, refreshTimeout)
		endSpan(span, err)
		if errors.Is(err, session.ErrNotFound) {
			return nil, errSessionEnded
		}
		if err != nil {
			return nil, fmt.Errorf("wait for another replica's refresh: %w", err)
		}
		return next, nil
	}
	defer unlock()
	// Another replica may have refreshed between our read (perhaps from a
	// local cache) and the lock: read the store itself.
	if cur, err := h.shared.Reload(r); err == nil && cur.RefreshToken != s.RefreshToken {
		return cur, nil
	} else if errors.Is(err, session.ErrNotFound) {
		return nil, errSessionEnded
	}
	*redeemed = true
	next, err := h.redeem(ctx, s)
	if err != nil {
		return nil, err
	}
	if err := h.store.Save(w, r, next); err != nil {
		if errors.Is(err, session.ErrNotFound) {
			return nil, errSessionEnded
		}
		// The new tokens are good but unsaved: serve this request with them;
		// the next request finds the old session and refreshes again (and,
		// if the IdP rotates refresh tokens, has to log in again).
		if !h.sessionTooLarge(r, next, err) {
			h.log.LogAttrs(r.Context(), slog.LevelError, "save refreshed session",
				slog.String(attrRequestID, r.Header.Get(h.requestIDHeader)), slog.String(attrError, err.Error()))
		}
	}
	return next, nil
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
	// redeemed: this request called the IdP, so the outcome is counted
	// once; not when it shared another request's refresh or took another
	// replica's. work runs on this goroutine when it runs at all.
	redeemed := false
	work := func(ctx context.Context) (*session.Session, error) {
		redeemed = true
		return h.redeem(ctx, s)
	}
	if h.shared != nil {
		work = func(ctx context.Context) (*session.Session, error) { return h.redeemShared(ctx, w, r, s, &redeemed) }
	}
	start := time.Now()
	ctx, span := h.startSpan(r.Context(), "session.refresh")
	next, shared, err := h.refresher.refresh(ctx, s, work)
	took := time.Since(start)
	if span != nil {
		endSpan(span, err, attribute.Bool(spanAttrShared, shared), attribute.Bool("authgate.refresh.redeemed", redeemed))
	}
	switch {
	case err == nil:
		if redeemed {
			h.metrics.refresh(refreshSucceeded, took)
			h.log.LogAttrs(r.Context(), slog.LevelDebug, "access token refreshed", reqID, slog.Any(attrSession, next))
		}
		if h.shared != nil {
			// A shared store holds the refreshed session already, and the
			// cookie (a ticket) does not change.
			return next, true
		}
		if err := h.store.Save(w, r, next); err != nil {
			// The refreshed tokens are good; serve this request with them
			// and let the next one try to store them again.
			if !h.sessionTooLarge(r, next, err) {
				h.log.LogAttrs(r.Context(), slog.LevelError, "save refreshed session", reqID, slog.String(attrError, err.Error()))
			}
		}
		return next, true
	case errors.Is(err, errSessionEnded):
		h.log.LogAttrs(r.Context(), slog.LevelDebug, "session ended during refresh", reqID, slog.Any(attrSession, s))
		unauthenticated()
		return nil, false
	case errors.Is(err, idp.ErrInvalidGrant):
		if redeemed {
			h.metrics.refresh(refreshRejected, took)
			h.log.LogAttrs(r.Context(), slog.LevelInfo, "refresh token rejected; session ended", reqID, slog.Any(attrSession, s))
		}
		if h.shared != nil {
			// With a shared store the refresh token that failed is the
			// session's current one (the ticket never changes), so the
			// session is over everywhere: revoking it closes its WebSockets
			// and event streams on every replica. With the cookie store this
			// request may carry a stale cookie while the browser holds a
			// newer one, so only its cookie goes.
			h.revoke(r.Context(), session.Revocation{SessionID: s.ID, Until: s.ExpiresAt})
		}
		_ = h.store.Delete(w, r, s)
		unauthenticated()
		return nil, false
	default:
		if redeemed {
			h.metrics.refresh(refreshFailed, took)
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
		h.outcome(w, outcomeError, problemIdPUnavailable.Status)
		return nil, false
	}
}
