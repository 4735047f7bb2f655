package server

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/braidstream/braid/internal/engine"
)

// reshardMetrics counts reshards (docs/design/resharding.md); observe is
// wired to engine.Options.OnReshard.
type reshardMetrics struct {
	total   *prometheus.CounterVec
	seconds prometheus.Histogram
}

func newReshardMetrics(reg *prometheus.Registry) *reshardMetrics {
	m := &reshardMetrics{
		total: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "braid_reshards_total",
			Help: "Reshards that changed a stream's layout, by op: split, merge, scale or autoscale."}, []string{"stream", "op"}),
		seconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "braid_reshard_seconds",
			Help:    "Duration of one reshard: closing the parents, waiting for their last writes to be durable, saving the catalog.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}),
	}
	reg.MustRegister(m.total, m.seconds)
	return m
}

func (m *reshardMetrics) observe(stream, op string, took time.Duration) {
	m.total.WithLabelValues(stream, op).Inc()
	m.seconds.Observe(took.Seconds())
}

// shardCollector reports per-shard write counters at scrape time, read from
// shard.Written: records and bytes appended since the process loaded the
// shard, so rate() gives a shard's write rate. Internal streams are left
// out, as in braid_shards, but for the memory of the shard indexes, which
// counts all.
type shardCollector struct {
	eng            *engine.Engine
	records, bytes *prometheus.Desc
	routed         *prometheus.Desc
	index          *prometheus.Desc
}

func newShardCollector(eng *engine.Engine) *shardCollector {
	return &shardCollector{
		eng:     eng,
		records: prometheus.NewDesc("braid_shard_written_records_total", "Records appended to a shard since the node loaded it (routed records counted where they landed).", []string{"stream", "shard"}, nil),
		bytes:   prometheus.NewDesc("braid_shard_written_bytes_total", "Bytes of record batches appended to a shard since the node loaded it.", []string{"stream", "shard"}, nil),
		routed:  prometheus.NewDesc("braid_routed_batches_total", "Produced batches whose records the server routed to shards other than the one addressed (braid.routing=key).", nil, nil),
		index: prometheus.NewDesc("braid_shard_index_bytes",
			"Memory the shard indexes of all streams hold (48 bytes per recent batch, 9-13 per older one, with their arrays' spare capacity): the part of the node's memory that grows with what it retains.", nil, nil),
	}
}

func (c *shardCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.records
	ch <- c.bytes
	ch <- c.routed
	ch <- c.index
}

func (c *shardCollector) Collect(ch chan<- prometheus.Metric) {
	var index int64
	for name, st := range c.eng.Streams() {
		for _, sh := range st.Shards {
			index += sh.IndexBytes()
			if st.Internal {
				continue
			}
			id := strconv.FormatInt(int64(sh.Key().Shard), 10)
			recs, bytes := sh.Written()
			ch <- prometheus.MustNewConstMetric(c.records, prometheus.CounterValue, float64(recs), name, id)
			ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.CounterValue, float64(bytes), name, id)
		}
	}
	ch <- prometheus.MustNewConstMetric(c.routed, prometheus.CounterValue, float64(c.eng.RoutedBatches()))
	ch <- prometheus.MustNewConstMetric(c.index, prometheus.GaugeValue, float64(index))
}

// indexBytes is what the shard indexes of every stream hold.
func indexBytes(eng *engine.Engine) (n int64) {
	for _, st := range eng.Streams() {
		for _, sh := range st.Shards {
			n += sh.IndexBytes()
		}
	}
	return n
}
