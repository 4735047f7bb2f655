package kinesis

import (
	"context"

	"github.com/braidstream/braid/internal/catalog"
)

// UpdateStreamWarmThroughput records the write throughput an on-demand
// stream should be ready for, as AWS allows it: on-demand streams only, in
// an account whose MinimumThroughputBillingCommitment is ENABLED, up to 10
// GiB/s. Braid's shards need no warming, so the stream is at the target at
// once (CurrentMiBps = TargetMiBps) and stays ACTIVE; DescribeStreamSummary
// reports it.
func init() { register("UpdateStreamWarmThroughput", updateStreamWarmThroughput) }

const maxWarmThroughputMiBps = 10 << 10

type updateStreamWarmThroughputInput struct {
	streamRef
	WarmThroughputMiBps *int `json:"WarmThroughputMiBps"`
}

type warmThroughput struct {
	TargetMiBps  int `json:"TargetMiBps"`
	CurrentMiBps int `json:"CurrentMiBps"`
}

type updateStreamWarmThroughputOutput struct {
	StreamARN      string         `json:"StreamARN"`
	StreamName     string         `json:"StreamName"`
	WarmThroughput warmThroughput `json:"WarmThroughput"`
}

func updateStreamWarmThroughput(_ context.Context, s *Server, body []byte) (any, error) {
	var in updateStreamWarmThroughputInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if in.WarmThroughputMiBps == nil {
		return nil, errorf(errValidation, "1 validation error detected: Value null at 'warmThroughputMiBps' failed to satisfy constraint: Member must not be null")
	}
	mibps := *in.WarmThroughputMiBps
	if mibps < 0 {
		return nil, errorf(errValidation, "1 validation error detected: Value '%d' at 'warmThroughputMiBps' failed to satisfy constraint: Member must have value greater than or equal to 0", mibps)
	}
	if mibps > maxWarmThroughputMiBps {
		return nil, errorf(errInvalidArgument, "Warm throughput %d MiBps exceeds the limit of %d MiBps for an on-demand stream.", mibps, maxWarmThroughputMiBps)
	}
	st, err := s.stream(in.streamRef)
	if err != nil {
		return nil, err
	}
	if !onDemand(st) {
		return nil, errorf(errInvalidArgument, "Stream %s under account %s is in PROVISIONED mode: warm throughput applies to ON_DEMAND streams only.", st.Name, s.opts.Account)
	}
	if s.eng.KinesisAccount().CommitmentStatus != "ENABLED" {
		return nil, errorf(errInvalidArgument, "Warm throughput needs MinimumThroughputBillingCommitment ENABLED for account %s (UpdateAccountSettings).", s.opts.Account)
	}
	if err := s.eng.SetKinesis(st.Name, func(k *catalog.KinesisSettings) error {
		k.WarmThroughputMiBps = &mibps
		return nil
	}); err != nil {
		return nil, err
	}
	return updateStreamWarmThroughputOutput{StreamARN: s.arn(st.Name), StreamName: st.Name,
		WarmThroughput: warmThroughput{TargetMiBps: mibps, CurrentMiBps: mibps}}, nil
}
