package e2e

import (
	"math"
	"testing"
	"time"

	"github.com/braidstream/braid/internal/braidtest"
)

// TestMemoryLimit: the node runs with a soft memory limit of --cache-bytes
// plus the documented headroom unless told otherwise, so that its resident
// memory follows the cache rather than twice its working set.
func TestMemoryLimit(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t, 25*time.Second)
	for _, tc := range []struct {
		args []string
		want float64
	}{
		{nil, 256<<20 + 768<<20},
		{[]string{"--cache-bytes", "67108864"}, 64<<20 + 768<<20},
		{[]string{"--cache-bytes", "0"}, 256<<20 + 768<<20}, // 0 is the default cache
		{[]string{"--cache-bytes", "67108864", "--memory-limit", "500000000"}, 500000000},
		{[]string{"--memory-limit", "-1"}, math.MaxInt64},
	} {
		p := braidtest.Start(t, tc.args...)
		got := scrapeMetrics(t, ctx, p).must(t, "go_gc_gomemlimit_bytes")
		if got != tc.want {
			t.Errorf("braid serve %v: go_gc_gomemlimit_bytes = %.0f, want %.0f", tc.args, got, tc.want)
		}
		p.Stop()
	}
}
