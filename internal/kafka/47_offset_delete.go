package kafka

import (
	"context"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/braidstream/braid/internal/group"
)

// OffsetDelete v0: removes some committed offsets of a group (durably).
func init() { register(47, 0, 0, handleOffsetDelete) }

func handleOffsetDelete(c *conn, kreq kmsg.Request) (kmsg.Response, func() kmsg.Response) {
	req := kreq.(*kmsg.OffsetDeleteRequest)
	resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
	return nil, func() kmsg.Response {
		switch {
		case req.Group == "":
			resp.ErrorCode = kerr.InvalidGroupID.Code
			return resp
		case !slices.Contains(c.s.eng.Offsets().Groups(), req.Group):
			resp.ErrorCode = kerr.GroupIDNotFound.Code
			return resp
		}
		var del []group.TopicPartition
		for _, rt := range req.Topics {
			t := kmsg.NewOffsetDeleteResponseTopic()
			t.Topic = rt.Topic
			st := c.s.eng.Stream(rt.Topic)
			for _, rp := range rt.Partitions {
				p := kmsg.NewOffsetDeleteResponseTopicPartition()
				p.Partition = rp.Partition
				if st == nil || rp.Partition < 0 || int(rp.Partition) >= len(st.Shards) {
					p.ErrorCode = kerr.UnknownTopicOrPartition.Code
				} else {
					del = append(del, group.TopicPartition{Topic: rt.Topic, Partition: rp.Partition})
				}
				t.Partitions = append(t.Partitions, p)
			}
			resp.Topics = append(resp.Topics, t)
		}
		ctx, cancel := context.WithTimeout(c.ctx, 30*time.Second)
		defer cancel()
		if len(del) > 0 {
			resp.ErrorCode = errCode(c.s.eng.Offsets().Delete(ctx, req.Group, del))
		}
		return resp
	}
}
