package shard

import (
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"math"
	"math/bits"
	"slices"
	"sort"
	"unsafe"

	"github.com/braidstream/braid/internal/wal"
)

// blockLen is how many entries a sealed block of the index holds at most:
// the block's own overhead (its header, 200 bytes) stays under a byte and
// a half an entry, and a search inside it takes seven steps.
const blockLen = 128

// index is a shard's batches, ascending by Base. Entries a shard no longer
// changes and rarely reads (those older than the tail window) are sealed
// into blocks. A block stores each field of its entries as the difference
// from the field's least value in the block, in as many bytes as the
// block's largest difference needs: consecutive batches have close
// offsets, timestamps and file positions, so an entry takes 8-12 bytes
// instead of 48, and any entry of a block is read in constant time. The
// rest, the recent part, is a plain array appends and the tail window use
// at full speed.
//
// Entries are numbered from 0 at the front; front and split count from
// the first entry the index ever held, so that dropping entries from the
// front leaves the blocks' numbers as they are.
type index struct {
	blocks []block // [front, split), ascending; all whole but the first
	recent []Entry // [split, split+len(recent))
	front  int     // the number of entry 0
	split  int     // the number of recent[0]
}

// block is up to blockLen sealed entries. Entry k's field f is at
// data[k*stride+off[f]:], little-endian, in as many bytes as mask[f] has
// ones, as its difference from least[f]; data ends with 8 spare bytes, so
// that every field is read with one 8-byte load. first is entry 0 as is:
// searches look at it in each block they pass. bytes is the sum of the
// entries' sizes, for walks that only count.
type block struct {
	first  Entry
	bytes  int64
	least  [fields]int64
	mask   [fields]uint64
	off    [fields]uint8
	stride int32
	n      int32
	at     int // the first entry's number
	data   []byte
}

// An entry's fields, as a block stores them.
const (
	fBase = iota
	fSpan // Last - Base
	fMaxTS
	fSeg
	fPos
	fSize
	fields
)

func fieldsOf(e *Entry) [fields]int64 {
	return [fields]int64{int64(e.Base), int64(e.Last - e.Base), e.MaxTS, e.Loc.Seg, int64(e.Loc.Pos), int64(e.Loc.Size)}
}

// entry returns the block's entry k.
func (b *block) entry(k int) Entry {
	var v [fields]int64
	for f := range v {
		v[f] = b.field(k, f)
	}
	return Entry{Base: Offset(v[fBase]), Last: Offset(v[fBase] + v[fSpan]), MaxTS: v[fMaxTS],
		Loc: Location{Seg: v[fSeg], Pos: wal.Position(v[fPos]), Size: int32(v[fSize])}}
}

// field returns field f of entry k.
func (b *block) field(k, f int) int64 {
	return b.least[f] + int64(binary.LittleEndian.Uint64(b.data[k*int(b.stride)+int(b.off[f]):])&b.mask[f])
}

// decode appends the block's entries to dst.
func (b *block) decode(dst []Entry) []Entry {
	for k := range int(b.n) {
		dst = append(dst, b.entry(k))
	}
	return dst
}

// encodeBlock seals es (1 to blockLen entries), the first numbered at.
// Differences are taken in two's complement, so any values come back
// exact.
func encodeBlock(at int, es []Entry) block {
	b := block{first: es[0], at: at, n: int32(len(es))}
	b.least = fieldsOf(&es[0])
	most := b.least
	for i := range es {
		b.bytes += int64(es[i].Loc.Size)
		for f, v := range fieldsOf(&es[i]) {
			b.least[f], most[f] = min(b.least[f], v), max(most[f], v)
		}
	}
	for f := range b.mask {
		w := (bits.Len64(uint64(most[f]-b.least[f])) + 7) / 8
		b.off[f], b.mask[f] = uint8(b.stride), widthMask(w)
		b.stride += int32(w)
	}
	b.data = make([]byte, len(es)*int(b.stride)+8)
	for i := range es {
		d := b.data[i*int(b.stride):]
		for f, v := range fieldsOf(&es[i]) {
			// The 8 bytes written reach past the field; the next
			// field's write covers them.
			binary.LittleEndian.PutUint64(d[b.off[f]:], uint64(v-b.least[f]))
		}
	}
	return b
}

