// Package file is the file connectors: file-sink writes a stream's records
// to files in a directory, file-source tails files into a stream.
//
// file-sink writes one line per record: the value as it is ("format:
// value", the default; a value holding a newline spans lines), or a JSON
// object ("format: json": stream, shard, offset, timestamp, key and
// headers as strings, and value, the record's value as JSON: a value that
// is not JSON is a bad record). Each shard has its own file,
//
//	<dir>/<stream>.<shard>.<first offset, 20 digits>.log
//
// rolled when it reaches max_bytes or max_age. Data is fsync'd when a file
// rolls, on Flush and at least once a second; Durable reports what was
// fsync'd, so the runtime's commits never pass what a crash could take
// back (at-least-once: lines after the last commit may be written twice).
//
// file-source reads path (a file or a glob) line by line, each line a
// record value (without the newline; a last line without one waits for
// it). Its position is, per file, the path, the inode and the byte offset
// after the last line handed over: a file replaced under the same path (a
// new inode) is read from its start. With delivery exactly-once the
// runtime stores the position in the same transaction as the records, so
// a crash neither loses nor repeats a line.
package file
