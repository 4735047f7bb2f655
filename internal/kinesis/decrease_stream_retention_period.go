package kinesis

import "context"

// DecreaseStreamRetentionPeriod sets retention.ms to RetentionPeriodHours
// (24-8760), refusing a value above the current retention; records older
// than the new retention become due for deletion.
func init() { register("DecreaseStreamRetentionPeriod", decreaseStreamRetentionPeriod) }

func decreaseStreamRetentionPeriod(_ context.Context, s *Server, body []byte) (any, error) {
	return nil, s.setRetention(body, false)
}