// widthMask is the mask of a field w bytes wide (0 to 8).
func widthMask(w int) uint64 { return ^uint64(0) >> (64 - 8*uint(w)) }

func (x *index) len() int { return x.split - x.front + len(x.recent) }

// sealed is the number of entries in blocks: entries [0, sealed) are
// sealed, [sealed, len) recent.
func (x *index) sealed() int { return x.split - x.front }

// at returns entry i.
func (x *index) at(i int) Entry {
	if r := i - x.sealed(); r >= 0 {
		return x.recent[r]
	}
	b := &x.blocks[x.blockOf(i)]
	return b.entry(i + x.front - b.at)
}

// last returns the last entry; the index must not be empty.
func (x *index) last() Entry { return x.at(x.len() - 1) }

// blockOf returns the block holding sealed entry i.
func (x *index) blockOf(i int) int {
	// Every block but the first (which a front drop cuts) is whole.
	n := i + x.front
	if len(x.blocks) < 2 || n < x.blocks[1].at {
		return 0
	}
	return 1 + (n-x.blocks[1].at)/blockLen
}

// search returns the first entry for which f is true, len if none; f must
// be false then true along the index (sort.Search's contract).
func (x *index) search(f func(*Entry) bool) int {
	if len(x.blocks) == 0 || len(x.recent) > 0 && !f(&x.recent[0]) {
		return x.sealed() + sort.Search(len(x.recent), func(k int) bool { return f(&x.recent[k]) })
	}
	// The answer is sealed or recent[0]: in the block before the first
	// whose first entry is true, or that entry.
	k := sort.Search(len(x.blocks), func(k int) bool { return f(&x.blocks[k].first) })
	if k == 0 {
		return 0
	}
	b := &x.blocks[k-1]
	j := 1 + sort.Search(int(b.n)-1, func(j int) bool {
		e := b.entry(1 + j)
		return f(&e)
	})
	return b.at - x.front + j
}

// from yields the entries from i on, with their numbers, in order. The
// index must not change while it runs.
func (x *index) from(i int) iter.Seq2[int, Entry] {
	return func(yield func(int, Entry) bool) {
		if i < 0 {
			i = 0
		}
		if i < x.sealed() {
			for k := x.blockOf(i); k < len(x.blocks); k++ {
				b := &x.blocks[k]
				for j := max(0, i+x.front-b.at); j < int(b.n); j++ {
					if !yield(b.at-x.front+j, b.entry(j)) {
						return
					}
				}
				i = b.at + int(b.n) - x.front
			}
		}
		for r := i - x.sealed(); r < len(x.recent); r++ {
			if !yield(x.sealed()+r, x.recent[r]) {
				return
			}
		}
	}
}

// bytesFrom is the sum of the sizes of the entries from i on whose Base
// is below limit. Whole blocks below limit count without a decode.
func (x *index) bytesFrom(i int, limit Offset) (n int64) {
	for r := range x.runs(i) {
		if r.last.Base < limit {
			n += r.bytes
			continue
		}
		for _, e := range x.between(r.i, r.i+r.n) {
			if e.Base < limit {
				n += int64(e.Loc.Size)
			}
		}
	}
	return n
}

// files calls add with the file of every entry, at least once each
// (InWAL too); a block whose entries share one file names it once.
func (x *index) files(add func(seg int64)) {
	for k := range x.blocks {
		b := &x.blocks[k]
		if b.mask[fSeg] == 0 {
			add(b.least[fSeg])
			continue
		}
		for j := range int(b.n) {
			add(b.entry(j).Loc.Seg)
		}
	}
	for i := range x.recent {
		add(x.recent[i].Loc.Seg)
	}
}

// inFiles calls fn with every entry in a segment file (not InWAL), in
// order. A block whose entries are all in the log is skipped undecoded:
// a node that keeps its data in the log decodes none at start-up.
func (x *index) inFiles(fn func(Entry)) {
	for k := range x.blocks {
		b := &x.blocks[k]
		if b.mask[fSeg] == 0 && b.least[fSeg] == InWAL {
			continue
		}
		for j := range int(b.n) {
			if e := b.entry(j); e.Loc.Seg != InWAL {
				fn(e)
			}
		}
	}
	for _, e := range x.recent {
		if e.Loc.Seg != InWAL {
			fn(e)
		}
	}
}

