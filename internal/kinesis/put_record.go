package kinesis

import (
	"context"
	"regexp"
)

// PutRecord writes one record to the open shard owning MD5(PartitionKey),
// or ExplicitHashKey, and answers once it is fsync'd. The record is a
// Kafka record with key = PartitionKey and value = Data.
// SequenceNumberForOrdering is checked and accepted; Braid needs it for
// nothing: a later PutRecord to the same shard always gets a larger
// sequence number.
func init() { register("PutRecord", putRecord) }

type putRecordInput struct {
	streamRef
	Data                      []byte  `json:"Data"`
	PartitionKey              string  `json:"PartitionKey"`
	ExplicitHashKey           *string `json:"ExplicitHashKey"`
	SequenceNumberForOrdering *string `json:"SequenceNumberForOrdering"`
}

type putRecordOutput struct {
	ShardId        string `json:"ShardId"`
	SequenceNumber string `json:"SequenceNumber"`
	EncryptionType string `json:"EncryptionType"`
}

var sequencePattern = regexp.MustCompile(`^(0|[1-9]\d{0,128})$`)

func putRecord(ctx context.Context, s *Server, body []byte) (any, error) {
	var in putRecordInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	st, err := s.stream(in.streamRef)
	if err != nil {
		return nil, err
	}
	if in.SequenceNumberForOrdering != nil && !sequencePattern.MatchString(*in.SequenceNumberForOrdering) {
		return nil, errorf(errValidation, "1 validation error detected: Value '%s' at 'sequenceNumberForOrdering' failed to satisfy constraint: Member must satisfy regular expression pattern: 0|([1-9]\\d{0,128})", *in.SequenceNumberForOrdering)
	}
	e, err := checkRecord("", in.Data, in.PartitionKey, in.ExplicitHashKey)
	if err != nil {
		return nil, err
	}
	w, err := s.writeRecords(ctx, st.Name, []putEntry{e})
	if err != nil {
		return nil, err
	}
	return putRecordOutput{
		ShardId:        ShardName(w[0].shard),
		SequenceNumber: SequenceNumber(w[0].shard, w[0].offset),
		EncryptionType: "NONE",
	}, nil
}
