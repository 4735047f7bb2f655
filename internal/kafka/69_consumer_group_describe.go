package kafka

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/braidstream/braid/internal/group"
)

// ConsumerGroupDescribe v0-v1 (KIP-848 groups): epochs, assignor, and each
// member's current and target assignment.
func init() { register(69, 0, 1, handleConsumerGroupDescribe) }

func handleConsumerGroupDescribe(c *conn, kreq kmsg.Request) (kmsg.Response, func() kmsg.Response) {
	req := kreq.(*kmsg.ConsumerGroupDescribeRequest)
	resp := req.ResponseKind().(*kmsg.ConsumerGroupDescribeResponse)
	for _, name := range req.Groups {
		g := kmsg.NewConsumerGroupDescribeResponseGroup()
		g.Group = name
		d, ok := c.s.groups.DescribeConsumer(name)
		if !ok {
			g.ErrorCode, g.State = kerr.GroupIDNotFound.Code, "Dead"
			resp.Groups = append(resp.Groups, g)
			continue
		}
		g.State, g.Epoch, g.AssignmentEpoch, g.AssignorName = d.State, d.Epoch, d.AssignmentEpoch, d.Assignor
		for _, m := range d.Members {
			rm := kmsg.NewConsumerGroupDescribeResponseGroupMember()
			rm.MemberID, rm.MemberEpoch, rm.ClientID, rm.ClientHost = m.MemberID, m.MemberEpoch, m.ClientID, m.ClientHost
			rm.SubscribedTopics, rm.MemberType = m.SubscribedTopics, 1
			if m.InstanceID != "" {
				id := m.InstanceID
				rm.InstanceID = &id
			}
			if m.RackID != "" {
				r := m.RackID
				rm.RackID = &r
			}
			if m.SubscribedRegex != "" {
				re := m.SubscribedRegex
				rm.SubscribedTopicRegex = &re
			}
			rm.Assignment = c.assignment(m.Assignment)
			rm.TargetAssignment = c.assignment(m.Target)
			g.Members = append(g.Members, rm)
		}
		resp.Groups = append(resp.Groups, g)
	}
	return resp, nil
}

func (c *conn) assignment(tps []group.TopicPartition) kmsg.Assignment {
	a := kmsg.NewAssignment()
	byTopic := map[string]int{}
	for _, tp := range tps {
		st := c.s.eng.Stream(tp.Topic)
		if st == nil {
			continue
		}
		i, ok := byTopic[tp.Topic]
		if !ok {
			t := kmsg.NewAssignmentTopicPartition()
			t.TopicID, t.Topic = st.TopicID, tp.Topic
			a.TopicPartitions = append(a.TopicPartitions, t)
			i = len(a.TopicPartitions) - 1
			byTopic[tp.Topic] = i
		}
		a.TopicPartitions[i].Partitions = append(a.TopicPartitions[i].Partitions, tp.Partition)
	}
	return a
}
