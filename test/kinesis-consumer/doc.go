// Package kinesisconsumer tests Braid's Kinesis door with a third-party
// consumer library that walks shard lineage: github.com/harlow/kinesis-consumer
// starts a child shard only after its parents (ListShards' ParentShardId and
// AdjacentParentShardId) are read to their end. If Braid's lineage did not
// look like AWS's, the library would read a key's records out of order.
//
// It is a module of its own so that the library's dependencies (its go.mod
// is `go 1.13`, unpruned, and names redis, SQL and DynamoDB stores) stay
// out of Braid's go.mod. `go test ./...` at the repository root does not
// enter it; .ci/run runs it with `go -C test/kinesis-consumer test ./...`.
package kinesisconsumer
