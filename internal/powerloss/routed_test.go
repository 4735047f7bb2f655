package powerloss

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/braidstream/braid/internal/catalog"
	"github.com/braidstream/braid/internal/engine"
	"github.com/braidstream/braid/internal/vfs"
)

// Cases of routed writes and reshards the seeded model reaches too rarely
// to rely on: the moments they need (a group commit falling between two
// appends of one produce, a checkpoint while a routed frame's fsync is
// under way, a catalog save while the parent's last frame is not durable)
// are set up here on purpose.

// openRouted opens an engine on fs with a key-routed stream of n shards.
func openRouted(t *testing.T, fs vfs.FS, n int) *engine.Engine {
	t.Helper()
	e, err := engine.Open(newRun(1, false).options(fs))
	if err != nil {
		t.Fatal(err)
	}
	if n > 0 {
		if _, err := e.CreateStream(rkStream, n, catalog.Configs{catalog.RoutingConfig: "key"}, false); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// spread returns records whose keys land in every shard of a stream of n
// even shards, addressed to one of them: the batch must be routed.
func spread(tag string, n int) []rec {
	var out []rec
	for i := range 8 * n {
		out = append(out, rec{key: fmt.Sprintf("s%d", i), val: fmt.Sprintf("%s#%d", tag, i)})
	}
	return out
}

// TestRoutedBatchIsOneFrame: a batch routed to four shards is one WAL
// frame (kind 7), which is what makes it all or nothing after a crash: a
// group commit may fall between two appends, never inside one frame.
func TestRoutedBatchIsOneFrame(t *testing.T) {
	mem := vfs.NewMemFS()
	e := openRouted(t, mem, 4)
	st := e.Stream(rkStream)
	recs := spread("one", 4)
	_, n, end, err := e.Produce(st, st.Shards[0], buildBatch(recs, -1, 0, 0, false), nil)
	if err == nil {
		err = e.WaitDurable(context.Background(), end)
	}
	if err != nil || n != len(recs) || e.RoutedBatches() != 1 {
		t.Fatalf("produce: n %d, %d routed batches, %v", n, e.RoutedBatches(), err)
	}
	clone := mem.CrashClone()
	e.Close()
	e = openRouted(t, clone, 0)
	defer e.Close()
	if got := e.Recovery().FramesReplayed; got != 1 {
		t.Errorf("the routed batch replayed as %d frames, want 1", got)
	}
	st = e.Stream(rkStream)
	total := 0
	for i, sh := range st.Shards {
		got, _, _, err := readShard(sh)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 {
			t.Errorf("shard %d got no part of the batch", i)
		}
		total += len(got)
	}
	if total != len(recs) {
		t.Errorf("%d records after recovery, want %d", total, len(recs))
	}
}

// TestCheckpointDropsNoteOfUndurableRoutedFrame: a checkpoint written
// while a routed idempotent batch's frame waits for its fsync must not
// keep the batch's sequence note. The crash takes the frame back; if the
// note survived, the client's resend would be answered as a duplicate of
// records that are gone.
func TestCheckpointDropsNoteOfUndurableRoutedFrame(t *testing.T) {
	mem, fs, hold, held, release := holdWALSync()
	e := openRouted(t, fs, 2)
	st := e.Stream(rkStream)
	pid, err := e.NewProducerID()
	if err != nil {
		t.Fatal(err)
	}
	recs := spread("note", 2)
	raw := buildBatch(recs, pid, 0, 0, false)
	hold.Store(true)
	if _, _, _, err := e.Produce(st, st.Shards[0], raw, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-held:
	case <-time.After(10 * time.Second):
		t.Fatal("the log never fsynced the routed frame")
	}
	done := make(chan error, 1)
	go func() { done <- e.MoveNow() }() // writes a checkpoint
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("checkpoint: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("checkpoint blocked behind the log's fsync")
	}
	clone := mem.CrashClone()
	close(release)
	e.Close()

	e = openRouted(t, clone, 0)
	defer e.Close()
	st = e.Stream(rkStream)
	for i, sh := range st.Shards {
		if _, hw, _ := sh.Offsets(); hw != 0 {
			t.Fatalf("shard %d has %d records after the crash; the frame was never fsynced", i, hw)
		}
	}
	_, n, end, err := e.Produce(st, st.Shards[0], raw, nil)
	if err == nil {
		err = e.WaitDurable(context.Background(), end)
	}
	if err != nil || n != len(recs) {
		t.Fatalf("resend of the batch the crash took back: %d records taken (%v), want %d: answered as a duplicate", n, err, len(recs))
	}
}

// TestReshardWaitsForParentsBeforeCatalog: a split whose parent's last
// write is not durable yet must not save the new catalog before it is. The
// log's fsync is held while the split runs, then the plug is pulled: the
// recovered layout is the old one, or the parent holds every record below
// the end offset the new catalog recorded.
func TestReshardWaitsForParentsBeforeCatalog(t *testing.T) {
	mem, fs, hold, held, release := holdWALSync()
	e := openRouted(t, fs, 1)
	st := e.Stream(rkStream)
	hold.Store(true)
	if _, _, _, err := e.Produce(st, st.Shards[0], buildBatch(spread("w", 1), -1, 0, 0, false), nil); err != nil {
		t.Fatal(err)
	}
	<-held
	split := make(chan error, 1)
	go func() {
		_, err := e.SplitShard(context.Background(), rkStream, 0, nil)
		split <- err
	}()
	time.Sleep(50 * time.Millisecond) // the split closes shard 0 and waits for the log
	clone := mem.CrashClone()
	close(release)
	<-split
	e.Close()

	e = openRouted(t, clone, 0)
	defer e.Close()
	cs := e.Stream(rkStream).Stream
	for _, sh := range cs.Shards {
		if sh.State != catalog.ShardClosed {
			continue
		}
		if _, hw, _ := e.Stream(rkStream).Shards[sh.ID].Offsets(); int64(hw) < sh.EndOffset {
			t.Fatalf("shard %d closed at end offset %d holds only %d records after the crash: the catalog was saved before its last write was durable",
				sh.ID, sh.EndOffset, hw)
		}
	}
	if len(cs.Shards) != 1 {
		t.Errorf("the split survived the crash though its parent's last write never became durable: %d shards", len(cs.Shards))
	}
}

// holdWALSync returns a MemFS and an injecting FS over it whose WAL fsyncs
// block while hold is set: held is signalled when one blocks, and closing
// release lets them all go on.
func holdWALSync() (mem *vfs.MemFS, fs vfs.FS, hold *atomic.Bool, held chan struct{}, release chan struct{}) {
	mem = vfs.NewMemFS()
	hold = new(atomic.Bool)
	held = make(chan struct{}, 1)
	release = make(chan struct{})
	fs = vfs.Inject(mem, func(op vfs.Op, path string) error {
		if op == vfs.OpSync && hold.Load() && strings.HasPrefix(path, dataDir+"/wal/") {
			select {
			case held <- struct{}{}:
			default:
			}
			<-release
		}
		return nil
	})
	return mem, fs, hold, held, release
}
