package kinesis

import (
	"context"
	"time"
)

// DescribeStream describes a stream and its shards in id order, Limit at
// a time (1-10000, default 100) after ExclusiveStartShardId. Closed shards
// stay listed, with their ending sequence numbers, until they expire
// (shard_view.go).
func init() { register("DescribeStream", describeStream) }

type describeStreamInput struct {
	streamRef
	Limit                 *int   `json:"Limit"`
	ExclusiveStartShardId string `json:"ExclusiveStartShardId"`
}

type streamDescription struct {
	StreamName              string            `json:"StreamName"`
	StreamARN               string            `json:"StreamARN"`
	StreamStatus            string            `json:"StreamStatus"`
	StreamModeDetails       streamModeDetails `json:"StreamModeDetails"`
	Shards                  []shardDesc       `json:"Shards"`
	HasMoreShards           bool              `json:"HasMoreShards"`
	RetentionPeriodHours    int               `json:"RetentionPeriodHours"`
	StreamCreationTimestamp float64           `json:"StreamCreationTimestamp"`
	EnhancedMonitoring      []enhancedMetrics `json:"EnhancedMonitoring"`
	EncryptionType          string            `json:"EncryptionType"`
	KeyId                   string            `json:"KeyId,omitempty"`
}

type describeStreamOutput struct {
	StreamDescription streamDescription `json:"StreamDescription"`
}

func describeStream(_ context.Context, s *Server, body []byte) (any, error) {
	var in describeStreamInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	limit, err := pageSize("limit", in.Limit, 100, 10000)
	if err != nil {
		return nil, err
	}
	after := -1
	if in.ExclusiveStartShardId != "" {
		id, err := ParseShardName(in.ExclusiveStartShardId)
		if err != nil {
			return nil, err
		}
		after = int(id)
	}
	st, err := s.stream(in.streamRef)
	if err != nil {
		return nil, err
	}
	out := streamDescription{
		StreamName:              st.Name,
		StreamARN:               s.arn(st.Name),
		StreamStatus:            "ACTIVE",
		StreamModeDetails:       streamModeDetails{StreamMode: streamMode(st.Configs)},
		Shards:                  []shardDesc{},
		RetentionPeriodHours:    retentionHours(s, st),
		StreamCreationTimestamp: epochSeconds(st.CreatedMs),
		EnhancedMonitoring:      []enhancedMetrics{{ShardLevelMetrics: shardLevelMetrics(st)}},
	}
	out.EncryptionType, out.KeyId = encryption(st)
	for _, sh := range kinesisShards(st, time.Now()) {
		if int(sh.ID) <= after {
			continue
		}
		if len(out.Shards) == limit {
			out.HasMoreShards = true
			break
		}
		out.Shards = append(out.Shards, describeShard(sh))
	}
	return describeStreamOutput{StreamDescription: out}, nil
}
