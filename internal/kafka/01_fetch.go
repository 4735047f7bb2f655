package kafka

import (
	"encoding/binary"
	"errors"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/braidstream/braid/internal/engine"
	"github.com/braidstream/braid/internal/shard"
)

// Fetch v4-v16: v4 is the first that returns RecordBatch v2 without down
// conversion; v13+ addresses topics by id; v17+ only adds follower fields.
//
// Fetch sessions (KIP-227) are refused cleanly: every response carries
// session id 0, which tells the client to send full fetches; a request for
// an existing session gets FETCH_SESSION_ID_NOT_FOUND.
//
// read_committed (isolation level 1) reads stop at the last stable offset
// and list the aborted transactions in the returned range, so the client
// drops their batches; control batches are returned like any other.
//
// Long poll: the completion reads once; each group commit that wakes it
// then only adds what became visible since (fetchMore reads each partition
// on from the offset after its last batch), so a poll copies every record
// once, however many commits wake it. A fetch with a partition in error (or
// none) is answered at once, as Kafka does: a fetch of unknown partitions
// never waits. The response is capped at Options.FetchMaxBytes (Kafka's
// broker fetch.max.bytes) whatever the client asks.
func init() { register(1, 4, 16, handleFetch) }

// maxFetchWait caps a client's max_wait, so a connection is never parked for
// long on a value it made up.
const maxFetchWait = 30 * time.Second

func handleFetch(c *conn, kreq kmsg.Request) (kmsg.Response, func() kmsg.Response) {
	req := kreq.(*kmsg.FetchRequest)
	if req.Version >= 7 && req.SessionEpoch > 0 {
		resp := req.ResponseKind().(*kmsg.FetchResponse)
		resp.ErrorCode = kerr.FetchSessionIDNotFound.Code
		return resp, nil
	}
	wait := min(time.Duration(max(req.MaxWaitMillis, 0))*time.Millisecond, maxFetchWait)
	deadline := time.Now().Add(wait)
	return nil, func() kmsg.Response {
		bufs := new(fetchBufs)
		c.fetchBufs = bufs // given back once the answer is written
		changed := c.s.eng.Changed()
		resp, n := c.fetchOnce(req, bufs)
		for n < int(req.MinBytes) && !fetchFailed(resp) && c.ctx.Err() == nil {
			left := time.Until(deadline)
			if left <= 0 {
				break
			}
			t := time.NewTimer(left)
			select {
			case <-changed:
			case <-t.C:
			case <-c.ctx.Done():
			}
			t.Stop()
			changed = c.s.eng.Changed()
			n = c.fetchMore(req, resp, n, bufs)
		}
		return resp
	}
}

// fetchFailed reports whether a partition of resp carries an error, or it
// has none: then the fetch is answered at once, as Kafka does.
func fetchFailed(resp *kmsg.FetchResponse) bool {
	partitions := 0
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if p.ErrorCode != 0 {
				return true
			}
			partitions++
		}
	}
	return partitions == 0
}

// fetchBudget is the most record bytes one response may hold.
func (c *conn) fetchBudget(req *kmsg.FetchRequest) int {
	budget := int(req.MaxBytes)
	if req.Version < 3 || budget <= 0 {
		budget = 64 << 20
	}
	return min(budget, int(c.s.opts.FetchMaxBytes))
}

// fetchStream resolves a fetch topic to its stream, or nil.
func (c *conn) fetchStream(req *kmsg.FetchRequest, rt *kmsg.FetchRequestTopic) *engine.Stream {
	if req.Version >= 13 {
		return c.s.eng.StreamByTopicID(rt.TopicID)
	}
	return c.s.eng.Stream(rt.Topic)
}

// fetchPartitionError is the error a fetch partition carries before any
// read, or 0.
func fetchPartitionError(req *kmsg.FetchRequest, st *engine.Stream, rp *kmsg.FetchRequestTopicPartition) int16 {
	switch {
	case st == nil && req.Version >= 13:
		return kerr.UnknownTopicID.Code
	case st == nil || rp.Partition < 0 || int(rp.Partition) >= len(st.Shards):
		return kerr.UnknownTopicOrPartition.Code
	case rp.CurrentLeaderEpoch > 0:
		return kerr.UnknownLeaderEpoch.Code
	}
	return 0
}

