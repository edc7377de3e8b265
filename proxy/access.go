package proxy

import (
	"cmp"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/authgate/authgate/proxy/access"
	"github.com/authgate/authgate/proxy/idp"
	"github.com/authgate/authgate/session"
	"github.com/authgate/authgate/upstream"
)

// requestPath returns the path of the request target exactly as the client
// sent it (RequestURI up to the "?"), falling back to URL.EscapedPath for
// requests built in code. URL.EscapedPath alone is not enough: when the
// client's form is not one Go would produce (a "%2F" next to a "{", say),
// it re-encodes the decoded path and the "%2F" becomes a real "/".
func requestPath(r *http.Request) string {
	u := r.RequestURI
	switch {
	case strings.HasPrefix(u, "/"):
		p, _, _ := strings.Cut(u, "?")
		return p
	case strings.Contains(u, "://"):
		// Absolute form (RFC 9112 section 3.2.2): the path starts at the
		// first "/" after the authority.
		rest := u[strings.Index(u, "://")+3:]
		i := strings.IndexAny(rest, "/?")
		if i < 0 || rest[i] == '?' {
			return ""
		}
		p, _, _ := strings.Cut(rest[i:], "?")
		return p
	}
	return r.URL.EscapedPath()
}

// setPath makes u carry the normalised path, so that the upstream receives
// exactly the path every decision was made on.
func setPath(u *url.URL, normalized string) {
	if !strings.Contains(normalized, "%") {
		// The common case: nothing escaped, so the path is its own decoded
		// form (NormalizePath escapes everything a URL path may not hold raw).
		u.Path, u.RawPath = normalized, ""
		return
	}
	decoded, err := url.PathUnescape(normalized)
	if err != nil {
		// NormalizePath only leaves valid escapes; keep the raw form.
		decoded = normalized
	}
	u.Path = decoded
	u.RawPath = normalized
}

// rejectPath answers a request whose path NormalizePath refused.
func (h *Handler) rejectPath(w http.ResponseWriter, r *http.Request, err error) {
	h.rejectPathWith(w, r, err, problemAmbiguousPath)
}

func (h *Handler) rejectPathWith(w http.ResponseWriter, r *http.Request, err error, p problem) {
	h.log.LogAttrs(r.Context(), slog.LevelWarn, "ambiguous request path refused",
		slog.String(attrRequestID, r.Header.Get(h.requestIDHeader)),
		slog.String(attrRemote, r.RemoteAddr),
		slog.String(attrReason, err.Error()))
	h.writeError(w, r, p)
	h.outcome(w, outcomeRejected, p.Status)
}

// forwardPublic sends a request on a public path to the upstream with no
// identity: the upstream removes every identity header the client sent.
func (h *Handler) forwardPublic(w http.ResponseWriter, r *http.Request) {
	h.outcome(w, outcomePublic, 0)
	h.serveUpstream(w, r, nil)
}

// sessionSubject is what the policy knows about a session. A session cannot
// tell an absent groups claim from an empty one once stored (the encoding
// keeps neither nil), so it says GroupsKnown whenever Groups is non-nil.
// Either way a group rule can only admit on a listed group, so the
// difference is only the logged reason; the callback, which still has the
// IdP's answer, logs the exact one.
func sessionSubject(s *session.Session) access.Subject {
	return access.Subject{Email: s.Email, EmailVerified: s.EmailVerified, Groups: s.Groups, GroupsKnown: s.Groups != nil}
}

func identitySubject(id *idp.Identity) access.Subject {
	return access.Subject{Email: id.Email, EmailVerified: id.EmailVerified, Groups: id.Groups, GroupsKnown: id.Groups != nil}
}

// decision is what is known about a request before anyone is
// authenticated: whether it is public and, with routes, which route decides
// it and on what method, path and host.
type decision struct {
	public bool
	// route decides the request; nil without routes. also, when set, must
	// allow it too (access.Routes.Lookup: a path with ";parameters").
	route, also  *access.Route
	method, path string
	host         string
}

