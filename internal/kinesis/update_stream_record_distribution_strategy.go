package kinesis

import (
	"context"

	"github.com/braidstream/braid/internal/catalog"
	"github.com/braidstream/braid/internal/engine"
)

// UpdateStreamRecordDistributionStrategy chooses how an on-demand stream's
// records are spread over its shards: USER_PARTITION_KEY (the default:
// by the MD5 of the partition key, or the ExplicitHashKey) or AUTO, which
// ignores both and spreads records evenly (each record gets a random hash
// key, so shards get records in proportion to their hash ranges). AUTO
// gives up per-key order, as on AWS: it is for stateless consumers. It
// applies to PutRecord and PutRecords; the Kafka door routes as before.
func init() {
	register("UpdateStreamRecordDistributionStrategy", updateStreamRecordDistributionStrategy)
}

const (
	distributionAuto = "AUTO"
	distributionKey  = "USER_PARTITION_KEY"
)

type updateStreamRecordDistributionStrategyInput struct {
	StreamARN                  string `json:"StreamARN"`
	RecordDistributionStrategy string `json:"RecordDistributionStrategy"`
}

func updateStreamRecordDistributionStrategy(_ context.Context, s *Server, body []byte) (any, error) {
	var in updateStreamRecordDistributionStrategyInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	switch in.RecordDistributionStrategy {
	case distributionAuto, distributionKey:
	case "":
		return nil, errorf(errValidation, "1 validation error detected: Value null at 'recordDistributionStrategy' failed to satisfy constraint: Member must not be null")
	default:
		return nil, errorf(errValidation, "1 validation error detected: Value '%s' at 'recordDistributionStrategy' failed to satisfy constraint: Member must satisfy enum value set: [AUTO, USER_PARTITION_KEY]", in.RecordDistributionStrategy)
	}
	if in.StreamARN == "" {
		return nil, errorf(errValidation, "1 validation error detected: Value null at 'streamARN' failed to satisfy constraint: Member must not be null")
	}
	st, err := s.stream(streamRef{StreamARN: in.StreamARN})
	if err != nil {
		return nil, err
	}
	if !onDemand(st) {
		return nil, errorf(errInvalidArgument, "Stream %s under account %s is in PROVISIONED mode: the record distribution strategy applies to ON_DEMAND streams only.", st.Name, s.opts.Account)
	}
	return nil, s.eng.SetKinesis(st.Name, func(k *catalog.KinesisSettings) error {
		k.RecordDistribution = in.RecordDistributionStrategy
		return nil
	})
}

// distributesAuto says whether the door spreads a stream's records evenly
// instead of by their hash keys.
func distributesAuto(st *engine.Stream) bool { return recordDistribution(st) == distributionAuto }

// recordDistribution is what DescribeStreamSummary reports: the strategy
// set, for an on-demand stream; "" (not reported) otherwise.
func recordDistribution(st *engine.Stream) string {
	if st.Kinesis == nil || !onDemand(st) {
		return ""
	}
	return st.Kinesis.RecordDistribution
}
