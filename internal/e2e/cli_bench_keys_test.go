package e2e

import (
	"testing"
	"time"

	"github.com/braidstream/braid/internal/braidtest"
)

// TestCLIBenchKeys: bench --keys writes keyed records, so it can load a
// compacted stream it creates with --stream-config; without keys the
// compacted stream refuses every record.
func TestCLIBenchKeys(t *testing.T) {
	t.Parallel()
	p := braidtest.Start(t)
	ctx := testCtx(t, 30*time.Second)
	r := runCLI(t, ctx, "", nil, "bench", "--stream", "bench-keys", "--keep", "--count", "5000", "--record-size", "100",
		"--keys", "50", "--stream-config", "cleanup.policy=compact", "--consume=false", "--format", "json", "--brokers", p.KafkaAddr)
	if r.code != 0 {
		t.Fatalf("want exit 0; %s", r)
	}
	var rep benchReport
	cliDecodeJSON(t, r, &rep)
	checkBenchPhase(t, "produce", rep.Produce, 5000, 100)
	got := map[string]bool{}
	for _, rec := range p.ReadPartition(ctx, "bench-keys", 0, false) {
		got[string(rec.Key)] = true
	}
	if len(got) != 51 || !got["k0"] || !got["k49"] || !got["warm-up"] {
		t.Fatalf("keys in the stream: %d (%v), want k0..k49 and the warm-up key", len(got), got)
	}
	if cfgs := topicConfigs(t, ctx, newAdmin(t, p), "bench-keys"); cfgs["cleanup.policy"].Value == nil || *cfgs["cleanup.policy"].Value != "compact" {
		t.Fatalf("cleanup.policy %+v, want compact", cfgs["cleanup.policy"])
	}

	r = runCLI(t, ctx, "", nil, "bench", "--stream", "bench-keys", "--count", "100", "--consume=false", "--brokers", p.KafkaAddr)
	if r.code == 0 {
		t.Fatalf("bench without keys against a compacted stream succeeded; %s", r)
	}
}