// decide finds the route of a request (method and normalised path), or
// applies the public paths when there are no routes. notPublic refuses
// public routes (forward-auth, for a path the front proxy forwards
// unnormalised). A path no route matches is answered with 403 before any
// login, since no identity could pass; ok is then false.
func (h *Handler) decide(w http.ResponseWriter, r *http.Request, method, path string, notPublic bool) (d decision, ok bool) {
	if h.routes == nil {
		return decision{public: !notPublic && h.public.Match(method, path)}, true
	}
	rt, also := h.routes.Lookup(method, path, notPublic)
	if rt == nil {
		h.log.LogAttrs(r.Context(), slog.LevelInfo, "access denied: no route matches",
			slog.String(attrRequestID, r.Header.Get(h.requestIDHeader)),
			slog.String(attrMethod, method), slog.String(attrPath, path))
		h.metrics.routeDecision(h.noRouteCounters(), routeDenied)
		h.writeError(w, r, problemNoRoute)
		h.outcome(w, outcomeForbidden, http.StatusForbidden)
		return decision{}, false
	}
	public := rt.Public() && (also == nil || also.Public())
	if public {
		h.metrics.routeDecision(h.countersOf(rt), routePublic)
	}
	return decision{public: public, route: rt, also: also, method: method, path: path}, true
}

// allowRoute evaluates the decision's route for in, logging a refusal with
// the route's label (which the client never sees).
func (h *Handler) allowRoute(r *http.Request, d decision, in *access.Input, attrs ...slog.Attr) bool {
	in.Method, in.Path, in.Host = d.method, d.path, d.host
	in.Header, in.HeaderVisible = r.Header, upstream.HeaderReaches
	for _, rt := range [...]*access.Route{d.route, d.also} {
		if rt == nil || rt.Public() {
			continue
		}
		ok, err := rt.Allow(in)
		switch {
		case err != nil:
			h.metrics.routeDecision(h.countersOf(rt), routeError)
			attrs = append(attrs, slog.String(attrRoute, rt.Label), slog.String(attrReason, "rule failed to evaluate: "+err.Error()))
		case ok:
			h.metrics.routeDecision(h.countersOf(rt), routeAllowed)
			continue
		default:
			h.metrics.routeDecision(h.countersOf(rt), routeDenied)
			attrs = append(attrs, slog.String(attrRoute, rt.Label), slog.String(attrReason, "rule is false"))
		}
		return h.deniedByRoute(r, d, attrs)
	}
	return true
}

// deniedByRoute logs a refusal by a route and returns false.
func (h *Handler) deniedByRoute(r *http.Request, d decision, attrs []slog.Attr) bool {
	attrs = append(attrs, slog.String(attrRequestID, r.Header.Get(h.requestIDHeader)),
		slog.String(attrMethod, d.method), slog.String(attrPath, d.path))
	h.log.LogAttrs(r.Context(), slog.LevelInfo, "access denied by route", attrs...)
	return false
}

// sessionInput is what a route's rule knows about a session's user.
func sessionInput(s *session.Session) access.Input {
	return access.Input{Subject: s.Subject, Email: s.Email, EmailVerified: s.EmailVerified,
		Groups: s.Groups, GroupsKnown: s.Groups != nil, Claims: s.Claims}
}

// allowSession applies the policy (or the route's rule) to a session and
// answers 403 when it is refused: a signed-in user who is not allowed never
// goes back to login.
func (h *Handler) allowSession(w http.ResponseWriter, r *http.Request, s *session.Session, d decision) bool {
	if d.route != nil {
		in := sessionInput(s)
		if h.allowRoute(r, d, &in, slog.Any(attrSession, s)) {
			return true
		}
		p := problemRouteForbidden
		p.SignOutURL = h.signOutPath
		h.writeError(w, r, p)
		h.outcome(w, outcomeForbidden, http.StatusForbidden)
		return false
	}
	ok, reason := h.policy.Allow(sessionSubject(s))
	if ok {
		return true
	}
	h.log.LogAttrs(r.Context(), slog.LevelInfo, "access denied by policy",
		slog.String(attrRequestID, r.Header.Get(h.requestIDHeader)),
		slog.Any(attrSession, s), slog.String(attrReason, reason))
	h.forbidden(w, r)
	return false
}

func (h *Handler) forbidden(w http.ResponseWriter, r *http.Request) {
	p := problemForbidden
	p.SignOutURL = h.signOutPath
	h.writeError(w, r, p)
	h.outcome(w, outcomeForbidden, http.StatusForbidden)
}

