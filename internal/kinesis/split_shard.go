package kinesis

import (
	"context"

	"github.com/braidstream/braid/internal/catalog"
)

// SplitShard splits open shard ShardToSplit at NewStartingHashKey: the
// first child owns the keys below it, the second the rest. The change is
// done when the answer comes (Kinesis answers at once and is UPDATING for
// a while).
func init() { register("SplitShard", splitShard) }

type splitShardInput struct {
	streamRef
	ShardToSplit       string `json:"ShardToSplit"`
	NewStartingHashKey string `json:"NewStartingHashKey"`
}

func splitShard(ctx context.Context, s *Server, body []byte) (any, error) {
	var in splitShardInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if in.ShardToSplit == "" {
		return nil, errorf(errValidation, "1 validation error detected: Value null at 'shardToSplit' failed to satisfy constraint: Member must not be null")
	}
	if in.NewStartingHashKey == "" {
		return nil, errorf(errValidation, "1 validation error detected: Value null at 'newStartingHashKey' failed to satisfy constraint: Member must not be null")
	}
	id, err := ParseShardName(in.ShardToSplit)
	if err != nil {
		return nil, err
	}
	at, err := catalog.ParseHashKey(in.NewStartingHashKey)
	if err != nil {
		return nil, errorf(errValidation, "1 validation error detected: Value '%s' at 'newStartingHashKey' failed to satisfy constraint: Member must satisfy regular expression pattern: 0|([1-9]\\d{0,38})", in.NewStartingHashKey)
	}
	st, err := s.stream(in.streamRef)
	if err != nil {
		return nil, err
	}
	if _, err := s.eng.SplitShard(ctx, st.Name, id, &at); err != nil {
		return nil, err
	}
	return nil, nil
}
