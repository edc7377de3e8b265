package idp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// statusError is a 5xx or 429 answer turned into a transport error by
// statusErrorTransport.
type statusError struct {
	status string
}

func (e *statusError) Error() string { return "provider answered " + e.status }

// statusErrorTransport turns 5xx and 429 answers into errors. go-oidc
// formats non-200 answers from the JWKS and userinfo endpoints with %v, which
// loses any type; an error from the transport instead reaches us through
// *url.Error and %w, so an outage can be told from a rejection.
type statusErrorTransport struct {
	base http.RoundTripper
}

func (t statusErrorTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		resp.Body.Close()
		return nil, &statusError{status: resp.Status}
	}
	return resp, nil
}

// transient reports whether err is an outage rather than a verdict: a
// network error, a timeout, a cancelled request or a 5xx/429 answer.
func transient(err error) bool {
	var (
		se *statusError
		ue *url.Error
		ne net.Error
	)
	return errors.As(err, &se) || errors.As(err, &ue) || errors.As(err, &ne) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}

// classifyTokenError maps an error from the token endpoint to a sentinel:
// "invalid_grant" (RFC 6749 section 5.2) to ErrInvalidGrant; 5xx, 429 and
// transport faults to ErrUnavailable, as well as "server_error" and
// "temporarily_unavailable", which RFC 6749 defines for the authorization
// endpoint (4.1.2.1) but some providers also send from the token endpoint.
// Anything else (invalid_client, unauthorized_client, a malformed answer)
// is a misconfiguration and stays unclassified.
func classifyTokenError(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		switch {
		case re.ErrorCode == "invalid_grant":
			return fmt.Errorf("%w: %w", ErrInvalidGrant, err)
		case re.ErrorCode == "temporarily_unavailable" || re.ErrorCode == "server_error":
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		case re.Response != nil && (re.Response.StatusCode >= 500 || re.Response.StatusCode == http.StatusTooManyRequests):
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		return err
	}
	if transient(err) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}

// keyFetchNote records, for one verification, that fetching the provider's
// keys failed for a transient reason. go-oidc's verifier flattens the key
// set's error with %v; the note carries the verdict past it.
type keyFetchNote struct {
	err error
}

type keyFetchNoteKey struct{}

// keySet wraps go-oidc's caching remote key set to fill the keyFetchNote
// found in the verification's context.
type keySet struct {
	remote *oidc.RemoteKeySet
}

func (k *keySet) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	payload, err := k.remote.VerifySignature(ctx, jwt)
	if err != nil && transient(err) {
		if n, ok := ctx.Value(keyFetchNoteKey{}).(*keyFetchNote); ok {
			n.err = err
		}
	}
	return payload, err
}
