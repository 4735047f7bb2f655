// Package s3sink is the s3-sink connector: it writes a sink's records to
// S3 or an S3-compatible store as JSON-lines or Parquet objects, one
// object builder per shard, exactly once (docs/design/connectors-s3.md
// gives the argument).
//
// Keys. A data object's key is the rendered prefix template ({stream},
// {shard}, {dt} and {hour} of its first record's timestamp, UTC) and
// stream-shard-firstOffset, the offset in 20 digits, and the format's
// extension:
//
//	<prefix>/<stream>-<shard>-<firstOffset:020d>.jsonl[.gz|.zst|.sz]
//	<prefix>/<stream>-<shard>-<firstOffset:020d>.parquet
//	<root>_braid/<connector>/<stream>/<shard>     the shard's state object
//
// <root> is the prefix's literal start up to its last "/". A data object
// carries x-amz-meta-braid-first-offset, -braid-last-offset and
// -braid-records; the state object is {"next_offset": N, "last_key": K}.
//
// Rolling. An object is written when its values reach max_bytes
// (uncompressed) or max_records, when the next record's prefix differs
// (a new hour or day), at max_age after its first record arrived, and at
// Flush. Each data object is followed by its shard's state object; a
// shard's objects are written one at a time, so at most one data object
// per shard is ahead of its state.
//
// Exactly once. Open reads the state objects and returns their next
// offsets. The first object a sink opens for a shard is looked up first
// (HEAD): if a sink before it wrote that object and stopped before its
// state object, the object is adopted as it is (its last offset from its
// metadata becomes the state) and the records it holds are skipped, so a
// replay neither duplicates them nor cuts the object at another point.
// Records below a shard's state are skipped too.
//
// Bad records (connect.BadRecordError at Put): for jsonl a value that is
// not JSON (a nil value, a tombstone, is a null line); for parquet a
// value that is not a JSON object, {} without a configured schema, or a
// field whose type the configured schema does not take.
//
// Concurrency: the runtime calls one method at a time (connect.Sink).
package s3sink
