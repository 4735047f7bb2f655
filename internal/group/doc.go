// Package group is Braid's group coordinator: durable committed offsets,
// and group membership (the classic and KIP-848 protocols), itself durable
// (see persist.go for its WAL records).
//
// # Durable offsets
//
// A commit or deletion is one frame in the node's shared write-ahead log
// (kind KindOffsets), so offsets recover through the same path as data: the
// engine's checkpoint holds a snapshot, and frames after it are replayed.
// The frame body is JSON (commits are small and rare next to data):
//
//	{"g":"group","set":[{"t":"topic","p":0,"o":42,"e":-1,"m":"","ts":1700000000000}],
//	 "del":[{"t":"topic","p":1}],"all":false}
//
// "all" deletes every offset of the group (DeleteGroups).
//
// # Visibility and order
//
// A change is applied to the readable state only once its frame is
// durable, so nobody ever reads an offset that a crash could take back.
// Changes are appended and queued under one mutex, and applied strictly in
// that (write-ahead log) order by whoever first sees them durable, so a
// slow waiter can never roll a newer commit back to an older one.
//
// Lock order: Offsets.mu, then the log's own lock (inside Append).
package group
