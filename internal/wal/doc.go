// Package wal is Braid's shared write-ahead log: one append-only log per node
// into which every shard's batches are written, so that one fsync makes many
// produce requests durable at once (group commit).
//
// # Positions and files
//
// A Position is a byte offset in the node's whole log, counted from the first
// byte ever written and never reused. The log is cut into segment files named
// by the Position of their first byte, zero-padded to 20 digits so that a
// lexical sort is a numeric sort:
//
//	wal/00000000000000000000.wal
//	wal/00000000000134217811.wal
//
// A segment is rolled once it holds SegmentBytes or more; one flush is never
// split across two segments, so a frame never spans files.
//
// # Frames
//
// Each entry is one frame, all integers little-endian:
//
//	+----------+----------+--------+----------------------+
//	| len u32  | crc u32  | kind u8| body (len-1 bytes)   |
//	+----------+----------+--------+----------------------+
//
// crc is the CRC-32C (Castagnoli) of the frame's Position (u64), kind and
// body: a frame is only valid at the position it was written at.
//
// len counts kind and body.
//
// # Write units, torn tails and corruption
//
// Every write of the buffer writes one unit: the frames appended since the
// previous write, led by a unit marker (a frame of the reserved kind 0xFF,
// never replayed) whose body is the position up to which the log was
// durable when the unit was written. A crash can leave incomplete only the
// units written past that position by the last marker that reached the
// disk: the writer writes the next unit while the syncer fdatasyncs the
// ones before it. (Logs written before writes and fsyncs overlapped have
// markers without a body; each was written once everything before it was
// durable.)
//
// On Open, a frame whose len is zero, runs past the end of the file, exceeds
// MaxFrame, or whose CRC does not match, stops the scan. It is a torn tail,
// cut off, only if it lies in the newest segment and no valid unit marker
// follows it there that says the bad frame's position was durable: a power
// loss may persist the pages of the unacknowledged units in any order, so
// valid frames of those units may follow the bad one. Anything else is
// damage to data that was durable: a bad frame in a closed segment (a
// segment is synced whole before the next is created), a bad frame before a
// unit written once it was durable, or a segment that does not start where
// the previous one ends. Open then fails with a
// *CorruptError naming the file and position, and changes nothing on disk.
// Inspect reports what cutting the log there would lose, and Cut does it
// after copying the files it changes aside (`braid repair`).
//
// # Preallocation and recycling
//
// The active segment is preallocated to SegmentBytes, so group commits do
// not allocate blocks; its unwritten rest reads as zeros, a zero header is
// the normal end of the log. Reclaimed segments are renamed to
// <start>.spare (up to sixteen) and reused for new segments instead of being
// freed and allocated again, which on this project's disks stalled
// fdatasync for ~20 ms each. The position-seeded CRC makes their old frames
// invalid at the new positions. Recovery truncates the active segment at the
// end of the log and preallocates it again, so nothing stale lies behind
// newer frames.
//
// # Group commit
//
// Append copies a frame into an in-memory buffer under the log's mutex and
// returns the Position just past it. A writer goroutine swaps the buffer
// out and writes it with one write call; a syncer goroutine fdatasyncs
// what is written and publishes the new durable Position. The two overlap:
// the next buffer is written while the previous one is being fsync'd
// (at most MaxPending bytes written and not yet durable), and everyone who
// appended while an fsync ran rides on the next one. Callers wait with
// WaitDurable (acks=all) or WaitWritten (acks=1).
//
// # Concurrency
//
// All methods are safe for concurrent use. Lock order for callers: take your
// own lock (a shard's) before calling Append, never the other way round;
// Append's order is the order in the log, which is what lets a shard rely on
// "my later frame is durable implies my earlier frames are durable".
package wal
