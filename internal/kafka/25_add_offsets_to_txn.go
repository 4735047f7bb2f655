package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// AddOffsetsToTxn v0-v4: a consumer group's offsets join the open
// transaction, so TxnOffsetCommit may follow.
func init() { register(25, 0, 4, handleAddOffsetsToTxn) }

func handleAddOffsetsToTxn(c *conn, kreq kmsg.Request) (kmsg.Response, func() kmsg.Response) {
	req := kreq.(*kmsg.AddOffsetsToTxnRequest)
	resp := req.ResponseKind().(*kmsg.AddOffsetsToTxnResponse)
	if req.Group == "" {
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return resp, nil
	}
	ctx, cancel := context.WithTimeout(c.ctx, txnWait)
	defer cancel()
	resp.ErrorCode = txnErrCode(c.s.eng.Txns().AddGroup(ctx, req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Group), req.Version >= 2)
	return resp, nil
}
