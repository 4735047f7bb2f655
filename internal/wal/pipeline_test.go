package wal

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/braidstream/braid/internal/vfs"
)

// heldSync is a filesystem whose fdatasyncs of log segments wait, once
// held, until released: a disk that is slow to make data durable.
type heldSync struct {
	held    atomic.Bool
	started chan struct{} // one value per held sync that began
	release chan struct{} // closed to let held syncs go
	once    sync.Once
}

// newHeldSync returns a heldSync whose syncs are released at the latest
// when the test ends, so that a failing test does not hang in Close.
func newHeldSync(t *testing.T) *heldSync {
	h := &heldSync{started: make(chan struct{}, 16), release: make(chan struct{})}
	t.Cleanup(h.let)
	return h
}

// let releases the held syncs, and lets every later one through.
func (h *heldSync) let() {
	h.held.Store(false)
	h.once.Do(func() { close(h.release) })
}

func (h *heldSync) fs() vfs.FS {
	return vfs.Inject(vfs.Default, func(op vfs.Op, path string) error {
		if op == vfs.OpSync && strings.HasSuffix(path, ".wal") && h.held.Load() {
			select {
			case h.started <- struct{}{}:
			default:
			}
			<-h.release
		}
		return nil
	})
}

func waitCh(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// TestWriteDoesNotWaitForSync: while one group commit's fdatasync runs,
// the frames appended meanwhile are written (handed to the kernel), so
// that the next commit waits for its own fsync alone; nothing is durable
// before its fsync returns.
func TestWriteDoesNotWaitForSync(t *testing.T) {
	h := newHeldSync(t)
	dir := t.TempDir()
	w, _ := replayAll(t, dir, 0, Options{FS: h.fs(), SegmentBytes: 1 << 20})
	defer w.Close()
	defer h.let() // before Close, which waits for the syncs
	h.held.Store(true)
	_, endA, err := w.Append(1, []byte("a"))
	if err != nil {
		t.Fatal(err)
	}
	waitCh(t, h.started, "the first fdatasync")
	_, endB, err := w.Append(1, []byte("b"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.WaitWritten(ctx, endB); err != nil {
		t.Fatalf("the second frame was not written while the first fsync ran: %v", err)
	}
	if d := w.Durable(); d >= endA {
		t.Fatalf("durable at %d before any fsync returned (first frame ends at %d)", d, endA)
	}
	h.let()
	if err := w.WaitDurable(ctx, endB); err != nil {
		t.Fatal(err)
	}
}

// TestTornUnitBeforeAnUnsyncedUnitIsCut: a unit written while the one
// before it was still being fsync'd says so in its marker; a power loss
// that tears the earlier unit and keeps the later one whole leaves a torn
// tail (neither was acknowledged), not corruption. Once the earlier unit
// is durable, the same damage in a log with a later unit is corruption.
func TestTornUnitBeforeAnUnsyncedUnitIsCut(t *testing.T) {
	h := newHeldSync(t)
	dir := t.TempDir()
	opts := Options{SegmentBytes: 1 << 20}
	w, _ := replayAll(t, dir, 0, Options{FS: h.fs(), SegmentBytes: opts.SegmentBytes})
	first := appendUnit(t, w, "durable")
	h.held.Store(true)
	b, _, _ := w.Append(1, []byte("unit-b-being-synced"))
	waitCh(t, h.started, "the fdatasync of unit b")
	_, endC, _ := w.Append(1, []byte("unit-c-written-meanwhile"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.WaitWritten(ctx, endC); err != nil {
		t.Fatal(err)
	}
	// What the disk may hold after a power loss now: unit c whole, unit b
	// torn.
	seg, err := os.ReadFile(filepath.Join(dir, SegmentName(0)))
	if err != nil {
		t.Fatal(err)
	}
	h.let()
	if err := w.WaitDurable(ctx, endC); err != nil {
		t.Fatal(err)
	}
	w.Close()

	lost := t.TempDir()
	seg[b+headerLen+2] ^= 0x40
	if err := os.WriteFile(filepath.Join(lost, SegmentName(0)), seg, 0o644); err != nil {
		t.Fatal(err)
	}
	w2, got := replayAll(t, lost, 0, opts)
	w2.Close()
	if len(got) != 1 || got[0].pos != first[0] {
		t.Fatalf("after the power loss replayed %v, want the durable frame alone", got)
	}

	// The same damage where a unit written after b was durable follows:
	// corruption, though c, which says nothing about b, comes first.
	appendAfter := t.TempDir()
	w3, _ := replayAll(t, dir, 0, opts)
	appendUnit(t, w3, "unit-d-after-b-was-durable")
	w3.Close()
	full, err := os.ReadFile(filepath.Join(dir, SegmentName(0)))
	if err != nil {
		t.Fatal(err)
	}
	full[b+headerLen+2] ^= 0x40
	if err := os.WriteFile(filepath.Join(appendAfter, SegmentName(0)), full, 0o644); err != nil {
		t.Fatal(err)
	}
	var ce *CorruptError
	if err := openErr(appendAfter, opts); !errors.As(err, &ce) || ce.Pos != b {
		t.Fatalf("open with damage in a durable unit = %v, want a CorruptError at %d", err, b)
	}
}

// TestUnitsWithoutBodyStillProveDurability: logs written before unit
// markers carried the durable position have markers without a body; each
// one still proves that everything before it was durable.
func TestUnitsWithoutBodyStillProveDurability(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentBytes: 1 << 20}
	w, _ := replayAll(t, dir, 0, opts)
	a := appendUnitWith(t, w, func() { w.appendLocked(kindUnit, nil, 0, 0) }, "old-unit-1")
	appendUnitWith(t, w, func() { w.appendLocked(kindUnit, nil, 0, 0) }, "old-unit-2")
	w.Close()
	data, err := os.ReadFile(filepath.Join(dir, SegmentName(0)))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte{1, 0, 0, 0}) {
		t.Fatal("no marker without a body was written")
	}
	flip(t, filepath.Join(dir, SegmentName(0)), a[0]+headerLen+1)
	var ce *CorruptError
	if err := openErr(dir, opts); !errors.As(err, &ce) || ce.Pos != a[0] {
		t.Fatalf("open = %v, want a CorruptError at %d", err, a[0])
	}
}

// TestTornPowerLossKeepsWhatWasDurable pulls the plug at random moments of
// a stream of appends whose fsyncs are slow (so that later units are
// written while earlier ones are being synced), keeping a random half of
// the pages written since the last sync: recovery must neither report
// corruption nor lose a frame that was durable before the plug was
// pulled, and what it replays must be frames as appended, in order. (Break
// tried: recovery taking every later unit marker as proof of durability
// fails it with a CorruptError on a torn seed.)
func TestTornPowerLossKeepsWhatWasDurable(t *testing.T) {
	for seed := range uint64(12) {
		rng := rand.New(rand.NewPCG(seed, 7))
		mem := vfs.NewMemFS()
		fs := vfs.Inject(mem, func(op vfs.Op, path string) error {
			if op == vfs.OpSync && strings.HasSuffix(path, ".wal") {
				time.Sleep(300 * time.Microsecond)
			}
			return nil
		})
		opts := Options{FS: fs, Dir: "/wal", SegmentBytes: 1 << 20}
		w, err := Open(opts, 0, func(Position, Kind, []byte) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		var sent []frame
		n := 200 + rng.IntN(400)
		for i := range n {
			body := bytes.Repeat([]byte{byte(i)}, 1+rng.IntN(6000))
			start, _, err := w.Append(1, body)
			if err != nil {
				t.Fatal(err)
			}
			sent = append(sent, frame{start, 1, body})
			if rng.IntN(8) == 0 {
				time.Sleep(time.Duration(rng.IntN(500)) * time.Microsecond)
			}
		}
		durable := w.Durable()
		clone := mem.CrashCloneTorn(func(string, int64) bool { return rng.IntN(2) == 0 })
		w.Close()
		var got []frame
		w2, err := Open(Options{FS: clone, Dir: "/wal", SegmentBytes: opts.SegmentBytes}, 0, func(pos Position, kind Kind, body []byte) error {
			got = append(got, frame{pos, kind, bytes.Clone(body)})
			return nil
		})
		if err != nil {
			t.Fatalf("seed %d: recovery after a torn power loss: %v", seed, err)
		}
		w2.Close()
		var must int
		for must < len(sent) && sent[must].pos+headerLen+Position(len(sent[must].body)) <= durable {
			must++
		}
		if len(got) < must || len(got) > len(sent) {
			t.Fatalf("seed %d: replayed %d frames; %d were durable, %d appended", seed, len(got), must, len(sent))
		}
		for i, f := range got {
			if f.pos != sent[i].pos || !bytes.Equal(f.body, sent[i].body) {
				t.Fatalf("seed %d: frame %d replayed at %d with %d bytes, appended at %d with %d", seed, i, f.pos, len(f.body), sent[i].pos, len(sent[i].body))
			}
		}
	}
}
