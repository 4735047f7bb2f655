package engine

import (
	"fmt"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/braidstream/braid/internal/catalog"
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
