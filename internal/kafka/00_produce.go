package kafka

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/braidstream/braid/internal/engine"
	"github.com/braidstream/braid/internal/shard"
	"github.com/braidstream/braid/internal/txn"
	"github.com/braidstream/braid/internal/wal"
)

// Produce v3-v12: v3 is the first to carry RecordBatch v2, the only format
// Braid stores; v13 addresses topics by id. v0-v2 are advertised but
// answered with UNSUPPORTED_VERSION, as Kafka 4 does (KAFKA-18659):
// librdkafka before 2.10 decides whether it may compress with gzip or snappy
// from Produce v0 being listed, and silently sends uncompressed otherwise.
//
// Transactional produces (KIP-98) are checked against the coordinator:
// every batch must be transactional, from the transactional id's current
// producer and epoch, for a shard added to its open transaction. A batch
// from a replaced epoch is answered INVALID_PRODUCER_EPOCH, as by Kafka
// 2.7+ (KIP-588).
//
// Appends happen here, in request order; the wait for durability (acks=all:
// fsync; acks=1: written to the kernel) happens in the completion, so
// pipelined requests share one group commit. acks=0 gets no response.
const produceKey = 0

func init() { register(produceKey, 0, 12, handleProduce) }

// minProduceVersion is the first Produce version that is served.
const minProduceVersion = 3

func handleProduce(c *conn, kreq kmsg.Request) (kmsg.Response, func() kmsg.Response) {
	req := kreq.(*kmsg.ProduceRequest)
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	eng := c.s.eng
	var end wal.Position
	appended := false
	if req.Version < minProduceVersion {
		return refuseProduce(req, resp, kerr.UnsupportedVersion.Code)
	}
	appendAll := func(inTxn func(p txn.Partition, pid int64, epoch int16, add bool) error) {
		n := 0
		for _, rt := range req.Topics {
			n += len(rt.Partitions)
		}
		work := make([]produceItem, 0, n)
		resp.Topics = make([]kmsg.ProduceResponseTopic, len(req.Topics))
		for i, rt := range req.Topics {
			t := &resp.Topics[i]
			*t = kmsg.NewProduceResponseTopic()
			t.Topic = rt.Topic
			t.Partitions = make([]kmsg.ProduceResponseTopicPartition, len(rt.Partitions))
			st := eng.Stream(rt.Topic)
			for j, rp := range rt.Partitions {
				p := &t.Partitions[j]
				*p = kmsg.NewProduceResponseTopicPartition()
				p.Partition, p.BaseOffset, p.LogAppendTime, p.LogStartOffset = rp.Partition, -1, -1, -1
				if st == nil || rp.Partition < 0 || int(rp.Partition) >= len(st.Shards) {
					p.ErrorCode = kerr.UnknownTopicOrPartition.Code
					continue
				}
				work = append(work, produceItem{name: rt.Topic, st: st, sh: st.Shards[rp.Partition], records: rp.Records, resp: p})
			}
		}
		half := 0
		if inTxn == nil {
			half = produceSplit(work)
		}
		if half > 0 {
			c.s.opts.Metrics.splitProduces.Inc()
			appendSplit(c, work, half)
		} else {
			for i := range work {
				work[i].append(c, inTxn)
			}
		}
		// Metrics per stream, so they cost one label lookup per stream.
		records, bytes := 0, 0
		for i, it := range work {
			if it.err == nil {
				end, appended = max(end, it.end), true
				records, bytes = records+it.n, bytes+len(it.records)
			}
			if (i+1 == len(work) || work[i+1].name != it.name) && records > 0 {
				c.s.opts.Metrics.ProducedRecords.WithLabelValues(it.name).Add(float64(records))
				c.s.opts.Metrics.ProducedBytes.WithLabelValues(it.name).Add(float64(bytes))
				records, bytes = 0, 0
			}
		}
	}
	if req.TransactionID != nil {
		// Held across the appends, so no transaction end slips between
		// the check and the batch.
		// Produce v12+ comes from clients on transaction.version 2
		// (KIP-890 part 2), which add shards by producing to them.
		eng.Txns().Produce(*req.TransactionID, req.Version >= 12, appendAll)
	} else {
		appendAll(nil)
	}
	if !appended {
		return finishProduce(req, resp)
	}
	return nil, func() kmsg.Response {
		ctx, cancel := context.WithTimeout(c.ctx, produceWait(req.TimeoutMillis))
		defer cancel()
		var err error
		if req.Acks == -1 {
			err = eng.WaitDurable(ctx, end)
		} else {
			err = eng.WaitWritten(ctx, end)
		}
		if err != nil {
			// The data may still become durable, but we cannot say so.
			for i := range resp.Topics {
				for j := range resp.Topics[i].Partitions {
					p := &resp.Topics[i].Partitions[j]
					if p.ErrorCode == 0 {
						p.ErrorCode, p.ErrorMessage = errCode(err), errMessage(err)
					}
				}
			}
		}
		if req.Acks == 0 {
			return nil
		}
		return resp
	}
}

