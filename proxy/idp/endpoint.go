package idp

import (
	"net/url"
	"strings"
)

// EndpointName names the provider endpoint u points at, for metrics and
// traces of the HTTP calls made to the provider: "discovery", "jwks",
// "token", "userinfo", "revocation" or, for anything else (or before
// discovery for all but the discovery document), "other". The query is
// ignored.
func (p *Provider) EndpointName(u *url.URL) string {
	if u == nil {
		return "other"
	}
	if strings.HasSuffix(u.Path, "/.well-known/openid-configuration") {
		return "discovery"
	}
	d := p.state.Load()
	if d == nil {
		return "other"
	}
	target := u.Scheme + "://" + u.Host + u.Path
	for _, e := range [...]struct{ name, url string }{
		{"token", d.meta.TokenEndpoint},
		{"jwks", d.meta.JWKSURI},
		{"userinfo", d.meta.UserinfoEndpoint},
		{"revocation", d.meta.RevocationEndpoint},
	} {
		if e.url != "" && sameEndpoint(target, e.url) {
			return e.name
		}
	}
	return "other"
}

// sameEndpoint compares an endpoint URL without its query with an
// advertised one, which may carry a query of its own.
func sameEndpoint(target, advertised string) bool {
	if i := strings.IndexByte(advertised, '?'); i >= 0 {
		advertised = advertised[:i]
	}
	return target == advertised
}
