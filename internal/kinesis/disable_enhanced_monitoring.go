package kinesis

import "context"

// DisableEnhancedMonitoring records shard-level metrics as disabled (ALL
// names them all) and answers the metrics before and after.
func init() { register("DisableEnhancedMonitoring", disableEnhancedMonitoring) }

func disableEnhancedMonitoring(_ context.Context, s *Server, body []byte) (any, error) {
	return s.setMetrics(body, false)
}
