package kafka

import (
	"github.com/braidstream/braid/internal/shard"
	"github.com/braidstream/braid/internal/vfs"
	"github.com/braidstream/braid/internal/wal"
)

// Fetch windows: a consumer of many partitions catching up past the page
// cache reads the log front to back (shard/window.go).
//
// Its partitions' batches lie between each other's in the log. Served
// partition by partition, each with its own limit, an answer of 55 MiB
// took eight partitions' next 8 MiB, some 3,500 batches of 16 KiB spread
// over 8 GB of log, and the next answer the next eight partitions':
// from the device, scattered small reads, each byte through a page the
// page cache allocates. Instead, when such a consumer's partitions have
// their next batches in the log and those batches fill at least half of
// the answer's worth of log from the earliest of them, the answer is that
// range of the log: read with one direct read (no page cache), and each
// partition returns the batches it has there (its limit is their bytes),
// which is what Kafka allows a broker (a partition's limit is a most, not
// a least). The range after it is read in the background while the answer
// goes out, and the next answer, which starts there, finds it read.
//
// The answer stays a valid one for every partition: whole batches, in
// order, from the offset asked for, at most the partition's own limit;
// what changes is only which partitions get bytes in which answer. Where
// the range is mostly in the page cache already, the window is read
// through it (one copy from memory, where partition by partition each
// small batch cost a system call and a read-ahead hint), unless the
// batches are large (warmWindowBatch): a few large reads cost less than
// the window's extra copy, and the partitions are read as before.

const (
	// windowMinPartitions is the fewest partitions with an answer to read
	// for which the answer is read as a window: a consumer of one
	// partition reads its batches in long runs, with the shard's own
	// direct read-ahead.
	windowMinPartitions = 2
	// windowBytes is the most log one window covers: the node's largest
	// answer (FetchMaxBytes, 55 MiB), rounded up to whole 4 KiB blocks.
	windowBytes = 56 << 20
	// warmWindowBatch: a range the page cache holds is read as a window
	// when its batches average less than this; larger batches are read
	// partition by partition, one read each, cheaper than the window's
	// extra copy (measured, docs/design/storage.md).
	warmWindowBatch = 64 << 10
	// windowBuffers bounds the windows' buffers of all connections
	// together: one consumer reading ahead, or two without.
	windowBuffers = 2
)

// windowSlots holds one token per window buffer in use; windowFree the
// buffers not in use, kept once made (faulting 56 MiB of fresh memory in
// cost a new consumer's first answer 0.4 s on this machine).
var (
	windowSlots = make(chan struct{}, windowBuffers)
	windowFree  = make(chan []byte, windowBuffers)
)

// fetchWindow is a connection's window buffers and its read ahead; used on
// the connection's writer goroutine only (fetch completions).
type fetchWindow struct {
	bufs  [][]byte    // aligned, windowBytes+wal.DirectReadPad each
	cur   int         // the buffer of the window being served, or -1
	ahead *windowRead // the read of the range after the last window
}

// windowRead is a direct read of a range of the log into one of the
// connection's buffers.
type windowRead struct {
	buf  int // index into bufs
	done chan struct{}
	win  *shard.LogWindow // once done, unless err
	err  error
}

// buffer returns the index of a buffer neither the window being served
// nor the read ahead uses, taking one from windowSlots if needed, or -1
// when none is to be had.
func (fw *fetchWindow) buffer() int {
	for i := range fw.bufs {
		if i != fw.cur && (fw.ahead == nil || fw.ahead.buf != i) {
			return i
		}
	}
	select {
	case windowSlots <- struct{}{}:
	default:
		return -1
	}
	var buf []byte
	select {
	case buf = <-windowFree:
	default:
		buf = vfs.AlignedBuffer(windowBytes + wal.DirectReadPad)
	}
	fw.bufs = append(fw.bufs, buf)
	return len(fw.bufs) - 1
}