// An entryRun is a run of entries a walk that only counts can take whole: a
// sealed block, described without decoding it, or a single entry.
type entryRun struct {
	i, n        int   // entries [i, i+n)
	bytes       int64 // their sizes, summed
	first, last Entry
	// Bounds on their MaxTS: exact for a single entry; for a block its
	// least value and that plus the field's widest difference.
	minTS, maxTS int64
}

// runs yields the entries from i on as runs: whole blocks as they are,
// the rest (a block i starts inside, the recent part) entry by entry.
func (x *index) runs(i int) iter.Seq[entryRun] {
	return func(yield func(entryRun) bool) {
		i = max(i, 0)
		if i < x.sealed() {
			for k := x.blockOf(i); k < len(x.blocks); k++ {
				b := &x.blocks[k]
				at := b.at - x.front
				if i > at {
					for j := i - at; j < int(b.n); j++ {
						if !yield(runOf(at+j, b.entry(j))) {
							return
						}
					}
					continue
				}
				least, widest := b.least[fMaxTS], b.mask[fMaxTS]
				hi := int64(math.MaxInt64) // least + widest, unless past int64
				if widest <= uint64(math.MaxInt64)-uint64(least) {
					hi = int64(uint64(least) + widest)
				}
				r := entryRun{i: at, n: int(b.n), bytes: b.bytes, first: b.first, last: b.entry(int(b.n) - 1), minTS: least, maxTS: hi}
				if !yield(r) {
					return
				}
			}
			i = x.sealed()
		}
		for r := i - x.sealed(); r < len(x.recent); r++ {
			if !yield(runOf(x.sealed()+r, x.recent[r])) {
				return
			}
		}
	}
}

func runOf(i int, e Entry) entryRun {
	return entryRun{i: i, n: 1, bytes: int64(e.Loc.Size), first: e, last: e, minTS: e.MaxTS, maxTS: e.MaxTS}
}

// between yields entries [i, j) with their numbers, in order.
func (x *index) between(i, j int) iter.Seq2[int, Entry] {
	return func(yield func(int, Entry) bool) {
		for k, e := range x.from(i) {
			if k >= j || !yield(k, e) {
				return
			}
		}
	}
}

// copyOut returns entries [i, j) in a new array.
func (x *index) copyOut(i, j int) []Entry {
	out := make([]Entry, 0, max(0, j-i))
	for _, e := range x.between(i, j) {
		out = append(out, e)
	}
	return out
}

// firstInLog returns the first entry in the shared log (len if none):
// entries in segment files precede those in the log.
func (x *index) firstInLog() int {
	return x.search(func(e *Entry) bool { return e.Loc.Seg == InWAL })
}

// oldestInLog returns the log position of the first entry in the log; ok
// is false if none is there.
func (x *index) oldestInLog() (pos wal.Position, ok bool) {
	if i := x.firstInLog(); i < x.len() {
		return x.at(i).Loc.Pos, true
	}
	return 0, false
}

// add appends e, which must follow the last entry.
func (x *index) add(e Entry) { x.recent = append(x.recent, e) }

// update calls fn, in order, with each of entries [i, j) to change; fn
// must keep them ascending. A sealed block is decoded and sealed again
// once, whatever fn changes in it.
func (x *index) update(i, j int, fn func(*Entry)) {
	i, j = max(i, 0), min(j, x.len())
	if i < x.sealed() {
		var buf [blockLen]Entry
		for k := x.blockOf(i); k < len(x.blocks) && x.blocks[k].at-x.front < j; k++ {
			b := &x.blocks[k]
			es := b.decode(buf[:0])
			for n := range es {
				if m := b.at - x.front + n; m >= i && m < j {
					fn(&es[n])
				}
			}
			*b = encodeBlock(b.at, es)
		}
		i = x.sealed()
	}
	for r := i - x.sealed(); r < j-x.sealed(); r++ {
		fn(&x.recent[r])
	}
}

