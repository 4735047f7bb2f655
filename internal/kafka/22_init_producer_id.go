package kafka

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// InitProducerId v0-v5 for idempotent producers: every call gets a new
// producer id with epoch 0 (as Kafka does without a transactional id; a
// bump requested per KIP-360 is answered the same way, with a fresh id).
// Transactional ids are refused until the transaction coordinator exists.
func init() { register(22, 0, 5, handleInitProducerID) }

func handleInitProducerID(c *conn, kreq kmsg.Request) (kmsg.Response, func() kmsg.Response) {
	req := kreq.(*kmsg.InitProducerIDRequest)
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if req.TransactionalID != nil {
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		return resp, nil
	}
	id, err := c.s.eng.NewProducerID()
	if err != nil {
		resp.ErrorCode = errCode(err)
		return resp, nil
	}
	resp.ProducerID, resp.ProducerEpoch = id, 0
	return resp, nil
}
