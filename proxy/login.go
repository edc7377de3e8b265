package proxy

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/authgate/authgate/proxy/idp"
	"github.com/authgate/authgate/session"
)

// flowState is what a login in flight needs at the callback. It travels in
// its own sealed cookie named after the state, so that several tabs logging
// in at once do not overwrite each other.
type flowState struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	Redirect string `json:"r"`
	Created  int64  `json:"t"`
}

// flowCookies returns the cookie that carries the login flow of state.
func (h *Handler) flowCookies(state string) *session.Cookies {
	o := h.flowCookie
	// 16 base64url characters (96 bits) of the state keep names distinct
	// without making them long; the full state is checked inside.
	suffix := state
	if len(suffix) > 16 {
		suffix = suffix[:16]
	}
	o.Name = o.Name + "_" + suffix
	return session.NewCookies(o)
}

// serveStart begins a login; ?rd= names where to land afterwards.
func (h *Handler) serveStart(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		h.writeError(w, r, problem{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed", Description: "Use GET."})
		return
	}
	h.startLogin(w, r, r.URL.Query().Get("rd"))
}

// startLogin redirects the browser to the IdP's authorization endpoint.
func (h *Handler) startLogin(w http.ResponseWriter, r *http.Request, rd string) {
	ar, err := h.provider.NewAuthRequest()
	if err != nil {
		h.log.LogAttrs(r.Context(), slog.LevelWarn, "cannot start login",
			slog.String(attrRequestID, r.Header.Get(h.requestIDHeader)), slog.String(attrError, err.Error()))
		h.writeError(w, r, problemIdPUnavailable)
		h.outcome(w, outcomeError, problemIdPUnavailable.Status)
		return
	}
	f := flowState{
		State:    ar.State,
		Nonce:    ar.Nonce,
		Verifier: ar.CodeVerifier,
		Redirect: h.safeRedirect(rd),
		Created:  h.now().Unix(),
	}
	plain, err := json.Marshal(f)
	if err != nil {
		h.internalError(w, r, "encode login state", err)
		return
	}
	cookies := h.flowCookies(ar.State)
	sealed, err := h.sealer.Seal(cookies.Name(), plain)
	if err != nil {
		h.internalError(w, r, "seal login state", err)
		return
	}
	if err := cookies.Write(w, r, sealed, h.now().Add(h.flowTTL)); err != nil {
		h.internalError(w, r, "write login-flow cookie", err)
		return
	}
	h.outcome(w, outcomeLoginRedirect, http.StatusFound)
	redirect(w, ar.URL)
}

// serveCallback finishes a login: it checks the state against its flow
// cookie before anything else, redeems the code, verifies the ID token (in
// package idp) and stores the new session.
func (h *Handler) serveCallback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if name := repeatedCallbackParam(q); name != "" {
		h.rejectRepeatedParam(w, r, q, name)
		return
	}
	state := q.Get("state")
	reqID := slog.String(attrRequestID, r.Header.Get(h.requestIDHeader))

	if idpErr := q.Get("error"); idpErr != "" {
		h.callbackError(w, r, state, idpErr)
		return
	}
	code := q.Get("code")
	if state == "" || code == "" {
		h.log.LogAttrs(r.Context(), slog.LevelDebug, "callback without code or state", reqID)
		h.loginFailed(w, r, http.StatusBadRequest, "invalid_callback", "This sign-in link is incomplete.", "/")
		return
	}

	cookies := h.flowCookies(state)
	f, err := h.openFlow(r, cookies)
	if err != nil {
		h.log.LogAttrs(r.Context(), slog.LevelInfo, "login rejected before code exchange",
			reqID, slog.String(attrReason, err.Error()))
		cookies.Clear(w, r)
		h.loginFailed(w, r, http.StatusBadRequest, "invalid_state",
			"This sign-in has expired, was already used, or was started in another browser.", "/")
		return
	}
	if subtle.ConstantTimeCompare([]byte(f.State), []byte(state)) != 1 {
		// The flow cookie is kept: a forged callback must not be able to
		// cancel the user's genuine login in flight.
		h.log.LogAttrs(r.Context(), slog.LevelWarn, "login rejected: state mismatch", reqID)
		h.loginFailed(w, r, http.StatusBadRequest, "invalid_state", "This sign-in does not match the one this browser started.", f.Redirect)
		return
	}
	// Claim the state before redeeming the code so that a replayed callback
	// never reaches the token endpoint.
	if !h.states.claim(state, time.Unix(f.Created, 0).Add(h.flowTTL)) {
		h.log.LogAttrs(r.Context(), slog.LevelWarn, "login rejected: state reused", reqID)
		cookies.Clear(w, r)
		h.loginFailed(w, r, http.StatusBadRequest, "invalid_state", "This sign-in was already used.", f.Redirect)
		return
	}
	cookies.Clear(w, r)

	// RFC 9207: a response from another issuer (mix-up) is not redeemed.
	if err := h.provider.CheckResponseIssuer(q.Get("iss"), q.Has("iss")); err != nil {
		h.exchangeFailed(w, r, f.Redirect, err)
		return
	}
	tokens, ident, err := h.provider.Exchange(r.Context(), code, f.Verifier, f.Nonce)
	if err != nil {
		h.exchangeFailed(w, r, f.Redirect, err)
		return
	}
	now := h.now()
	s := &session.Session{
		ID:                newID(),
		Subject:           ident.Subject,
		User:              userIfNotSubject(ident),
		Email:             ident.Email,
		EmailVerified:     ident.EmailVerified,
		PreferredUsername: ident.PreferredUsername,
		Name:              ident.Name,
		Groups:            ident.Groups,
		IDPSessionID:      ident.SessionID,
		Claims:            ident.Claims,
		AccessToken:       tokens.AccessToken,
		RefreshToken:      tokens.RefreshToken,
		IDToken:           tokens.IDToken,
		Expiry:            tokens.Expiry,
		TokenIssuedAt:     now,
		IssuedAt:          now,
		ExpiresAt:         now.Add(h.sessionTTL),
	}
	if err := h.store.Save(w, r, s); err != nil {
		if h.sessionTooLarge(r, s, err) {
			h.writeError(w, r, problemSessionTooLarge)
			h.metrics.login(loginFailed)
			return
		}
		h.log.LogAttrs(r.Context(), slog.LevelError, "save new session", reqID, slog.String(attrError, err.Error()))
		h.writeError(w, r, problemStoreUnavailable)
		h.metrics.login(loginFailed)
		return
	}
	h.log.LogAttrs(r.Context(), slog.LevelInfo, "login", reqID, slog.Any(attrSession, s))
	h.metrics.login(loginSucceeded)
	// The policy is checked here too, while the IdP's answer still tells an
	// absent groups claim from an empty one, so that the log names the exact
	// reason. The session is kept: the user is signed in, and every request
	// gets 403 rather than another trip to the IdP.
	if ok, reason := h.policy.Allow(identitySubject(ident)); !ok {
		h.log.LogAttrs(r.Context(), slog.LevelInfo, "signed in but not allowed by policy", reqID,
			slog.Any(attrSession, s), slog.String(attrReason, reason))
		h.forbidden(w, r)
		return
	}
	redirect(w, f.Redirect)
}

