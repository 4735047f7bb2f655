package shard

import (
	"encoding/binary"
	"iter"
	"slices"
	"sort"
	"unsafe"

	"github.com/braidstream/braid/internal/wal"
)

// blockLen is how many entries a sealed block of the index holds at most.
// A block is decoded whole to reach one of its entries: 128 entries cost
// about a microsecond and a half, and hold the block's own overhead (its
// first entry and header, ~100 bytes) under a byte an entry.
const blockLen = 128

// index is a shard's batches, ascending by Base. Entries a shard no longer
// changes and rarely reads (the older ones, moved out of the shared log
// and out of the tail window) are sealed into blocks, each delta-coded
// against the entry before it: consecutive batches have consecutive
// offsets, close timestamps and adjacent file ranges, so an entry takes
// 6-10 bytes instead of 48. The rest, the recent part, is a plain array
// appends and the tail window use at full speed.
//
// Entries are numbered from 0 at the front; front and split count from
// the first entry the index ever held, so that dropping entries from the
// front leaves the blocks' numbers as they are.
type index struct {
	blocks []block // [front, split), ascending
	recent []Entry // [split, split+len(recent))
	front  int     // the number of entry 0
	split  int     // the number of recent[0]
}

// block is up to blockLen sealed entries: the first whole, the others as
// varints of their differences from the entry before (appendDelta).
type block struct {
	first Entry
	at    int // the first entry's number
	n     int
	data  []byte
}

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
	c := b.cursor()
	for range i + x.front - b.at + 1 {
		c.next()
	}
	return c.e
}

// last returns the last entry; the index must not be empty.
func (x *index) last() Entry { return x.at(x.len() - 1) }

// blockOf returns the block holding sealed entry i.
func (x *index) blockOf(i int) int {
	n := i + x.front
	return sort.Search(len(x.blocks), func(k int) bool { return x.blocks[k].at > n }) - 1
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
	c := b.cursor()
	c.next() // the first, false
	j := 1
	for c.next() && !f(&c.e) {
		j++
	}
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
				c := b.cursor()
				for j := 0; c.next(); j++ {
					if n := b.at - x.front + j; n >= i && !yield(n, c.e) {
						return
					}
				}
				i = b.at + b.n - x.front
			}
		}
		for r := i - x.sealed(); r < len(x.recent); r++ {
			if !yield(x.sealed()+r, x.recent[r]) {
				return
			}
		}
	}
}

// copyOut returns entries [i, j) in a new array.
func (x *index) copyOut(i, j int) []Entry {
	out := make([]Entry, 0, max(0, j-i))
	for k, e := range x.from(i) {
		if k >= j {
			break
		}
		out = append(out, e)
	}
	return out
}

// add appends e, which must follow the last entry.
func (x *index) add(e Entry) { x.recent = append(x.recent, e) }

// set replaces entry i.
func (x *index) set(i int, e Entry) { x.update(i, i+1, func(p *Entry) { *p = e }) }

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
	k := sort.Search(len(x.blocks), func(k int) bool { return x.blocks[k].at+x.blocks[k].n > x.front })
	x.blocks = slices.Clone(x.blocks[k:])
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

// encodeBlock seals es (1 to blockLen entries), the first numbered at.
func encodeBlock(at int, es []Entry) block {
	var buf [blockLen * 16]byte
	d := buf[:0]
	for i := 1; i < len(es); i++ {
		d = appendDelta(d, &es[i-1], &es[i])
	}
	return block{first: es[0], at: at, n: len(es), data: slices.Clone(d)}
}

// appendDelta encodes e as its differences from p, the entry before it:
// the gap after p's last offset (1 between consecutive batches), its
// offset span, its timestamp's change, its file's change, the gap after
// p's bytes in the file (0 for adjacent batches) and its size. Differences
// wrap in two's complement, so any values come back exact.
func appendDelta(d []byte, p, e *Entry) []byte {
	d = binary.AppendVarint(d, int64(e.Base-p.Last))
	d = binary.AppendVarint(d, int64(e.Last-e.Base))
	d = binary.AppendVarint(d, e.MaxTS-p.MaxTS)
	d = binary.AppendVarint(d, e.Loc.Seg-p.Loc.Seg)
	d = binary.AppendVarint(d, int64(e.Loc.Pos-p.Loc.Pos-wal.Position(p.Loc.Size)))
	return binary.AppendUvarint(d, uint64(uint32(e.Loc.Size)))
}

// decode appends the block's entries to dst.
func (b *block) decode(dst []Entry) []Entry {
	c := b.cursor()
	for c.next() {
		dst = append(dst, c.e)
	}
	return dst
}

// cursor returns a cursor before the block's first entry.
func (b *block) cursor() blockCursor { return blockCursor{d: b.data, left: b.n, b: b} }

// blockCursor decodes a block one entry at a time.
type blockCursor struct {
	e    Entry
	d    []byte
	left int
	b    *block
}

// next moves to the next entry, false past the last.
func (c *blockCursor) next() bool {
	if c.left == 0 {
		return false
	}
	c.left--
	if c.b != nil {
		c.e, c.b = c.b.first, nil
		return true
	}
	var v [5]int64
	for k := range v {
		v[k] = c.varint()
	}
	size := c.uvarint()
	e := &c.e
	e.Base = e.Last + Offset(v[0])
	e.Last = e.Base + Offset(v[1])
	e.MaxTS += v[2]
	e.Loc.Seg += v[3]
	e.Loc.Pos += wal.Position(e.Loc.Size) + wal.Position(v[4])
	e.Loc.Size = int32(uint32(size))
	return true
}

func (c *blockCursor) varint() int64 {
	if len(c.d) > 0 && c.d[0] < 0x80 { // most differences take one byte
		u := int64(c.d[0])
		c.d = c.d[1:]
		return u>>1 ^ -(u & 1)
	}
	v, n := binary.Varint(c.d)
	c.d = c.d[n:]
	return v
}

func (c *blockCursor) uvarint() uint64 {
	v, n := binary.Uvarint(c.d)
	c.d = c.d[n:]
	return v
}
