package main

import "github.com/prometheus/client_golang/prometheus"

// secretMetrics report the re-reading of …_FILE variables' files.
type secretMetrics struct {
	reloads *prometheus.CounterVec
	stale   *prometheus.GaugeVec
}

func newSecretMetrics(reg prometheus.Registerer, variables []string) *secretMetrics {
	m := &secretMetrics{
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authgate_secret_reloads_total",
			Help: "Changed secret or CA files read again, by variable and result (success, or failure: the last good value is kept).",
		}, []string{"variable", "result"}),
		stale: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "authgate_secret_file_stale",
			Help: "1 while a secret or CA file holds an invalid value and its last good value is in use, by variable.",
		}, []string{"variable"}),
	}
	reg.MustRegister(m.reloads, m.stale)
	for _, v := range variables {
		m.reloads.WithLabelValues(v, "success")
		m.reloads.WithLabelValues(v, "failure")
		m.stale.WithLabelValues(v)
	}
	return m
}

// observe records one reload of variable's file; err nil is a success.
func (m *secretMetrics) observe(variable string, err error) {
	if err != nil {
		m.reloads.WithLabelValues(variable, "failure").Inc()
		m.stale.WithLabelValues(variable).Set(1)
		return
	}
	m.reloads.WithLabelValues(variable, "success").Inc()
	m.stale.WithLabelValues(variable).Set(0)
}