// openFlow reads and checks the flow cookie.
func (h *Handler) openFlow(r *http.Request, cookies *session.Cookies) (*flowState, error) {
	raw, ok := cookies.Read(r)
	if !ok {
		return nil, errors.New("no login-flow cookie for this state")
	}
	plain, err := h.sealer.Open(cookies.Name(), raw)
	if err != nil {
		return nil, errors.New("login-flow cookie does not open")
	}
	var f flowState
	if err := json.Unmarshal(plain, &f); err != nil {
		return nil, errors.New("login-flow cookie undecodable")
	}
	if h.now().After(time.Unix(f.Created, 0).Add(h.flowTTL)) {
		return nil, errors.New("login flow expired")
	}
	return &f, nil
}

// callbackError handles an "error=" callback from the IdP (RFC 6749 section
// 4.1.2.1): the user declined, or the IdP refused the request.
func (h *Handler) callbackError(w http.ResponseWriter, r *http.Request, state, idpErr string) {
	rd := "/"
	if state != "" {
		cookies := h.flowCookies(state)
		if f, err := h.openFlow(r, cookies); err == nil {
			rd = f.Redirect
		}
		cookies.Clear(w, r)
	}
	h.log.LogAttrs(r.Context(), slog.LevelInfo, "identity provider returned an error",
		slog.String(attrRequestID, r.Header.Get(h.requestIDHeader)),
		slog.String(attrReason, truncate(idpErr, 64)))
	status, desc := http.StatusBadRequest, "The identity provider could not sign you in."
	if idpErr == "access_denied" {
		status, desc = http.StatusForbidden, "Sign-in was cancelled or denied at the identity provider."
	}
	h.loginFailed(w, r, status, "idp_error", desc, rd)
}

