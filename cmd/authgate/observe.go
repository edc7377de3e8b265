package main

import (
	"net/http"
	"net/url"
	"time"
)

// timedTransport times every HTTP call to the OpenID Provider, to its
// response headers, and reports it under the endpoint's name.
type timedTransport struct {
	base    http.RoundTripper
	name    func(*url.URL) string
	observe func(endpoint string, seconds float64)
}

func (t timedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.base.RoundTrip(r)
	t.observe(t.name(r.URL), time.Since(start).Seconds())
	return resp, err
}
