package kinesis

import (
	"context"
	"slices"

	"github.com/braidstream/braid/internal/catalog"
)

// EnableEnhancedMonitoring records shard-level metrics as enabled (ALL
// names them all) and answers the metrics before and after. Braid
// publishes its own Prometheus metrics (/metrics), not CloudWatch ones.
func init() { register("EnableEnhancedMonitoring", enableEnhancedMonitoring) }

type enhancedMonitoringInput struct {
	streamRef
	ShardLevelMetrics []string `json:"ShardLevelMetrics"`
}

type enhancedMonitoringOutput struct {
	StreamName               string   `json:"StreamName"`
	StreamARN                string   `json:"StreamARN"`
	CurrentShardLevelMetrics []string `json:"CurrentShardLevelMetrics"`
	DesiredShardLevelMetrics []string `json:"DesiredShardLevelMetrics"`
}

func enableEnhancedMonitoring(_ context.Context, s *Server, body []byte) (any, error) {
	return s.setMetrics(body, true)
}

// setMetrics enables (or disables) the metrics a request names.
func (s *Server) setMetrics(body []byte, enable bool) (any, error) {
	var in enhancedMonitoringInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if len(in.ShardLevelMetrics) < 1 || len(in.ShardLevelMetrics) > len(metricNames) {
		return nil, errorf(errValidation, "1 validation error detected: Value at 'shardLevelMetrics' failed to satisfy constraint: Member must have between 1 and %d items", len(metricNames))
	}
	named := map[string]bool{}
	for _, m := range in.ShardLevelMetrics {
		switch {
		case m == "ALL":
			for _, n := range metricNames {
				named[n] = true
			}
		case slices.Contains(metricNames, m):
			named[m] = true
		default:
			return nil, errorf(errValidation, "1 validation error detected: Value '[%s]' at 'shardLevelMetrics' failed to satisfy constraint: Member must satisfy constraint: [Member must satisfy enum value set: [IncomingBytes, IncomingRecords, OutgoingBytes, OutgoingRecords, WriteProvisionedThroughputExceeded, ReadProvisionedThroughputExceeded, IteratorAgeMilliseconds, ALL]]", m)
		}
	}
	st, err := s.stream(in.streamRef)
	if err != nil {
		return nil, err
	}
	out := enhancedMonitoringOutput{StreamName: st.Name, StreamARN: s.arn(st.Name)}
	err = s.eng.SetKinesis(st.Name, func(k *catalog.KinesisSettings) error {
		out.CurrentShardLevelMetrics = append([]string{}, k.ShardLevelMetrics...)
		var next []string
		for _, n := range metricNames {
			on := slices.Contains(k.ShardLevelMetrics, n)
			if named[n] {
				on = enable
			}
			if on {
				next = append(next, n)
			}
		}
		k.ShardLevelMetrics = next
		out.DesiredShardLevelMetrics = append([]string{}, next...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
