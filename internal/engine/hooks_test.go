package engine

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
)

// TestMoveAndCheckpointHooks: OnMove reports each completed move with the
// bytes it wrote into shard segments, OnCheckpoint each checkpoint
// written (a move writes one before it reclaims the log) with its size.
func TestMoveAndCheckpointHooks(t *testing.T) {
	var moves, moved, ckpts, ckptBytes atomic.Int64
	e, err := Open(Options{Dir: t.TempDir(), WALSegmentBytes: 64 << 10,
		OnMove:       func(n int64) { moves.Add(1); moved.Add(n) },
		OnCheckpoint: func(n int64) { ckpts.Add(1); ckptBytes.Store(n) },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if _, err := e.CreateStream("s", 1, nil, false); err != nil {
		t.Fatal(err)
	}
	for i := range 300 {
		produce(t, e, "s", 0, fmt.Sprintf("%d-%s", i, bytes.Repeat([]byte("x"), 900)))
	}
	ckptsBefore := ckpts.Load()
	if err := e.MoveNow(); err != nil {
		t.Fatal(err)
	}
	_, segBytes := e.Stream("s").Shards[0].Segments()
	if moves.Load() != 1 || moved.Load() != segBytes || segBytes < 200_000 {
		t.Fatalf("after one move: %d moves of %d bytes reported, shard segments hold %d; want 1 move of all of them (> 200000)",
			moves.Load(), moved.Load(), segBytes)
	}
	if ckpts.Load() != ckptsBefore+1 {
		t.Fatalf("checkpoints reported %d, want %d (the move's)", ckpts.Load(), ckptsBefore+1)
	}
	if err := e.checkpoint(); err != nil {
		t.Fatal(err)
	}
	if ckpts.Load() != ckptsBefore+2 {
		t.Fatalf("checkpoints reported %d after one more, want %d", ckpts.Load(), ckptsBefore+2)
	}
	if fi, err := os.Stat(filepath.Join(e.opts.Dir, deltaName(e.ckChain.id, e.ckChain.deltas))); err != nil || fi.Size() != ckptBytes.Load() {
		t.Fatalf("the last checkpoint reported %d bytes; its file: %v", ckptBytes.Load(), fi)
	}
}
