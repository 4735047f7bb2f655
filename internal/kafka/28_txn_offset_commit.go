package kafka

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/braidstream/braid/internal/group"
)

// TxnOffsetCommit v0-v4: offsets committed inside a transaction, kept aside
// until it ends (visible on commit, dropped on abort). The producer must be
// current and the group added with AddOffsetsToTxn; v3+ carry the member's
// generation, checked like OffsetCommit's (KIP-447), so a zombie consumer
// cannot commit for partitions it lost. v5 (KIP-890 implicit add) and v6
// (topic ids) are not advertised.
func init() { register(28, 0, 5, handleTxnOffsetCommit) }

func handleTxnOffsetCommit(c *conn, kreq kmsg.Request) (kmsg.Response, func() kmsg.Response) {
	req := kreq.(*kmsg.TxnOffsetCommitRequest)
	resp := req.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
	var err error
	if req.Group == "" {
		err = kerr.InvalidGroupID
	} else if req.Version >= 3 && req.Generation >= 0 {
		err = c.s.groups.ValidateCommit(req.Group, req.MemberID, str(req.InstanceID), req.Generation)
	}
	code := errCode(err)
	commits := map[group.TopicPartition]group.Commit{}
	now := time.Now().UnixMilli()
	for _, rt := range req.Topics {
		t := kmsg.NewTxnOffsetCommitResponseTopic()
		t.Topic = rt.Topic
		st := c.s.eng.Stream(rt.Topic)
		for _, rp := range rt.Partitions {
			p := kmsg.NewTxnOffsetCommitResponseTopicPartition()
			p.Partition, p.ErrorCode = rp.Partition, code
			if code == 0 && (st == nil || rp.Partition < 0 || int(rp.Partition) >= len(st.Shards)) {
				p.ErrorCode = kerr.UnknownTopicOrPartition.Code
			}
			if p.ErrorCode == 0 && rp.Metadata != nil && len(*rp.Metadata) > c.s.opts.OffsetMetadataMaxBytes {
				p.ErrorCode = errCode(group.ErrOffsetMetadataTooLarge)
			}
			if p.ErrorCode == 0 {
				cm := group.Commit{Offset: rp.Offset, LeaderEpoch: -1, TimeMillis: now}
				if req.Version >= 2 {
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
	ctx, cancel := context.WithTimeout(c.ctx, txnWait)
	defer cancel()
	err = c.s.eng.Txns().CommitOffsets(req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Group, req.Version >= 5, func() error {
		return c.s.eng.Offsets().TxnCommit(ctx, req.Group, req.ProducerID, commits)
	})
	if err != nil {
		for i := range resp.Topics {
			for j := range resp.Topics[i].Partitions {
				if p := &resp.Topics[i].Partitions[j]; p.ErrorCode == 0 {
					p.ErrorCode = errCode(err)
				}
			}
		}
	}
	return resp, nil
}
