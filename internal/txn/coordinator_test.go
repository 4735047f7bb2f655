package txn

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/braidstream/braid/internal/wal"
)

// memLog is an in-memory log: every append is durable at once, and its
// frames can be replayed into a new coordinator.
type memLog struct {
	mu     sync.Mutex
	frames [][]byte
}

func (l *memLog) Append(_ wal.Kind, parts ...[]byte) (wal.Position, wal.Position, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	l.frames = append(l.frames, b)
	return wal.Position(len(l.frames) - 1), wal.Position(len(l.frames)), nil
}

func (l *memLog) WaitDurable(context.Context, wal.Position) error { return nil }
func (l *memLog) Durable() wal.Position {
	l.mu.Lock()
	defer l.mu.Unlock()
	return wal.Position(len(l.frames))
}

// markers records the markers written, per shard.
type markers struct {
	mu   sync.Mutex
	open map[Partition]bool // shards with data of the open transaction
	got  []string
}

func (m *markers) Exists(Partition) bool { return true }
func (m *markers) WriteMarker(p Partition, pid int64, epoch int16, commit bool) (wal.Position, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.open[p] {
		return 0, false, nil
	}
	delete(m.open, p)
	kind := map[bool]string{true: "commit", false: "abort"}[commit]
	m.got = append(m.got, kind+"@"+string(rune('0'+epoch)))
	return 0, true, nil
}

type noOffsets struct{}

func (noOffsets) EndTxn(string, int64, bool) (wal.Position, error) { return 0, nil }

func newTestCoordinator(t *testing.T) (*Coordinator, *memLog, *markers) {
	t.Helper()
	next := int64(100)
	m := &markers{open: map[Partition]bool{}}
	c := New(Options{NewProducerID: func() (int64, error) { next++; return next, nil }, Shards: m, Offsets: noOffsets{}})
	l := &memLog{}
	c.Attach(l)
	return c, l, m
}

// TestEndTxnVersion2Table drives EndTxn v5 (bump) through Kafka's state
// table: per state, a request from the current epoch or from the epoch just
// replaced (a retry), commit or abort.
func TestEndTxnVersion2Table(t *testing.T) {
	ctx := context.Background()
	p := Partition{Topic: "t", Partition: 0}
	type step struct {
		name      string
		retry     bool // from the epoch just replaced
		commit    bool
		wantErr   error
		wantBump  bool
		wantState State
	}
	// setup brings the id to a state and returns its producer and epoch.
	for _, tc := range []struct {
		name  string
		setup func(c *Coordinator, m *markers, pid int64, epoch int16) int16
		steps []step
	}{
		{"ongoing", func(c *Coordinator, m *markers, pid int64, epoch int16) int16 {
			m.open[p] = true
			c.Produce("id", true, func(inTxn func(Partition, int64, int16, bool) error) {
				if err := inTxn(p, pid, epoch, false); err != nil {
					t.Fatal(err)
				}
			})
			return epoch
		}, []step{
			{name: "commit", commit: true, wantBump: true, wantState: CompleteCommit},
		}},
		{"complete commit", func(c *Coordinator, m *markers, pid int64, epoch int16) int16 {
			m.open[p] = true
			c.Produce("id", true, func(inTxn func(Partition, int64, int16, bool) error) { inTxn(p, pid, epoch, false) })
			res, err := c.EndTxn(ctx, "id", pid, epoch, true, true)
			if err != nil {
				t.Fatal(err)
			}
			return res.Epoch
		}, []step{
			{name: "retried commit", retry: true, commit: true, wantState: CompleteCommit},
			{name: "retried abort", retry: true, wantErr: ErrInvalidState, wantState: CompleteCommit},
			{name: "commit", commit: true, wantErr: ErrInvalidState, wantState: CompleteCommit},
			{name: "abort", wantBump: true, wantState: CompleteAbort},
		}},
		{"complete abort", func(c *Coordinator, m *markers, pid int64, epoch int16) int16 {
			res, err := c.EndTxn(ctx, "id", pid, epoch, false, true)
			if err != nil {
				t.Fatal(err)
			}
			return res.Epoch
		}, []step{
			{name: "retried abort", retry: true, wantState: CompleteAbort},
			{name: "retried commit", retry: true, commit: true, wantErr: ErrProducerFenced, wantState: CompleteAbort},
			{name: "commit", commit: true, wantErr: ErrInvalidState, wantState: CompleteAbort},
			{name: "abort", wantBump: true, wantState: CompleteAbort},
		}},
		{"empty", func(c *Coordinator, m *markers, pid int64, epoch int16) int16 { return epoch }, []step{
			{name: "commit", commit: true, wantErr: ErrInvalidState, wantState: Empty},
			{name: "abort", wantBump: true, wantState: CompleteAbort},
		}},
	} {
		for _, st := range tc.steps {
			t.Run(tc.name+"/"+st.name, func(t *testing.T) {
				c, _, m := newTestCoordinator(t)
				res, err := c.InitProducerID(ctx, "id", 60000, -1, -1)
				if err != nil {
					t.Fatal(err)
				}
				epoch := tc.setup(c, m, res.PID, res.Epoch)
				reqEpoch := epoch
				if st.retry {
					reqEpoch = epoch - 1
				}
				got, err := c.EndTxn(ctx, "id", res.PID, reqEpoch, st.commit, true)
				switch {
				case st.wantErr != nil && !errors.Is(err, st.wantErr):
					t.Fatalf("error %v, want %v", err, st.wantErr)
				case st.wantErr == nil && err != nil:
					t.Fatalf("error %v", err)
				case st.wantErr == nil && st.wantBump && got.Epoch != epoch+1:
					t.Fatalf("epoch %d after the end, want %d (bumped)", got.Epoch, epoch+1)
				case st.wantErr == nil && !st.wantBump && got.Epoch != epoch:
					t.Fatalf("epoch %d, want the current %d", got.Epoch, epoch)
				}
				if s := c.Describe([]string{"id"})["id"].State; s != st.wantState {
					t.Fatalf("state %s, want %s", s, st.wantState)
				}
			})
		}
	}
}

