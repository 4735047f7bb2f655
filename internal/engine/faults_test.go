package engine

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/braidstream/braid/internal/catalog"
	"github.com/braidstream/braid/internal/group"
	"github.com/braidstream/braid/internal/vfs"
)

// TestFailedMoveLeavesNothingUnreachable: a move that fails half-way (disk
// full on a segment file) must leave no segment file behind that readers
// cannot find or whose directory entry was never synced; the next move must
// succeed and every record stay readable, also after a power loss.
func TestFailedMoveLeavesNothingUnreachable(t *testing.T) {
	mem := vfs.NewMemFS()
	var full atomic.Bool
	fs := vfs.Inject(mem, func(op vfs.Op, path string) error {
		if full.Load() && op == vfs.OpWrite && strings.HasSuffix(path, ".seg") {
			return syscall.ENOSPC
		}
		return nil
	})
	e, err := Open(Options{Dir: "/data", FS: fs, WALSegmentBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.CreateStream("s", 1, catalog.Configs{"segment.bytes": "1000000"}, false); err != nil {
		t.Fatal(err)
	}
	var want []string
	add := func(n int) {
		for range n {
			v := fmt.Sprintf("%04d-%s", len(want), strings.Repeat("v", 500))
			produce(t, e, "s", 0, v)
			want = append(want, v)
		}
	}
	add(300)
	full.Store(true)
	if err := e.MoveNow(); err == nil {
		t.Fatal("a move onto a full disk succeeded")
	}
	full.Store(false)
	add(300)
	if err := e.MoveNow(); err != nil {
		t.Fatal(err)
	}
	if n, _ := e.Stream("s").Shards[0].Segments(); n == 0 {
		t.Fatal("nothing was moved into segment files")
	}
	if got := readAll(t, e, "s", 0); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after the failed and the good move: %d records readable, want %d", len(got), len(want))
	}
	// What a power loss keeps must hold every record too.
	crashed := mem.CrashClone()
	e.Close()
	e2, err := Open(Options{Dir: "/data", FS: crashed, WALSegmentBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer e2.Close()
	if got := readAll(t, e2, "s", 0); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after a power loss: %d records, want %d", len(got), len(want))
	}
}

// TestRecreatedStreamInheritsNoOffsets: a power loss between a stream's
// deletion and the deletion of its committed offsets must not hand those
// offsets to a stream recreated under the same name.
func TestRecreatedStreamInheritsNoOffsets(t *testing.T) {
	mem := vfs.NewMemFS()
	e, err := Open(Options{Dir: "/data", FS: mem, WALSegmentBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.CreateStream("s", 1, nil, false); err != nil {
		t.Fatal(err)
	}
	produce(t, e, "s", 0, "a", "b")
	tp := group.TopicPartition{Topic: "s", Partition: 0}
	if err := e.Offsets().Commit(context.Background(), "g", map[group.TopicPartition]group.Commit{tp: {Offset: 2}}); err != nil {
		t.Fatal(err)
	}
	// The catalog change is durable; the offsets' deletion never ran.
	if _, err := e.cat.DeleteStream("s"); err != nil {
		t.Fatal(err)
	}
	crashed := mem.CrashClone()
	e.Close()
	e, err = Open(Options{Dir: "/data", FS: crashed, WALSegmentBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.CreateStream("s", 1, nil, false); err != nil {
		t.Fatal(err)
	}
	if got, ok := e.Offsets().Fetch("g")[tp]; ok {
		t.Fatalf("the recreated stream inherited committed offset %d", got.Offset)
	}
	// And it stays so across another power loss.
	crashed = crashed.CrashClone()
	e.Close()
	e, err = Open(Options{Dir: "/data", FS: crashed, WALSegmentBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if got, ok := e.Offsets().Fetch("g")[tp]; ok {
		t.Fatalf("after a second crash the recreated stream has committed offset %d", got.Offset)
	}
}

// TestNoUnlinkBeforeLogStartIsDurable: DeleteRecords moves the log start in
// memory at once, but no segment file may be unlinked until its log-start
// frame is durable: a power loss would otherwise leave a checkpoint whose
// index names files that are gone.
func TestNoUnlinkBeforeLogStartIsDurable(t *testing.T) {
	mem := vfs.NewMemFS()
	var hold atomic.Bool
	release := make(chan struct{})
	fs := vfs.Inject(mem, func(op vfs.Op, path string) error {
		if hold.Load() && op == vfs.OpSync && strings.HasSuffix(path, ".wal") {
			<-release
		}
		return nil
	})
	e, err := Open(Options{Dir: "/data", FS: fs, WALSegmentBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.CreateStream("s", 1, catalog.Configs{"segment.bytes": "20000"}, false); err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		produce(t, e, "s", 0, fmt.Sprintf("%04d-%s", i, strings.Repeat("v", 300)))
	}
	if err := e.MoveNow(); err != nil {
		t.Fatal(err)
	}
	if err := e.checkpoint(); err != nil {
		t.Fatal(err)
	}
	sh := e.Stream("s").Shards[0]
	dir := e.shardDir(uint64(e.Stream("s").ID), 0)
	before, _ := mem.List(dir)
	if len(before) < 3 {
		t.Fatalf("segment files %v, want several", before)
	}
	hold.Store(true)
	if _, _, err := sh.DeleteRecords(150); err != nil {
		t.Fatal(err)
	}
	if _, err := sh.DropUnreferencedSegments(0, time.Now()); err != nil {
		t.Fatal(err)
	}
	after, _ := mem.List(dir)
	if len(after) != len(before) {
		close(release)
		t.Fatalf("segment files were unlinked before the log-start frame was durable: %v -> %v", before, after)
	}
	crashed := mem.CrashClone()
	close(release)
	e.Close()
	e2, err := Open(Options{Dir: "/data", FS: crashed, WALSegmentBytes: 64 << 10})
	if err != nil {
		t.Fatalf("open after a power loss during DeleteRecords: %v", err)
	}
	defer e2.Close()
	if got := readAll(t, e2, "s", 0); len(got) != 200 {
		t.Fatalf("after the lost DeleteRecords: %d records, want 200", len(got))
	}
}
