package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// EndTxn v0-v4: commit or abort the open transaction. The answer comes once
// every marker and the group offsets are durable. v5 (KIP-890's epoch bump
// per transaction) is not advertised: Braid does not announce
// transaction.version 2, so clients keep the v1 protocol.
func init() { register(26, 0, 4, handleEndTxn) }

func handleEndTxn(c *conn, kreq kmsg.Request) (kmsg.Response, func() kmsg.Response) {
	req := kreq.(*kmsg.EndTxnRequest)
	resp := req.ResponseKind().(*kmsg.EndTxnResponse)
	ctx, cancel := context.WithTimeout(c.ctx, txnWait)
	defer cancel()
	err := c.s.eng.Txns().EndTxn(ctx, req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit)
	if err != nil {
		c.s.opts.Logger.Debug("kafka: end transaction refused", "transactional_id", req.TransactionalID, "commit", req.Commit, "err", err)
	}
	resp.ErrorCode = errCode(err)
	return resp, nil
}
