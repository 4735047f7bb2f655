package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"syscall"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// A burst (a few seconds of produce) fits in the write-ahead log and the
// page cache and never pays for moving data into shard segments or for
// checkpoints; a sustained run does. When the node's HTTP address is known
// (Config.MetricsAddr) the run scrapes its /metrics before and after the
// produce phase to say which of the two it measured, and samples the
// node's resident memory once a second.

// Metric names the run reads; the server registers them
// (internal/server/server.go), the process collector the last one.
const (
	metricMoverRuns   = "braid_mover_runs_total"
	metricMovedBytes  = "braid_mover_moved_bytes_total"
	metricCheckpoints = "braid_checkpoints_total"
	metricRSS         = "process_resident_memory_bytes"
	metricCPU         = "process_cpu_seconds_total"
)

// sustainedMin is how long a run without the node's metrics must produce
// before its figures are taken for sustained ones: the default checkpoint
// interval is 30 s and a move needs at least a closed WAL segment.
const sustainedMin = 60 * time.Second

// Burst notes, printed with the report; scripts match them.
const (
	NoteNoBackground = "the run was too short to include background work (no move or checkpoint happened): this is a burst figure"
	NoteShortRun     = "runs shorter than 60s are burst figures"
)

// NodeStats is what the node's own metrics said about a run.
type NodeStats struct {
	// Moves, MovedBytes and Checkpoints happened during the produce phase.
	Moves       int64 `json:"moves"`
	MovedBytes  int64 `json:"moved_bytes"`
	Checkpoints int64 `json:"checkpoints"`
	// PeakRSSBytes is the node's highest resident memory seen, sampled
	// once a second over the whole run; 0 if the node does not export it.
	PeakRSSBytes int64 `json:"peak_rss_bytes,omitempty"`
	// CPUSeconds is the CPU time (user and system) the node's process
	// spent during the produce phase; nil if the node does not export it.
	// With Result.ClientCPUSeconds it says which side a run was bound by
	// when both share a machine.
	CPUSeconds *float64 `json:"cpu_seconds,omitempty"`
}

// nodeSample is one scrape of the node's counters.
type nodeSample struct {
	moverRuns, movedBytes, checkpoints float64
	rss, cpu                           float64 // 0 = not exported
	hasCPU                             bool
}

// parseNodeMetrics reads the counters a run needs from a /metrics body in
// the Prometheus text format. A node without the mover and checkpoint
// counters is too old to tell bursts from sustained runs: that is an error
// rather than a silent zero, which would read as "no background work".
func parseNodeMetrics(r io.Reader) (nodeSample, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(r)
	if err != nil {
		return nodeSample{}, fmt.Errorf("parse metrics: %w", err)
	}
	var s nodeSample
	for _, m := range []struct {
		name string
		dst  *float64
	}{{metricMoverRuns, &s.moverRuns}, {metricMovedBytes, &s.movedBytes}, {metricCheckpoints, &s.checkpoints}} {
		v, ok := metricValue(fams[m.name])
		if !ok {
			return nodeSample{}, fmt.Errorf("metrics have no %s (is this a braid node of this version?)", m.name)
		}
		*m.dst = v
	}
	s.rss, _ = metricValue(fams[metricRSS])
	s.cpu, s.hasCPU = metricValue(fams[metricCPU])
	return s, nil
}

// metricValue is the value of an unlabelled counter or gauge.
func metricValue(f *dto.MetricFamily) (float64, bool) {
	if f == nil || len(f.GetMetric()) != 1 {
		return 0, false
	}
	m := f.GetMetric()[0]
	switch {
	case m.GetCounter() != nil:
		return m.GetCounter().GetValue(), true
	case m.GetGauge() != nil:
		return m.GetGauge().GetValue(), true
	case m.GetUntyped() != nil:
		return m.GetUntyped().GetValue(), true
	}
	return 0, false
}

// backgroundDelta is the background work between two scrapes.
func backgroundDelta(before, after nodeSample) NodeStats {
	var cpu *float64
	if before.hasCPU && after.hasCPU {
		d := max(after.cpu-before.cpu, 0) // a restarted node's counter began again
		cpu = &d
	}
	return NodeStats{
		Moves:       int64(after.moverRuns - before.moverRuns),
		MovedBytes:  int64(after.movedBytes - before.movedBytes),
		Checkpoints: int64(after.checkpoints - before.checkpoints),
		CPUSeconds:  cpu,
	}
}

// burstNote says why a run's figures are burst figures, or "" if they may
// stand for sustained ones. node is nil when the node's metrics were not
// scraped; produced is how long the produce phase ran.
func burstNote(node *NodeStats, produced time.Duration) string {
	if node == nil {
		if produced < sustainedMin {
			return NoteShortRun
		}
		return ""
	}
	if node.Moves == 0 && node.Checkpoints == 0 {
		return NoteNoBackground
	}
	return ""
}

// nodeScraper reads a node's /metrics over HTTP.
type nodeScraper struct {
	url string
	hc  *http.Client

	mu      sync.Mutex
	peakRSS float64
}

func newNodeScraper(addr string) *nodeScraper {
	return &nodeScraper{url: "http://" + addr + "/metrics", hc: &http.Client{Timeout: 10 * time.Second}}
}

func (n *nodeScraper) scrape(ctx context.Context) (nodeSample, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.url, nil)
	if err != nil {
		return nodeSample{}, fmt.Errorf("scrape node metrics: %w", err)
	}
	resp, err := n.hc.Do(req)
	if err != nil {
		return nodeSample{}, fmt.Errorf("scrape node metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nodeSample{}, fmt.Errorf("scrape node metrics: GET %s: %s", n.url, resp.Status)
	}
	s, err := parseNodeMetrics(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nodeSample{}, fmt.Errorf("scrape node metrics from %s: %w", n.url, err)
	}
	n.mu.Lock()
	n.peakRSS = max(n.peakRSS, s.rss)
	n.mu.Unlock()
	return s, nil
}

// sampleRSS scrapes once a second until ctx ends, keeping the peak
// resident memory; a failed scrape is skipped (the next one may work).
func (n *nodeScraper) sampleRSS(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			n.scrape(ctx)
		}
	}
}

func (n *nodeScraper) peak() int64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return int64(n.peakRSS)
}

// processCPU is the CPU time, user and system, this process has used, in
// seconds; 0 where the system does not say.
func processCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}
