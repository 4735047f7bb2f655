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
//	DIR/checkpoint.C.N  the changes since, in order (this package)
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
// A checkpoint is a chain (checkpoint.go): a base, then deltas, each
// written whole to <name>.tmp, fsync'd, renamed and its directory fsync'd.
// The base, "checkpoint":
//
//	+-----------+------------+-----------+-----------+-----------------+---------+---------+---------+
//	| "BRDCKPT4"| replay u64 | chain u64 | count u32 | shard snapshots | offsets | txns    | crc u32 |
//	+-----------+------------+-----------+-----------+-----------------+---------+---------+---------+
//
// A delta, "checkpoint.<chain>.<seq>" (seq from 1, in the order written):
//
//	+-----------+-----------+---------+------------+-----------+---------------+---------+---------+---------+
//	| "BRDCKDL2"| chain u64 | seq u32 | replay u64 | count u32 | shard records | offsets | txns    | crc u32 |
//	+-----------+-----------+---------+------------+-----------+---------------+---------+---------+---------+
//
// A shard record is kind u8 0 and a whole snapshot, or kind 1, drop u32 and
// a snapshot whose entries follow the previous one's after dropping drop
// from its front (its other fields replace the previous one's). A delta
// lists every shard the engine has; one it does not list is gone.
// Little-endian; crc is CRC-32C of everything before it; a snapshot is
// shard.AppendSnapshot's encoding (its entries in groups of up to 128,
// each stored as the shard index stores a sealed block: about 10 bytes an
// entry); offsets and txns are a u32 length and group.Offsets' snapshot
// (committed offsets and group membership) and the transaction
// coordinator's. Still read: "BRDCKPT3" and "BRDCKDL1" (entries plain, 44
// bytes each), "BRDCKPT2" (also no chain: no deltas follow it) and
// "BRDCKPT1" (also no txns section and no per-shard transaction state).
//
// Every frame before the replay position is reflected in the snapshots, so
// recovery loads the base, applies its chain's deltas in order and replays
// only the log after the last one: restart time depends on the data
// written since the last checkpoint, and a checkpoint's cost on what
// changed since the one before, not on the total.
//
// # Concurrency
//
// The set of streams is an immutable map swapped atomically on every catalog
// change (rare), so produce and fetch look streams up without locks. Lock
// order: Engine.mu (catalog changes) -> Shard.segMu -> Shard.mu -> WAL.mu.
package engine
