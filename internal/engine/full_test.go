package engine

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/braidstream/braid/internal/braidtest/tmpfs"
	"github.com/braidstream/braid/internal/wal"
)

// TestBackgroundWritesOnFullDisk runs the mover and a checkpoint on a real
// tmpfs with no space left: they fail with ENOSPC and change nothing, the
// data stays readable from the log, and once space returns the same engine
// moves and checkpoints it, with no stray bytes left in segment files.
func TestBackgroundWritesOnFullDisk(t *testing.T) {
	mnt := tmpfs.Mount(t, 16<<20)
	dir := filepath.Join(mnt, "data")
	e := openEngine(t, dir)
	defer func() { e.Close() }()
	if _, err := e.CreateStream("s", 1, nil, false); err != nil {
		t.Fatal(err)
	}
	var want []string
	val := string(bytes.Repeat([]byte("x"), 900))
	add := func(n int) {
		for range n {
			v := fmt.Sprintf("%d-%s", len(want), val)
			produce(t, e, "s", 0, v)
			want = append(want, v)
		}
	}
	sh := e.Stream("s").Shards[0]
	add(300)
	if err := e.MoveNow(); err != nil { // an active segment file to append to
		t.Fatal(err)
	}
	_, moved := sh.Segments()
	add(300)
	removeFiller := tmpfs.Fill(t, filepath.Join(mnt, "filler"), 0)

	if err := e.MoveNow(); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("move on a full disk: %v, want ENOSPC", err)
	}
	if _, size := sh.Segments(); size != moved {
		t.Fatalf("a failed move left %d bytes counted in shard segments, want the %d moved before", size, moved)
	}
	if err := e.checkpoint(); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("checkpoint on a full disk: %v, want ENOSPC", err)
	}
	if st, err := e.Storage(); st != wal.StateOK {
		t.Fatalf("storage %s (%v) after background writes failed, want ok: nothing was written to the log", st, err)
	}
	if got := readAll(t, e, "s", 0); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after failed background writes: %d records readable, want %d", len(got), len(want))
	}

	removeFiller()
	if err := e.MoveNow(); err != nil {
		t.Fatalf("move after space returned: %v", err)
	}
	// Only closed log segments move; what moved must fit in what was
	// produced. A failed move that kept its room would have pushed this
	// move's bytes behind it.
	_, produced, _ := sh.Stats()
	if _, size := sh.Segments(); size <= 0 || size > produced {
		t.Fatalf("shard segments hold %d bytes after the move, want 1 to %d (the bytes produced)", size, produced)
	}
	produce(t, e, "s", 0, "after")
	want = append(want, "after")
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e = openEngine(t, dir)
	if got := readAll(t, e, "s", 0); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after reopen: %d records, want %d", len(got), len(want))
	}
}
