package kafka

import (
	"sync"

	"github.com/braidstream/braid/internal/shard"
)

// Fetch answers read their batches into chunks of the request body pools
// (bodypool.go) instead of new memory for each partition read: a consumer
// fetching 50 MiB answers otherwise allocated, zeroed and collected every
// byte it read once more (at 1,000 partitions, warm, the zeroing and the
// collections were 18% of the node's CPU while consuming). The chunks go
// back to their pool once the answer is written (conn.writeLoop), when
// nothing points into them any more; an answer that is never written (the
// connection broke) leaves them to the garbage collector.

const (
	// fetchChunk is the size of the chunks reads are carved from: a
	// body class, so the chunks go back to a pool.
	fetchChunk = firstChunk << (2 * 4) // 16 MiB
	// fetchChunkMin: a smaller read gets new memory, so that a long
	// poll holding a few bytes does not hold a chunk; not in an answer
	// read from a window, which is large (its 1,000 partitions' reads of
	// 55 KB each were 55 MB of new, zeroed memory per answer).
	fetchChunkMin = firstChunk
)

// fetchBufs hands out the memory one fetch answer's reads are made into,
// to the goroutines that read its partitions (fetchParallel).
type fetchBufs struct {
	mu     sync.Mutex
	free   []byte   // the unused rest of the last chunk
	chunks [][]byte // every chunk taken, to give back
	// win, if set, is the log window the answer's reads copy their
	// batches from (fetchwindow.go); it is not written while they run.
	win *shard.LogWindow
}

// alloc returns an empty slice with room for exactly n bytes (a
// shard.Alloc). The slice's capacity ends where its room does, so an
// append to it (a long poll adding to a partition's answer) copies
// instead of writing over the next read's bytes.
func (b *fetchBufs) alloc(n int) []byte {
	if n > fetchChunk || (n < fetchChunkMin && b.win == nil) {
		return make([]byte, 0, n)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.free) < n {
		c := getBody(fetchChunk)
		b.chunks = append(b.chunks, c)
		b.free = c[:cap(c)]
	}
	out := b.free[:0:n]
	b.free = b.free[n:]
	return out
}

// release gives the chunks back; nothing may use what alloc returned
// afterwards.
func (b *fetchBufs) release() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range b.chunks {
		putBody(c)
	}
	b.chunks, b.free = nil, nil
}
