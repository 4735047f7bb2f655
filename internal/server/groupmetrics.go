package server

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/braidstream/braid/internal/engine"
	"github.com/braidstream/braid/internal/group"
)

// groupCollector reports consumer groups at scrape time: members,
// generation (classic) or group epoch (KIP-848), and lag per stream (the
// sum over shards of high watermark minus committed offset).
type groupCollector struct {
	eng    *engine.Engine
	groups *group.Coordinator

	members, generation, lag *prometheus.Desc
}

func newGroupCollector(eng *engine.Engine, groups *group.Coordinator) *groupCollector {
	return &groupCollector{
		eng: eng, groups: groups,
		members:    prometheus.NewDesc("braid_group_members", "Members of a consumer group.", []string{"group"}, nil),
		generation: prometheus.NewDesc("braid_group_generation", "Generation (classic) or group epoch (KIP-848) of a consumer group.", []string{"group"}, nil),
		lag:        prometheus.NewDesc("braid_group_lag_records", "Records between a group's committed offsets and the high watermark, per stream.", []string{"group", "stream"}, nil),
	}
}

func (c *groupCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.members
	ch <- c.generation
	ch <- c.lag
}

func (c *groupCollector) Collect(ch chan<- prometheus.Metric) {
	stats := c.groups.Stats()
	for name, s := range stats {
		ch <- prometheus.MustNewConstMetric(c.members, prometheus.GaugeValue, float64(s.Members), name)
		ch <- prometheus.MustNewConstMetric(c.generation, prometheus.GaugeValue, float64(s.Generation), name)
	}
	for name := range c.groups.List() {
		lag := map[string]int64{}
		for tp, cm := range c.eng.Offsets().Fetch(name) {
			st := c.eng.Stream(tp.Topic)
			if st == nil || int(tp.Partition) >= len(st.Shards) {
				continue
			}
			_, hw, _ := st.Shards[tp.Partition].Offsets()
			lag[tp.Topic] += max(0, int64(hw)-cm.Offset)
		}
		for stream, n := range lag {
			ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, float64(n), name, stream)
		}
	}
}