// exchangeFailed classifies an Exchange error: the user's fault, an attack,
// or an IdP outage.
func (h *Handler) exchangeFailed(w http.ResponseWriter, r *http.Request, rd string, err error) {
	reqID := slog.String(attrRequestID, r.Header.Get(h.requestIDHeader))
	if r.Context().Err() != nil {
		// The browser went away while the code was redeemed: nobody to
		// answer, and no fault of the IdP's.
		h.log.LogAttrs(r.Context(), slog.LevelDebug, "client went away during login", reqID)
		return
	}
	switch {
	case errors.Is(err, idp.ErrIssuerMismatch):
		h.log.LogAttrs(r.Context(), slog.LevelWarn, "login rejected: authorization response from another issuer (RFC 9207 mix-up defence)", reqID, slog.String(attrError, err.Error()))
		h.loginFailed(w, r, http.StatusBadRequest, "invalid_issuer", "This sign-in answer did not come from the expected identity provider.", rd)
	case errors.Is(err, idp.ErrGroupsOverage):
		// Not "not in the group": nobody can be, since the groups never came.
		h.log.LogAttrs(r.Context(), slog.LevelError, "login refused: group overage: the identity provider left the groups out of the token (too many groups); "+
			"access depends on AUTHGATE_ALLOWED_GROUPS, so nobody with that many groups can be admitted. "+
			"Entra ID: in the app registration's token configuration emit only \"Groups assigned to the application\" (groups filtering), or use app roles with AUTHGATE_GROUPS_CLAIM=roles",
			reqID, slog.String(attrError, err.Error()))
		h.metrics.login(loginFailed)
		p := problemForbidden
		p.Description = "Your account has too many groups for the identity provider to list them, so access cannot be checked. Ask an administrator."
		h.writeError(w, r, p)
	case errors.Is(err, idp.ErrInvalidToken):
		h.log.LogAttrs(r.Context(), slog.LevelWarn, "login rejected: ID token failed verification", reqID, slog.String(attrError, err.Error()))
		h.loginFailed(w, r, http.StatusUnauthorized, "invalid_token", "The identity provider's answer could not be verified.", rd)
	case errors.Is(err, idp.ErrInvalidGrant):
		h.log.LogAttrs(r.Context(), slog.LevelInfo, "login rejected: code refused by the identity provider", reqID, slog.String(attrError, err.Error()))
		h.loginFailed(w, r, http.StatusBadRequest, "invalid_grant", "This sign-in link was already used or has expired.", rd)
	case errors.Is(err, idp.ErrNotReady), errors.Is(err, idp.ErrUnavailable):
		h.log.LogAttrs(r.Context(), slog.LevelWarn, "login failed: identity provider unavailable", reqID, slog.String(attrError, err.Error()))
		h.metrics.login(loginFailed)
		h.writeError(w, r, problemIdPUnavailable)
	default:
		h.log.LogAttrs(r.Context(), slog.LevelError, "login failed", reqID, slog.String(attrError, err.Error()))
		h.metrics.login(loginFailed)
		h.writeError(w, r, problem{Status: http.StatusBadGateway, Code: "idp_error", Description: "The identity provider's answer could not be used."})
	}
}

// loginFailed renders a failed login with a link that starts a new one.
func (h *Handler) loginFailed(w http.ResponseWriter, r *http.Request, status int, code, desc, rd string) {
	h.metrics.login(loginFailed)
	h.writeError(w, r, problem{
		Status:      status,
		Code:        code,
		Description: desc,
		LoginURL:    h.startPath + "?rd=" + url.QueryEscape(h.safeRedirect(rd)),
	})
}

func (h *Handler) internalError(w http.ResponseWriter, r *http.Request, what string, err error) {
	h.log.LogAttrs(r.Context(), slog.LevelError, what,
		slog.String(attrRequestID, r.Header.Get(h.requestIDHeader)), slog.String(attrError, err.Error()))
	h.writeError(w, r, problemInternal)
	h.outcome(w, outcomeError, http.StatusInternalServerError)
}

// newID returns 128 random bits, base64url.
func newID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand failed: " + err.Error()) // never fails on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// maxUsedStates bounds the memory of usedStates: 64 Ki entries of a 64-bit
// key and an expiry, about 2.5 MiB at worst.
const maxUsedStates = 1 << 16

// usedStates remembers the states that reached the callback until their
// flows expire, so that a replayed callback is refused before its code is
// redeemed even when the flow cookie was captured with it.
type usedStates struct {
	mu   sync.Mutex
	now  func() time.Time
	seen map[uint64]int64 // state hash → expiry (unix seconds)
}

func newUsedStates(now func() time.Time) *usedStates {
	return &usedStates{now: now, seen: make(map[uint64]int64)}
}

// claim records state and reports whether it was unused.
func (u *usedStates) claim(state string, expires time.Time) bool {
	sum := sha256.Sum256([]byte(state))
	key := binary.LittleEndian.Uint64(sum[:8])
	u.mu.Lock()
	defer u.mu.Unlock()
	now := u.now().Unix()
	if exp, ok := u.seen[key]; ok && exp > now {
		return false
	}
	if len(u.seen) >= maxUsedStates {
		for k, exp := range u.seen {
			if exp <= now {
				delete(u.seen, k)
			}
		}
		// Still full: forget arbitrary entries rather than refuse logins.
		// The IdP's own single-use codes remain the backstop.
		for k := range u.seen {
			if len(u.seen) < maxUsedStates*3/4 {
				break
			}
			delete(u.seen, k)
		}
	}
	u.seen[key] = expires.Unix()
	return true
}

// userIfNotSubject is the session's User: kept only when a user claim made
// it differ from the subject, so that the cookie does not carry it twice.
func userIfNotSubject(id *idp.Identity) string {
	if id.User == id.Subject {
		return ""
	}
	return id.User
}