// refuseProduce answers every partition of req with code.
func refuseProduce(req *kmsg.ProduceRequest, resp *kmsg.ProduceResponse, code int16) (kmsg.Response, func() kmsg.Response) {
	for _, rt := range req.Topics {
		t := kmsg.NewProduceResponseTopic()
		t.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			p := kmsg.NewProduceResponseTopicPartition()
			p.Partition, p.ErrorCode, p.BaseOffset = rp.Partition, code, -1
			t.Partitions = append(t.Partitions, p)
		}
		resp.Topics = append(resp.Topics, t)
	}
	return finishProduce(req, resp)
}

func finishProduce(req *kmsg.ProduceRequest, resp *kmsg.ProduceResponse) (kmsg.Response, func() kmsg.Response) {
	if req.Acks == 0 {
		return nil, nil
	}
	return resp, nil
}

// produceWait bounds how long a produce waits for durability: the client's
// timeout, but never less than 30 s (an fsync stall is not the client's
// replication timeout).
func produceWait(ms int32) time.Duration {
	return max(time.Duration(ms)*time.Millisecond, 30*time.Second)
}

func logStart(sh *shard.Shard) int64 {
	ls, _, _ := sh.Offsets()
	return int64(ls)
}

// produceItem is one partition of a produce request: what to append, and
// where its answer goes.
type produceItem struct {
	name    string // the topic's name in the request
	st      *engine.Stream
	sh      *shard.Shard
	records []byte
	resp    *kmsg.ProduceResponseTopicPartition

	n   int // records appended (duplicates not counted)
	end wal.Position
	err error
}

// append appends the item's batches and fills in its answer.
func (it *produceItem) append(c *conn, inTxn func(p txn.Partition, pid int64, epoch int16, add bool) error) {
	var check func(shard int32, pid int64, epoch int16, add bool) error
	if inTxn != nil {
		topic := it.name
		check = func(shard int32, pid int64, epoch int16, add bool) error {
			return inTxn(txn.Partition{Topic: topic, Partition: shard}, pid, epoch, add)
		}
	}
	p := it.resp
	base, n, end, err := c.s.eng.Produce(it.st, it.sh, it.records, check)
	it.n, it.end, it.err = n, end, err
	if err != nil {
		p.ErrorCode, p.ErrorMessage = produceErrCode(err), errMessage(err)
		c.s.opts.Logger.Debug("kafka: produce refused", "stream", it.name, "shard", p.Partition, "err", err)
		return
	}
	p.BaseOffset = int64(base)
	if it.st.LogAppendTime {
		p.LogAppendTime = time.Now().UnixMilli()
	}
	p.LogStartOffset = logStart(it.sh)
}

// A request of many partitions is appended by two goroutines, each taking
// half of its bytes: the connection's reader otherwise appends 1,000
// partitions' batches one after another while the client waits for the
// answer, and one core does the whole node's work. Each partition's
// batches still go to their shard in order (a partition appears once in a
// request, and the next request is read only after both halves are done).
// Transactional requests and streams whose records may be routed to other
// shards (a reshard under way, key routing) stay on one goroutine: their
// checks against the coordinator and routed appends to shared children are
// kept in request order.
const (
	parallelMinPartitions = 16
	parallelMinBytes      = 256 << 10
)

// produceSplit returns where work is split between two goroutines (the
// index that parts it into halves of about equal bytes), or 0 where two
// are not worth it or not safe.
func produceSplit(work []produceItem) int {
	if len(work) < parallelMinPartitions || runtime.GOMAXPROCS(0) < 2 {
		return 0
	}
	total := 0
	for _, it := range work {
		if it.st.Routed(it.sh.Key().Shard) {
			return 0
		}
		total += len(it.records)
	}
	if total < parallelMinBytes {
		return 0
	}
	sum := 0
	for i, it := range work {
		if sum += len(it.records); 2*sum >= total {
			return min(i+1, len(work)-1)
		}
	}
	return len(work) / 2
}

// appendSplit appends work[half:] on a helper goroutine and work[:half] on
// this one, and returns once both are done. A panic on the helper is
// raised again here, where the connection's handler recovers it (on the
// helper it would end the process).
func appendSplit(c *conn, work []produceItem, half int) {
	done := make(chan any, 1)
	go func() {
		defer func() {
			if v := recover(); v != nil {
				done <- fmt.Sprintf("%v [in the helper appending half a produce request]\n%s", v, debug.Stack())
			}
			close(done)
		}()
		for i := range work[half:] {
			work[half+i].append(c, nil)
		}
	}()
	var helperPanic any
	func() {
		defer func() { helperPanic = <-done }() // also when this half panics
		for i := range work[:half] {
			work[i].append(c, nil)
		}
	}()
	if helperPanic != nil {
		panic(helperPanic)
	}
}
