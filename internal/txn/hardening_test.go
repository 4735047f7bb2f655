package txn

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/braidstream/braid/internal/wal"
)

// shardMarkers is a Shards that, like a real shard, holds open transactions
// per producer id: a marker closes one only if it names that producer. It
// can be told to fail marker writes, as a full disk or a fenced epoch on the
// shard would.
type shardMarkers struct {
	mu      sync.Mutex
	open    map[Partition]int64 // producer id of the open transaction
	written []string            // "commit pid@epoch" per marker
	fail    int                 // marker writes still to fail
}

var errMarkerWrite = errors.New("test: marker write failed")

func (m *shardMarkers) Exists(Partition) bool { return true }
func (m *shardMarkers) WriteMarker(p Partition, pid int64, epoch int16, commit bool) (wal.Position, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail > 0 {
		m.fail--
		return 0, false, errMarkerWrite
	}
	if open, ok := m.open[p]; !ok || open != pid {
		return 0, false, nil
	}
	delete(m.open, p)
	m.written = append(m.written, fmt.Sprintf("%s %d@%d", map[bool]string{true: "commit", false: "abort"}[commit], pid, epoch))
	return 0, true, nil
}

type testClock struct{ now time.Time }

func newShardCoordinator(t *testing.T) (*Coordinator, *shardMarkers, *testClock) {
	t.Helper()
	next := int64(100)
	m := &shardMarkers{open: map[Partition]int64{}}
	clk := &testClock{now: time.Unix(1_700_000_000, 0)}
	c := New(Options{
		NewProducerID: func() (int64, error) { next++; return next, nil },
		Shards:        m, Offsets: noOffsets{}, IDExpiration: time.Hour,
		Now: func() time.Time { return clk.now },
	})
	c.Attach(&memLog{})
	return c, m, clk
}

// openTxn starts a transaction of id on p with a batch from pid/epoch.
func openTxn(t *testing.T, c *Coordinator, m *shardMarkers, id string, p Partition, pid int64, epoch int16) {
	t.Helper()
	c.Produce(id, true, func(inTxn func(Partition, int64, int16, bool) error) {
		if err := inTxn(p, pid, epoch, false); err != nil {
			t.Fatalf("produce from %d@%d: %v", pid, epoch, err)
		}
	})
	m.mu.Lock()
	m.open[p] = pid
	m.mu.Unlock()
}