// TestImplicitAddAndReplay: Produce v12 adds a shard to a transaction
// (starting one), the markers carry the bumped epoch, and a coordinator
// rebuilt from the log has the same state.
func TestImplicitAddAndReplay(t *testing.T) {
	ctx := context.Background()
	c, l, m := newTestCoordinator(t)
	res, err := c.InitProducerID(ctx, "id", 60000, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	p := Partition{Topic: "t", Partition: 3}
	c.Produce("id", false, func(inTxn func(Partition, int64, int16, bool) error) {
		if err := inTxn(p, res.PID, res.Epoch, false); !errors.Is(err, ErrInvalidState) {
			t.Fatalf("produce v11 to a shard not added: %v, want ErrInvalidState", err)
		}
	})
	m.open[p] = true
	c.Produce("id", true, func(inTxn func(Partition, int64, int16, bool) error) {
		if err := inTxn(p, res.PID, res.Epoch, false); err != nil {
			t.Fatalf("produce v12: %v", err)
		}
	})
	if d := c.Describe([]string{"id"})["id"]; d.State != Ongoing || !d.hasPart(p) {
		t.Fatalf("after an implicit add: %+v", d)
	}
	end, err := c.EndTxn(ctx, "id", res.PID, res.Epoch, true, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.got) != 1 || m.got[0] != "commit@"+string(rune('0'+end.Epoch)) {
		t.Fatalf("markers %q, want one commit with the bumped epoch %d", m.got, end.Epoch)
	}
	again := New(Options{NewProducerID: func() (int64, error) { return 999, nil }, Shards: m, Offsets: noOffsets{}})
	for _, f := range l.frames {
		if err := again.Replay(f); err != nil {
			t.Fatal(err)
		}
	}
	want, got := c.Describe([]string{"id"})["id"], again.Describe([]string{"id"})["id"]
	if got.State != want.State || got.Epoch != want.Epoch || got.PID != want.PID {
		t.Fatalf("replayed %+v, want %+v", got, want)
	}
}
