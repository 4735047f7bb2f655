package catalog

// PutRecordsAtomicConfig is braid.put.records.atomic: "true" asks for
// all-or-nothing Kinesis PutRecords calls on the stream, which is what
// Braid does for every call (one log frame per call; docs/kinesis.md).
const PutRecordsAtomicConfig = "braid.put.records.atomic"

// KinesisThrottleConfig is braid.kinesis.throttle: "true" makes the
// Kinesis door apply Kinesis' per-shard limits to the stream and answer
// ProvisionedThroughputExceededException past them, so that teams can
// test their retry code (internal/kinesis/throttle.go). The Kafka door is
// never throttled.
const KinesisThrottleConfig = "braid.kinesis.throttle"

func init() {
	for _, s := range []ConfigSpec{
		topicSpec(PutRecordsAtomicConfig, TypeBoolean, "false", true,
			"true: a Kinesis PutRecords call on the stream writes all its records or none (a failure leaves nothing written and FailedRecordCount equals the record count); Braid writes every call as one log frame, so this holds whatever the value",
			nil),
		topicSpec(KinesisThrottleConfig, TypeBoolean, "false", true,
			"true: the Kinesis door applies Kinesis' per-shard limits (writes 1 MiB/s and 1,000 records/s, GetRecords 5 calls/s and 2 MiB/s, SubscribeToShard 2 MiB/s per consumer) and answers ProvisionedThroughputExceededException past them; the Kafka door is not throttled",
			nil),
	} {
		Specs[s.Name] = s
	}
}
