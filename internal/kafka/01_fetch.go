package kafka

import (
	"encoding/binary"
	"errors"
	"slices"
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
func (c *conn) fetchOnce(req *kmsg.FetchRequest, bufs *fetchBufs) (*kmsg.FetchResponse, int) {
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	budget := c.fetchBudget(req)
	total := 0
	for i := range req.Topics {
		rt := &req.Topics[i]
		t := kmsg.NewFetchResponseTopic()
		t.Topic, t.TopicID = rt.Topic, rt.TopicID
		st := c.fetchStream(req, rt)
		fetched := 0 // per stream, so metrics cost one label lookup per stream
		for _, rp := range rt.Partitions {
			p := kmsg.NewFetchResponseTopicPartition()
			p.Partition = rp.Partition
			p.HighWatermark, p.LastStableOffset, p.LogStartOffset = -1, -1, -1
			// Never null: librdkafka rejects a null record set (size -1) as a
			// protocol error; Kafka always sends an empty one.
			p.RecordBatches = []byte{}
			if p.ErrorCode = fetchPartitionError(req, st, &rp); p.ErrorCode == 0 {
				sh := st.Shards[rp.Partition]
				n := c.fetchPartition(sh, &p, rp, budget-total, total == 0, req.IsolationLevel == isolationCommitted, bufs)
				fetched += n
				total += n
			}
			t.Partitions = append(t.Partitions, p)
		}
		if fetched > 0 {
			c.s.opts.Metrics.FetchedBytes.WithLabelValues(st.Name).Add(float64(fetched))
		}
		resp.Topics = append(resp.Topics, t)
	}
	return resp, total
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
		return sh.ReadCommittedTo(bufs.alloc, from, max(limit, 0), first)
	}
	data, err := sh.ReadTo(bufs.alloc, from, max(limit, 0), first)
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
