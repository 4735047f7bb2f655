package engine

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"
	"time"

	"github.com/braidstream/braid/internal/shard"
)

// idemBatch is batch() stamped as an idempotent producer's batch.
func idemBatch(pid int64, epoch int16, seq int32, values ...string) []byte {
	b := batch(values...)
	binary.BigEndian.PutUint64(b[43:], uint64(pid))
	binary.BigEndian.PutUint16(b[51:], uint16(epoch))
	binary.BigEndian.PutUint32(b[53:], uint32(seq))
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

type step struct {
	name    string
	pid     int64
	epoch   int16
	seq     int32
	n       int // records
	want    error
	dupOf   int // >0: expect a duplicate answered with the base of step dupOf-1
	wantLen int // records in the shard afterwards
}

func runSteps(t *testing.T, e *Engine, steps []step, bases map[int]shard.Offset) {
	t.Helper()
	st := e.Stream("s")
	sh := st.Shards[0]
	for i, s := range steps {
		vals := make([]string, s.n)
		for j := range vals {
			vals[j] = s.name
		}
		base, n, end, err := e.Produce(st, sh, idemBatch(s.pid, s.epoch, s.seq, vals...), nil)
		if !errors.Is(err, s.want) || (s.want == nil && err != nil) {
			t.Fatalf("step %q: err %v, want %v", s.name, err, s.want)
		}
		if err == nil {
			if err := e.WaitDurable(t.Context(), end); err != nil {
				t.Fatal(err)
			}
			if s.dupOf > 0 {
				if n != 0 || base != bases[s.dupOf-1] {
					t.Fatalf("step %q: duplicate answered base %d (%d new records), want base %d and none", s.name, base, n, bases[s.dupOf-1])
				}
			}
			bases[i] = base
		}
		if got := len(readAll(t, e, "s", 0)); got != s.wantLen {
			t.Fatalf("step %q: shard holds %d records, want %d", s.name, got, s.wantLen)
		}
	}
}

func TestIdempotentSequences(t *testing.T) {
	e := openEngine(t, t.TempDir())
	defer e.Close()
	e.CreateStream("s", 1, nil, false)
	runSteps(t, e, []step{
		{name: "first", pid: 7, seq: 0, n: 3, wantLen: 3},
		{name: "retry of first", pid: 7, seq: 0, n: 3, dupOf: 1, wantLen: 3},
		{name: "next", pid: 7, seq: 3, n: 2, wantLen: 5},
		{name: "gap", pid: 7, seq: 9, n: 1, want: shard.ErrOutOfOrderSequence, wantLen: 5},
		{name: "retry of first again", pid: 7, seq: 0, n: 3, dupOf: 1, wantLen: 5},
		{name: "overlapping retry", pid: 7, seq: 1, n: 3, want: shard.ErrOutOfOrderSequence, wantLen: 5},
		{name: "unknown producer mid-sequence", pid: 8, seq: 4, n: 1, want: shard.ErrUnknownProducer, wantLen: 5},
		{name: "other producer", pid: 8, seq: 0, n: 1, wantLen: 6},
		{name: "new epoch not at 0", pid: 7, epoch: 1, seq: 5, n: 1, want: shard.ErrOutOfOrderSequence, wantLen: 6},
		{name: "new epoch", pid: 7, epoch: 1, seq: 0, n: 1, wantLen: 7},
		{name: "fenced old epoch", pid: 7, epoch: 0, seq: 5, n: 1, want: shard.ErrInvalidProducerEpoch, wantLen: 7},
		{name: "not idempotent", pid: -1, epoch: -1, seq: -1, n: 1, wantLen: 8},
	}, map[int]shard.Offset{})
}

func TestIdempotenceWindowOfFive(t *testing.T) {
	e := openEngine(t, t.TempDir())
	defer e.Close()
	e.CreateStream("s", 1, nil, false)
	var steps []step
	for i := range 7 {
		steps = append(steps, step{name: "b", pid: 1, seq: int32(i), n: 1, wantLen: i + 1})
	}
	steps = append(steps,
		step{name: "retry inside the window", pid: 1, seq: 3, n: 1, dupOf: 4, wantLen: 7},
		step{name: "retry older than the window", pid: 1, seq: 1, n: 1, want: shard.ErrOutOfOrderSequence, wantLen: 7})
	runSteps(t, e, steps, map[int]shard.Offset{})
}

// TestIdempotenceSurvivesRestart: a retry that arrives after a crash is
// still recognised, whether the state comes from a checkpoint or from
// replaying the log.
func TestIdempotenceSurvivesRestart(t *testing.T) {
	for _, checkpoint := range []bool{false, true} {
		name := "replay"
		if checkpoint {
			name = "checkpoint"
		}
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			e := openEngine(t, dir)
			e.CreateStream("s", 1, nil, false)
			bases := map[int]shard.Offset{}
			runSteps(t, e, []step{
				{name: "a", pid: 3, seq: 0, n: 2, wantLen: 2},
				{name: "b", pid: 3, seq: 2, n: 2, wantLen: 4},
			}, bases)
			if checkpoint {
				if err := e.checkpoint(); err != nil {
					t.Fatal(err)
				}
			}
			crashed := t.TempDir()
			copyDir(t, dir, crashed)
			e.Close()
			e2 := openEngine(t, crashed)
			defer e2.Close()
			runSteps(t, e2, []step{
				{name: "retry of b", pid: 3, seq: 2, n: 2, dupOf: 2, wantLen: 4},
				{name: "gap", pid: 3, seq: 7, n: 1, want: shard.ErrOutOfOrderSequence, wantLen: 4},
				{name: "c", pid: 3, seq: 4, n: 1, wantLen: 5},
			}, bases)
		})
	}
}