// settle waits for the read ahead, if any, and forgets it.
func (fw *fetchWindow) settle() *windowRead {
	r := fw.ahead
	if r != nil {
		<-r.done
		fw.ahead = nil
	}
	return r
}

// release waits for the read ahead and gives the buffers back.
func (fw *fetchWindow) release() {
	fw.settle()
	for _, buf := range fw.bufs {
		windowFree <- buf // room for every buffer a slot was taken for
		<-windowSlots
	}
	fw.bufs, fw.cur = nil, -1
}

// readAhead starts reading [pos, pos+n) of the log, as far as it
// is written, through sh, into a free buffer; nothing if there is none.
func (fw *fetchWindow) readAhead(sh *shard.Shard, pos wal.Position, n int) {
	i := fw.buffer()
	if i < 0 {
		return
	}
	r := &windowRead{buf: i, done: make(chan struct{})}
	fw.ahead = r
	buf := fw.bufs[i]
	go func() {
		defer close(r.done)
		r.win, _, r.err = sh.ReadLogWindow(buf, pos, n)
	}()
}

// windowStart returns where the earliest of reads' next batches lies in
// the log, and which reads have their next batch there (the others are
// read as before); false if none has.
func windowStart(reads []fetchRead) (start wal.Position, inLog []bool, ok bool) {
	inLog = make([]bool, len(reads))
	for i := range reads {
		loc, is := reads[i].sh.NextInLog(shard.Offset(reads[i].rp.FetchOffset))
		if !is {
			continue
		}
		if !ok || loc.Pos < start {
			start = loc.Pos
		}
		inLog[i], ok = true, true
	}
	return start, inLog, ok
}

// windowLimits returns, per read with its next batch in the log, the
// bytes of its batches that lie wholly before end (within its limit), the
// sum of them, how many batches that is, and where the last of them ends.
func windowLimits(reads []fetchRead, inLog []bool, start, end wal.Position) (lims []int, sum int64, batches int, last wal.Position) {
	lims = make([]int, len(reads))
	last = start
	for i := range reads {
		if !inLog[i] {
			continue
		}
		n, k, e := reads[i].sh.InLogBefore(shard.Offset(reads[i].rp.FetchOffset), end, int(reads[i].rp.PartitionMaxBytes))
		lims[i], sum, batches, last = n, sum+int64(n), batches+k, max(last, e)
	}
	return lims, sum, batches, last
}

// laggards handles a range the consumer's batches fill too little of for a
// window because most of its partitions have read past it: fewer than a
// quarter of the reads with their next batch in the log have batches in
// it. Left to the reads as before, those few would wait for their turn in
// the client's rotation (at 1,000 partitions and 8 MiB limits, eight
// partitions served an answer: some 30 s of scattered reads), and every
// answer meanwhile would fail the same check. Instead the answer serves
// only their batches in the range (each read's limit is its bytes there),
// partition by partition, and the next answer's range starts further on,
// where the others are. It says whether it did; a consumer whose
// partitions all lie in the range (its batches between another stream's)
// is left as it was.
func laggards(reads []fetchRead, inLog []bool, lims []int) bool {
	in, behind := 0, 0
	for i := range reads {
		if inLog[i] {
			in++
			if lims[i] > 0 {
				behind++
			}
		}
	}
	if behind == 0 || 4*behind >= in {
		return false
	}
	for i := range reads {
		if inLog[i] {
			reads[i].rp.PartitionMaxBytes = int32(lims[i])
		}
	}
	lastEmpty(reads)
	return true
}

// lastEmpty moves the reads with a limit of 0 (partitions whose next
// batch lies past the window) after the others, keeping each group's
// order: the answer's first read may return a batch over its limit
// (KIP-74), which for those would be a read from the disk outside the
// window, and a partition running ahead of it. Where each read's answer
// goes does not depend on the order (fetchRead.p).
func lastEmpty(reads []fetchRead) {
	empty := make([]fetchRead, 0, len(reads))
	k := 0
	for _, r := range reads {
		if r.rp.PartitionMaxBytes == 0 {
			empty = append(empty, r)
		} else {
			reads[k] = r
			k++
		}
	}
	copy(reads[k:], empty)
}

