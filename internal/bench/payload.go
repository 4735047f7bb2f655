package bench

import (
	"encoding/binary"
	"math/rand/v2"
)

const (
	minPoolBytes = 16 << 20
	maxPoolBytes = 256 << 20
)

// PoolSize picks how many random bytes to generate. Values repeat only after
// the pool is used up, so the pool must exceed what any one batch can hold
// (a batch collects records from a stretch of at most partitions *
// batchMaxBytes of the sequence) or compression would find the repeats.
func PoolSize(recordSize, batchMaxBytes, partitions int) int {
	n := 4 * batchMaxBytes * max(partitions, 1)
	n = min(max(n, minPoolBytes), maxPoolBytes)
	return max(n, 2*recordSize)
}

// NewPool returns n random bytes. ChaCha8 output is incompressible and fast
// enough that generating hundreds of MiB takes well under a second.
func NewPool(n int, seed uint64) []byte {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	pool := make([]byte, n)
	rand.NewChaCha8(key).Read(pool)
	return pool
}

// Payloads hands out record values as consecutive windows of a shared pool,
// so producing allocates nothing per record while every value in a batch is
// distinct. The values are read-only: kgo keeps them until the promise runs.
type Payloads struct {
	pool []byte
	size int
	next int
}

// NewPayloads returns a generator of size-byte values starting at offset
// start of pool; producers sharing a pool use different starts so they do
// not send identical streams.
func NewPayloads(pool []byte, size, start int) *Payloads {
	if size > len(pool) {
		panic("bench: record size exceeds payload pool")
	}
	p := &Payloads{pool: pool, size: size}
	p.next = start % p.positions()
	return p
}

// positions is the number of valid window starts.
func (p *Payloads) positions() int { return len(p.pool) - p.size + 1 }

// Next returns the next value. Its capacity is clipped so an append by a
// caller cannot scribble over the neighbouring values.
func (p *Payloads) Next() []byte {
	v := p.pool[p.next : p.next+p.size : p.next+p.size]
	p.next = (p.next + p.size) % p.positions()
	return v
}

// stampLen is the size of the send-time stamp used for end-to-end latency.
const stampLen = 8

// Stamp returns a copy of v with its first bytes replaced by t (Unix
// nanoseconds). The copy is needed because v aliases the shared pool.
// Values shorter than the stamp are returned unchanged.
func Stamp(v []byte, t int64) []byte {
	if len(v) < stampLen {
		return v
	}
	out := make([]byte, len(v))
	copy(out, v)
	binary.LittleEndian.PutUint64(out, uint64(t))
	return out
}

// ReadStamp returns the send time written by Stamp.
func ReadStamp(v []byte) (int64, bool) {
	if len(v) < stampLen {
		return 0, false
	}
	return int64(binary.LittleEndian.Uint64(v)), true
}
