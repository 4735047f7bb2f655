package kafka

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Metrics are the Kafka door's Prometheus collectors.
type Metrics struct {
	connections prometheus.Gauge
	requests    *prometheus.HistogramVec
	bytesIn     prometheus.Counter
	bytesOut    prometheus.Counter
	badRequests prometheus.Counter
	panics      prometheus.Counter
	// requestBytes is the request memory held now (queued.max.request.bytes
	// counts against it); refused, closedIdle and closedSlow count
	// connections turned away or dropped by the limits.
	requestBytes prometheus.Gauge
	refused      prometheus.Counter
	closedIdle   prometheus.Counter
	closedSlow   prometheus.Counter
	// splitProduces counts produce requests appended by two goroutines
	// (produceSplit).
	splitProduces prometheus.Counter
	// fetchWindows counts fetch answers read as a window of the log
	// (fetchwindow.go), by how the window was read: "ahead" (in the
	// background, while the answer before went out), "direct" (past the
	// page cache, while the fetch waited) or "cached" (through it).
	fetchWindows *prometheus.CounterVec
	// fetchLaggards counts fetch answers that served only the partitions
	// left behind the others (fetchwindow.go, laggards).
	fetchLaggards prometheus.Counter
	// ProducedRecords, ProducedBytes and FetchedBytes count data by stream.
	ProducedRecords *prometheus.CounterVec
	ProducedBytes   *prometheus.CounterVec
	FetchedBytes    *prometheus.CounterVec
}

// NewMetrics creates the collectors and registers them with reg (if set).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		connections: prometheus.NewGauge(prometheus.GaugeOpts{Name: "braid_kafka_connections", Help: "Open Kafka protocol connections."}),
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "braid_kafka_request_seconds", Help: "Kafka requests by API, from decode to response written.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}, []string{"api"}),
		bytesIn:         prometheus.NewCounter(prometheus.CounterOpts{Name: "braid_kafka_received_bytes_total", Help: "Bytes of Kafka requests received."}),
		bytesOut:        prometheus.NewCounter(prometheus.CounterOpts{Name: "braid_kafka_sent_bytes_total", Help: "Bytes of Kafka responses sent."}),
		badRequests:     prometheus.NewCounter(prometheus.CounterOpts{Name: "braid_kafka_bad_requests_total", Help: "Requests that closed their connection: malformed, oversized or unsupported."}),
		panics:          prometheus.NewCounter(prometheus.CounterOpts{Name: "braid_kafka_handler_panics_total", Help: "Panics recovered while handling a request (each closed its connection); always a bug."}),
		requestBytes:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "braid_kafka_request_bytes", Help: "Bytes of Kafka requests held in memory now: received and not yet answered."}),
		refused:         prometheus.NewCounter(prometheus.CounterOpts{Name: "braid_kafka_refused_connections_total", Help: "Connections closed at once: over --max-connections or --max-connections-per-ip."}),
		closedIdle:      prometheus.NewCounter(prometheus.CounterOpts{Name: "braid_kafka_idle_connections_closed_total", Help: "Connections closed after --connections-max-idle without a request."}),
		closedSlow:      prometheus.NewCounter(prometheus.CounterOpts{Name: "braid_kafka_slow_connections_closed_total", Help: "Connections closed because a request did not arrive whole within --request-timeout."}),
		splitProduces:   prometheus.NewCounter(prometheus.CounterOpts{Name: "braid_kafka_split_produce_requests_total", Help: "Produce requests of many partitions whose batches were appended by two goroutines."}),
		fetchWindows:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "braid_kafka_fetch_windows_total", Help: "Fetch answers of many partitions read as one range of the log, by how the range was read: ahead (while the answer before went out), direct (past the page cache, while the fetch waited) or cached (through the page cache, which held it, while the fetch waited)."}, []string{"read"}),
		fetchLaggards:   prometheus.NewCounter(prometheus.CounterOpts{Name: "braid_kafka_fetch_laggard_answers_total", Help: "Fetch answers of many partitions that served only the few partitions left behind the others, so that the next answers are windows of the log again."}),
		ProducedRecords: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "braid_produced_records_total", Help: "Records appended, by stream."}, []string{"stream"}),
		ProducedBytes:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "braid_produced_bytes_total", Help: "Record batch bytes appended, by stream."}, []string{"stream"}),
		FetchedBytes:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "braid_fetched_bytes_total", Help: "Record batch bytes served to fetches, by stream."}, []string{"stream"}),
	}
	if reg != nil {
		reg.MustRegister(m.connections, m.requests, m.bytesIn, m.bytesOut, m.badRequests, m.panics,
			m.requestBytes, m.refused, m.closedIdle, m.closedSlow, m.splitProduces, m.fetchWindows, m.fetchLaggards, m.ProducedRecords, m.ProducedBytes, m.FetchedBytes)
	}
	return m
}

func (m *Metrics) observe(key int16, began time.Time) {
	m.requests.WithLabelValues(kmsg.NameForKey(key)).Observe(time.Since(began).Seconds())
}
