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
	segs := walSegments(t, p)
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

// TestCatchUpReadPastThePageCache: a consumer reading a partition from
// its start, out of log segments no longer in the page cache, takes its
// batches from direct read-ahead (internal/shard/readahead.go): every
// record reads back whole, the node counts the bytes, and the segments
// the reader passed are not in the page cache afterwards (its first read
// goes through it, with the kernel's read-ahead behind).
func TestCatchUpReadPastThePageCache(t *testing.T) {
	t.Parallel()
	p := braidtest.Start(t, "--cache-bytes", "1048576", "--wal-segment-bytes", "8388608")
	pagecache.SkipOnTmpfs(t, p.DataDir)
	ctx := testCtx(t, 60*time.Second)
	const topic, n = "catch-up-direct", 5120 // 16 KiB each: 80 MiB
	createStream(t, ctx, newAdmin(t, p), topic, 1, nil)
	pr := newProducer(t, p)
	var recs []*kgo.Record
	for i := range n {
		recs = append(recs, &kgo.Record{Topic: topic, Partition: 0, Value: randomBytes(uint64(i), 16<<10)})
	}
	for i := 0; i < n; i += 512 {
		produce(t, ctx, pr, recs[i:i+512]...)
	}

	segs := walSegments(t, p)
	if len(segs) < 10 {
		t.Fatalf("%d log segments of 8 MiB, want at least 10", len(segs))
	}
	for _, s := range segs[:len(segs)-1] {
		if in := pagecache.Drop(t, s); in > 0 {
			t.Skipf("%d pages of %s stay cached after dropping them: this filesystem keeps them", in, s)
		}
	}

	got := consume(t, ctx, p, topic, 0, kgo.NewOffset().AtStart(), n)
	for i, r := range got {
		if !bytes.Equal(r.Value, recs[i].Value) {
			t.Fatalf("record %d read back differs", i)
		}
	}

	old := segs[:len(segs)-1]
	in, pages := 0, 0
	for _, s := range old {
		i, n := pagecache.Resident(t, s, 0, -1)
		in, pages = in+i, pages+n
	}
	if in*4096 > 16<<20 {
		t.Errorf("%d of the %d pages of the %d segments the reader passed are in the page cache, want at most 16 MiB (the first read and the kernel's read-ahead)", in, pages, len(old))
	}
	m := scrapeMetrics(t, ctx, p)
	if got, want := m.must(t, "braid_read_direct_bytes_total"), float64(len(old)*8<<20-16<<20); got < want {
		t.Errorf("braid_read_direct_bytes_total = %.0f, want at least %.0f", got, want)
	}
	m.must(t, "braid_read_direct_waits_total")
	if got := m.must(t, "braid_read_direct_buffer_bytes"); got > 128<<20+1<<20 {
		t.Errorf("braid_read_direct_buffer_bytes = %.0f, over the 128 MiB budget", got)
	}
}

// walSegments returns the paths of p's log segment files, oldest first.
func walSegments(t *testing.T, p *braidtest.Proc) []string {
	t.Helper()
	segs, err := filepath.Glob(filepath.Join(p.DataDir, "wal", "*.wal"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(segs)
	return segs
}
