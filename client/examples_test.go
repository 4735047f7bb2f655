package client_test

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The examples/ programs build and do what their docs say against a real
// node, so that they cannot rot.
func TestExamplesRun(t *testing.T) {
	s := startServer(t, "--group-initial-rebalance-delay", "0")
	bin := t.TempDir()
	for _, tc := range []struct {
		name  string
		args  []string
		check func(t *testing.T, out string)
	}{
		{"produce-consume", []string{"-stream", "ex", "-shards", "3", "-n", "200"}, func(t *testing.T, out string) {
			if !strings.Contains(out, "produced 200 records") || !strings.Contains(out, "consumed 200 records") {
				t.Errorf("output does not report 200 produced and consumed:\n%s", out)
			}
			var total int64
			for shard := range int32(3) {
				total += s.endOffset(t, "ex", shard)
			}
			if total != 200 {
				t.Errorf("stream holds %d records, want 200", total)
			}
		}},
		{"exactly-once", []string{"-in", "eo-in", "-out", "eo-out", "-seed", "50", "-n", "50"}, func(t *testing.T, out string) {
			got := s.readAll(t, "eo-out", 50)
			seen := map[string]bool{}
			for _, r := range got {
				if !bytes.HasPrefix(r.Value, []byte("HELLO ")) || seen[string(r.Value)] {
					t.Errorf("output record %q: not an upper-cased input, or seen twice", r.Value)
				}
				seen[string(r.Value)] = true
			}
			if len(seen) != 50 {
				t.Errorf("output holds %d distinct records, want 50; program said:\n%s", len(seen), out)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			exe := filepath.Join(bin, tc.name)
			if out, err := exec.Command("go", "build", "-o", exe, "./examples/"+tc.name).CombinedOutput(); err != nil {
				t.Fatalf("build: %v\n%s", err, out)
			}
			args := append([]string{"-brokers", s.KafkaAddr, "-timeout", "60s"}, tc.args...)
			out, err := exec.Command(exe, args...).CombinedOutput()
			if err != nil {
				t.Fatalf("%s %q: %v\n%s", tc.name, args, err, out)
			}
			tc.check(t, string(out))
		})
	}
}