// TestEpochOverflowClosesOldTransaction: when ending a transaction uses up
// the producer id's epochs, its markers still name the producer id the
// shards hold it under (at the last epoch), and only then does the
// producer move to a new id. Under every path that ends with a bump.
func TestEpochOverflowClosesOldTransaction(t *testing.T) {
	ctx := context.Background()
	p := Partition{Topic: "t", Partition: 0}
	for _, tc := range []struct {
		name       string
		end        func(c *Coordinator, clk *testClock, pid int64, epoch int16) (Result, error)
		wantMarker string // with %d for the old producer id
		wantState  State
	}{
		{"EndTxn v5 commit", func(c *Coordinator, _ *testClock, pid int64, epoch int16) (Result, error) {
			return c.EndTxn(ctx, "id", pid, epoch, true, true)
		}, "commit %d@32767", CompleteCommit},
		{"EndTxn v5 abort", func(c *Coordinator, _ *testClock, pid int64, epoch int16) (Result, error) {
			return c.EndTxn(ctx, "id", pid, epoch, false, true)
		}, "abort %d@32767", CompleteAbort},
		{"timeout", func(c *Coordinator, clk *testClock, _ int64, _ int16) (Result, error) {
			clk.now = clk.now.Add(2 * time.Minute)
			if n := c.Tick(ctx); n != 1 {
				return Result{}, fmt.Errorf("Tick aborted %d transactions, want 1", n)
			}
			d := c.Describe([]string{"id"})["id"]
			return Result{PID: d.PID, Epoch: d.Epoch}, nil
		}, "abort %d@32767", CompleteAbort},
		{"InitProducerId of a new producer", func(c *Coordinator, _ *testClock, _ int64, _ int16) (Result, error) {
			return c.InitProducerID(ctx, "id", 60000, -1, -1)
		}, "abort %d@32767", Empty},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, m, clk := newShardCoordinator(t)
			var res Result
			var err error
			for res.Epoch < maxEpoch {
				if res, err = c.InitProducerID(ctx, "id", 60000, -1, -1); err != nil {
					t.Fatal(err)
				}
			}
			old := res.PID
			openTxn(t, c, m, "id", p, old, maxEpoch)
			got, err := tc.end(c, clk, old, maxEpoch)
			if err != nil {
				t.Fatal(err)
			}
			if want := fmt.Sprintf(tc.wantMarker, old); len(m.written) != 1 || m.written[0] != want {
				t.Fatalf("markers %q, want [%s]: the open transaction must be closed under its own producer id", m.written, want)
			}
			if got.PID == old || got.Epoch != 0 {
				t.Fatalf("producer %d epoch %d after the end, want a new id at epoch 0", got.PID, got.Epoch)
			}
			d := c.Describe([]string{"id"})["id"]
			if d.State != tc.wantState || d.PID != got.PID || d.Epoch != 0 || d.NextPID != nil {
				t.Fatalf("state %+v, want %s under producer %d epoch 0", d, tc.wantState, got.PID)
			}
			// The new producer id works.
			openTxn(t, c, m, "id", p, got.PID, 0)
			if _, err := c.EndTxn(ctx, "id", got.PID, 0, true, true); err != nil {
				t.Fatalf("commit under the new producer id: %v", err)
			}
		})
	}
	t.Run("retry from the last epoch", func(t *testing.T) {
		c, m, _ := newShardCoordinator(t)
		var res Result
		for res.Epoch < maxEpoch {
			res, _ = c.InitProducerID(ctx, "id", 60000, -1, -1)
		}
		openTxn(t, c, m, "id", p, res.PID, maxEpoch)
		first, err := c.EndTxn(ctx, "id", res.PID, maxEpoch, true, true)
		if err != nil {
			t.Fatal(err)
		}
		again, err := c.EndTxn(ctx, "id", res.PID, maxEpoch, true, true)
		if err != nil || again != first {
			t.Fatalf("retried commit from %d@%d: %+v, %v; want %+v", res.PID, maxEpoch, again, err, first)
		}
		if _, err := c.EndTxn(ctx, "id", res.PID, maxEpoch, false, true); !errors.Is(err, ErrInvalidState) {
			t.Fatalf("retried abort of the commit: %v, want ErrInvalidState", err)
		}
	})
}