// fetchOnce builds a response from what is visible now and returns it with
// the number of record bytes it holds.
//
// A consumer catching up on many partitions waits for the whole answer
// before it asks again, so the time the node spends reading is the
// consumer's too: at 1,000 partitions read from far behind (55 MiB
// answers, the node's cap, of some 3,500 batches of 16 KiB scattered over
// the log) reading was a third of each round trip, on one core while the
// other stood idle. So the partitions of an answer are read by
// fetchWorkers goroutines at once (fetchParallel) once the answer holds
// fetchParallelFrom bytes, and from its first partition on when the
// connection's last answer did. A consumer at the tail, whose partitions
// hold a few bytes each, has its partitions read one after the other, as
// cheaply as before.
func (c *conn) fetchOnce(req *kmsg.FetchRequest, bufs *fetchBufs) (*kmsg.FetchResponse, int) {
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	budget := c.fetchBudget(req)
	committed := req.IsolationLevel == isolationCommitted
	var reads []fetchRead
	resp.Topics = make([]kmsg.FetchResponseTopic, len(req.Topics))
	streams := make([]*engine.Stream, len(req.Topics))
	for i := range req.Topics {
		rt := &req.Topics[i]
		t := &resp.Topics[i]
		*t = kmsg.NewFetchResponseTopic()
		t.Topic, t.TopicID = rt.Topic, rt.TopicID
		st := c.fetchStream(req, rt)
		streams[i] = st
		t.Partitions = make([]kmsg.FetchResponseTopicPartition, len(rt.Partitions))
		for j, rp := range rt.Partitions {
			p := &t.Partitions[j]
			*p = kmsg.NewFetchResponseTopicPartition()
			p.Partition = rp.Partition
			p.HighWatermark, p.LastStableOffset, p.LogStartOffset = -1, -1, -1
			// Never null: librdkafka rejects a null record set (size -1) as a
			// protocol error; Kafka always sends an empty one.
			p.RecordBatches = []byte{}
			if p.ErrorCode = fetchPartitionError(req, st, &rp); p.ErrorCode == 0 {
				reads = append(reads, fetchRead{topic: i, sh: st.Shards[rp.Partition], p: p, rp: rp})
			}
		}
	}
	bufs.win = c.fetchWindow(reads, budget)
	parallel := len(reads) > 1 && fetchWorkers() > 1
	total, k := 0, 0
	if !parallel || c.lastFetch < fetchParallelFrom {
		for ; k < len(reads) && !(parallel && total >= fetchParallelFrom); k++ {
			r := &reads[k]
			r.n = c.fetchPartition(r.sh, r.p, r.rp, budget-total, total == 0, committed, bufs)
			total += r.n
		}
	}
	if k < len(reads) {
		total += c.fetchParallel(reads[k:], budget-total, total == 0, committed, bufs)
	}
	c.lastFetch = total
	bufs.win = nil
	// Metrics per stream, so they cost one label lookup per stream.
	fetched := make([]int, len(req.Topics))
	for _, r := range reads {
		fetched[r.topic] += r.n
	}
	for i, n := range fetched {
		if n > 0 {
			c.s.opts.Metrics.FetchedBytes.WithLabelValues(streams[i].Name).Add(float64(n))
		}
	}
	return resp, total
}

// fetchRead is one partition's read of a fetch answer.
type fetchRead struct {
	topic int // index into the request's topics
	sh    *shard.Shard
	p     *kmsg.FetchResponseTopicPartition
	rp    kmsg.FetchRequestTopicPartition
	n     int // record bytes read
}

// fetchParallelFrom is how much an answer (or the connection's last one)
// holds before its partitions are read in parallel.
const fetchParallelFrom = 1 << 20

// fetchParallelRuns counts fetchParallel's runs, for the tests.
var fetchParallelRuns atomic.Int64

// fetchWorkers is how many goroutines read an answer's partitions at
// once: the cores Go runs on, at least 4 and at most 8. Reads out of the
// page cache are copies, as fast as there are cores; reads that wait for
// the device serve better the more are in flight: a 1,000-partition
// consume of 16 GB, the page cache dropped, read 172.3 and 196.0 MB/s with
// 2 goroutines on this 2-core machine, 208.2 and 253.6 with 4; warm, 4
// were within the noise of 2 (386.8-484.2 against 431.6-509.7 MB/s).
// fetchWorkerCount, when set (tests), is the count instead.
func fetchWorkers() int {
	if n := fetchWorkerCount.Load(); n > 0 {
		return int(n)
	}
	return min(max(runtime.GOMAXPROCS(0), 4), 8)
}

var fetchWorkerCount atomic.Int32

