package kinesis

import (
	"context"

	"github.com/braidstream/braid/internal/catalog"
)

// UpdateShardCount reshards a stream to TargetShardCount open shards over
// even hash ranges (UNIFORM_SCALING, the only type), as one change. Kinesis'
// limits on the step (at most double or half, ten a day) do not apply; the
// target must be 1 to the stream's braid.shards.max. ON_DEMAND streams are
// scaled too.
func init() { register("UpdateShardCount", updateShardCount) }

type updateShardCountInput struct {
	streamRef
	TargetShardCount *int   `json:"TargetShardCount"`
	ScalingType      string `json:"ScalingType"`
}

type updateShardCountOutput struct {
	StreamName        string `json:"StreamName"`
	StreamARN         string `json:"StreamARN"`
	CurrentShardCount int    `json:"CurrentShardCount"`
	TargetShardCount  int    `json:"TargetShardCount"`
}

func updateShardCount(ctx context.Context, s *Server, body []byte) (any, error) {
	var in updateShardCountInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if in.TargetShardCount == nil {
		return nil, errorf(errValidation, "1 validation error detected: Value null at 'targetShardCount' failed to satisfy constraint: Member must not be null")
	}
	n := *in.TargetShardCount
	if n < 1 {
		return nil, errorf(errValidation, "1 validation error detected: Value '%d' at 'targetShardCount' failed to satisfy constraint: Member must have value greater than or equal to 1", n)
	}
	if in.ScalingType != "UNIFORM_SCALING" {
		return nil, errorf(errValidation, "1 validation error detected: Value '%s' at 'scalingType' failed to satisfy constraint: Member must satisfy enum value set: [UNIFORM_SCALING]", in.ScalingType)
	}
	st, err := s.stream(in.streamRef)
	if err != nil {
		return nil, err
	}
	if most := st.Configs.Int(catalog.MaxShardsConfig, s.eng.Defaults()); int64(n) > most {
		return nil, errorf(errLimitExceeded, "TargetShardCount %d is over the limit of %d open shards for stream %s (braid.shards.max)", n, most, st.Name)
	}
	current := openShards(st)
	if _, err := s.eng.ScaleStream(ctx, st.Name, n); err != nil {
		return nil, err
	}
	return updateShardCountOutput{StreamName: st.Name, StreamARN: s.arn(st.Name), CurrentShardCount: current, TargetShardCount: n}, nil
}
