package kinesis

import (
	"context"
	"strconv"
)

// UpdateMaxRecordSize sets the largest record a stream takes,
// MaxRecordSizeInKiB (1024-10240), as max.message.bytes (the record size
// plus room for the batch framing each record is stored in).
func init() { register("UpdateMaxRecordSize", updateMaxRecordSize) }

const (
	minRecordSizeKiB      = 1024
	maxRecordSizeLimitKiB = 10240
)

type updateMaxRecordSizeInput struct {
	StreamARN          string `json:"StreamARN"`
	MaxRecordSizeInKiB *int   `json:"MaxRecordSizeInKiB"`
}

func updateMaxRecordSize(_ context.Context, s *Server, body []byte) (any, error) {
	var in updateMaxRecordSizeInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if in.MaxRecordSizeInKiB == nil {
		return nil, errorf(errValidation, "1 validation error detected: Value null at 'maxRecordSizeInKiB' failed to satisfy constraint: Member must not be null")
	}
	kib := *in.MaxRecordSizeInKiB
	if kib < minRecordSizeKiB || kib > maxRecordSizeLimitKiB {
		return nil, rangeError("maxRecordSizeInKiB", kib, minRecordSizeKiB, maxRecordSizeLimitKiB)
	}
	if in.StreamARN == "" {
		return nil, errorf(errValidation, "1 validation error detected: Value null at 'streamARN' failed to satisfy constraint: Member must not be null")
	}
	st, err := s.stream(streamRef{StreamARN: in.StreamARN})
	if err != nil {
		return nil, err
	}
	v := strconv.Itoa(kib*1024 + maxRecordOverhead)
	return nil, s.eng.SetConfigs(st.Name, map[string]*string{"max.message.bytes": &v}, false, false)
}