// fetchParallel reads reads, of an answer that may hold budget bytes more
// (and has none yet if first), by fetchWorkers goroutines that each take
// the next partition in request order, and returns the bytes read.
//
// The answer is the one reading them one after the other would give. A
// read's limit there, min(the partition's limit, what the reads before it
// left of the budget), depends on what those returned. Here a read starts
// at once with its partition's limit while the budget has room for it
// beside everything the reads running may return; otherwise it waits
// until every read before it has returned, and takes what they left. A
// read may return its first batch whole, over its limit (KIP-74), only if
// no read before it returned any bytes: it starts hoping so while none
// has yet, and is cut to the limit (settleRead) if one did after all.
// Reads settle in request order, by whichever goroutine finishes the
// last read a settled run waited for, so no goroutine waits for another
// to go on with its next read unless the budget is nearly spent. The
// reads running or waiting to settle hold at most half the budget (or one
// read's limit), which bounds the memory of the reads running at once.
func (c *conn) fetchParallel(reads []fetchRead, budget int, first, committed bool, bufs *fetchBufs) int {
	var (
		next     atomic.Int64
		mu       sync.Mutex
		turn     int // the read that settles next
		settled  int // the bytes of the reads settled
		pending  int // the limits of the reads running, the bytes of those waiting to settle
		wg       sync.WaitGroup
		panicked any
	)
	read := make([]int, len(reads)) // bytes read, -1 until then
	for i := range read {
		read[i] = -1
	}
	changed := sync.NewCond(&mu)
	work := func() {
		defer func() {
			if v := recover(); v != nil {
				mu.Lock()
				panicked = v
				changed.Broadcast()
				mu.Unlock()
			}
		}()
		for {
			k := int(next.Add(1)) - 1
			if k >= len(reads) {
				return
			}
			r := &reads[k]
			partMax := int(r.rp.PartitionMaxBytes)
			mu.Lock()
			var limit int
			for {
				if panicked != nil {
					mu.Unlock()
					return
				}
				if k == turn {
					limit = min(partMax, budget-settled) // as one after the other
					break
				}
				if budget-settled-pending >= partMax && pending+partMax <= budget/2 {
					limit = partMax // whatever the reads before it return
					break
				}
				changed.Wait()
			}
			whole := first && settled == 0 // may return its first batch whole
			pending += max(limit, 0)
			mu.Unlock()
			n := c.fetchPartition(r.sh, r.p, r.rp, limit, whole, committed, bufs)
			mu.Lock()
			pending += n - max(limit, 0)
			read[k] = n
			for ; turn < len(reads) && read[turn] >= 0; turn++ {
				s := &reads[turn]
				pending -= read[turn]
				s.n = settleRead(s.p, read[turn], min(int(s.rp.PartitionMaxBytes), budget-settled), first && settled == 0)
				settled += s.n
			}
			changed.Broadcast()
			mu.Unlock()
		}
	}
	workers := min(fetchWorkers(), len(reads))
	fetchParallelRuns.Add(1)
	wg.Add(workers - 1)
	for range workers - 1 {
		go func() {
			defer wg.Done()
			work()
		}()
	}
	work()
	wg.Wait()
	if panicked != nil {
		panic(panicked) // to the completion's recover, as a read on this goroutine would
	}
	return settled
}

// settleRead cuts p's n bytes of batches to the whole batches a read
// limited to limit bytes (the first whole if whole) would have returned,
// with the aborted transactions that concern them, and returns their
// bytes.
func settleRead(p *kmsg.FetchResponseTopicPartition, n, limit int, whole bool) int {
	if n <= limit || n == 0 {
		return n
	}
	b := p.RecordBatches
	kept := 0
	for kept+12 <= len(b) {
		size := 12 + int(binary.BigEndian.Uint32(b[kept+8:]))
		if kept+size > limit && !(whole && kept == 0) {
			break
		}
		kept += size
	}
	p.RecordBatches = b[:kept]
	if kept == 0 {
		if p.AbortedTransactions != nil {
			p.AbortedTransactions = p.AbortedTransactions[:0]
		}
		return 0
	}
	next := int64(lastOffset(p.RecordBatches)) + 1
	p.AbortedTransactions = slices.DeleteFunc(p.AbortedTransactions, func(a kmsg.FetchResponseTopicPartitionAbortedTransaction) bool {
		return a.FirstOffset >= next
	})
	return kept
}

func (c *conn) fetchPartition(sh *shard.Shard, p *kmsg.FetchResponseTopicPartition, rp kmsg.FetchRequestTopicPartition, budget int, first, committed bool, bufs *fetchBufs) int {
	logStart, hw, _ := sh.Offsets()
	p.HighWatermark, p.LastStableOffset, p.LogStartOffset = int64(hw), int64(sh.LastStableOffset()), int64(logStart)
	limit := min(int(rp.PartitionMaxBytes), budget)
	if limit <= 0 && !first {
		return 0
	}
	// KIP-74: the first batch of the response is returned whole even if it
	// is over the limits, so a large batch can never stall a consumer.
	data, aborted, lso, err := readPartition(sh, shard.Offset(rp.FetchOffset), limit, first, committed, bufs)
	if committed {
		p.LastStableOffset = int64(lso)
		p.AbortedTransactions = []kmsg.FetchResponseTopicPartitionAbortedTransaction{}
		addAborted(p, aborted)
	}
	if err != nil {
		p.ErrorCode = errCode(err)
		if !errors.Is(err, shard.ErrOffsetOutOfRange) {
			c.s.opts.Logger.Warn("kafka: fetch read failed", "shard", sh.Key().String(), "offset", rp.FetchOffset, "err", err)
		}
		return 0
	}
	if data != nil {
		p.RecordBatches = data
	}
	return len(data)
}

