package kinesis

import "context"

// MergeShards merges two open shards whose hash ranges are adjacent into
// one. The child lists the parent with the lower range as ParentShardId
// and the other as AdjacentParentShardId, whichever order the request
// gave them in.
func init() { register("MergeShards", mergeShards) }

type mergeShardsInput struct {
	streamRef
	ShardToMerge         string `json:"ShardToMerge"`
	AdjacentShardToMerge string `json:"AdjacentShardToMerge"`
}

func mergeShards(ctx context.Context, s *Server, body []byte) (any, error) {
	var in mergeShardsInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if in.ShardToMerge == "" {
		return nil, errorf(errValidation, "1 validation error detected: Value null at 'shardToMerge' failed to satisfy constraint: Member must not be null")
	}
	if in.AdjacentShardToMerge == "" {
		return nil, errorf(errValidation, "1 validation error detected: Value null at 'adjacentShardToMerge' failed to satisfy constraint: Member must not be null")
	}
	a, err := ParseShardName(in.ShardToMerge)
	if err != nil {
		return nil, err
	}
	b, err := ParseShardName(in.AdjacentShardToMerge)
	if err != nil {
		return nil, err
	}
	st, err := s.stream(in.streamRef)
	if err != nil {
		return nil, err
	}
	if _, err := s.eng.MergeShards(ctx, st.Name, a, b); err != nil {
		return nil, err
	}
	return nil, nil
}
