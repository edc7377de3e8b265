package proxy

import (
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/authgate/authgate/proxy/access"
)

// Outcomes of a request, the "outcome" label of authgate_requests_total.
const (
	outcomeForwarded       = "forwarded"
	outcomePublic          = "public"
	outcomeAuthorized      = "authorized" // forward-auth: 202
	outcomeLoginRedirect   = "login_redirect"
	outcomeUnauthenticated = "unauthenticated"
	outcomeForbidden       = "forbidden"
	outcomeRejected        = "rejected" // ambiguous path
	outcomeError           = "error"
)

// Outcomes of a route's decision, the "outcome" label of
// authgate_route_decisions_total.
const (
	routePublic  = "public"
	routeAllowed = "allowed"
	routeDenied  = "denied"
	routeError   = "error" // the rule failed to evaluate, which denies
)

// routeCounters are one route's decision counters, looked up once.
type routeCounters struct {
	public, allowed, denied, errored prometheus.Counter
}

const (
	loginSucceeded = "success"
	loginFailed    = "failure"

	refreshSucceeded = "success"
	refreshRejected  = "invalid_grant"
	refreshFailed    = "error"
)

// Metrics are authgate's Prometheus collectors. A nil *Metrics records
// nothing, so tests and embedders need not register anything.
type Metrics struct {
	requests  *prometheus.CounterVec
	logins    *prometheus.CounterVec
	refreshes *prometheus.CounterVec
	upstream  *prometheus.HistogramVec
	routes    *prometheus.CounterVec
	// refreshTime and idpTime time the IdP as authgate's users feel it:
	// a whole refresh (with the wait for another replica's lock) and each
	// HTTP call by endpoint.
	refreshTime *prometheus.HistogramVec
	idpTime     *prometheus.HistogramVec
	cookie      prometheus.Histogram

	// forwarded and byStatus are looked up once rather than on every
	// request: a label lookup hashes and allocates.
	forwarded prometheus.Counter
	byStatus  [600]atomic.Value // prometheus.Observer, by status code
}

// NewMetrics creates the collectors and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authgate_requests_total",
			Help: "Requests by outcome (forwarded, public, authorized, login_redirect, unauthenticated, forbidden, rejected, error) and the status authgate itself answered (0 when forwarded).",
		}, []string{"outcome", "code"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authgate_logins_total",
			Help: "Completed login callbacks by result.",
		}, []string{"result"}),
		refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authgate_refreshes_total",
			Help: "Access token refreshes at the IdP by result (success, invalid_grant, error).",
		}, []string{"result"}),
		upstream: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "authgate_upstream_duration_seconds",
			Help:    "Time to the upstream's response headers, by status code.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"code"}),
		refreshTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "authgate_refresh_duration_seconds",
			Help:    "Time of the access token refreshes this replica redeemed, including the wait for a shared refresh lock, by result (success, invalid_grant, error).",
			Buckets: idpBuckets,
		}, []string{"result"}),
		idpTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "authgate_idp_request_duration_seconds",
			Help:    "Time of each HTTP call to the OpenID Provider by endpoint (discovery, jwks, token, userinfo, revocation, other), failed calls included.",
			Buckets: idpBuckets,
		}, []string{"endpoint"}),
		cookie: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "authgate_session_cookie_bytes",
			Help: "Size of each sealed session the cookie store writes (all chunks together, what the browser sends back in its Cookie header), compressed.",
			// Around the limits that matter: 4 KB a cookie, 8 KB a
			// header line at ingress-nginx's defaults, 40 KB authgate's.
			Buckets: []float64{512, 1024, 2048, 3072, 4096, 6144, 8192, 12288, 16384, 24576, 32768, 40960},
		}),
	}
	m.routes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "authgate_route_decisions_total",
		Help: "Decisions of AUTHGATE_ROUTES by route (its name, or its index from 0; \"none\" when no route matched) and outcome (public, allowed, denied, error).",
	}, []string{"route", "outcome"})
	reg.MustRegister(m.requests, m.logins, m.refreshes, m.upstream, m.routes, m.refreshTime, m.idpTime, m.cookie)
	// Pre-create the common series so dashboards show zeros, not gaps.
	m.forwarded = m.requests.WithLabelValues(outcomeForwarded, "0")
	for _, r := range []string{loginSucceeded, loginFailed} {
		m.logins.WithLabelValues(r)
	}
	for _, r := range []string{refreshSucceeded, refreshRejected, refreshFailed} {
		m.refreshes.WithLabelValues(r)
		m.refreshTime.WithLabelValues(r)
	}
	for _, e := range IdPEndpoints {
		m.idpTime.WithLabelValues(e)
	}
	return m
}