// TestInitProducerIDFencesZombie: KIP-360's InitProducerId with a producer
// id and epoch bumps only for the current epoch, answers a retry of the
// bump just made with the current one, and fences every other epoch
// without touching the live producer's transaction.
func TestInitProducerIDFencesZombie(t *testing.T) {
	ctx := context.Background()
	p := Partition{Topic: "t", Partition: 0}
	c, m, _ := newShardCoordinator(t)
	zombie, err := c.InitProducerID(ctx, "id", 60000, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	live, err := c.InitProducerID(ctx, "id", 60000, -1, -1) // a new instance fences the first
	if err != nil {
		t.Fatal(err)
	}
	// Right after the bump, before the live producer starts: the epoch it
	// replaced is not the caller's to retry.
	if _, err := c.InitProducerID(ctx, "id", 60000, zombie.PID, zombie.Epoch); !errors.Is(err, ErrProducerFenced) {
		t.Fatalf("zombie InitProducerId with nothing open: %v, want ErrProducerFenced", err)
	}
	openTxn(t, c, m, "id", p, live.PID, live.Epoch)
	for _, epoch := range []int16{zombie.Epoch, live.Epoch + 1} {
		if _, err := c.InitProducerID(ctx, "id", 60000, live.PID, epoch); !errors.Is(err, ErrProducerFenced) {
			t.Fatalf("InitProducerId from epoch %d (live %d): %v, want ErrProducerFenced", epoch, live.Epoch, err)
		}
	}
	if _, err := c.InitProducerID(ctx, "id", 60000, live.PID+50, live.Epoch); !errors.Is(err, ErrInvalidPIDMapping) {
		t.Fatalf("InitProducerId from another producer id: %v, want ErrInvalidPIDMapping", err)
	}
	if d := c.Describe([]string{"id"})["id"]; d.State != Ongoing || d.Epoch != live.Epoch || len(m.written) != 0 {
		t.Fatalf("after the zombies: %+v, markers %q; want the live transaction untouched", d, m.written)
	}
	// The live producer itself may bump (KIP-360): its transaction is
	// aborted, and a retry of that call gets the same epoch.
	bumped, err := c.InitProducerID(ctx, "id", 60000, live.PID, live.Epoch)
	if err != nil || bumped.Epoch <= live.Epoch {
		t.Fatalf("live producer's bump: %+v, %v", bumped, err)
	}
	if again, err := c.InitProducerID(ctx, "id", 60000, live.PID, live.Epoch); err != nil || again != bumped {
		t.Fatalf("retried bump: %+v, %v; want %+v", again, err, bumped)
	}
	if len(m.written) != 1 || m.written[0] != fmt.Sprintf("abort %d@%d", live.PID, live.Epoch+1) {
		t.Fatalf("markers %q, want one abort", m.written)
	}
}

// TestTickCompletesPrepared: a transaction whose markers could not be
// written stays prepared, refuses new work as concurrent, and is completed
// by the coordinator's tick once the shard accepts the marker.
func TestTickCompletesPrepared(t *testing.T) {
	ctx := context.Background()
	p := Partition{Topic: "t", Partition: 0}
	c, m, _ := newShardCoordinator(t)
	res, err := c.InitProducerID(ctx, "id", 60000, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	openTxn(t, c, m, "id", p, res.PID, res.Epoch)
	m.fail = 3
	// The commit is decided once Prepare is durable: answered as done.
	next, err := c.EndTxn(ctx, "id", res.PID, res.Epoch, true, true)
	if err != nil || next.Epoch != res.Epoch+1 {
		t.Fatalf("commit with a failing shard: %+v, %v; want success with epoch %d", next, err, res.Epoch+1)
	}
	if d := c.Describe([]string{"id"})["id"]; d.State != PrepareCommit {
		t.Fatalf("state %s, want PrepareCommit", d.State)
	}
	if _, err := c.EndTxn(ctx, "id", res.PID, res.Epoch, true, true); !errors.Is(err, ErrConcurrent) {
		t.Fatalf("retried commit while prepared: %v, want ErrConcurrent", err)
	}
	if err := c.AddGroup(ctx, "id", next.PID, next.Epoch, "g"); !errors.Is(err, ErrConcurrent) {
		t.Fatalf("next transaction while prepared: %v, want ErrConcurrent", err)
	}
	if _, err := c.InitProducerID(ctx, "id", 60000, next.PID, next.Epoch); !errors.Is(err, ErrConcurrent) || errors.Is(err, errMarkerWrite) {
		t.Fatalf("InitProducerId while prepared and the shard still fails: %v, want only ErrConcurrent", err)
	}
	c.Tick(ctx) // the shard still fails
	if d := c.Describe([]string{"id"})["id"]; d.State != PrepareCommit || len(m.written) != 0 {
		t.Fatalf("after a failed retry: state %s, markers %q", d.State, m.written)
	}
	c.Tick(ctx)
	if d := c.Describe([]string{"id"})["id"]; d.State != CompleteCommit || len(m.written) != 1 {
		t.Fatalf("after the tick: state %s, markers %q; want CompleteCommit with its marker", d.State, m.written)
	}
	if again, err := c.EndTxn(ctx, "id", res.PID, res.Epoch, true, true); err != nil || again.Epoch != res.Epoch+1 {
		t.Fatalf("retried commit once complete: %+v, %v", again, err)
	}
}

// TestTickForgetsExpiredIDs: an idle transactional id is dropped from
// memory, not only marked dead, and works again afterwards as a new one.
func TestTickForgetsExpiredIDs(t *testing.T) {
	ctx := context.Background()
	c, _, clk := newShardCoordinator(t)
	first, err := c.InitProducerID(ctx, "id", 60000, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	clk.now = clk.now.Add(30 * time.Minute)
	c.Tick(ctx)
	if n := len(c.all()); n != 1 {
		t.Fatalf("%d ids before the expiration, want 1", n)
	}
	clk.now = clk.now.Add(31 * time.Minute)
	c.Tick(ctx)
	if n := len(c.all()); n != 0 {
		t.Fatalf("%d ids in memory after the expiration, want 0", n)
	}
	if len(c.List()) != 0 {
		t.Fatalf("listed %+v after the expiration", c.List())
	}
	again, err := c.InitProducerID(ctx, "id", 60000, first.PID, first.Epoch)
	if err != nil || again.PID == first.PID || again.Epoch != 0 {
		t.Fatalf("InitProducerId after the expiration: %+v, %v; want a new producer id at epoch 0", again, err)
	}
}

// TestPreparedOverflow: an end that uses up the epochs and cannot write its
// markers hands out the new producer id, which gets ErrConcurrent until the
// tick completes the end under the old id.
func TestPreparedOverflow(t *testing.T) {
	ctx := context.Background()
	p := Partition{Topic: "t", Partition: 0}
	c, m, _ := newShardCoordinator(t)
	var res Result
	for res.Epoch < maxEpoch {
		res, _ = c.InitProducerID(ctx, "id", 60000, -1, -1)
	}
	openTxn(t, c, m, "id", p, res.PID, maxEpoch)
	m.fail = 1
	next, err := c.EndTxn(ctx, "id", res.PID, maxEpoch, true, true)
	if err != nil || next.PID == res.PID || next.Epoch != 0 {
		t.Fatalf("commit with a failing shard: %+v, %v; want a new producer id at epoch 0", next, err)
	}
	c.Produce("id", true, func(inTxn func(Partition, int64, int16, bool) error) {
		if err := inTxn(p, next.PID, 0, false); !errors.Is(err, ErrConcurrent) {
			t.Fatalf("produce under the new id while prepared: %v, want ErrConcurrent", err)
		}
	})
	c.Tick(ctx)
	if want := fmt.Sprintf("commit %d@32767", res.PID); len(m.written) != 1 || m.written[0] != want {
		t.Fatalf("markers %q, want [%s]", m.written, want)
	}
	if d := c.Describe([]string{"id"})["id"]; d.State != CompleteCommit || d.PID != next.PID || d.Epoch != 0 {
		t.Fatalf("after the tick: %+v, want CompleteCommit under %d epoch 0", d, next.PID)
	}
	openTxn(t, c, m, "id", p, next.PID, 0)
}

// TestInitProducerIDFencingFails: a new producer instance whose fencing
// abort cannot write its marker is told to retry (ErrConcurrent), not given
// the marker's error; the tick completes the abort and the retry succeeds.
func TestInitProducerIDFencingFails(t *testing.T) {
	ctx := context.Background()
	p := Partition{Topic: "t", Partition: 0}
	c, m, _ := newShardCoordinator(t)
	old, err := c.InitProducerID(ctx, "id", 60000, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	openTxn(t, c, m, "id", p, old.PID, old.Epoch)
	m.fail = 1
	if _, err := c.InitProducerID(ctx, "id", 60000, -1, -1); !errors.Is(err, ErrConcurrent) || errors.Is(err, errMarkerWrite) {
		t.Fatalf("InitProducerId fencing with a failing shard: %v, want only ErrConcurrent", err)
	}
	c.Tick(ctx)
	res, err := c.InitProducerID(ctx, "id", 60000, -1, -1)
	if err != nil || res.Epoch <= old.Epoch+1 {
		t.Fatalf("retried InitProducerId: %+v, %v; want an epoch above the abort's %d", res, err, old.Epoch+1)
	}
	if want := fmt.Sprintf("abort %d@%d", old.PID, old.Epoch+1); len(m.written) != 1 || m.written[0] != want {
		t.Fatalf("markers %q, want [%s]", m.written, want)
	}
}

// TestRecoverPreparedOverflow: a coordinator rebuilt from the log of an end
// that used up the epochs and stopped after Prepare completes it at
// start-up under the old producer id, and moves to the id Prepare recorded.
func TestRecoverPreparedOverflow(t *testing.T) {
	ctx := context.Background()
	p := Partition{Topic: "t", Partition: 0}
	c, m, _ := newShardCoordinator(t)
	l := c.log.(*memLog)
	var res Result
	for res.Epoch < maxEpoch {
		res, _ = c.InitProducerID(ctx, "id", 60000, -1, -1)
	}
	openTxn(t, c, m, "id", p, res.PID, maxEpoch)
	m.fail = 1
	next, err := c.EndTxn(ctx, "id", res.PID, maxEpoch, true, true)
	if err != nil {
		t.Fatal(err)
	}
	again := New(Options{NewProducerID: func() (int64, error) { return 999, nil }, Shards: m, Offsets: noOffsets{}})
	for _, f := range l.frames {
		if err := again.Replay(f); err != nil {
			t.Fatal(err)
		}
	}
	again.Attach(&memLog{})
	if err := again.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("commit %d@32767", res.PID); len(m.written) != 1 || m.written[0] != want {
		t.Fatalf("markers %q, want [%s]", m.written, want)
	}
	if d := again.Describe([]string{"id"})["id"]; d.State != CompleteCommit || d.PID != next.PID || d.Epoch != 0 {
		t.Fatalf("recovered %+v, want CompleteCommit under %d epoch 0", d, next.PID)
	}
}
