package kinesis

import (
	"context"
	"math"
)

// DescribeLimits counts open shards and ON_DEMAND streams. Braid has no
// account-wide shard or on-demand stream limit (a stream's shard count is
// bounded by its braid.shards.max); the limits answer the largest value
// the API can carry.
func init() { register("DescribeLimits", describeLimits) }

type describeLimitsOutput struct {
	ShardLimit               int `json:"ShardLimit"`
	OpenShardCount           int `json:"OpenShardCount"`
	OnDemandStreamCount      int `json:"OnDemandStreamCount"`
	OnDemandStreamCountLimit int `json:"OnDemandStreamCountLimit"`
}

func describeLimits(_ context.Context, s *Server, body []byte) (any, error) {
	var in struct{}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	out := describeLimitsOutput{ShardLimit: math.MaxInt32, OnDemandStreamCountLimit: math.MaxInt32}
	for _, st := range s.eng.Streams() {
		if st.Internal {
			continue
		}
		out.OpenShardCount += openShards(st)
		if onDemand(st) {
			out.OnDemandStreamCount++
		}
	}
	return out, nil
}
