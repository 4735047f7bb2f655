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
// As in Kafka, offsets of streams an active consumer group is subscribed
// to stay (GROUP_SUBSCRIBED_TO_TOPIC per partition), and an active group
// of another protocol type keeps all of its offsets (NON_EMPTY_GROUP).
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
		sub := c.s.groups.Subscription(req.Group)
		if sub.Active && sub.ProtocolType != "consumer" {
			resp.ErrorCode = errCode(group.ErrNotEmpty)
			return resp
		}
		subscribed := subscribedTopics(sub)
		var del []group.TopicPartition
		for _, rt := range req.Topics {
			t := kmsg.NewOffsetDeleteResponseTopic()
			t.Topic = rt.Topic
			st := c.s.eng.Stream(rt.Topic)
			for _, rp := range rt.Partitions {
				p := kmsg.NewOffsetDeleteResponseTopicPartition()
				p.Partition = rp.Partition
				switch {
				case st == nil || rp.Partition < 0 || int(rp.Partition) >= len(st.Shards):
					p.ErrorCode = kerr.UnknownTopicOrPartition.Code
				case subscribed(rt.Topic):
					p.ErrorCode = errCode(group.ErrSubscribedToTopic)
				default:
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

// subscribedTopics tells whether an active group is subscribed to a
// stream. A classic member's subscription is in its consumer protocol
// metadata; when one cannot be read (or a member has none yet), every
// stream counts as subscribed, as Kafka does.
func subscribedTopics(sub group.Subscription) func(string) bool {
	if !sub.Active {
		return func(string) bool { return false }
	}
	if sub.Topics != nil {
		return func(t string) bool { return sub.Topics[t] }
	}
	topics := map[string]bool{}
	for _, b := range sub.Metadata {
		var md kmsg.ConsumerMemberMetadata
		if b == nil || md.ReadFrom(b) != nil {
			return func(string) bool { return true }
		}
		for _, t := range md.Topics {
			topics[t] = true
		}
	}
	return func(t string) bool { return topics[t] }
}