// readPartition reads whole batches of sh from `from` within limit bytes (the
// first batch whole if first): up to the last stable offset, with the aborted
// transactions of the range, when committed; else up to the high watermark;
// into memory from bufs.
func readPartition(sh *shard.Shard, from shard.Offset, limit int, first, committed bool, bufs *fetchBufs) ([]byte, []shard.AbortedTxn, shard.Offset, error) {
	if committed {
		return sh.ReadCommittedTo(bufs.alloc, bufs.win, from, max(limit, 0), first)
	}
	data, err := sh.ReadTo(bufs.alloc, bufs.win, from, max(limit, 0), first)
	return data, nil, 0, err
}

// addAborted adds the aborted transactions p does not list yet.
func addAborted(p *kmsg.FetchResponseTopicPartition, aborted []shard.AbortedTxn) {
	for _, a := range aborted {
		listed := slices.ContainsFunc(p.AbortedTransactions, func(t kmsg.FetchResponseTopicPartitionAbortedTransaction) bool {
			return t.ProducerID == a.ProducerID && t.FirstOffset == int64(a.First)
		})
		if !listed {
			p.AbortedTransactions = append(p.AbortedTransactions,
				kmsg.FetchResponseTopicPartitionAbortedTransaction{ProducerID: a.ProducerID, FirstOffset: int64(a.First)})
		}
	}
}

// fetchMore adds to resp, a long poll's answer so far holding total record
// bytes, what became visible since it was read, and returns the new total.
// Each partition is read on from the offset after its last batch, within
// what its and the response's limits leave. A partition that is gone now
// carries its error (and the poll ends); a read that fails keeps what the
// partition answered so far, or carries the error if it had nothing.
func (c *conn) fetchMore(req *kmsg.FetchRequest, resp *kmsg.FetchResponse, total int, bufs *fetchBufs) int {
	budget := c.fetchBudget(req)
	committed := req.IsolationLevel == isolationCommitted
	for i := range req.Topics {
		rt := &req.Topics[i]
		st := c.fetchStream(req, rt)
		fetched := 0
		for j := range rt.Partitions {
			rp := &rt.Partitions[j]
			p := &resp.Topics[i].Partitions[j]
			if p.ErrorCode != 0 {
				continue
			}
			if code := fetchPartitionError(req, st, rp); code != 0 {
				p.ErrorCode, p.RecordBatches = code, []byte{}
				continue
			}
			sh := st.Shards[rp.Partition]
			from, had := shard.Offset(rp.FetchOffset), len(p.RecordBatches) > 0
			if had {
				from = lastOffset(p.RecordBatches) + 1
			}
			limit := min(int(rp.PartitionMaxBytes)-len(p.RecordBatches), budget-total)
			if limit <= 0 && total > 0 {
				continue
			}
			data, aborted, lso, err := readPartition(sh, from, limit, total == 0, committed, bufs)
			if err != nil {
				if !had {
					p.ErrorCode = errCode(err)
				}
				continue
			}
			logStart, hw, _ := sh.Offsets()
			p.HighWatermark, p.LastStableOffset, p.LogStartOffset = int64(hw), int64(sh.LastStableOffset()), int64(logStart)
			if committed {
				p.LastStableOffset = int64(lso)
				addAborted(p, aborted)
			}
			p.RecordBatches = append(p.RecordBatches, data...)
			fetched += len(data)
			total += len(data)
		}
		if fetched > 0 {
			c.s.opts.Metrics.FetchedBytes.WithLabelValues(st.Name).Add(float64(fetched))
		}
	}
	return total
}

// lastOffset returns the last offset of the last batch in batches (whole
// RecordBatch v2 bytes as read from a shard).
func lastOffset(batches []byte) shard.Offset {
	var last shard.Offset
	for off := 0; off+shard.BatchHeaderLen <= len(batches); {
		base := int64(binary.BigEndian.Uint64(batches[off:]))
		length := int(binary.BigEndian.Uint32(batches[off+8:]))
		last = shard.Offset(base + int64(int32(binary.BigEndian.Uint32(batches[off+23:]))))
		off += 12 + length
	}
	return last
}
