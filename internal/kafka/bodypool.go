package kafka

import "sync"

// Request bodies are read into buffers of a few size classes (64 KiB × 4^k)
// kept in pools, so a producer's stream of multi-megabyte requests does not
// allocate, zero and garbage-collect every byte it sends once more: at 1,000
// partitions, request buffers were more than half of all bytes allocated.
//
// A buffer goes back to its pool only when nothing can still point into
// it: a growth step's old buffer as soon as it is copied, and a whole body
// only for APIs whose handlers copy what they keep (see reusableBody).
// Pooled buffers are not counted in the request budgets: they hold no
// request, and the pools empty themselves across garbage collections.

const (
	bodyClasses  = 6 // 64 KiB .. 64 MiB
	bodyGrowth   = 4 // each class is this many times the one before
	maxBodyClass = firstChunk << (2 * (bodyClasses - 1))
)

var bodyPools [bodyClasses]sync.Pool

// Buffers of the large classes (produce requests of many partitions,
// fetch answers' chunks) are also kept, up to keptBytes per class, out of
// the collector's reach: a pool empties itself across two collections, the
// runtime hands the freed memory back to the system, and taking it again
// is dear (fresh pages are faulted in and zeroed; on a virtual machine
// that hands freed memory back to its host, 14 µs per 4 KiB page, measured
// in docs/design/storage.md). What is kept stays resident: at most 224 MiB.
var keptBytes = [bodyClasses]int{
	3: 32 << 20,  // 4 MiB: eight produce requests of 1,000 small batches
	4: 128 << 20, // 16 MiB: the fetch chunks of two 55 MiB answers
	5: 64 << 20,  // 64 MiB: one
}

var kept struct {
	sync.Mutex
	bufs  [bodyClasses][][]byte
	bytes [bodyClasses]int
}

// bodyClass is the smallest class holding n bytes, or -1 past the largest.
func bodyClass(n int) int {
	size := firstChunk
	for c := range bodyClasses {
		if n <= size {
			return c
		}
		size *= bodyGrowth
	}
	return -1
}

// getBody returns an empty buffer with room for at least n bytes.
func getBody(n int) []byte {
	c := bodyClass(n)
	if c < 0 {
		return make([]byte, 0, n)
	}
	if keptBytes[c] > 0 {
		kept.Lock()
		if bufs := kept.bufs[c]; len(bufs) > 0 {
			b := bufs[len(bufs)-1]
			kept.bufs[c] = bufs[:len(bufs)-1]
			kept.bytes[c] -= cap(b)
			kept.Unlock()
			return b[:0]
		}
		kept.Unlock()
	}
	if b, ok := bodyPools[c].Get().(*[]byte); ok {
		return (*b)[:0]
	}
	return make([]byte, 0, firstChunk<<(2*c))
}

// putBody hands b back for reuse; b must not be used afterwards. Buffers
// that are not exactly a class's size (the largest requests, or ones made
// elsewhere) are left to the garbage collector.
func putBody(b []byte) {
	c := bodyClass(cap(b))
	if c < 0 || cap(b) != firstChunk<<(2*c) {
		return
	}
	b = b[:0]
	if keptBytes[c] > 0 {
		kept.Lock()
		if kept.bytes[c]+cap(b) <= keptBytes[c] {
			kept.bufs[c] = append(kept.bufs[c], b)
			kept.bytes[c] += cap(b)
			kept.Unlock()
			return
		}
		kept.Unlock()
	}
	bodyPools[c].Put(&b)
}

// reusableBody says whether a request of this API key leaves nothing
// pointing into its body once its handler returned. Produce does: the
// engine copies each batch it keeps (the cache must not pin requests),
// and kmsg copies strings. Other APIs may keep byte slices of their
// request (group member metadata, say), so their bodies are not reused.
func reusableBody(key int16) bool { return key == produceKey }
