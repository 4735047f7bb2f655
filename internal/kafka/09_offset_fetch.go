package kafka

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/braidstream/braid/internal/group"
)

// OffsetFetch v0-v9 (v8+ asks for several groups at once; v10 names topics
// by id). Partitions without a commit answer offset -1. Without topics (v2+)
// every committed offset of the group is returned. With require_stable
// (v7+), a partition with offsets committed in a transaction that has not
// ended answers UNSTABLE_OFFSET_COMMIT, and the client retries.
//
// It is answered as a completion, in the writer: an OffsetCommit pipelined
// before it on the connection stores its offsets in its own completion, so
// only there, after it, does the fetch see them.
func init() { register(9, 0, 9, handleOffsetFetch) }

func handleOffsetFetch(c *conn, kreq kmsg.Request) (kmsg.Response, func() kmsg.Response) {
	req := kreq.(*kmsg.OffsetFetchRequest)
	return nil, func() kmsg.Response { return c.offsetFetch(req) }
}

func (c *conn) offsetFetch(req *kmsg.OffsetFetchRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	if req.Version < 8 {
		var topics []kmsg.OffsetFetchRequestGroupTopic
		for _, t := range req.Topics {
			topics = append(topics, kmsg.OffsetFetchRequestGroupTopic{Topic: t.Topic, Partitions: t.Partitions})
		}
		if req.Topics == nil {
			topics = nil
		}
		g := c.fetchGroupOffsets(req.Group, topics, req.Version >= 7 && req.RequireStable)
		resp.ErrorCode = g.ErrorCode
		for _, t := range g.Topics {
			rt := kmsg.NewOffsetFetchResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rt.Partitions = append(rt.Partitions, kmsg.OffsetFetchResponseTopicPartition{
					Partition: p.Partition, Offset: p.Offset, LeaderEpoch: p.LeaderEpoch, Metadata: p.Metadata, ErrorCode: p.ErrorCode,
				})
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp
	}
	for _, rg := range req.Groups {
		resp.Groups = append(resp.Groups, c.fetchGroupOffsets(rg.Group, rg.Topics, req.RequireStable))
	}
	return resp
}

func (c *conn) fetchGroupOffsets(name string, topics []kmsg.OffsetFetchRequestGroupTopic, requireStable bool) kmsg.OffsetFetchResponseGroup {
	g := kmsg.NewOffsetFetchResponseGroup()
	g.Group = name
	if name == "" {
		g.ErrorCode = kerr.InvalidGroupID.Code
		return g
	}
	committed := c.s.eng.Offsets().Fetch(name)
	var unstable map[group.TopicPartition]bool
	if requireStable {
		unstable = c.s.eng.Offsets().Unstable(name)
	}
	if topics == nil { // all committed offsets
		byTopic := map[string][]int32{}
		for tp := range committed {
			byTopic[tp.Topic] = append(byTopic[tp.Topic], tp.Partition)
		}
		for topic, parts := range byTopic {
			topics = append(topics, kmsg.OffsetFetchRequestGroupTopic{Topic: topic, Partitions: parts})
		}
	}
	for _, rt := range topics {
		t := kmsg.NewOffsetFetchResponseGroupTopic()
		t.Topic = rt.Topic
		for _, part := range rt.Partitions {
			p := kmsg.NewOffsetFetchResponseGroupTopicPartition()
			p.Partition, p.Offset, p.LeaderEpoch = part, -1, -1
			empty := ""
			p.Metadata = &empty
			tp := group.TopicPartition{Topic: rt.Topic, Partition: part}
			if unstable[tp] {
				p.ErrorCode = kerr.UnstableOffsetCommit.Code
			} else if cm, ok := committed[tp]; ok {
				md := cm.Metadata
				p.Offset, p.LeaderEpoch, p.Metadata = cm.Offset, cm.LeaderEpoch, &md
			}
			t.Partitions = append(t.Partitions, p)
		}
		g.Topics = append(g.Topics, t)
	}
	return g
}
