package kinesis

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the Kinesis door's Prometheus collectors.
type Metrics struct {
	// requests counts calls that reached their operation (past the
	// signature check), by operation and HTTP protocol as the server saw
	// it ("HTTP/1.1", "HTTP/2.0"): which clients use HTTP/2, and whether
	// SubscribeToShard streams run over it.
	requests *prometheus.CounterVec
}

// NewMetrics creates the collectors and registers them with reg (if set).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "braid_kinesis_requests_total",
			Help: "Kinesis API calls that reached their operation, by operation and HTTP protocol (HTTP/1.1, HTTP/2.0).",
		}, []string{"operation", "protocol"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests)
	}
	return m
}
