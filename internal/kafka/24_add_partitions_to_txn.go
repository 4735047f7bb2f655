package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/braidstream/braid/internal/txn"
)

// AddPartitionsToTxn v0-v5. v0-v3 come from producers: add shards to the
// open transaction (starting one), all or none. v4+ batch several
// transactional ids; with verify_only set they only check (KIP-890).
//
// Coordinator calls run in the request handler, not its completion, so a
// produce pipelined after them on the same connection sees their effect.
func init() { register(24, 0, 5, handleAddPartitionsToTxn) }

func handleAddPartitionsToTxn(c *conn, kreq kmsg.Request) (kmsg.Response, func() kmsg.Response) {
	req := kreq.(*kmsg.AddPartitionsToTxnRequest)
	resp := req.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
	ctx, cancel := context.WithTimeout(c.ctx, txnWait)
	defer cancel()
	if req.Version <= 3 {
		var topics []topicParts
		for _, t := range req.Topics {
			topics = append(topics, topicParts{topic: t.Topic, parts: t.Partitions})
		}
		res := c.addPartitions(ctx, req.TransactionalID, req.ProducerID, req.ProducerEpoch, false, req.Version >= 2, topics)
		for _, t := range res {
			rt := kmsg.NewAddPartitionsToTxnResponseTopic()
			rt.Topic = t.topic
			for i, p := range t.parts {
				rp := kmsg.NewAddPartitionsToTxnResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p, t.codes[i]
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil
	}
	for _, tx := range req.Transactions {
		var topics []topicParts
		for _, t := range tx.Topics {
			topics = append(topics, topicParts{topic: t.Topic, parts: t.Partitions})
		}
		res := c.addPartitions(ctx, tx.TransactionalID, tx.ProducerID, tx.ProducerEpoch, tx.VerifyOnly, true, topics)
		rtx := kmsg.NewAddPartitionsToTxnResponseTransaction()
		rtx.TransactionalID = tx.TransactionalID
		for _, t := range res {
			rt := kmsg.NewAddPartitionsToTxnResponseTransactionTopic()
			rt.Topic = t.topic
			for i, p := range t.parts {
				rp := kmsg.NewAddPartitionsToTxnResponseTransactionTopicPartition()
				rp.Partition, rp.ErrorCode = p, t.codes[i]
				rt.Partitions = append(rt.Partitions, rp)
			}
			rtx.Topics = append(rtx.Topics, rt)
		}
		resp.Transactions = append(resp.Transactions, rtx)
	}
	return resp, nil
}

type topicParts struct {
	topic string
	parts []int32
	codes []int16
}

// addPartitions adds (or verifies) the shards and returns an error code per
// partition, in the request's order; knowsFenced is false for versions
// before KIP-588.
func (c *conn) addPartitions(ctx context.Context, id string, pid int64, epoch int16, verify, knowsFenced bool, topics []topicParts) []topicParts {
	var parts []txn.Partition
	for _, t := range topics {
		for _, p := range t.parts {
			parts = append(parts, txn.Partition{Topic: t.topic, Partition: p})
		}
	}
	var res map[txn.Partition]error
	var err error
	if verify {
		res, err = c.s.eng.Txns().VerifyPartitions(id, pid, epoch, parts)
	} else {
		res, err = c.s.eng.Txns().AddPartitions(ctx, id, pid, epoch, parts)
	}
	if err != nil {
		c.s.opts.Logger.Debug("kafka: add partitions to transaction refused", "transactional_id", id, "err", err)
	}
	for i := range topics {
		t := &topics[i]
		t.codes = make([]int16, len(t.parts))
		for j, p := range t.parts {
			if err != nil {
				t.codes[j] = txnErrCode(err, knowsFenced)
			} else {
				t.codes[j] = errCode(res[txn.Partition{Topic: t.topic, Partition: p}])
			}
		}
	}
	return topics
}
