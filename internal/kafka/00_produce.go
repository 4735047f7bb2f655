package kafka

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

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
		for _, rt := range req.Topics {
			t := kmsg.NewProduceResponseTopic()
			t.Topic = rt.Topic
			st := eng.Stream(rt.Topic)
			var records, bytes int // per stream, so metrics cost one label lookup per stream
			for _, rp := range rt.Partitions {
				p := kmsg.NewProduceResponseTopicPartition()
				p.Partition, p.BaseOffset, p.LogAppendTime, p.LogStartOffset = rp.Partition, -1, -1, -1
				if st == nil || rp.Partition < 0 || int(rp.Partition) >= len(st.Shards) {
					p.ErrorCode = kerr.UnknownTopicOrPartition.Code
					t.Partitions = append(t.Partitions, p)
					continue
				}
				sh := st.Shards[rp.Partition]
				var check func(shard int32, pid int64, epoch int16, add bool) error
				if inTxn != nil {
					topic := rt.Topic
					check = func(shard int32, pid int64, epoch int16, add bool) error {
						return inTxn(txn.Partition{Topic: topic, Partition: shard}, pid, epoch, add)
					}
				}
				base, n, e, err := eng.Produce(st, sh, rp.Records, check)
				if err != nil {
					p.ErrorCode, p.ErrorMessage = produceErrCode(err), errMessage(err)
					c.s.opts.Logger.Debug("kafka: produce refused", "stream", rt.Topic, "shard", rp.Partition, "err", err)
				} else {
					p.BaseOffset = int64(base)
					if st.LogAppendTime {
						p.LogAppendTime = time.Now().UnixMilli()
					}
					p.LogStartOffset = logStart(sh)
					end, appended = max(end, e), true
					records, bytes = records+n, bytes+len(rp.Records)
				}
				t.Partitions = append(t.Partitions, p)
			}
			if records > 0 {
				c.s.opts.Metrics.ProducedRecords.WithLabelValues(rt.Topic).Add(float64(records))
				c.s.opts.Metrics.ProducedBytes.WithLabelValues(rt.Topic).Add(float64(bytes))
			}
			resp.Topics = append(resp.Topics, t)
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
