// Package kinesis is Braid's Kinesis door: the Kinesis Data Streams API
// (POST / with X-Amz-Target: Kinesis_20131202.<Operation>, in awsJson 1.1
// or CBOR 1.1, over HTTP/1.1, h2c or TLS, SigV4-checked when credentials
// are configured) on the same streams the Kafka door serves.
//
// Mapping (docs/design/kinesis.md):
//   - a Kinesis stream is a Braid stream; its ARN is
//     arn:aws:kinesis:<region>:<account>:stream/<name>, and a StreamARN is
//     accepted wherever a StreamName is;
//   - shardId-000000000007 is shard 7 (its Kafka partition number);
//   - a record's partition key is its Kafka key, its data the Kafka value;
//     the record goes to the open shard whose hash range owns MD5(partition
//     key), or ExplicitHashKey;
//   - a sequence number is a fixed-width decimal string that encodes the
//     shard and the offset, so it sorts in write order within a shard
//     (sequence.go);
//   - all records of one PutRecord/PutRecords call are one log frame
//     (records.go, engine.AppendShards), answered once fsync'd: a crash
//     keeps the call whole or drops it whole;
//   - GetRecords reads committed: no transaction markers, no aborted or
//     still-open transactional records.
//
// Layout, as internal/kafka: server.go dispatches, errmap.go is the one
// place that turns errors into AWS error types and HTTP statuses, and each
// operation has its own file. codec.go holds the two encodings (operations
// only ever see JSON), sigv4.go the signature check.
//
// Concurrency: ServeHTTP runs once per request on net/http's goroutines;
// the operation table is written only by init, and Server holds no
// mutable state of its own.
package kinesis
