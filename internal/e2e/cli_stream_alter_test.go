package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/braidstream/braid/internal/braidtest"
)

// TestCLIStreamAlter: braid stream alter sets and deletes configs, refuses
// bad input before asking the broker, and reports the broker's refusals;
// stream describe shows compaction state once the stream is compacted.
func TestCLIStreamAlter(t *testing.T) {
	t.Parallel()
	p := braidtest.Start(t, "--cleaner-interval", "100ms")
	ctx := testCtx(t, 30*time.Second)
	adm := newAdmin(t, p)
	createStream(t, ctx, adm, "alt", 1, map[string]*string{"retention.ms": ptr("3600000")})
	cli := func(args ...string) cliResult {
		return runCLI(t, ctx, "", nil, append(args, "--brokers", p.KafkaAddr)...)
	}

	r := cli("stream", "alter", "alt", "--config", "cleanup.policy=compact", "--config", "segment.bytes=14", "--delete-config", "retention.ms")
	if r.code != 0 || !strings.Contains(r.stdout, `altered stream "alt": 3 configs changed`) {
		t.Fatalf("alter: %s", r)
	}
	cfgs := topicConfigs(t, ctx, adm, "alt")
	if v := cfgs["cleanup.policy"].Value; v == nil || *v != "compact" {
		t.Errorf("cleanup.policy %v, want compact", v)
	}
	if v := cfgs["segment.bytes"].Value; v == nil || *v != "14" {
		t.Errorf("segment.bytes %v, want 14", v)
	}
	if c := cfgs["retention.ms"]; c.Source.String() != "DEFAULT_CONFIG" {
		t.Errorf("retention.ms after delete-config: %+v, want the default", c)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"stream", "alter", "alt"}, "nothing to change"},
		{[]string{"stream", "alter", "alt", "--config", "retention.ms"}, "want key=value"},
		{[]string{"stream", "alter", "alt", "--config", "a=1", "--delete-config", "a"}, "both set and deleted"},
		{[]string{"stream", "alter", "alt", "--config", "retention.ms=forever"}, "invalid config"},
		{[]string{"stream", "alter", "alt", "--config", "no.such.config=1"}, "invalid config"},
		{[]string{"stream", "alter", "missing", "--config", "retention.ms=1"}, `stream "missing" does not exist`},
	} {
		if r := cli(tc.args...); r.code == 0 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%q: want a failure mentioning %q; %s", tc.args, tc.want, r)
		}
	}

	// Compacted now: a keyed record per key version, then describe shows
	// the cleaner's state for the shard.
	cl := newProducer(t, p)
	for _, v := range []string{"a:1", "a:2", "b:1", "c:1"} {
		k, val, _ := strings.Cut(v, ":")
		produce(t, ctx, cl, &kgo.Record{Topic: "alt", Key: []byte(k), Value: []byte(val)})
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		r := runCLI(t, ctx, "", []string{"BRAID_ADMIN_ADDR=" + p.HTTPAddr}, "stream", "describe", "alt", "--brokers", p.KafkaAddr)
		if r.code != 0 {
			t.Fatalf("describe: %s", r)
		}
		if cliHasRow(r.stdout, []string{"SHARD", "LEADER", "EPOCH", "REPLICAS", "EARLIEST", "LATEST", "SIZE", "DIRTY", "CLEANED", "TO", "LAST", "CLEANED"}) &&
			!strings.Contains(r.stdout, "never") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("describe never showed a cleaning; %s", r)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
