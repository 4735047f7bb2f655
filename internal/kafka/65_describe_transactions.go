package kafka

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeTransactions v0: the coordinator's view of transactional ids
// (state, producer, timeout, the shards of the open transaction).
func init() { register(65, 0, 0, handleDescribeTransactions) }

func handleDescribeTransactions(c *conn, kreq kmsg.Request) (kmsg.Response, func() kmsg.Response) {
	req := kreq.(*kmsg.DescribeTransactionsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeTransactionsResponse)
	recs := c.s.eng.Txns().Describe(req.TransactionalIDs)
	for _, id := range req.TransactionalIDs {
		ts := kmsg.NewDescribeTransactionsResponseTransactionState()
		ts.TransactionalID = id
		rec, ok := recs[id]
		if !ok {
			ts.ErrorCode = kerr.TransactionalIDNotFound.Code
			ts.ProducerID, ts.ProducerEpoch, ts.StartTimestamp = -1, -1, -1
			resp.TransactionStates = append(resp.TransactionStates, ts)
			continue
		}
		ts.State, ts.TimeoutMillis = rec.State.String(), rec.TimeoutMs
		ts.ProducerID, ts.ProducerEpoch, ts.StartTimestamp = rec.PID, rec.Epoch, -1
		if rec.StartMs > 0 {
			ts.StartTimestamp = rec.StartMs
		}
		idx := map[string]int{}
		for _, p := range rec.Parts {
			i, ok := idx[p.Topic]
			if !ok {
				i = len(ts.Topics)
				idx[p.Topic] = i
				t := kmsg.NewDescribeTransactionsResponseTransactionStateTopic()
				t.Topic = p.Topic
				ts.Topics = append(ts.Topics, t)
			}
			ts.Topics[i].Partitions = append(ts.Topics[i].Partitions, p.Partition)
		}
		resp.TransactionStates = append(resp.TransactionStates, ts)
	}
	return resp, nil
}
