package shard

import (
	"context"
	"testing"

	"github.com/braidstream/braid/internal/wal"
)

func appendKeys(t *testing.T, s *Shard, keys ...string) AppendResult {
	t.Helper()
	return appendBatch(t, s, seedBatch(keys...))
}

// appendBatch validates batch b and appends it to s.
func appendBatch(t *testing.T, s *Shard, b []byte) AppendResult {
	t.Helper()
	h, err := Validate(b)
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.Append(b, h, -1, true)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestSnapshotNextNeverGoesBack: a checkpoint taken after compaction dropped
// the shard's trailing batches must still carry the shard's next offset;
// before, it took the last kept entry's, and offsets were handed out a second
// time after a crash.
func TestSnapshotNextNeverGoesBack(t *testing.T) {
	w, err := wal.Open(wal.Options{Dir: t.TempDir()}, 0, func(wal.Position, wal.Kind, []byte) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	s := New(Key{Stream: 1}, w, 1<<20, nil, t.TempDir())
	appendKeys(t, s, "a", "b")
	appendKeys(t, s, "c")
	r := appendKeys(t, s, "d", "e")
	if err := w.WaitDurable(context.Background(), r.End); err != nil {
		t.Fatal(err)
	}
	// What a compaction pass that removed the last two batches leaves.
	s.mu.Lock()
	truncateLocked(s, 1)
	s.mu.Unlock()
	if snap := s.Snapshot(w.Durable()); snap.Next != 5 {
		t.Fatalf("snapshot next = %d after the trailing batches were compacted away, want 5", snap.Next)
	}
	// A batch not yet durable is left to replay: next is where it starts.
	s.mu.Lock()
	truncateLocked(s, 0)
	s.mu.Unlock()
	appendKeys(t, s, "f")
	snap := s.Snapshot(r.End)
	if snap.Next != 5 && snap.Next != 6 {
		t.Fatalf("snapshot next = %d, want 5 (the undurable batch replays) or 6 (it became durable)", snap.Next)
	}
}

// truncateLocked keeps the first n entries of s's index and their cached
// bytes (mu held).
func truncateLocked(s *Shard, n int) {
	s.cacheFrom = min(s.cacheFrom, n)
	for _, b := range s.tail[n-s.cacheFrom:] {
		s.cached -= int64(len(b))
	}
	s.idx.reset(s.idx.copyOut(0, n))
	s.tail = s.tail[:n-s.cacheFrom]
}