// dropFront removes entries [0, n).
func (x *index) dropFront(n int) {
	if n <= 0 {
		return
	}
	n = min(n, x.len())
	x.front += n
	if x.front >= x.split {
		x.recent = slices.Clone(x.recent[x.front-x.split:])
		x.blocks, x.split = nil, x.front
		return
	}
	x.blocks = slices.Clone(x.blocks[x.blockOf(0):])
	if b := &x.blocks[0]; b.at < x.front {
		var buf [blockLen]Entry
		*b = encodeBlock(x.front, b.decode(buf[:0])[x.front-b.at:])
	}
}

// reset makes the index hold es (copied), all recent.
func (x *index) reset(es []Entry) {
	x.blocks, x.split = nil, x.front
	x.recent = slices.Clone(es)
}

// seal seals the recent entries below limit, in whole blocks of blockLen.
// Sealed entries are slower to reach and to change: limit is where the
// ones a shard still changes or reads often begin.
func (x *index) seal(limit int) {
	r := 0
	for ; limit-x.sealed()-r >= blockLen; r += blockLen {
		x.blocks = append(x.blocks, encodeBlock(x.split+r, x.recent[r:r+blockLen]))
	}
	if r == 0 {
		return
	}
	x.split += r
	rest := x.recent[r:]
	if cap(x.recent) > 2*blockLen && 2*len(rest) < cap(x.recent) {
		x.recent = slices.Clone(rest) // give back the sealed part's memory
	} else {
		x.recent = append(x.recent[:0], rest...)
	}
}

// memory is the bytes the index holds, spare capacity included.
func (x *index) memory() int64 {
	n := int64(cap(x.blocks))*int64(unsafe.Sizeof(block{})) + int64(cap(x.recent))*int64(unsafe.Sizeof(Entry{}))
	for i := range x.blocks {
		n += int64(cap(x.blocks[i].data))
	}
	return n
}

// appendBlock appends entries [lo, hi) of b, which must follow the last
// entry: as b itself (blocks never change in place, so two indexes can
// share one) when b is whole where the index needs whole blocks, sealed
// anew as the index's first block, or else as recent entries.
func (x *index) appendBlock(b *block, lo, hi int) {
	n := hi - lo
	switch {
	case n <= 0:
	case len(x.recent) == 0 && lo == 0 && hi == int(b.n) && (len(x.blocks) == 0 || n == blockLen):
		c := *b
		c.at = x.split
		x.blocks = append(x.blocks, c)
		x.split += n
	case len(x.recent) == 0 && len(x.blocks) == 0:
		var buf [blockLen]Entry
		x.blocks = append(x.blocks, encodeBlock(x.split, b.decode(buf[:0])[lo:hi]))
		x.split += n
	default:
		for k := lo; k < hi; k++ {
			x.recent = append(x.recent, b.entry(k))
		}
	}
}

// slice returns entries [i, j) as an index of their own, sharing x's
// whole blocks: taking a snapshot of a large index copies little.
func (x *index) slice(i, j int) index {
	var out index
	i, j = max(i, 0), min(j, x.len())
	if i < x.sealed() {
		for k := x.blockOf(i); k < len(x.blocks) && x.blocks[k].at-x.front < j; k++ {
			b := &x.blocks[k]
			out.appendBlock(b, max(0, i+x.front-b.at), min(int(b.n), j+x.front-b.at))
		}
		i = x.sealed()
	}
	for r := i - x.sealed(); r < j-x.sealed(); r++ {
		out.recent = append(out.recent, x.recent[r])
	}
	return out
}

// extend appends y's entries, which must follow x's, sharing y's blocks
// where it can, and seals what it can.
func (x *index) extend(y *index) {
	for k := range y.blocks {
		x.appendBlock(&y.blocks[k], 0, int(y.blocks[k].n))
	}
	x.recent = append(x.recent, y.recent...)
	x.seal(x.len())
}

// packedIndexOf returns an index holding es, sealed but for fewer than
// blockLen: what readIndex returns for the same entries.
func packedIndexOf(es []Entry) index {
	var x index
	for r := 0; r < len(es); r += blockLen {
		b := encodeBlock(0, es[r:min(r+blockLen, len(es))])
		x.appendBlock(&b, 0, int(b.n))
	}
	return x
}

