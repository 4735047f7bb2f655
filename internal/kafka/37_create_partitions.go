package kafka

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// CreatePartitions v0-v3: grows a stream's shard count; replica assignments
// are accepted and ignored (one node).
func init() { register(37, 0, 3, handleCreatePartitions) }

func handleCreatePartitions(c *conn, kreq kmsg.Request) (kmsg.Response, func() kmsg.Response) {
	req := kreq.(*kmsg.CreatePartitionsRequest)
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
	seen := map[string]int{}
	for _, rt := range req.Topics {
		seen[rt.Topic]++
	}
	for _, rt := range req.Topics {
		t := kmsg.NewCreatePartitionsResponseTopic()
		t.Topic = rt.Topic
		if seen[rt.Topic] > 1 {
			msg := "topic named more than once in the request"
			t.ErrorCode, t.ErrorMessage = kerr.InvalidRequest.Code, &msg
		} else if err := c.s.eng.AddShards(rt.Topic, int(rt.Count), req.ValidateOnly); err != nil {
			t.ErrorCode, t.ErrorMessage = errCode(err), errMessage(err)
		}
		resp.Topics = append(resp.Topics, t)
	}
	return resp, nil
}
