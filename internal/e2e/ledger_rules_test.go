package e2e

import (
	"strings"
	"testing"
)

// TestGroupOrderRules checks the group order rule of the resharding ledger
// test on hand-made reads (pure logic: no server). Key a has seq 0-2 in
// shard 0 and seq 3-4 in its child, shard 1; key b has one record.
func TestGroupOrderRules(t *testing.T) {
	kl := newKeyLog()
	for _, r := range []logRec{
		{logPos{0, 0}, "t", "a", 0}, {logPos{0, 1}, "t", "a", 1}, {logPos{0, 2}, "t", "a", 2},
		{logPos{0, 3}, "t", "b", 0},
		{logPos{1, 0}, "t", "a", 3}, {logPos{1, 1}, "t", "a", 4},
	} {
		kl.add(r)
	}
	a := func(seq int) logPos { return []logPos{{0, 0}, {0, 1}, {0, 2}, {1, 0}, {1, 1}}[seq] }
	b0 := logPos{0, 3}
	for _, c := range []struct {
		name    string
		reads   []logPos
		rewinds int
		fails   string // a violation must contain this; empty: none allowed
	}{
		{"in order", []logPos{a(0), a(1), b0, a(2), a(3), a(4)}, 0, ""},
		{"rewind re-delivers a suffix", []logPos{a(0), a(1), a(2), a(1), a(2), a(3), b0, a(3), a(4)}, 2, ""},
		{"child before the parent's end", []logPos{a(0), a(1), a(3), a(2), a(4), b0}, 0, "read seq 3 at 1@0 right after seq 1 at 0@1"},
		{"child first", []logPos{a(3), a(0), a(1), a(2), a(4), b0}, 0, "right after nothing"},
		{"skip inside a re-delivery", []logPos{a(0), a(1), a(2), a(0), a(2), a(3), a(4), b0}, 1, "read seq 2 at 0@2 right after seq 0 at 0@0"},
		{"record missing", []logPos{a(0), a(1), a(2), a(3), b0}, 0, "key a: read 4 of its 5 records"},
		{"record the log does not hold", []logPos{a(0), a(1), a(2), a(3), a(4), b0, {7, 7}}, 0, "7@7"},
	} {
		t.Run(c.name, func(t *testing.T) {
			v, rewinds := groupOrderViolations(c.reads, kl)
			if rewinds != c.rewinds {
				t.Errorf("rewinds %d, want %d", rewinds, c.rewinds)
			}
			got := strings.Join(v, "\n")
			if c.fails == "" && len(v) > 0 || c.fails != "" && !strings.Contains(got, c.fails) {
				t.Errorf("violations:\n%s\nwant one containing %q", got, c.fails)
			}
		})
	}
}
