package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// EndTxn v0-v5: commit or abort the open transaction. The answer comes once
// every marker and the group offsets are durable. v5 is KIP-890 part 2
// (transaction.version 2): every end bumps the producer's epoch, and the
// answer carries the producer id and epoch to use next.
func init() { register(26, 0, 5, handleEndTxn) }

func handleEndTxn(c *conn, kreq kmsg.Request) (kmsg.Response, func() kmsg.Response) {
	req := kreq.(*kmsg.EndTxnRequest)
	resp := req.ResponseKind().(*kmsg.EndTxnResponse)
	ctx, cancel := context.WithTimeout(c.ctx, txnWait)
	defer cancel()
	res, err := c.s.eng.Txns().EndTxn(ctx, req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit, req.Version >= 5)
	if err != nil {
		c.s.opts.Logger.Debug("kafka: end transaction refused", "transactional_id", req.TransactionalID, "commit", req.Commit, "err", err)
	}
	resp.ErrorCode = txnErrCode(err, req.Version >= 2)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if err == nil {
		resp.ProducerID, resp.ProducerEpoch = res.PID, res.Epoch
	}
	return resp, nil
}
