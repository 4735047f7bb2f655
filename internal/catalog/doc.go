// Package catalog holds what streams exist and how they are cut into shards:
// stream names and ids, topic ids, per-stream configs, and for every shard its
// dense id (the Kafka partition number), 128-bit hash-key range, parents,
// children, state and end offset; when streams and shards were created and
// shards closed (the Kinesis door reports and filters by these times).
//
// The catalog is small and changes rarely, so every change is written whole
// through a Store before it takes effect: a Catalog never shows a change its
// Store has not made durable. The local Store is one JSON file replaced
// atomically (write temp, fsync, rename, fsync dir); a scale-out Store can
// keep the same snapshot in etcd behind a compare-and-swap.
//
// Invariants:
//   - a stream id is never reused, so data of a deleted stream left in the
//     write-ahead log can never be replayed into a new stream of the same name;
//   - shard ids are dense from 0 and never reused within a stream;
//   - an open shard created with a hash range owns it; a closed shard keeps its
//     range for lineage but takes no writes.
//
// Concurrency: Catalog methods are safe for concurrent use; readers get
// immutable copies.
package catalog
