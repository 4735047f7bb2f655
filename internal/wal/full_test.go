package wal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/braidstream/braid/internal/braidtest/tmpfs"
	"github.com/braidstream/braid/internal/vfs"
)

// TestOutOfSpaceIsRetried fills a real tmpfs until the log's write fails
// with ENOSPC, then frees space: appends are refused meanwhile, waiters are
// answered at once, and afterwards every frame the log took is durable
// exactly once, at the position it was given, with no restart. Also with
// DirectIO: the write that failed is retried from the same block, whose
// head the failure must not have lost (tmpfs takes O_DIRECT on recent
// kernels; elsewhere the blocks go through the page cache).
func TestOutOfSpaceIsRetried(t *testing.T) {
	t.Run("page-cache", func(t *testing.T) { outOfSpaceIsRetried(t, false) })
	t.Run("direct-io", func(t *testing.T) { outOfSpaceIsRetried(t, true) })
}

func outOfSpaceIsRetried(t *testing.T, direct bool) {
	mnt := tmpfs.Mount(t, 8<<20)
	dir := filepath.Join(mnt, "wal")
	// MaxPending bounds what the log can take beyond the space the filler
	// leaves: the write that fails and the frames behind it, each at most
	// about MaxPending, must fit in the space freed afterwards (7 MiB),
	// however slowly the write that fails runs on a loaded machine.
	w, _ := replayAll(t, dir, 0, Options{SegmentBytes: 1 << 20, MaxPending: 512 << 10, RetryEvery: 20 * time.Millisecond, DirectIO: direct})
	defer w.Close()
	removeFiller := tmpfs.Fill(t, filepath.Join(mnt, "filler"), 0)

	// Bounded: a waiter that is not answered while the log is full must
	// fail the test, not hang it.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// Four appenders that do not wait: frames keep arriving while the
	// write that fails is under way, and must end up behind its frames.
	var (
		mu      sync.Mutex
		taken   []frame
		refused error
		lastEnd Position
		wg      sync.WaitGroup
	)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 4000 {
				b := append([]byte(fmt.Sprintf("%d-%04d-", g, i)), bytes.Repeat([]byte{'x'}, 4<<10)...)
				start, end, err := w.Append(1, b)
				mu.Lock()
				if err != nil {
					refused = err
					mu.Unlock()
					return
				}
				taken = append(taken, frame{start, 1, b})
				lastEnd = max(lastEnd, end)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	sort.Slice(taken, func(i, j int) bool { return taken[i].pos < taken[j].pos })
	began := time.Now()
	if err := w.WaitDurable(ctx, lastEnd); !errors.Is(err, ErrNoSpace) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("wait: %v, want ErrNoSpace wrapping ENOSPC", err)
	}
	if d := time.Since(began); d > time.Second {
		t.Fatalf("wait answered after %s, want at once", d)
	}
	if !errors.Is(refused, ErrNoSpace) {
		t.Fatalf("appends on a full disk: err %v, want ErrNoSpace", refused)
	}
	if st, err := w.Health(); st != StateFull || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Health = %s, %v; want full with ENOSPC", st, err)
	}
	if w.Durable() >= lastEnd {
		t.Fatalf("durable %d covers frames that could not be written (end %d)", w.Durable(), lastEnd)
	}
	// Still refused on later retries while the disk stays full.
	time.Sleep(100 * time.Millisecond)
	if _, _, err := w.Append(1, []byte("late")); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("append while full: %v, want ErrNoSpace", err)
	}
	short, cancelShort := context.WithTimeout(ctx, 2*time.Second)
	defer cancelShort()
	if err := w.WaitDurable(short, lastEnd); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("wait while full: %v, want ErrNoSpace at once", err)
	}

	removeFiller()
	deadline := time.Now().Add(5 * time.Second)
	for st, _ := w.Health(); st != StateOK; st, _ = w.Health() {
		if time.Now().After(deadline) {
			t.Fatalf("log still %s 5s after space returned", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := w.WaitDurable(ctx, lastEnd); err != nil {
		t.Fatalf("frames taken before the disk filled are not durable after it emptied: %v", err)
	}
	start, end, err := w.Append(1, []byte("after"))
	if err != nil {
		t.Fatalf("append after space returned: %v", err)
	}
	// Just past the unit marker that opens every write.
	if start != lastEnd+unitLen {
		t.Fatalf("first frame after recovery at %d, want %d (refused appends must take no position)", start, lastEnd+unitLen)
	}
	taken = append(taken, frame{start, 1, []byte("after")})
	if err := w.WaitDurable(ctx, end); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	w2, got := replayAll(t, dir, 0, Options{SegmentBytes: 1 << 20})
	defer w2.Close()
	if len(got) != len(taken) {
		t.Fatalf("replayed %d frames, want the %d taken", len(got), len(taken))
	}
	for i := range taken {
		if got[i].pos != taken[i].pos || !bytes.Equal(got[i].body, taken[i].body) {
			t.Fatalf("frame %d at %d (%.7s), want at %d (%.7s)", i, got[i].pos, got[i].body, taken[i].pos, taken[i].body)
		}
	}
}

// TestFailedSyncIsFinal (not parallel: it replaces fdatasync): a failed fdatasync may have dropped the dirty
// pages it reported on, so a later "successful" one proves nothing. Even an
// ENOSPC from it stops the log for good.
func TestFailedSyncIsFinal(t *testing.T) {
	var failSync atomic.Bool
	fs := vfs.Inject(vfs.Default, func(op vfs.Op, path string) error {
		if op == vfs.OpSync && failSync.Load() {
			return syscall.ENOSPC
		}
		return nil
	})
	w, _ := replayAll(t, t.TempDir(), 0, Options{FS: fs, RetryEvery: 10 * time.Millisecond})
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, end, err := w.Append(1, []byte("durable"))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WaitDurable(ctx, end); err != nil {
		t.Fatal(err)
	}

	failSync.Store(true)
	_, end, err = w.Append(1, []byte("never acknowledged"))
	if err != nil {
		t.Fatal(err)
	}
	err = w.WaitDurable(ctx, end)
	failSync.Store(false)
	if !errors.Is(err, ErrFailed) || errors.Is(err, ErrNoSpace) {
		t.Fatalf("wait after a failed fdatasync: %v, want ErrFailed (not ErrNoSpace)", err)
	}
	time.Sleep(50 * time.Millisecond) // several retry periods, were it retried
	if st, err := w.Health(); st != StateFailed || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Health = %s, %v; want failed with the fdatasync error", st, err)
	}
	if _, _, err := w.Append(1, []byte("more")); !errors.Is(err, ErrFailed) {
		t.Fatalf("append after a failed fdatasync: %v, want ErrFailed", err)
	}
	if w.Durable() >= end {
		t.Fatalf("durable %d covers the frame whose fdatasync failed (end %d)", w.Durable(), end)
	}
}

// TestInjectedNoSpaceIsRetried: the same through the error-injecting
// filesystem, where a refused write leaves nothing behind. A frame is
// appended while the failing write is under way, and the first retry fails
// too: the held-back write must be written first, and nothing may be
// durable past it until it is.
func TestInjectedNoSpaceIsRetried(t *testing.T) {
	var writes atomic.Int32
	underWay, appended := make(chan struct{}), make(chan struct{})
	fs := vfs.Inject(vfs.NewMemFS(), func(op vfs.Op, path string) error {
		if op != vfs.OpWrite || !strings.HasSuffix(path, ".wal") {
			return nil
		}
		switch writes.Add(1) {
		case 2: // the first write after the disk filled
			close(underWay)
			<-appended
			return syscall.ENOSPC
		case 3: // its first retry
			return syscall.ENOSPC
		}
		return nil
	})
	w, _ := replayAll(t, "/wal", 0, Options{FS: fs, SegmentBytes: 1 << 20, RetryEvery: 10 * time.Millisecond})
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var want []frame
	add := func(body string) (Position, error) {
		start, end, err := w.Append(1, []byte(body))
		if err == nil {
			want = append(want, frame{start, 1, []byte(body)})
		}
		return end, err
	}
	end, err := add("before")
	if err != nil || w.WaitDurable(ctx, end) != nil {
		t.Fatalf("append before the disk filled: %v", err)
	}
	heldEnd, err := add("held back")
	if err != nil {
		t.Fatal(err)
	}
	<-underWay
	windowEnd, err := add("appended during the failing write")
	close(appended)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WaitDurable(ctx, heldEnd); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("wait on a full disk: %v, want ErrNoSpace", err)
	}
	if _, err := add("refused"); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("append on a full disk: %v, want ErrNoSpace", err)
	}
	for st, _ := w.Health(); st != StateOK; st, _ = w.Health() {
		if d := w.Durable(); d >= heldEnd {
			t.Fatalf("durable %d while the write ending at %d is held back", d, heldEnd)
		}
		if ctx.Err() != nil {
			t.Fatalf("log still %s after the disk had space again", st)
		}
		time.Sleep(time.Millisecond)
	}
	if err := w.WaitDurable(ctx, windowEnd); err != nil {
		t.Fatalf("frames held back are not durable after space returned: %v", err)
	}
	if end, err = add("after"); err != nil || w.WaitDurable(ctx, end) != nil {
		t.Fatalf("append after space returned: %v", err)
	}
	if n := writes.Load(); n != 6 {
		t.Errorf("%d writes, want 6: before, held back (refused twice, then written), the frame appended meanwhile, after", n)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w2, got := replayAll(t, "/wal", 0, Options{FS: fs, SegmentBytes: 1 << 20})
	defer w2.Close()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("replayed %v, want %v", got, want)
	}
}