func TestProducerIDsAreNeverReused(t *testing.T) {
	dir := t.TempDir()
	e := openEngine(t, dir)
	seen := map[int64]bool{}
	for range 1500 {
		id, err := e.NewProducerID()
		if err != nil || seen[id] {
			t.Fatalf("id %d (%v) repeated or failed", id, err)
		}
		seen[id] = true
	}
	e.Close()
	e = openEngine(t, dir)
	defer e.Close()
	for range 10 {
		id, _ := e.NewProducerID()
		if seen[id] {
			t.Fatalf("producer id %d handed out again after restart", id)
		}
	}
}

// TestIdleProducersExpire: a producer idle past the expiration is
// forgotten, so it must start a new sequence; an active one is kept.
func TestIdleProducersExpire(t *testing.T) {
	dir := t.TempDir()
	e := openEngine(t, dir)
	e.CreateStream("s", 1, nil, false)
	st := e.Stream("s")
	sh := st.Shards[0]
	stamp := func(b []byte, ts time.Time) []byte {
		binary.BigEndian.PutUint64(b[27:], uint64(ts.UnixMilli()))
		binary.BigEndian.PutUint64(b[35:], uint64(ts.UnixMilli()))
		binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
		return b
	}
	now := time.Now()
	for _, b := range [][]byte{stamp(idemBatch(1, 0, 0, "old"), now.Add(-48*time.Hour)), stamp(idemBatch(2, 0, 0, "new"), now)} {
		if _, _, end, err := e.Produce(st, sh, b, nil); err != nil {
			t.Fatal(err)
		} else {
			e.WaitDurable(t.Context(), end)
		}
	}
	e.checkpoint()
	e.Close()
	e = openEngine(t, dir) // the timestamps survive a restart
	defer e.Close()
	sh = e.Stream("s").Shards[0]
	if got := len(sh.Producers()); got != 2 {
		t.Fatalf("%d producers after restart, want 2", got)
	}
	e.RetentionPass(t.Context()) // default expiration: 24 h
	ps := sh.Producers()
	if len(ps) != 1 || ps[0].ID != 2 || ps[0].LastSequence != 0 {
		t.Fatalf("after expiry: %+v, want only producer 2 at sequence 0", ps)
	}
	if _, _, _, err := e.Produce(e.Stream("s"), sh, idemBatch(1, 0, 1, "continues"), nil); !errors.Is(err, shard.ErrUnknownProducer) {
		t.Fatalf("expired producer continuing its sequence: %v, want ErrUnknownProducer", err)
	}
}
