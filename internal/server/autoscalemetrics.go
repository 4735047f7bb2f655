package server

import "github.com/prometheus/client_golang/prometheus"

// autoscaleMetric registers braid_autoscale_decisions_total{stream,op} and
// returns the engine's OnAutoscale hook that counts into it.
func autoscaleMetric(reg *prometheus.Registry) func(stream, op string) {
	decisions := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "braid_autoscale_decisions_total",
		Help: "Splits and merges autoscale made, by stream and op (split or merge)."}, []string{"stream", "op"})
	reg.MustRegister(decisions)
	return func(stream, op string) { decisions.WithLabelValues(stream, op).Inc() }
}
