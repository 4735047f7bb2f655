// Package shard keeps one shard's log: the offsets it has handed out, an
// index from offset to where each record batch lives, the high watermark up
// to which readers may see, and a cache of recent batches so that tailing
// readers are served from memory.
//
// # Where batches live
//
// Batches are Kafka RecordBatch v2 bytes, stored as the producer sent them
// except for the base offset and partition leader epoch (neither is covered
// by the batch CRC). Appends go to the node's shared write-ahead log as one
// frame each:
//
//	+-------------+------------+-----------------------------+
//	| stream u64  | shard i32  | RecordBatch v2 (61+ bytes)  |
//	+-------------+------------+-----------------------------+
//	  little-endian              big-endian, as Kafka writes it
//
// The index records each batch's base and last offset, its max timestamp and
// its Location (the write-ahead log position of its bytes). A Location can
// later name a shard segment file instead; readers do not care which.
//
// The index stays in memory (index.go). Entries older than the tail window
// are sealed into blocks of 128 that store each field as its difference
// from the field's least value in the block, in as few whole bytes as the
// block needs (8-12 bytes an entry instead of 48, any entry read in
// constant time); the tail window's entries, which appends and tailing
// reads touch, stay plain:
//
//	block: first entry | least[6] | mask[6] off[6] stride | data: entry 0 | entry 1 | ... | 8 spare
//	       entry k, field f: least[f] + (8 bytes at k*stride+off[f], little-endian) & mask[f]
//
//	blocks [b0 (maybe cut)][b1][b2]...   recent [Entry][Entry]...
//	       entries 0..sealed-1                  sealed..len-1
//
// # Offsets and visibility
//
//	logStart <= ... <= hw <= next
//
// next is the offset the next appended record gets. A batch becomes visible
// (hw moves past it) only once the log frame holding it is fsync'd, whatever
// acks the producer asked for: a reader can never see a record that a crash
// could take back, so offsets are never reused with other data.
//
// # Concurrency
//
// A Shard's mutex serialises appends, so the order of frames in the shared
// log is the shard's offset order. Lock order: Shard.mu, then the log's own
// lock (taken inside Log.Append). Reads copy index entries under a read lock
// and do file I/O outside it.
package shard
