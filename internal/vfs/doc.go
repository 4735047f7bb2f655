// Package vfs is the filesystem seam of Braid's storage: the few operations
// the write-ahead log, the shard segments, the checkpoint and the catalog use,
// behind an interface with three implementations.
//
//   - Default (OS) is the real filesystem.
//   - MemFS is an in-memory filesystem that keeps, beside what a reader sees,
//     what a power loss would leave: a file's content as of its last Sync or
//     Datasync, and a directory's entries as of its last SyncDir.
//     CrashClone returns that durable state as a new MemFS, which is how tests
//     "pull the plug": every write and every directory change (create, rename,
//     remove) not yet made durable is forgotten. It is deliberately strict:
//     real filesystems often keep more, never less. CrashCloneTorn keeps
//     more: chosen pages written since the last sync, as writeback in no
//     particular order leaves them, which is what a torn write looks like.
//   - Inject wraps another FS and fails chosen operations (EIO, ENOSPC, ...)
//     through an Injector, to test that the node fails safe.
//
// Paths are slash-separated; MemFS roots them at "/" and cleans them, so tests
// may use any absolute path (for example t.TempDir() names, which never touch
// the disk through a MemFS).
//
// Concurrency: every implementation is safe for concurrent use; a File's
// ReadAt may run concurrently with WriteAt on other ranges, as with *os.File.
package vfs
