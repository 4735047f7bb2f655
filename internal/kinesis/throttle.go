package kinesis

import (
	"fmt"
	"sync"
	"time"

	"github.com/braidstream/braid/internal/catalog"
)

// Opt-in throttling: on a stream with braid.kinesis.throttle=true the door
// applies Kinesis' documented per-shard limits, so that clients see
// ProvisionedThroughputExceededException as they would on AWS and teams
// can test their retry code. Off by default; the Kafka door is never
// throttled.
//
// Each limit is a token bucket per shard (per consumer and shard for
// SubscribeToShard) holding about one second of burst, in memory: a
// restart forgets it, as it forgets nothing that matters. A bucket that
// has refilled to its burst is the same as no bucket, so buckets of idle
// shards, closed shards and deleted streams are dropped by a sweep.
//
//   - writes (PutRecord, PutRecords): 1 MiB/s of data and partition keys,
//     and 1,000 records/s. A call is admitted whole or refused whole, and
//     a refused call takes nothing from any bucket (Braid writes a call
//     as one log frame; AWS would fail the records over the limit alone).
//   - GetRecords: 5 calls/s, and 2 MiB/s of data and keys returned. A big
//     answer is charged after it is read and may leave the bytes bucket in
//     debt; calls are refused until the debt is paid (a 10 MiB answer
//     blocks the shard's reads for about 4 s), as AWS does.
//   - SubscribeToShard: 2 MiB/s per consumer and shard; a subscription is
//     slowed down, never failed.
const (
	writeBytesPerSec   = 1 << 20
	writeRecordsPerSec = 1000
	readCallsPerSec    = 5
	readBytesPerSec    = 2 << 20
	pushBytesPerSec    = 2 << 20
	// writeBytesBurst lets a full bucket admit one record of the largest
	// size (1 MiB of data and a 256-byte key).
	writeBytesBurst = writeBytesPerSec + maxKeyLen
	// sweepEvery is how often buckets back at their burst are dropped.
	sweepEvery = 10 * time.Second
)

// bucket is a token bucket: it gains rate tokens a second up to burst.
// Its level may go below zero (a debt) when a charge is taken after the
// fact.
type bucket struct {
	rate, burst float64
	level       float64
	at          time.Time
}

func newBucket(rate, burst float64, now time.Time) bucket {
	return bucket{rate: rate, burst: burst, level: burst, at: now}
}

func (b *bucket) refill(now time.Time) {
	if now.After(b.at) {
		b.level = min(b.burst, b.level+b.rate*now.Sub(b.at).Seconds())
		b.at = now
	}
}

func (b *bucket) full() bool { return b.level >= b.burst }

// shardKey names a shard of a stream by ids: a stream recreated under the
// same name gets a new id and fresh buckets.
type shardKey struct {
	stream catalog.StreamID
	shard  catalog.ShardID
}

// pushKey names a subscription's budget: the consumer (by its ARN, which
// names its registration) on one shard.
type pushKey struct {
	shardKey
	consumer string
}

type writeBuckets struct{ bytes, records bucket }
type readBuckets struct{ calls, bytes bucket }

// shardLoad is what a write call puts into one shard.
type shardLoad struct {
	shard          catalog.ShardID
	bytes, records int
}

// throttle holds the buckets of one door; the zero value is not usable,
// see newThrottle.
type throttle struct {
	now func() time.Time

	mu     sync.Mutex
	writes map[shardKey]*writeBuckets
	reads  map[shardKey]*readBuckets
	pushes map[pushKey]*bucket
	swept  time.Time
}

func newThrottle(now func() time.Time) *throttle {
	return &throttle{now: now, writes: map[shardKey]*writeBuckets{}, reads: map[shardKey]*readBuckets{},
		pushes: map[pushKey]*bucket{}, swept: now()}
}

