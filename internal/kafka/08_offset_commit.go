package kafka

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/braidstream/braid/internal/group"
)

// OffsetCommit v0-v9 (v10 names topics by id). Offsets are fsync'd before
// the answer. A commit inside a generation must come from a current member
// with the current generation; one outside any generation (generation -1,
// no member id: admin tools, manually assigned consumers) only to a group
// without members. Metadata longer than Options.OffsetMetadataMaxBytes
// (Kafka's offset.metadata.max.bytes) is refused per partition.
func init() { register(8, 0, 9, handleOffsetCommit) }

func handleOffsetCommit(c *conn, kreq kmsg.Request) (kmsg.Response, func() kmsg.Response) {
	req := kreq.(*kmsg.OffsetCommitRequest)
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	code := int16(0)
	if req.Group == "" {
		code = kerr.InvalidGroupID.Code
	} else if req.Version >= 1 {
		code = errCode(c.s.groups.ValidateCommit(req.Group, req.MemberID, str(req.InstanceID), req.Generation))
	}
	commits := map[group.TopicPartition]group.Commit{}
	now := time.Now().UnixMilli()
	for _, rt := range req.Topics {
		t := kmsg.NewOffsetCommitResponseTopic()
		t.Topic = rt.Topic
		st := c.s.eng.Stream(rt.Topic)
		for _, rp := range rt.Partitions {
			p := kmsg.NewOffsetCommitResponseTopicPartition()
			p.Partition, p.ErrorCode = rp.Partition, code
			if code == 0 && (st == nil || rp.Partition < 0 || int(rp.Partition) >= len(st.Shards)) {
				p.ErrorCode = kerr.UnknownTopicOrPartition.Code
			}
			if p.ErrorCode == 0 && rp.Metadata != nil && len(*rp.Metadata) > c.s.opts.OffsetMetadataMaxBytes {
				p.ErrorCode = errCode(group.ErrOffsetMetadataTooLarge)
			}
			if p.ErrorCode == 0 {
				cm := group.Commit{Offset: rp.Offset, LeaderEpoch: -1, TimeMillis: now}
				if req.Version >= 6 {
					cm.LeaderEpoch = rp.LeaderEpoch
				}
				if rp.Metadata != nil {
					cm.Metadata = *rp.Metadata
				}
				commits[group.TopicPartition{Topic: rt.Topic, Partition: rp.Partition}] = cm
			}
			t.Partitions = append(t.Partitions, p)
		}
		resp.Topics = append(resp.Topics, t)
	}
	if len(commits) == 0 {
		return resp, nil
	}
	return nil, func() kmsg.Response {
		ctx, cancel := context.WithTimeout(c.ctx, 30*time.Second)
		defer cancel()
		if err := c.s.eng.Offsets().Commit(ctx, req.Group, commits); err != nil {
			for i := range resp.Topics {
				for j := range resp.Topics[i].Partitions {
					if p := &resp.Topics[i].Partitions[j]; p.ErrorCode == 0 {
						p.ErrorCode = errCode(err)
					}
				}
			}
		}
		return resp
	}
}
