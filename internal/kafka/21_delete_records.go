package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/braidstream/braid/internal/shard"
)

// DeleteRecords v0-v2: advances log start offsets (-1 means the high
// watermark). The new start is fsync'd before the answer, so deleted records
// never come back after a crash.
func init() { register(21, 0, 2, handleDeleteRecords) }

func handleDeleteRecords(c *conn, kreq kmsg.Request) (kmsg.Response, func() kmsg.Response) {
	req := kreq.(*kmsg.DeleteRecordsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteRecordsResponse)
	return nil, func() kmsg.Response {
		ctx, cancel := context.WithTimeout(c.ctx, produceWait(req.TimeoutMillis))
		defer cancel()
		for _, rt := range req.Topics {
			t := kmsg.NewDeleteRecordsResponseTopic()
			t.Topic = rt.Topic
			st := c.s.eng.Stream(rt.Topic)
			for _, rp := range rt.Partitions {
				p := kmsg.NewDeleteRecordsResponseTopicPartition()
				p.Partition, p.LowWatermark = rp.Partition, -1
				if st == nil || rp.Partition < 0 || int(rp.Partition) >= len(st.Shards) {
					p.ErrorCode = kerr.UnknownTopicOrPartition.Code
				} else {
					sh := st.Shards[rp.Partition]
					to := shard.Offset(rp.Offset)
					if rp.Offset == -1 {
						_, to, _ = sh.Offsets()
					}
					low, err := c.s.eng.DeleteRecords(ctx, sh, to)
					p.LowWatermark, p.ErrorCode = int64(low), errCode(err)
				}
				t.Partitions = append(t.Partitions, p)
			}
			resp.Topics = append(resp.Topics, t)
		}
		return resp
	}
}
