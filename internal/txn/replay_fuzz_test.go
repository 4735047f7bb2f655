package txn

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"
)

func recordFrames(rs ...Record) []byte {
	var out [][]byte
	for _, r := range rs {
		b, err := json.Marshal(r)
		if err != nil {
			panic(err)
		}
		out = append(out, b)
	}
	return bytes.Join(out, []byte("\n"))
}

// FuzzCoordinatorReplay replays garbage as the transaction state frames
// recovery finds in the WAL (one frame per line), then does what start-up
// and the door do with the result: describe and list it, take a checkpoint
// and restore it, complete prepared transactions, and expire or time out
// old ones. Nothing may panic, and a checkpoint restores to the same state.
func FuzzCoordinatorReplay(f *testing.F) {
	p := Partition{Topic: "t", Partition: 1}
	f.Add(recordFrames(
		Record{ID: "a", PID: 5, Epoch: 1, LastPID: -1, LastEpoch: -1, TimeoutMs: 60000, State: Ongoing, Parts: []Partition{p}, Groups: []string{"g"}, StartMs: 1, UpdateMs: 1},
		Record{ID: "b", PID: 6, Epoch: 0, TimeoutMs: 60000, State: PrepareCommit, Parts: []Partition{p}, UpdateMs: 2},
		Record{ID: "c", PID: 7, Epoch: 3, TimeoutMs: 60000, State: CompleteAbort, UpdateMs: 3},
		Record{ID: "c", State: dead},
	))
	f.Add(recordFrames(Record{ID: "x", PID: 1, State: PrepareAbort, Groups: []string{"g", "h"}}))
	f.Fuzz(func(t *testing.T, in []byte) {
		c, l, _ := newTestCoordinator(t)
		for _, frame := range bytes.Split(in, []byte("\n")) {
			c.Replay(frame)
		}
		for _, r := range c.List() {
			_ = r.State.String()
			c.Describe([]string{r.ID})
		}
		snap := c.Snapshot()
		again := New(Options{})
		if err := again.Restore(snap); err != nil {
			t.Fatalf("restore a snapshot just taken: %v\n%s", err, snap)
		}
		if got := again.Snapshot(); !bytes.Equal(got, snap) {
			t.Fatalf("state changed through a checkpoint:\n%s\n%s", snap, got)
		}
		New(Options{}).Restore(in)

		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		c.Recover(ctx)
		c.opts.Now = func() time.Time { return time.Now().Add(30 * 24 * time.Hour) }
		c.Tick(ctx)
		// What recovery and ticking wrote must replay.
		fresh := New(Options{})
		for i, frame := range l.frames {
			if err := fresh.Replay(frame); err != nil {
				t.Fatalf("frame %d the coordinator wrote does not replay: %v\n%s", i, err, frame)
			}
		}
	})
}
