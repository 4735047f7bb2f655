package kinesis

import (
	"testing"
	"time"

	"github.com/braidstream/braid/internal/catalog"
)

// clock is a settable time for the bucket logic.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) add(d time.Duration)     { c.t = c.t.Add(d) }
func newClock() *clock                   { return &clock{time.Unix(1_700_000_000, 0)} }
func load(id, bytes, recs int) shardLoad { return shardLoad{catalog.ShardID(id), bytes, recs} }

func TestThrottleWrites(t *testing.T) {
	c := newClock()
	th := newThrottle(c.now)
	const st = catalog.StreamID(1)

	// A full second's budget of records passes, one more does not.
	if _, ok := th.admitWrite(st, []shardLoad{load(0, 1000, 1000)}); !ok {
		t.Fatal("1,000 records into a fresh shard refused")
	}
	if id, ok := th.admitWrite(st, []shardLoad{load(0, 1, 1)}); ok || id != 0 {
		t.Fatalf("record 1,001 in the same instant: ok=%v shard=%d, want refused on shard 0", ok, id)
	}
	// 1 ms later one record's worth has come back.
	c.add(time.Millisecond)
	if _, ok := th.admitWrite(st, []shardLoad{load(0, 1, 1)}); !ok {
		t.Fatal("record after 1 ms of refill refused")
	}

	// Bytes: a full bucket takes one largest record, then refuses.
	if _, ok := th.admitWrite(st, []shardLoad{load(1, maxDataBytes+maxKeyLen, 1)}); !ok {
		t.Fatal("one record of the largest size refused by a full bucket")
	}
	if _, ok := th.admitWrite(st, []shardLoad{load(1, 1024, 1)}); ok {
		t.Fatal("1 KiB admitted right after a full MiB")
	}
	// More than a second's burst is never admitted at once.
	if _, ok := th.admitWrite(st, []shardLoad{load(2, 2<<20, 10)}); ok {
		t.Fatal("2 MiB into one shard admitted")
	}
}

// A refused call takes nothing: not from the shard over its limit, and
// not from the other shards of the call.
func TestThrottleRefusedCallTakesNothing(t *testing.T) {
	c := newClock()
	th := newThrottle(c.now)
	const st = catalog.StreamID(1)
	if _, ok := th.admitWrite(st, []shardLoad{load(0, 900<<10, 1)}); !ok {
		t.Fatal("900 KiB refused")
	}
	// Shard 1 fits, shard 0 does not: refused whole, on shard 0.
	id, ok := th.admitWrite(st, []shardLoad{load(1, 900<<10, 900), load(0, 200<<10, 1)})
	if ok || id != 0 {
		t.Fatalf("ok=%v shard=%d, want refused on shard 0", ok, id)
	}
	// Shard 1 still has its whole budget, shard 0 its remaining 124 KiB.
	if _, ok := th.admitWrite(st, []shardLoad{load(1, 1<<20, 1000)}); !ok {
		t.Fatal("shard 1 lost budget to a refused call")
	}
	if _, ok := th.admitWrite(st, []shardLoad{load(0, 120<<10, 1)}); !ok {
		t.Fatal("shard 0 lost budget to a refused call")
	}
	// The same shard named twice in one call (batches cut by size) counts
	// once, summed.
	c.add(2 * time.Second)
	if _, ok := th.admitWrite(st, []shardLoad{load(3, 600<<10, 1), load(3, 600<<10, 1)}); ok {
		t.Fatal("2 x 600 KiB into one shard admitted")
	}
}

func TestThrottleReads(t *testing.T) {
	c := newClock()
	th := newThrottle(c.now)
	k := shardKey{1, 0}
	for i := range 5 {
		if !th.admitRead(k) {
			t.Fatalf("call %d of 5 refused", i+1)
		}
	}
	if th.admitRead(k) {
		t.Fatal("sixth call in the same instant admitted")
	}
	c.add(200 * time.Millisecond)
	if !th.admitRead(k) {
		t.Fatal("call after 200 ms refused")
	}

	// A 10 MiB answer leaves a debt of 8 MiB: 4 s at 2 MiB/s.
	k2 := shardKey{1, 1}
	if !th.admitRead(k2) {
		t.Fatal("first read refused")
	}
	th.chargeRead(k2, 10<<20)
	c.add(3900 * time.Millisecond)
	if th.admitRead(k2) {
		t.Fatal("read admitted 3.9 s after a 10 MiB answer")
	}
	c.add(200 * time.Millisecond)
	if !th.admitRead(k2) {
		t.Fatal("read refused 4.1 s after a 10 MiB answer")
	}
}

func TestThrottlePush(t *testing.T) {
	c := newClock()
	th := newThrottle(c.now)
	k := pushKey{shardKey{1, 0}, "arn:c1"}
	if d := th.push(k, 2<<20); d != 0 {
		t.Fatalf("first 2 MiB: wait %v, want 0", d)
	}
	if d := th.push(k, 1<<20); d != 500*time.Millisecond {
		t.Fatalf("1 MiB more: wait %v, want 500ms", d)
	}
	// Another consumer on the same shard has its own budget.
	if d := th.push(pushKey{shardKey{1, 0}, "arn:c2"}, 2<<20); d != 0 {
		t.Fatalf("second consumer: wait %v, want 0", d)
	}
}

// Buckets of shards that went idle (closed, or their stream deleted) are
// dropped once they are back at their burst; one still in debt is kept.
func TestThrottleSweep(t *testing.T) {
	c := newClock()
	th := newThrottle(c.now)
	for i := range 100 {
		th.admitWrite(catalog.StreamID(i), []shardLoad{load(0, 100, 1)})
		th.admitRead(shardKey{catalog.StreamID(i), 0})
		th.push(pushKey{shardKey{catalog.StreamID(i), 0}, "c"}, 100)
	}
	th.admitRead(shardKey{999, 0})
	th.chargeRead(shardKey{999, 0}, 60<<20) // 29 s of debt
	if n := th.size(); n != 301 {
		t.Fatalf("%d buckets, want 301", n)
	}
	c.add(sweepEvery)
	th.admitRead(shardKey{1000, 0}) // any call sweeps
	if n := th.size(); n != 2 {
		t.Fatalf("%d buckets after the sweep, want 2 (the indebted one and the new one)", n)
	}
}
