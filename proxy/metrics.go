package proxy

import (
	"strconv"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
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
	cookie    prometheus.Histogram

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
		cookie: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "authgate_session_cookie_bytes",
			Help: "Size of each sealed session the cookie store writes (all chunks together, what the browser sends back in its Cookie header), compressed.",
			// Around the limits that matter: 4 KB a cookie, 8 KB a
			// header line at ingress-nginx's defaults, 40 KB authgate's.
			Buckets: []float64{512, 1024, 2048, 3072, 4096, 6144, 8192, 12288, 16384, 24576, 32768, 40960},
		}),
	}
	reg.MustRegister(m.requests, m.logins, m.refreshes, m.upstream, m.cookie)
	// Pre-create the common series so dashboards show zeros, not gaps.
	m.forwarded = m.requests.WithLabelValues(outcomeForwarded, "0")
	for _, r := range []string{loginSucceeded, loginFailed} {
		m.logins.WithLabelValues(r)
	}
	for _, r := range []string{refreshSucceeded, refreshRejected, refreshFailed} {
		m.refreshes.WithLabelValues(r)
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

func (m *Metrics) login(result string) {
	if m != nil {
		m.logins.WithLabelValues(result).Inc()
	}
}

func (m *Metrics) refresh(result string) {
	if m != nil {
		m.refreshes.WithLabelValues(result).Inc()
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

// ObserveSessionCookie records the size of a sealed session cookie; it fits
// session.CookieStoreOptions.ObserveSize.
func (m *Metrics) ObserveSessionCookie(bytes int) {
	if m != nil {
		m.cookie.Observe(float64(bytes))
	}
}