// aheadBytes is how much log to read ahead for the next answer to reads:
// its budget, but no more than twice what the partitions with their next
// batches in the log may take (their limits), so that a consumer with
// small partition limits does not have the device read ranges it will
// not use.
func aheadBytes(reads []fetchRead, inLog []bool, budget int) int {
	n := 0
	for i := range reads {
		if inLog[i] {
			if n += int(reads[i].rp.PartitionMaxBytes); n >= budget {
				break
			}
		}
	}
	return min(budget, windowBytes, 2*n)
}

// startsInLog says whether the first of reads has its next batch in the
// log: a connection whose last answer was small (at the tail, or new)
// and whose first partition is behind the tail cache may be starting a
// catch-up, which is best read as windows from its first answer on. Once
// partition by partition, its reads have the shards ask the kernel for
// their next batches (shard/prefetch.go), and for a consumer of a few
// partitions those lie between each other's in the very ranges its next
// answers start with: cached because the consumer reads from the disk,
// they would look like a warm log. One search at the tail.
func startsInLog(reads []fetchRead) bool {
	_, ok := reads[0].sh.NextInLog(shard.Offset(reads[0].rp.FetchOffset))
	return ok
}

// fetchWindow decides whether the answer to reads is a window of the log,
// and if so sets each read's limit to its bytes in it and returns it; nil
// leaves the reads as they were. budget is the answer's.
func (c *conn) fetchWindow(reads []fetchRead, budget int) *shard.LogWindow {
	fw := &c.window
	fw.cur = -1
	if len(reads) < windowMinPartitions || c.lastFetch < fetchParallelFrom && !startsInLog(reads) {
		fw.release()
		return nil
	}
	start, inLog, ok := windowStart(reads)
	if !ok {
		fw.release()
		return nil
	}
	sh := reads[0].sh
	end := start + wal.Position(min(budget, windowBytes))
	var win *shard.LogWindow
	how := "direct"
	if r := fw.settle(); r != nil && r.err == nil && r.win.Pos <= start && start < r.win.End() {
		win, fw.cur, how = r.win, r.buf, "ahead"
		end = min(end, win.End())
	}
	lims, sum, batches, last := windowLimits(reads, inLog, start, end)
	span := int64(last - start)
	if span == 0 || 2*sum < span {
		// Not this consumer's log alone (or not yet its next batches): the
		// reads go as before, unless a few partitions are behind the rest.
		fw.release()
		if sum > 0 && laggards(reads, inLog, lims) {
			c.s.opts.Metrics.fetchLaggards.Inc()
		}
		return nil
	}
	if win == nil && sum >= int64(batches)*warmWindowBatch {
		if cached, pages, ok := sh.LogCached(start, span); ok && 2*cached >= pages {
			// Large batches the page cache holds: the partitions' own
			// reads, a few large ones, cost less than a window's copy.
			fw.release()
			return nil
		}
	}
	if win == nil {
		i := fw.buffer()
		if i < 0 {
			return nil
		}
		var cached bool
		var err error
		if win, cached, err = sh.ReadLogWindow(fw.bufs[i], start, int(last-start)); err != nil {
			c.s.opts.Logger.Debug("kafka: a fetch window's read failed; the partitions are read as before", "err", err)
			return nil
		}
		if cached {
			how = "cached"
		}
		fw.cur = i
	}
	fw.readAhead(sh, last, aheadBytes(reads, inLog, budget))
	for i, lim := range lims {
		if inLog[i] {
			reads[i].rp.PartitionMaxBytes = int32(lim)
		}
	}
	lastEmpty(reads)
	c.s.opts.Metrics.fetchWindows.WithLabelValues(how).Inc()
	return win
}
