package catalog

// PutRecordsAtomicConfig is braid.put.records.atomic: "true" makes every
// Kinesis PutRecords call on the stream all-or-nothing (docs/kinesis.md).
const PutRecordsAtomicConfig = "braid.put.records.atomic"

func init() {
	s := topicSpec(PutRecordsAtomicConfig, TypeBoolean, "false", true,
		"true: a Kinesis PutRecords call on the stream writes all its records or none (a failure leaves nothing written and FailedRecordCount equals the record count); false: Kinesis' per-record outcome",
		nil)
	Specs[s.Name] = s
}
