package bench

import (
	"strings"
	"testing"
	"time"
)

// scrapeText is a /metrics body as the server writes it, trimmed.
func scrapeText(runs, moved, ckpts, rss string) string {
	s := `# HELP braid_checkpoints_total Index checkpoints written.
# TYPE braid_checkpoints_total counter
braid_checkpoints_total ` + ckpts + `
# HELP braid_mover_moved_bytes_total Bytes the mover copied.
# TYPE braid_mover_moved_bytes_total counter
braid_mover_moved_bytes_total ` + moved + `
# HELP braid_mover_runs_total Completed moves.
# TYPE braid_mover_runs_total counter
braid_mover_runs_total ` + runs + `
# HELP braid_wal_flush_seconds Duration of one group commit.
# TYPE braid_wal_flush_seconds histogram
braid_wal_flush_seconds_bucket{le="5e-05"} 0
braid_wal_flush_seconds_bucket{le="+Inf"} 3
braid_wal_flush_seconds_sum 0.01
braid_wal_flush_seconds_count 3
`
	if rss != "" {
		s += `# HELP process_resident_memory_bytes Resident memory size in bytes.
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes ` + rss + "\n"
		s += `# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 12.5
`
	}
	return s
}

func TestParseNodeMetrics(t *testing.T) {
	s, err := parseNodeMetrics(strings.NewReader(scrapeText("3", "1.34217728e+08", "7", "5.2428800e+07")))
	if err != nil {
		t.Fatal(err)
	}
	want := nodeSample{moverRuns: 3, movedBytes: 134217728, checkpoints: 7, rss: 52428800, cpu: 12.5, hasCPU: true}
	if s != want {
		t.Fatalf("parsed %+v, want %+v", s, want)
	}

	s, err = parseNodeMetrics(strings.NewReader(scrapeText("0", "0", "1", "")))
	if err != nil {
		t.Fatal(err)
	}
	if s.rss != 0 || s.cpu != 0 || s.checkpoints != 1 {
		t.Fatalf("without the process collector: parsed %+v, want rss and cpu 0 and 1 checkpoint", s)
	}

	// A node without the counters must not read as "no background work".
	old := strings.ReplaceAll(scrapeText("0", "0", "0", "1"), "braid_mover_runs_total", "braid_something_else_total")
	if _, err := parseNodeMetrics(strings.NewReader(old)); err == nil || !strings.Contains(err.Error(), metricMoverRuns) {
		t.Fatalf("metrics without %s: err %v, want one naming it", metricMoverRuns, err)
	}
	if _, err := parseNodeMetrics(strings.NewReader("not { metrics\n")); err == nil {
		t.Fatal("garbage parsed without error")
	}
}

func TestBackgroundDelta(t *testing.T) {
	before := nodeSample{moverRuns: 2, movedBytes: 1000, checkpoints: 5, rss: 10}
	// A node restarted between the scrapes (its CPU counter began again)
	// reports no CPU rather than a negative figure.
	if got := backgroundDelta(nodeSample{cpu: 9, hasCPU: true}, nodeSample{cpu: 2, hasCPU: true}); got.CPUSeconds == nil || *got.CPUSeconds != 0 {
		t.Fatalf("CPU after a restart: %v, want 0", got.CPUSeconds)
	}
	// A node without the process collector reports none, not zero.
	if got := backgroundDelta(nodeSample{}, nodeSample{}); got.CPUSeconds != nil {
		t.Fatalf("CPU of a node that does not export it: %v, want nil", *got.CPUSeconds)
	}
	if got := backgroundDelta(nodeSample{cpu: 2.5, hasCPU: true}, nodeSample{cpu: 10, hasCPU: true}); got.CPUSeconds == nil || *got.CPUSeconds != 7.5 {
		t.Fatalf("CPU delta %v, want 7.5", got.CPUSeconds)
	}

	for _, tc := range []struct {
		name  string
		after nodeSample
		want  NodeStats
	}{
		{"nothing happened", before, NodeStats{}},
		{"a checkpoint", nodeSample{moverRuns: 2, movedBytes: 1000, checkpoints: 6}, NodeStats{Checkpoints: 1}},
		{"moves and checkpoints", nodeSample{moverRuns: 4, movedBytes: 5000, checkpoints: 8},
			NodeStats{Moves: 2, MovedBytes: 4000, Checkpoints: 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := backgroundDelta(before, tc.after); got != tc.want {
				t.Fatalf("delta %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestBurstNote(t *testing.T) {
	for _, tc := range []struct {
		name     string
		node     *NodeStats
		produced time.Duration
		want     string
	}{
		{"no metrics, short", nil, 10 * time.Second, NoteShortRun},
		{"no metrics, just short", nil, 59 * time.Second, NoteShortRun},
		{"no metrics, long", nil, 60 * time.Second, ""},
		{"metrics, nothing happened", &NodeStats{}, 5 * time.Minute, NoteNoBackground},
		{"metrics, a checkpoint", &NodeStats{Checkpoints: 1}, time.Second, ""},
		{"metrics, a move", &NodeStats{Moves: 1, MovedBytes: 1}, time.Second, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := burstNote(tc.node, tc.produced); got != tc.want {
				t.Fatalf("note %q, want %q", got, tc.want)
			}
		})
	}
}
