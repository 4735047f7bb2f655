package kafka

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// InitProducerId v0-v5. Without a transactional id every call gets a new
// producer id with epoch 0 (as Kafka does; a KIP-360 bump request is
// answered the same way, with a fresh id). With one, the transaction
// coordinator bumps the id's epoch, fencing older producers and aborting
// their open transaction; v3+ callers may pass their current id and epoch
// to recover after an abortable error (KIP-360), and a caller passing an
// epoch that is no longer current is fenced (PRODUCER_FENCED from v4,
// INVALID_PRODUCER_EPOCH before, KIP-588).
func init() { register(22, 0, 5, handleInitProducerID) }

func handleInitProducerID(c *conn, kreq kmsg.Request) (kmsg.Response, func() kmsg.Response) {
	req := kreq.(*kmsg.InitProducerIDRequest)
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if req.TransactionalID == nil {
		id, err := c.s.eng.NewProducerID()
		if err != nil {
			resp.ErrorCode = errCode(err)
			return resp, nil
		}
		resp.ProducerID, resp.ProducerEpoch = id, 0
		return resp, nil
	}
	ctx, cancel := context.WithTimeout(c.ctx, txnWait)
	defer cancel()
	res, err := c.s.eng.Txns().InitProducerID(ctx, *req.TransactionalID, req.TransactionTimeoutMillis, req.ProducerID, req.ProducerEpoch)
	if err != nil {
		resp.ErrorCode = txnErrCode(err, req.Version >= 4)
		c.s.opts.Logger.Debug("kafka: init producer id refused", "transactional_id", *req.TransactionalID, "err", err)
		return resp, nil
	}
	resp.ProducerID, resp.ProducerEpoch = res.PID, res.Epoch
	return resp, nil
}

// txnWait bounds a transaction coordinator call (its durable writes and,
// for EndTxn, its markers).
const txnWait = 30 * time.Second
