// Package engine is Braid's single-node storage engine: it owns the data
// directory, the catalog, the shared write-ahead log and every shard, and
// offers the operations the doors (Kafka, later Kinesis) are built on:
// create/delete/alter streams, produce, read, list offsets, delete records.
//
// # Data directory
//
//	DIR/LOCK            flock'd while a server runs, so two cannot share DIR
//	DIR/catalog.json    streams and shards (package catalog)
//	DIR/checkpoint      index snapshot + WAL replay position (this package)
//	DIR/wal/*.wal       shared write-ahead log segments (package wal)
//	DIR/shards/<stream id>/<shard id>/<id>.seg
//	                    shard segment files (package shard, segment.go)
//
// # Background work
//
// Five goroutines besides the WAL's flusher: background (checkpoints, WAL
// reclaim, transaction timeouts, idle caches), mover (closed WAL data into
// shard segments), retention (cleanup.policy=delete, producer expiry),
// cleaner (cleanup.policy=compact, cleaner.go) and autoscaler
// (braid.autoscale.*, autoscale.go; it owns its sampling state and takes
// Engine.mu only for a change it makes). The mover and the cleaner each
// have their own I/O budget; none of them blocks produce or fetch.
//
// # Checkpoint format
//
// Written whole to checkpoint.tmp, fsync'd, renamed over checkpoint:
//
//	+-----------+------------+-----------+-----------------+-----------------+---------+
//	| "BRDCKPT1"| replay u64 | count u32 | shard snapshots | len u32 offsets | crc u32 |
//	+-----------+------------+-----------+-----------------+-----------------+---------+
//
// (little-endian; crc is CRC-32C of everything before it; a snapshot is
// shard.AppendSnapshot's encoding; offsets is group.Offsets' snapshot of
// committed consumer-group offsets and group membership). Every frame before the replay position is
// reflected in the snapshots, so recovery loads the checkpoint and replays
// only the log after it: restart time depends on the data written since the
// last checkpoint, not on the total.
//
// # Concurrency
//
// The set of streams is an immutable map swapped atomically on every catalog
// change (rare), so produce and fetch look streams up without locks. Lock
// order: Engine.mu (catalog changes) -> Shard.segMu -> Shard.mu -> WAL.mu.
package engine
