package upstream

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
)

// StatusClientClosedRequest is the status recorded (and passed to Observe)
// when the client went away before the upstream answered. Like nginx's 499
// it is internal: the client is no longer there to read it.
const StatusClientClosedRequest = 499

// handleError is the ReverseProxy's ErrorHandler: it maps err to a status
// the way caddy does (502 by default, 504 on timeout, no 5xx for a client
// that went away), logs it and renders the error page.
func (p *Proxy) handleError(w http.ResponseWriter, r *http.Request, err error) {
	status := statusFor(r, err)
	defer p.observeSince(r, status)
	attrs := []slog.Attr{
		slog.String(attrRequestID, r.Header.Get(p.ridHeader)),
		slog.String(attrMethod, r.Method),
		slog.String(attrPath, r.URL.Path),
		slog.Int(attrStatus, status),
		slog.String(attrError, err.Error()),
	}
	ctx := r.Context()
	if status == StatusClientClosedRequest {
		p.log.LogAttrs(ctx, slog.LevelDebug, "client went away before the upstream answered", attrs...)
		w.WriteHeader(status)
		return
	}
	p.log.LogAttrs(ctx, slog.LevelWarn, "upstream request failed", attrs...)
	if status == http.StatusRequestEntityTooLarge {
		http.Error(w, http.StatusText(status), status)
		return
	}
	p.writeError(w, withoutIdentity(r), status)
}

// statusFor classifies an error of the ReverseProxy.
func statusFor(r *http.Request, err error) int {
	if cerr := r.Context().Err(); cerr != nil && !errors.Is(cerr, context.DeadlineExceeded) {
		return StatusClientClosedRequest
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return http.StatusGatewayTimeout
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return http.StatusGatewayTimeout // dial, TLS handshake or response header timeout
	}
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		// The request body hit an outer http.MaxBytesReader: a client fault.
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusBadGateway
}

// withoutIdentity returns a copy of the outgoing request r without the
// identity headers, so that an error page renderer cannot leak the bearer
// into a page or a log. r itself is not modified: the transport may still be
// reading its headers.
func withoutIdentity(r *http.Request) *http.Request {
	c := r.Clone(r.Context())
	deleteUntrusted(c.Header, 0)
	return c
}

func writePlainError(w http.ResponseWriter, _ *http.Request, status int) {
	http.Error(w, http.StatusText(status), status)
}
