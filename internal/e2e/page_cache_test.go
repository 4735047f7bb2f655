package e2e

import (
	"bytes"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/braidstream/braid/internal/braidtest"
	"github.com/braidstream/braid/internal/braidtest/pagecache"
)

// TestWALPageCacheWindow: with --wal-page-cache-bytes, the log's segments
// older than the window leave the page cache once written, and what they
// held is read back whole by a consumer (from the disk).
func TestWALPageCacheWindow(t *testing.T) {
	t.Parallel()
	p := braidtest.Start(t, "--wal-page-cache-bytes", "4194304", "--wal-segment-bytes", "1048576")
	pagecache.SkipOnTmpfs(t, p.DataDir)
	ctx := testCtx(t, 60*time.Second)
	const topic, n = "page-cache-window", 3000 // 16 KiB each: 48 MiB before compression
	createStream(t, ctx, newAdmin(t, p), topic, 1, nil)
	var recs []*kgo.Record
	for i := range n {
		recs = append(recs, &kgo.Record{Topic: topic, Partition: 0, Value: payload(uint64(i), 16<<10)})
	}
	produce(t, ctx, newProducer(t, p), recs...)

	// Segments are 1 MiB; all but the last 8 lie wholly outside the 4 MiB
	// window and the dropper's 1 MiB step.
	segs, err := filepath.Glob(filepath.Join(p.DataDir, "wal", "*.wal"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(segs)
	if len(segs) < 16 {
		t.Fatalf("%d log segments, want at least 16", len(segs))
	}
	old := segs[:len(segs)-8]
	deadline := time.Now().Add(10 * time.Second)
	for {
		in, pages := 0, 0
		for _, s := range old {
			i, n := pagecache.Resident(t, s, 0, -1)
			in, pages = in+i, pages+n
		}
		if in == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of the %d pages of the %d segments older than the window are in the page cache 10s after they were written", in, pages, len(old))
		}
		time.Sleep(50 * time.Millisecond)
	}

	// What was dropped is counted: at least the old segments.
	if got, want := scrapeMetrics(t, ctx, p).must(t, "braid_wal_page_cache_dropped_bytes_total"), float64(len(old)<<20); got < want {
		t.Errorf("braid_wal_page_cache_dropped_bytes_total = %.0f, want at least %.0f (the %d old 1 MiB segments)", got, want, len(old))
	}

	got := consume(t, ctx, p, topic, 0, kgo.NewOffset().AtStart(), n)
	for i, r := range got {
		if !bytes.Equal(r.Value, recs[i].Value) {
			t.Fatalf("record %d read back differs", i)
		}
	}
}
