package kinesis

import (
	"context"

	"github.com/braidstream/braid/internal/catalog"
)

// CreateStream creates a key-routed stream (braid.routing=key) of
// ShardCount shards over even hash ranges, 1 to braid.shards.max as the
// node's defaults resolve it. An ON_DEMAND stream without ShardCount gets
// 4 shards, as Kinesis gives it. The mode is recorded in
// braid.kinesis.stream.mode.
func init() { register("CreateStream", createStream) }

// onDemandShards is what an ON_DEMAND stream starts with, as in Kinesis.
const onDemandShards = 4

type createStreamInput struct {
	StreamName        string             `json:"StreamName"`
	ShardCount        *int               `json:"ShardCount"`
	StreamModeDetails *streamModeDetails `json:"StreamModeDetails"`
	Tags              map[string]string  `json:"Tags"`
}

func createStream(_ context.Context, s *Server, body []byte) (any, error) {
	var in createStreamInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if in.StreamName == "" {
		return nil, errorf(errValidation, "1 validation error detected: Value null at 'streamName' failed to satisfy constraint: Member must not be null")
	}
	name, err := s.name(streamRef{StreamName: in.StreamName})
	if err != nil {
		return nil, err
	}
	mode := "PROVISIONED"
	if in.StreamModeDetails != nil {
		mode = in.StreamModeDetails.StreamMode
		if mode != "PROVISIONED" && mode != "ON_DEMAND" {
			return nil, errorf(errValidation, "1 validation error detected: Value '%s' at 'streamModeDetails.streamMode' failed to satisfy constraint: Member must satisfy enum value set: [ON_DEMAND, PROVISIONED]", mode)
		}
	}
	if len(in.Tags) > 0 {
		return nil, errorf(errInvalidArgument, "CreateStream does not take Tags in Braid; create the stream, then tag it with AddTagsToStream")
	}
	n := onDemandShards
	switch {
	case in.ShardCount != nil:
		n = *in.ShardCount
		if n < 1 {
			return nil, errorf(errValidation, "1 validation error detected: Value '%d' at 'shardCount' failed to satisfy constraint: Member must have value greater than or equal to 1", n)
		}
	case mode == "PROVISIONED":
		return nil, errorf(errInvalidArgument, "ShardCount is required for a PROVISIONED stream")
	}
	if most := s.eng.Defaults().Int(catalog.MaxShardsConfig, nil); int64(n) > most {
		return nil, errorf(errLimitExceeded, "ShardCount %d is over this node's limit of %d shards per stream (braid.shards.max)", n, most)
	}
	configs := catalog.Configs{catalog.RoutingConfig: "key", catalog.KinesisModeConfig: mode}
	if s.eng.Stream(name) != nil {
		return nil, errorf(errResourceInUse, "Stream %s under account %s already exists.", name, s.opts.Account)
	}
	if _, err := s.eng.CreateStream(name, n, configs, false); err != nil {
		return nil, err
	}
	return nil, nil
}