func (m *Metrics) request(outcome string, code int) {
	if m == nil {
		return
	}
	if outcome == outcomeForwarded {
		m.forwarded.Inc()
		return
	}
	m.requests.WithLabelValues(outcome, strconv.Itoa(code)).Inc()
}

// idpBuckets span a fast local provider (a few ms) to the default
// AUTHGATE_OIDC_TIMEOUT of 10 s.
var idpBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// IdPEndpoints are the values of the "endpoint" label of
// authgate_idp_request_duration_seconds; see idp.Provider.EndpointName.
var IdPEndpoints = []string{"discovery", "jwks", "token", "userinfo", "revocation", "other"}

// ObserveIdP records one HTTP call to the OpenID Provider. endpoint should
// be one of IdPEndpoints.
func (m *Metrics) ObserveIdP(endpoint string, seconds float64) {
	if m != nil {
		m.idpTime.WithLabelValues(endpoint).Observe(seconds)
	}
}

func (m *Metrics) login(result string) {
	if m != nil {
		m.logins.WithLabelValues(result).Inc()
	}
}

// refresh counts one refresh this replica redeemed, which took d.
func (m *Metrics) refresh(result string, d time.Duration) {
	if m != nil {
		m.refreshes.WithLabelValues(result).Inc()
		m.refreshTime.WithLabelValues(result).Observe(d.Seconds())
	}
}

// ObserveUpstream records the time to the upstream's response headers; it
// fits upstream.Options.Observe.
func (m *Metrics) ObserveUpstream(code int, seconds float64) {
	if m == nil {
		return
	}
	if code < 0 || code >= len(m.byStatus) {
		m.upstream.WithLabelValues(strconv.Itoa(code)).Observe(seconds)
		return
	}
	o, _ := m.byStatus[code].Load().(prometheus.Observer)
	if o == nil {
		o = m.upstream.WithLabelValues(strconv.Itoa(code))
		m.byStatus[code].Store(o)
	}
	o.Observe(seconds)
}

// routeCounters resolves the decision counters of every route (labels in
// order) and, last, of "no route matched": once, so that a request only
// increments. It returns nil for a nil *Metrics or no routes.
func (m *Metrics) routeCounters(labels []string) []routeCounters {
	if m == nil || len(labels) == 0 {
		return nil
	}
	out := make([]routeCounters, 0, len(labels)+1)
	for _, l := range append(labels, access.NoRouteLabel) {
		out = append(out, routeCounters{
			public:  m.routes.WithLabelValues(l, routePublic),
			allowed: m.routes.WithLabelValues(l, routeAllowed),
			denied:  m.routes.WithLabelValues(l, routeDenied),
			errored: m.routes.WithLabelValues(l, routeError),
		})
	}
	return out
}

func (m *Metrics) routeDecision(c *routeCounters, outcome string) {
	if m == nil || c == nil {
		return
	}
	switch outcome {
	case routePublic:
		c.public.Inc()
	case routeAllowed:
		c.allowed.Inc()
	case routeDenied:
		c.denied.Inc()
	default:
		c.errored.Inc()
	}
}

// countersOf returns rt's counters, nil without metrics.
func (h *Handler) countersOf(rt *access.Route) *routeCounters {
	if rt == nil || rt.Index >= len(h.routeCounters)-1 {
		return nil
	}
	return &h.routeCounters[rt.Index]
}

// noRouteCounters returns the counters of "no route matched".
func (h *Handler) noRouteCounters() *routeCounters {
	if len(h.routeCounters) == 0 {
		return nil
	}
	return &h.routeCounters[len(h.routeCounters)-1]
}

// ObserveSessionCookie records the size of a sealed session cookie; it fits
// session.CookieStoreOptions.ObserveSize.
func (m *Metrics) ObserveSessionCookie(bytes int) {
	if m != nil {
		m.cookie.Observe(float64(bytes))
	}
}
