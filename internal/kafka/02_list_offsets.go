package kafka

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/braidstream/braid/internal/engine"
	"github.com/braidstream/braid/internal/shard"
)

// ListOffsets v1-v10: -1 latest, -2 earliest, -3 max timestamp (v7+), -4
// earliest local (v8+, the same as earliest here: nothing is tiered), -5
// latest tiered (v9+: none, so -1), a timestamp: the first offset whose
// record timestamp is at least that (offset -1 if there is none, as Kafka).
// With isolation level read_committed (v2+), latest is the last stable
// offset and nothing at or past it is found.
func init() { register(2, 1, 10, handleListOffsets) }

const (
	tsLatest           = -1
	tsEarliest         = -2
	tsMaxTimestamp     = -3
	tsEarliestLocal    = -4
	tsLatestTiered     = -5
	isolationCommitted = 1
)

func handleListOffsets(c *conn, kreq kmsg.Request) (kmsg.Response, func() kmsg.Response) {
	req := kreq.(*kmsg.ListOffsetsRequest)
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	for _, rt := range req.Topics {
		t := kmsg.NewListOffsetsResponseTopic()
		t.Topic = rt.Topic
		st := c.s.eng.Stream(rt.Topic)
		for _, rp := range rt.Partitions {
			p := kmsg.NewListOffsetsResponseTopicPartition()
			p.Partition = rp.Partition
			p.Timestamp, p.Offset, p.LeaderEpoch = -1, -1, 0
			listPartitionOffset(st, rp, &p, req.Version >= 2 && req.IsolationLevel == isolationCommitted)
			t.Partitions = append(t.Partitions, p)
		}
		resp.Topics = append(resp.Topics, t)
	}
	return resp, nil
}

func listPartitionOffset(st *engine.Stream, rp kmsg.ListOffsetsRequestTopicPartition, p *kmsg.ListOffsetsResponseTopicPartition, committed bool) {
	if st == nil || rp.Partition < 0 || int(rp.Partition) >= len(st.Shards) {
		p.ErrorCode = kerr.UnknownTopicOrPartition.Code
		return
	}
	if rp.CurrentLeaderEpoch > 0 {
		p.ErrorCode = kerr.UnknownLeaderEpoch.Code
		return
	}
	sh := st.Shards[rp.Partition]
	logStart, hw, _ := sh.Offsets()
	if committed {
		hw = sh.LastStableOffset()
	}
	var (
		off   shard.Offset
		ts    int64 = -1
		found       = true
		err   error
	)
	switch rp.Timestamp {
	case tsLatest:
		off = hw
	case tsEarliest, tsEarliestLocal:
		off = logStart
	case tsLatestTiered:
		found = false
	case tsMaxTimestamp:
		off, ts, found, err = sh.MaxTimestamp()
	default:
		if rp.Timestamp < 0 {
			p.ErrorCode = kerr.InvalidRequest.Code
			return
		}
		off, ts, found, err = sh.OffsetForTime(rp.Timestamp)
	}
	if err != nil {
		p.ErrorCode = errCode(err)
		return
	}
	if found && (rp.Timestamp < 0 || off < hw) {
		p.Offset, p.Timestamp = int64(off), ts
	}
	p.OldStyleOffsets = []int64{p.Offset}
}
