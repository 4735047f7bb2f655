package catalog

// PutRecordsAtomicConfig is braid.put.records.atomic: "true" asks for
// all-or-nothing Kinesis PutRecords calls on the stream, which is what
// Braid does for every call (one log frame per call; docs/kinesis.md).
const PutRecordsAtomicConfig = "braid.put.records.atomic"

func init() {
	s := topicSpec(PutRecordsAtomicConfig, TypeBoolean, "false", true,
		"true: a Kinesis PutRecords call on the stream writes all its records or none (a failure leaves nothing written and FailedRecordCount equals the record count); Braid writes every call as one log frame, so this holds whatever the value",
		nil)
	Specs[s.Name] = s
}
