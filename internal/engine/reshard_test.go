package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/braidstream/braid/internal/catalog"
	"github.com/braidstream/braid/internal/shard"
	"github.com/braidstream/braid/internal/vfs"
)

func produceTo(t *testing.T, e *Engine, name string, id int, b []byte) shard.Offset {
	t.Helper()
	st := e.Stream(name)
	base, _, end, err := e.Produce(st, st.Shards[id], b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.WaitDurable(context.Background(), end); err != nil {
		t.Fatal(err)
	}
	return base
}

// byShard reads every shard of a stream: values by shard id.
func byShard(t *testing.T, e *Engine, name string) map[int][]string {
	out := map[int][]string{}
	for i := range e.Stream(name).Shards {
		if v := readAll(t, e, name, i); len(v) > 0 {
			out[i] = v
		}
	}
	return out
}

// checkHomes checks that every value (its own key) lies in the shard
// whose range owns its MD5, as of the stream's ranges.
func checkHomes(t *testing.T, e *Engine, name string, got map[int][]string) {
	t.Helper()
	st := e.Stream(name)
	for id, vals := range got {
		r := st.Stream.Shards[id].Range
		for _, v := range vals {
			if !r.Contains(HashKeyOf([]byte(v))) {
				t.Fatalf("key %q in shard %d, whose range %s-%s does not own its hash", v, id, r.Start, r.End)
			}
		}
	}
}

func TestSplitMergeScaleLayouts(t *testing.T) {
	e := openEngine(t, t.TempDir())
	defer e.Close()
	ctx := context.Background()
	if _, err := e.CreateStream("s", 2, catalog.Configs{catalog.RoutingConfig: "key"}, false); err != nil {
		t.Fatal(err)
	}
	res, err := e.SplitShard(ctx, "s", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(res.Opened) != "[1 2 3]" || fmt.Sprint(res.Closed) != "[0]" {
		t.Fatalf("split: open %v closed %v", res.Opened, res.Closed)
	}
	cs := res.Stream
	if cs.Shards[2].Range.Start != cs.Shards[0].Range.Start || cs.Shards[3].Range.End != cs.Shards[0].Range.End ||
		!cs.Shards[2].Range.End.Less(cs.Shards[3].Range.Start) {
		t.Fatalf("children ranges do not tile the parent: %+v", cs.Shards)
	}
	if _, err := e.MergeShards(ctx, "s", 3, 1); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, 16, 3, 7, 2, 1} {
		res, err := e.ScaleStream(ctx, "s", n)
		if err != nil {
			t.Fatalf("scale to %d: %v", n, err)
		}
		if len(res.Opened) != n {
			t.Fatalf("scale to %d left %d open shards", n, len(res.Opened))
		}
		even := catalog.SplitEvenly(n)
		slices.SortFunc(res.Opened, func(a, b catalog.ShardID) int {
			if res.Stream.Shards[a].Range.Start.Less(res.Stream.Shards[b].Range.Start) {
				return -1
			}
			return 1
		})
		for i, id := range res.Opened {
			if r := *res.Stream.Shards[id].Range; r != even[i] {
				t.Fatalf("scale to %d: shard %d has range %v, want %v", n, id, r, even[i])
			}
			for _, p := range res.Stream.Shards[id].Parents {
				if res.Stream.Shards[p].State != catalog.ShardClosed {
					t.Fatalf("parent %d of %d is open", p, id)
				}
			}
		}
	}
	// Bad input: clear errors, nothing changed.
	before, _ := e.cat.Stream("s")
	open := openShards(before)
	cases := []struct {
		name string
		do   func() error
		want error
	}{
		{"split a closed shard", func() error { _, err := e.SplitShard(ctx, "s", 0, nil); return err }, catalog.ErrShardClosed},
		{"split an unknown shard", func() error { _, err := e.SplitShard(ctx, "s", 999, nil); return err }, catalog.ErrUnknownShard},
		{"split at the range start", func() error {
			k := before.Shards[open[0]].Range.Start
			_, err := e.SplitShard(ctx, "s", open[0], &k)
			return err
		}, catalog.ErrInvalidReshard},
		{"merge with itself", func() error { _, err := e.MergeShards(ctx, "s", open[0], open[0]); return err }, catalog.ErrInvalidReshard},
		{"merge a closed shard", func() error { _, err := e.MergeShards(ctx, "s", open[0], 0); return err }, catalog.ErrShardClosed},
		{"scale to 0", func() error { _, err := e.ScaleStream(ctx, "s", 0); return err }, catalog.ErrInvalidShards},
		{"scale above the maximum", func() error { _, err := e.ScaleStream(ctx, "s", catalog.DefaultMaxShards+1); return err }, catalog.ErrInvalidShards},
		{"reshard an internal stream", func() error { _, err := e.SplitShard(ctx, catalog.OffsetsStream, 0, nil); return err }, catalog.ErrInternalStream},
		{"reshard an unknown stream", func() error { _, err := e.ScaleStream(ctx, "nope", 2); return err }, catalog.ErrUnknownStream},
	}
	for _, c := range cases {
		if err := c.do(); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	if _, err := e.ScaleStream(ctx, "s", 4); err != nil {
		t.Fatal(err)
	}
	cs, _ = e.cat.Stream("s")
	open = openShards(cs)
	if _, err := e.MergeShards(ctx, "s", open[0], open[2]); !errors.Is(err, catalog.ErrInvalidReshard) {
		t.Errorf("merge non-adjacent: %v", err)
	}
	after, _ := e.cat.Stream("s")
	if fmt.Sprint(after) != fmt.Sprint(cs) {
		t.Fatalf("a refused reshard changed the stream")
	}
}

func TestKeyRoutingAcrossReshards(t *testing.T) {
	dir := t.TempDir()
	e := openEngine(t, dir)
	ctx := context.Background()
	if _, err := e.CreateStream("s", 2, catalog.Configs{catalog.RoutingConfig: "key"}, false); err != nil {
		t.Fatal(err)
	}
	keys := func(from, n int) []string {
		var out []string
		for i := from; i < from+n; i++ {
			out = append(out, fmt.Sprintf("k%03d", i))
		}
		return out
	}
	// Addressed to shard 0, routed by key: the base offset is unknown.
	if base := produceTo(t, e, "s", 0, idemBatch(7, 0, 0, keys(0, 40)...)); base != -1 {
		t.Fatalf("routed batch answered base %d, want -1", base)
	}
	// A retry is a duplicate: nothing more is written.
	st := e.Stream("s")
	if _, n, _, err := e.Produce(st, st.Shards[0], idemBatch(7, 0, 0, keys(0, 40)...), nil); err != nil || n != 0 {
		t.Fatalf("retried routed batch: n=%d err=%v, want a duplicate", n, err)
	}
	got := byShard(t, e, "s")
	checkHomes(t, e, "s", got)
	if total := len(got[0]) + len(got[1]); total != 40 || len(got[0]) == 0 || len(got[1]) == 0 {
		t.Fatalf("40 keys spread as %v", got)
	}
	if _, err := e.SplitShard(ctx, "s", 0, nil); err != nil {
		t.Fatal(err)
	}
	// After a split, a batch addressed to the closed parent is taken and
	// routed to the children; the producer's next sequence is accepted,
	// and a retry of its first batch is still a duplicate.
	produceTo(t, e, "s", 0, idemBatch(7, 0, 40, keys(40, 40)...))
	st = e.Stream("s")
	if _, n, _, err := e.Produce(st, st.Shards[0], idemBatch(7, 0, 0, keys(0, 40)...), nil); err != nil || n != 0 {
		t.Fatalf("retry across a reshard: n=%d err=%v", n, err)
	}
	// Records without a key to a closed shard go to a descendant.
	produceTo(t, e, "s", 0, batchNullKeys("n1", "n2"))
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e = openEngine(t, dir)
	defer e.Close()
	got = byShard(t, e, "s")
	var all []string
	for _, vals := range got {
		all = append(all, vals...)
	}
	if len(all) != 82 {
		t.Fatalf("after restart %d records, want 82: %v", len(all), got)
	}
	if n1 := got[2]; !slices.Contains(n1, "n1") {
		t.Fatalf("null-key records to closed shard 0 not in its first child 2: %v", got)
	}
	got[2] = slices.DeleteFunc(got[2], func(v string) bool { return v[0] == 'n' })
	checkHomes(t, e, "s", got)
	// The sequence note survived the restart.
	st = e.Stream("s")
	if _, n, _, err := e.Produce(st, st.Shards[0], idemBatch(7, 0, 40, keys(40, 40)...), nil); err != nil || n != 0 {
		t.Fatalf("retry after restart: n=%d err=%v", n, err)
	}
	if _, _, _, err := e.Produce(st, st.Shards[0], idemBatch(7, 0, 99, "x"), nil); !errors.Is(err, shard.ErrOutOfOrderSequence) {
		t.Fatalf("gap after restart: %v, want out of order", err)
	}
}

// TestFailedReshardWakesWaitingWrites: a write that found its shard closed
// by a reshard waits for the new layout; when the reshard fails instead
// (here its catalog write) and the shard opens again, the write goes on at
// once rather than waiting out layoutWait and failing.
func TestFailedReshardWakesWaitingWrites(t *testing.T) {
	var fail atomic.Bool
	held := make(chan struct{}, 1)
	release := make(chan struct{})
	fs := vfs.Inject(vfs.NewMemFS(), func(op vfs.Op, path string) error {
		if op == vfs.OpSync && fail.Load() && strings.Contains(path, "catalog") {
			fail.Store(false)
			held <- struct{}{}
			<-release
			return syscall.EIO
		}
		return nil
	})
	e, err := Open(Options{FS: fs, Dir: "/data", WALSegmentBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if _, err := e.CreateStream("s", 1, catalog.Configs{catalog.RoutingConfig: "key"}, false); err != nil {
		t.Fatal(err)
	}
	produceTo(t, e, "s", 0, batch("a"))
	fail.Store(true)
	splitErr := make(chan error, 1)
	go func() {
		_, err := e.SplitShard(context.Background(), "s", 0, nil)
		splitErr <- err
	}()
	<-held // shard 0 is closed; the catalog write hangs
	wrote := make(chan error, 1)
	go func() {
		st := e.Stream("s")
		_, _, end, err := e.Produce(st, st.Shards[0], batch("b"), nil)
		if err == nil {
			err = e.WaitDurable(context.Background(), end)
		}
		wrote <- err
	}()
	time.Sleep(50 * time.Millisecond) // the write finds shard 0 closed and waits
	close(release)
	if err := <-splitErr; err == nil {
		t.Fatal("split succeeded with its catalog write failing")
	}
	select {
	case err := <-wrote:
		if err != nil {
			t.Fatalf("write to the shard the failed split reopened: %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("write to the shard the failed split reopened still waits 3 s later")
	}
	if got := byShard(t, e, "s"); len(e.Stream("s").Shards) != 1 || !slices.Equal(got[0], []string{"a", "b"}) {
		t.Fatalf("after the failed split: %d shards, %v", len(e.Stream("s").Shards), got)
	}
}
