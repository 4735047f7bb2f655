// Package powerloss holds Braid's in-process power-loss and fault-injection
// tests of the storage engine. It has no code of its own, only tests.
//
// A test runs a seeded, mixed workload straight against internal/engine on a
// vfs.MemFS (produce at acks=all, 1 and 0; idempotent and transactional
// producers; group offset commits; DeleteRecords; retention; the mover; the
// cleaner; streams created, deleted and recreated), pulls the plug with
// MemFS.CrashClone after a chosen operation or while one is in flight,
// recovers on the clone and checks what came back against a model of what
// was acknowledged:
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
// seed; goroutine scheduling (the WAL flusher, background checkpoints, an
// operation in flight at the crash) does not, so a failing seed usually but
// not always fails again. A failure prints the command that replays it.
package powerloss
