// Package powerloss holds Braid's in-process power-loss and fault-injection
// tests of the storage engine. It has no code of its own, only tests.
//
// A test runs a seeded, mixed workload straight against internal/engine on a
// vfs.MemFS (produce at acks=all, 1 and 0; idempotent and transactional
// producers; group offset commits; DeleteRecords; retention; the mover; the
// cleaner; streams created, deleted and recreated; split, merge and scale of
// a key-routed stream under routed writes, see reshard_test.go) and pulls
// the plug with MemFS.CrashClone three times per seed (on odd seeds with
// CrashCloneTorn: about half of the pages written since their file's last
// sync reach the disk anyway, as writeback may do), at one of three
// kinds of point: after an operation (sometimes a write at acks=0/1 read
// straight back while fsyncs are slow), while an operation runs in another
// goroutine, or from inside the filesystem just before one of the first
// fsyncs of a critical operation (a transaction end, a move, a cleaning or
// retention pass, DeleteRecords, a stream created or deleted, a group
// commit, a reshard). After each crash it recovers on the clone and checks
// what came back against a model of what was acknowledged, then goes on
// from what it read back:
//
//   - every record acknowledged at acks=all, and every record a reader saw,
//     is at its offset with its bytes (unless below an acknowledged log
//     start, or replaced by a later value of its key on a compacted stream);
//   - no offset holds anything but what was appended there;
//   - committed transactions are visible whole to read_committed, aborted
//     ones never, and one in doubt is all or nothing;
//   - committed group offsets are at least the last acknowledged commit;
//   - log starts never go back below an acknowledged DeleteRecords or
//     retention pass;
//   - created streams exist, deleted ones are gone, and a recreated stream
//     starts empty without inherited committed offsets;
//   - the recovered engine takes new writes above every acknowledged offset.
//
// The error-injection test runs the same workload on vfs.Inject and, from a
// random operation on, fails chosen filesystem calls (EIO on fsync, rename
// or directory sync, ENOSPC on write or preallocate): the engine must refuse
// writes it cannot make durable, keep serving acknowledged data, and a
// recovery without faults must pass the same model check.
//
// The operation sequence, the crash point and the faults come from the
// seed; goroutine scheduling (the WAL flusher's group commits, background
// checkpoints, an operation in flight at the crash) does not, so a failing
// seed usually but not always fails again. A failure prints the command that
// replays it. Flags: -powerloss.iters (seeds, default 150),
// -powerloss.first (first seed), -powerloss.seed (one seed),
// -powerloss.trace (print every seed's operations).
//
// Not reached in practice: a crash between a transaction's Prepare and
// Complete frames. The coordinator appends them back to back and the WAL's
// group commit makes them durable together, so the start-up completion of
// prepared transactions is checked (no transaction is left prepared) but
// rarely exercised.
package powerloss
