package powerloss

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/braidstream/braid/internal/catalog"
	"github.com/braidstream/braid/internal/engine"
	"github.com/braidstream/braid/internal/vfs"
)

// TestMoveAfterFailedDirSync: a move whose directory sync fails after it
// created a segment file must not leave that file for the next move to fill
// without syncing the directory: the next checkpoint would point at a file
// a power loss removes.
func TestMoveAfterFailedDirSync(t *testing.T) {
	mem := vfs.NewMemFS()
	var fail atomic.Int64
	fs := vfs.Inject(mem, func(op vfs.Op, path string) error {
		if op == vfs.OpSyncDir && strings.HasPrefix(path, dataDir+"/shards/") && fail.Add(-1) >= 0 {
			return syscall.EIO
		}
		return nil
	})
	r := newRun(1, false)
	e, err := engine.Open(r.options(fs))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { e.Close() }()
	if _, err := e.CreateStream("m", 1, catalog.Configs{"segment.bytes": "300000"}, false); err != nil {
		t.Fatal(err)
	}
	st := e.Stream("m")
	var want []string
	produce := func(n int) {
		t.Helper()
		for range n {
			v := fmt.Sprintf("m#%d#%s", len(want), strings.Repeat("x", 2000))
			_, _, end, err := e.Produce(st, st.Shards[0], buildBatch([]rec{{val: v}}, -1, 0, 0, false), nil)
			if err == nil {
				err = e.WaitDurable(context.Background(), end)
			}
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, v)
		}
	}
	sh := st.Shards[0]
	move := func() error {
		_, err := sh.MoveOut(e.DurablePosition()+1, 300000, nil)
		return err
	}
	// Files A (full) and B, the directory synced.
	produce(200)
	if err := move(); err != nil {
		t.Fatal(err)
	}
	// B fills up and C is created, but the directory sync fails.
	produce(110)
	fail.Store(1)
	if err := move(); err == nil {
		t.Fatal("move succeeded with its directory sync failing")
	}
	// The retry fits in C: no file is created.
	if err := move(); err != nil {
		t.Fatal(err)
	}
	if err := e.MoveNow(); err != nil { // checkpoints
		t.Fatal(err)
	}
	e.Close()
	e, err = engine.Open(r.options(mem.CrashClone()))
	if err != nil {
		t.Fatalf("recover: %v", err)
	}
	recs, _, _, err := readShard(e.Stream("m").Shards[0])
	if err != nil {
		t.Fatalf("read after recovery: %v", err)
	}
	if len(recs) != len(want) {
		t.Fatalf("%d records after recovery, want %d", len(recs), len(want))
	}
	for i, rr := range recs {
		if rr.val != want[i] {
			t.Fatalf("offset %d holds %q, want %q", i, short(rr.val), short(want[i]))
		}
	}
}

// TestDeleteRecordsRepeatedAfterFailure: a DeleteRecords whose log-start
// frame cannot be made durable fails, though the log start already moved in
// memory; asking again for the same offset must not then be acknowledged
// as done: a crash takes the frame, and the log start, back. (Found by
// TestFaultInjection seed 325 with ENOSPC on every write.)
func TestDeleteRecordsRepeatedAfterFailure(t *testing.T) {
	mem := vfs.NewMemFS()
	var full atomic.Bool
	fs := vfs.Inject(mem, func(op vfs.Op, path string) error {
		if full.Load() && op == vfs.OpWrite && strings.HasPrefix(path, dataDir+"/wal/") {
			return syscall.ENOSPC
		}
		return nil
	})
	e, err := engine.Open(newRun(1, false).options(fs))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { e.Close() }()
	if _, err := e.CreateStream("d", 1, nil, false); err != nil {
		t.Fatal(err)
	}
	st := e.Stream("d")
	_, _, end, err := e.Produce(st, st.Shards[0], buildBatch([]rec{{val: "a"}, {val: "b"}, {val: "c"}}, -1, 0, 0, false), nil)
	if err == nil {
		err = e.WaitDurable(context.Background(), end)
	}
	if err != nil {
		t.Fatal(err)
	}
	full.Store(true)
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := e.DeleteRecords(c, st.Shards[0], 2); err == nil {
		t.Fatal("DeleteRecords acknowledged with the log full")
	}
	if _, err := e.DeleteRecords(c, st.Shards[0], 2); err == nil {
		t.Error("DeleteRecords to the same offset again acknowledged with the log full; its frame was never durable")
	}
	if _, err := e.DeleteRecords(c, st.Shards[0], 1); err == nil {
		t.Error("DeleteRecords below the undurable log start acknowledged with the log full")
	}
	e.Close()
	e, err = engine.Open(newRun(1, false).options(mem.CrashClone()))
	if err != nil {
		t.Fatalf("recover: %v", err)
	}
	if start, _, _ := e.Stream("d").Shards[0].Offsets(); start != 0 {
		t.Fatalf("log start %d after recovery; no DeleteRecords was durable", start)
	}
}
