package connect

import (
	"github.com/prometheus/client_golang/prometheus"
)

var (
	descRecords = prometheus.NewDesc("braid_connector_records_total", "Records a connector moved (sinks: handed to the target; sources: written to Braid).", []string{"connector"}, nil)
	descErrors  = prometheus.NewDesc("braid_connector_errors_total", "Connector errors by kind: bad_record (a record refused for good), target (a fault of the target or of Braid; the connector retries), fatal (the connector failed).", []string{"connector", "kind"}, nil)
	descLag     = prometheus.NewDesc("braid_connector_lag_records", "Records a sink connector is behind the ends of its streams.", []string{"connector"}, nil)
	descState   = prometheus.NewDesc("braid_connector_state", "1 for the state a connector is in.", []string{"connector", "state"}, nil)
)

// Collector returns the connectors' Prometheus metrics.
func (m *Manager) Collector() prometheus.Collector { return collector{m} }

type collector struct{ m *Manager }

func (collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descRecords
	ch <- descErrors
	ch <- descLag
	ch <- descState
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	c.m.mu.Lock()
	conns := make([]*connector, 0, len(c.m.conns))
	for _, cn := range c.m.conns {
		conns = append(conns, cn)
	}
	c.m.mu.Unlock()
	for _, cn := range conns {
		d := cn.describe()
		cn.mu.Lock()
		errs := map[string]int64{errKindBadRecord: 0, errKindTarget: 0, errKindFatal: 0}
		for k, v := range cn.errs {
			errs[k] = v
		}
		cn.mu.Unlock()
		ch <- prometheus.MustNewConstMetric(descRecords, prometheus.CounterValue, float64(d.RecordsTotal), d.Name)
		for k, v := range errs {
			ch <- prometheus.MustNewConstMetric(descErrors, prometheus.CounterValue, float64(v), d.Name, k)
		}
		ch <- prometheus.MustNewConstMetric(descLag, prometheus.GaugeValue, float64(d.Lag), d.Name)
		for _, s := range States {
			v := 0.0
			if s == d.State {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(descState, prometheus.GaugeValue, v, d.Name, s)
		}
	}
}