// admitWrite admits a write call whole or refuses it whole: if any shard
// it touches lacks the bytes or records, it returns that shard and false,
// and takes nothing from any bucket.
func (t *throttle) admitWrite(stream catalog.StreamID, loads []shardLoad) (catalog.ShardID, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	t.sweep(now)
	// A call may name a shard more than once (PutRecords cuts a shard's
	// records into batches): sum first.
	need := map[catalog.ShardID]shardLoad{}
	var order []catalog.ShardID
	for _, l := range loads {
		n, ok := need[l.shard]
		if !ok {
			order = append(order, l.shard)
		}
		n.bytes += l.bytes
		n.records += l.records
		need[l.shard] = n
	}
	for _, id := range order {
		b := t.writeBuckets(shardKey{stream, id}, now)
		if n := need[id]; float64(n.bytes) > b.bytes.level || float64(n.records) > b.records.level {
			return id, false
		}
	}
	for _, id := range order {
		b := t.writes[shardKey{stream, id}]
		b.bytes.level -= float64(need[id].bytes)
		b.records.level -= float64(need[id].records)
	}
	return 0, true
}

func (t *throttle) writeBuckets(k shardKey, now time.Time) *writeBuckets {
	b := t.writes[k]
	if b == nil {
		b = &writeBuckets{newBucket(writeBytesPerSec, writeBytesBurst, now), newBucket(writeRecordsPerSec, writeRecordsPerSec, now)}
		t.writes[k] = b
	}
	b.bytes.refill(now)
	b.records.refill(now)
	return b
}

// admitRead admits one GetRecords call on a shard, taking one call, or
// refuses it (no call left this second, or the bytes of earlier answers
// not yet paid for), taking nothing.
func (t *throttle) admitRead(k shardKey) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	t.sweep(now)
	b := t.readBuckets(k, now)
	if b.calls.level < 1 || b.bytes.level < 0 {
		return false
	}
	b.calls.level--
	return true
}

// chargeRead takes the bytes an admitted GetRecords call returned; the
// bucket may go into debt.
func (t *throttle) chargeRead(k shardKey, n int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.readBuckets(k, t.now())
	b.bytes.level -= float64(n)
}

func (t *throttle) readBuckets(k shardKey, now time.Time) *readBuckets {
	b := t.reads[k]
	if b == nil {
		b = &readBuckets{newBucket(readCallsPerSec, readCallsPerSec, now), newBucket(readBytesPerSec, readBytesPerSec, now)}
		t.reads[k] = b
	}
	b.calls.refill(now)
	b.bytes.refill(now)
	return b
}

// push takes the bytes a subscription event carried and returns how long
// the subscription must wait before its next event (0 while within the
// limit).
func (t *throttle) push(k pushKey, n int) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	t.sweep(now)
	b := t.pushes[k]
	if b == nil {
		nb := newBucket(pushBytesPerSec, pushBytesPerSec, now)
		b = &nb
		t.pushes[k] = b
	}
	b.refill(now)
	b.level -= float64(n)
	if b.level >= 0 {
		return 0
	}
	return time.Duration(-b.level / b.rate * float64(time.Second))
}

// sweep drops buckets that are back at their burst (idle shards, closed
// shards, deleted streams, ended subscriptions): a new bucket starts
// full, so nothing changes for their shards. Called with mu held.
func (t *throttle) sweep(now time.Time) {
	if now.Sub(t.swept) < sweepEvery {
		return
	}
	t.swept = now
	for k, b := range t.writes {
		if b.bytes.refill(now); b.bytes.full() {
			if b.records.refill(now); b.records.full() {
				delete(t.writes, k)
			}
		}
	}
	for k, b := range t.reads {
		if b.calls.refill(now); b.calls.full() {
			if b.bytes.refill(now); b.bytes.full() {
				delete(t.reads, k)
			}
		}
	}
	for k, b := range t.pushes {
		if b.refill(now); b.full() {
			delete(t.pushes, k)
		}
	}
}

// size is how many buckets are kept, for tests.
func (t *throttle) size() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.writes) + len(t.reads) + len(t.pushes)
}

// throttled is AWS's answer for a shard over its limit.
func (s *Server) throttled(stream string, id catalog.ShardID) error {
	return errorf(errThroughput, "Rate exceeded for shard %s in stream %s under account %s.", ShardName(id), stream, s.opts.Account)
}

// throttledCall is the per-record message of a PutRecords call refused
// whole.
func throttledCall(msg string) string {
	return fmt.Sprintf("%s The whole PutRecords call was refused and nothing of it was written: Braid writes a call all or nothing, and this shard is over its limit.", msg)
}