// groupHeaderLen is the size of a group's header in appendIndex's
// encoding: its entry count, each field's width, each field's least value.
const groupHeaderLen = 1 + fields + 8*fields

// appendIndex encodes x's entries onto dst, for a checkpoint: a u32 count
// of groups, then groups of 1 to blockLen entries, each stored as a
// block is (a u8 count, a u8 width a field, a u64 least value a field,
// then each entry's fields in their widths). Sealed blocks are written as
// they are; recent entries are sealed for it. If flush is not nil, dst is
// handed to it whenever it passes 64 KiB, and goes on from empty.
func appendIndex(dst []byte, x *index, flush func([]byte)) []byte {
	le := binary.LittleEndian
	dst = le.AppendUint32(dst, uint32(len(x.blocks)+(len(x.recent)+blockLen-1)/blockLen))
	put := func(b *block) {
		dst = append(dst, byte(b.n))
		for f := range fields {
			dst = append(dst, byte(bits.OnesCount64(b.mask[f])/8))
		}
		for f := range fields {
			dst = le.AppendUint64(dst, uint64(b.least[f]))
		}
		dst = append(dst, b.data[:int(b.n)*int(b.stride)]...)
		if flush != nil && len(dst) >= 64<<10 {
			flush(dst)
			dst = dst[:0]
		}
	}
	for k := range x.blocks {
		put(&x.blocks[k])
	}
	for r := 0; r < len(x.recent); r += blockLen {
		b := encodeBlock(0, x.recent[r:min(r+blockLen, len(x.recent))])
		put(&b)
	}
	return dst
}

// readIndex decodes what appendIndex encoded and returns the rest of b.
// Every entry is checked: offsets ascending from batch to batch, sizes
// that hold a batch header (reads slice and allocate by them).
func readIndex(b []byte) (index, []byte, error) {
	var x index
	if len(b) < 4 {
		return x, nil, errors.New("truncated index")
	}
	le := binary.LittleEndian
	groups := int(le.Uint32(b))
	b = b[4:]
	if groups > len(b)/groupHeaderLen {
		return x, nil, fmt.Errorf("%d groups of entries do not fit in %d bytes", groups, len(b))
	}
	var prev Entry
	for g := range groups {
		if len(b) < groupHeaderLen {
			return x, nil, fmt.Errorf("group %d: truncated", g)
		}
		blk := block{n: int32(b[0])}
		if blk.n < 1 || blk.n > blockLen {
			return x, nil, fmt.Errorf("group %d: %d entries", g, blk.n)
		}
		for f := range fields {
			w := b[1+f]
			if w > 8 {
				return x, nil, fmt.Errorf("group %d: a field %d bytes wide", g, w)
			}
			blk.off[f] = uint8(blk.stride)
			blk.mask[f] = widthMask(int(w))
			blk.least[f] = int64(le.Uint64(b[1+fields+8*f:]))
			blk.stride += int32(w)
		}
		b = b[groupHeaderLen:]
		size := int(blk.n) * int(blk.stride)
		if len(b) < size {
			return x, nil, fmt.Errorf("group %d: %d bytes of entries, %d left", g, size, len(b))
		}
		blk.data = make([]byte, size+8)
		copy(blk.data, b[:size])
		b = b[size:]
		for k := range int(blk.n) {
			e, size := blk.entry(k), blk.field(k, fSize)
			switch {
			case e.Last < e.Base || size < BatchHeaderLen || size > math.MaxInt32:
				return x, nil, fmt.Errorf("entry %d: offsets %d-%d, %d bytes", x.len()+k, e.Base, e.Last, size)
			case e.MaxTS < blk.least[fMaxTS]: // runs bound timestamps by least
				return x, nil, fmt.Errorf("entry %d: timestamp %d below its group's least, %d", x.len()+k, e.MaxTS, blk.least[fMaxTS])
			case x.len()+k > 0 && e.Base <= prev.Last:
				return x, nil, fmt.Errorf("entry %d: offset %d follows one ending at %d", x.len()+k, e.Base, prev.Last)
			}
			blk.bytes += size
			prev = e
		}
		blk.first = blk.entry(0)
		x.appendBlock(&blk, 0, int(blk.n))
	}
	x.seal(x.len())
	return x, b, nil
}
