package proxy

import (
	"log/slog"
	"net/http"
	"net/url"
)

// callbackSingleParams are the authorization-response parameters that may
// appear at most once on the callback. RFC 6749 section 3.1 forbids
// repeating any of them; a repeat means someone tampered with the response
// (two states, so that one check and another use; two codes, so that the
// exchanged code is not the one the IdP sent with this state).
var callbackSingleParams = [...]string{"state", "code", "iss", "error", "session_state"}

// maxClearedFlows bounds how many flow cookies a tampered callback clears,
// one per distinct state it names.
const maxClearedFlows = 4

// repeatedCallbackParam returns the first of callbackSingleParams that q
// holds more than once, or "".
func repeatedCallbackParam(q url.Values) string {
	for _, name := range callbackSingleParams {
		if len(q[name]) > 1 {
			return name
		}
	}
	return ""
}

// rejectRepeatedParam answers a callback that repeats one of
// callbackSingleParams with 400 and the login-failed page, and clears the
// login-flow cookie of every state it names: that flow was tampered with,
// so it must not be finished later either.
func (h *Handler) rejectRepeatedParam(w http.ResponseWriter, r *http.Request, q url.Values, name string) {
	h.log.LogAttrs(r.Context(), slog.LevelWarn, "login rejected: repeated callback parameter",
		slog.String(attrRequestID, r.Header.Get(h.requestIDHeader)), slog.String(attrReason, name))
	seen := map[string]bool{}
	for _, state := range q["state"] {
		if state == "" || seen[state] || len(seen) == maxClearedFlows {
			continue
		}
		seen[state] = true
		h.flowCookies(state).Clear(w, r)
	}
	h.loginFailed(w, r, http.StatusBadRequest, "invalid_callback", "This sign-in answer was tampered with: a parameter appears more than once.", "/")
}
