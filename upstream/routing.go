package upstream

import (
	"errors"
	"fmt"
	"strings"
)

// routingHeaders are the request headers that make frameworks serve a
// request other than the one in the request line: a different path
// (X-Original-URL, X-Rewrite-URL: IIS URL Rewrite, Symfony, Zend/Laminas)
// or a different method (X-HTTP-Method-Override, X-HTTP-Method,
// X-Method-Override: many REST frameworks). authgate decides on the request
// line (public paths, methods), so a client's copy of these would let a
// request that passed as "GET /static/x" act as "DELETE /admin".
// Lower case, in the order of routingSet's bits.
var routingHeaders = [...]string{
	"x-original-url",
	"x-rewrite-url",
	"x-http-method-override",
	"x-http-method",
	"x-method-override",
}

// routingNames are routingHeaders as documented.
var routingNames = [...]string{
	"X-Original-URL",
	"X-Rewrite-URL",
	"X-HTTP-Method-Override",
	"X-HTTP-Method",
	"X-Method-Override",
}

// RoutingHeaders returns the names of the headers that are removed from
// every forwarded request unless Options.PassRoutingHeaders lists them.
func RoutingHeaders() []string { return append([]string(nil), routingNames[:]...) }

// routingSet is a set of routingHeaders, bit i for routingHeaders[i].
type routingSet uint8

// routingBit returns the bit of k when it is one of routingHeaders in any
// spelling (case, '_' for '-'), and 0 otherwise. It allocates nothing.
func routingBit(k string) routingSet {
	if len(k) < len("x-http-method") || !foldHasPrefix(k, "x-") {
		return 0
	}
	for i, name := range routingHeaders {
		if foldEqual(k, name) {
			return 1 << i
		}
	}
	return 0
}

// CheckRoutingHeaders reports every name that is not one of
// RoutingHeaders (any case, '_' for '-'), so that a typo in the operator's
// list fails at start instead of silently leaving the header removed.
func CheckRoutingHeaders(names []string) error {
	_, err := parseRoutingHeaders(names)
	return err
}

// parseRoutingHeaders is CheckRoutingHeaders that also returns the set.
func parseRoutingHeaders(names []string) (routingSet, error) {
	var set routingSet
	var errs []error
	for _, n := range names {
		b := routingBit(strings.TrimSpace(n))
		if b == 0 {
			errs = append(errs, fmt.Errorf("%q is not a routing header (want one of %s)", n, strings.Join(routingNames[:], ", ")))
			continue
		}
		set |= b
	}
	if err := errors.Join(errs...); err != nil {
		return 0, fmt.Errorf("parse routing headers: %w", err)
	}
	return set, nil
}
