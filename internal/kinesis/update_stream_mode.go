package kinesis

import (
	"context"

	"github.com/braidstream/braid/internal/catalog"
)

// UpdateStreamMode sets braid.kinesis.stream.mode to PROVISIONED or
// ON_DEMAND. Braid records and reports the mode; shards scale the same
// way in either (WarmThroughputMiBps is accepted and ignored).
func init() { register("UpdateStreamMode", updateStreamMode) }

type updateStreamModeInput struct {
	StreamARN           string             `json:"StreamARN"`
	StreamModeDetails   *streamModeDetails `json:"StreamModeDetails"`
	WarmThroughputMiBps *int               `json:"WarmThroughputMiBps"`
}

func updateStreamMode(_ context.Context, s *Server, body []byte) (any, error) {
	var in updateStreamModeInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if in.StreamARN == "" {
		return nil, errorf(errValidation, "1 validation error detected: Value null at 'streamARN' failed to satisfy constraint: Member must not be null")
	}
	if in.StreamModeDetails == nil {
		return nil, errorf(errValidation, "1 validation error detected: Value null at 'streamModeDetails' failed to satisfy constraint: Member must not be null")
	}
	mode := in.StreamModeDetails.StreamMode
	if mode != "PROVISIONED" && mode != "ON_DEMAND" {
		return nil, errorf(errValidation, "1 validation error detected: Value '%s' at 'streamModeDetails.streamMode' failed to satisfy constraint: Member must satisfy enum value set: [PROVISIONED, ON_DEMAND]", mode)
	}
	st, err := s.stream(streamRef{StreamARN: in.StreamARN})
	if err != nil {
		return nil, err
	}
	return nil, s.eng.SetConfigs(st.Name, map[string]*string{catalog.KinesisModeConfig: &mode}, false, false)
}
