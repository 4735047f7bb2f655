package kafka

import (
	"errors"
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
// Long poll: the completion re-reads until min_bytes are there or max_wait
// passes, woken by every group commit. (Known gap: each wake-up copies the
// records again; sizing wake-ups with the index instead made
// TestCLIProduceConsume flaky, see the commit that took it out.) A fetch
// with a partition in error (or none) is answered at once, as Kafka does:
// a fetch of unknown partitions never waits. The response is capped at
// Options.FetchMaxBytes (Kafka's broker fetch.max.bytes) whatever the
// client asks.
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
		for {
			changed := c.s.eng.Changed()
			resp, n := c.fetchOnce(req)
			left := time.Until(deadline)
			if n >= int(req.MinBytes) || fetchFailed(resp) || left <= 0 || c.ctx.Err() != nil {
				return resp
			}
			t := time.NewTimer(left)
			select {
			case <-changed:
			case <-t.C:
			case <-c.ctx.Done():
			}
			t.Stop()
		}
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
func (c *conn) fetchOnce(req *kmsg.FetchRequest) (*kmsg.FetchResponse, int) {
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
				n := c.fetchPartition(sh, &p, rp, budget-total, total == 0, req.IsolationLevel == isolationCommitted)
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

func (c *conn) fetchPartition(sh *shard.Shard, p *kmsg.FetchResponseTopicPartition, rp kmsg.FetchRequestTopicPartition, budget int, first, committed bool) int {
	logStart, hw, _ := sh.Offsets()
	p.HighWatermark, p.LastStableOffset, p.LogStartOffset = int64(hw), int64(sh.LastStableOffset()), int64(logStart)
	limit := min(int(rp.PartitionMaxBytes), budget)
	if limit <= 0 && !first {
		return 0
	}
	// KIP-74: the first batch of the response is returned whole even if it
	// is over the limits, so a large batch can never stall a consumer.
	var data []byte
	var err error
	if committed {
		var aborted []shard.AbortedTxn
		var lso shard.Offset
		data, aborted, lso, err = sh.ReadCommitted(shard.Offset(rp.FetchOffset), max(limit, 0), first)
		p.LastStableOffset = int64(lso)
		p.AbortedTransactions = []kmsg.FetchResponseTopicPartitionAbortedTransaction{}
		for _, a := range aborted {
			p.AbortedTransactions = append(p.AbortedTransactions, kmsg.FetchResponseTopicPartitionAbortedTransaction{
				ProducerID: a.ProducerID, FirstOffset: int64(a.First)})
		}
	} else {
		data, err = sh.Read(shard.Offset(rp.FetchOffset), max(limit, 0), first)
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