// bearerToken returns the token of an "Authorization: Bearer" header
// (RFC 6750 section 2.1; the scheme is case-insensitive, RFC 9110 section
// 11.1). present is false when no Authorization header uses the Bearer
// scheme. Several Authorization headers of which one is Bearer, or a
// Bearer header without a token, are present with an empty token, which
// verification refuses.
func bearerToken(h http.Header) (token string, present bool) {
	vals := h.Values("Authorization")
	for _, v := range vals {
		scheme, rest, _ := strings.Cut(strings.TrimSpace(v), " ")
		if !strings.EqualFold(scheme, "Bearer") {
			continue
		}
		if len(vals) > 1 {
			return "", true // RFC 6750 section 3.1: one method at a time
		}
		return strings.TrimSpace(rest), true
	}
	return "", false
}

// verifyBearer checks a bearer token and the policy. It returns the
// identity to forward, or answers the request itself (401 with an RFC 6750
// challenge, 403, or 503 when the IdP's keys cannot be fetched) and returns
// false. A refused token never leads to login.
func (h *Handler) verifyBearer(w http.ResponseWriter, r *http.Request, token string, d decision) (*upstream.Identity, bool) {
	reqID := slog.String(attrRequestID, r.Header.Get(h.requestIDHeader))
	ident, err := h.bearer.VerifyBearer(r.Context(), token, h.bearerAudiences)
	switch {
	case err == nil:
	case errors.Is(err, idp.ErrNotReady), errors.Is(err, idp.ErrUnavailable):
		h.log.LogAttrs(r.Context(), slog.LevelWarn, "bearer token not verified: identity provider unavailable",
			reqID, slog.String(attrError, err.Error()))
		h.writeError(w, r, problemIdPUnavailable)
		h.outcome(w, outcomeError, problemIdPUnavailable.Status)
		return nil, false
	default:
		desc := "invalid token"
		if te, ok := errors.AsType[*idp.TokenError](err); ok {
			desc = te.Description
		}
		h.log.LogAttrs(r.Context(), slog.LevelDebug, "bearer token refused", reqID, slog.String(attrReason, desc))
		// RFC 6750 section 3.1: error="invalid_token" with a description
		// that never quotes the token.
		w.Header().Set("WWW-Authenticate", `Bearer realm="authgate", error="invalid_token", error_description="`+challengeText(desc)+`"`)
		p := problemInvalidToken
		p.Description = "The access token was refused: " + desc + "."
		h.writeError(w, r, p)
		h.outcome(w, outcomeUnauthenticated, http.StatusUnauthorized)
		return nil, false
	}
	if d.route != nil {
		in := access.Input{Subject: ident.Subject, Email: ident.Email, EmailVerified: ident.EmailVerified,
			Groups: ident.Groups, GroupsKnown: ident.Groups != nil, Claims: ident.Claims}
		if !h.allowRoute(r, d, &in, slog.String(attrSubject, ident.Subject), slog.String("via", "bearer")) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="authgate", error="insufficient_scope"`)
			p := problemRouteForbidden
			h.writeError(w, r, p)
			h.outcome(w, outcomeForbidden, http.StatusForbidden)
			return nil, false
		}
	} else if ok, reason := h.policy.Allow(identitySubject(ident)); !ok {
		h.log.LogAttrs(r.Context(), slog.LevelInfo, "access denied by policy", reqID,
			slog.String(attrSubject, ident.Subject), slog.String("via", "bearer"), slog.String(attrReason, reason))
		// RFC 6750 section 3.1: insufficient_scope is the 403 of a valid token.
		w.Header().Set("WWW-Authenticate", `Bearer realm="authgate", error="insufficient_scope"`)
		h.forbidden(w, r)
		return nil, false
	}
	id := &upstream.Identity{
		AccessToken:       token,
		User:              cmp.Or(ident.User, ident.Subject),
		PreferredUsername: ident.PreferredUsername,
		Groups:            ident.Groups,
	}
	if ident.EmailVerified == nil || *ident.EmailVerified {
		id.Email = ident.Email
	}
	return id, true
}

// challengeText keeps only the characters RFC 6750 section 3 allows in an
// error_description (%x20-21 / %x23-5B / %x5D-7E).
func challengeText(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
			return -1
		}
		return r
	}, s)
}
