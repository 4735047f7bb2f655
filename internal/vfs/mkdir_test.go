package vfs_test

import (
	"syscall"
	"testing"

	"github.com/braidstream/braid/internal/vfs"
)

// TestMkdirAllDurableAfterFailedSync: a call whose directory sync fails
// must not leave directories that a later call takes for durable ones
// (found by TestFaultInjection -powerloss.seed=2011: a shard's segment
// directory vanished with its files at the next power loss).
func TestMkdirAllDurableAfterFailedSync(t *testing.T) {
	mem := vfs.NewMemFS()
	if err := vfs.MkdirAllDurable(mem, "/data/shards"); err != nil {
		t.Fatal(err)
	}
	failures := 1
	fs := vfs.Inject(mem, func(op vfs.Op, path string) error {
		if op == vfs.OpSyncDir && failures > 0 {
			failures--
			return syscall.EIO
		}
		return nil
	})
	if err := vfs.MkdirAllDurable(fs, "/data/shards/3/0"); err == nil {
		t.Fatal("MkdirAllDurable succeeded with its directory sync failing")
	}
	if err := vfs.MkdirAllDurable(fs, "/data/shards/3/0"); err != nil {
		t.Fatal(err)
	}
	if _, err := mem.CrashClone().Stat("/data/shards/3/0"); err != nil {
		t.Fatalf("directory lost at a power loss after a retried MkdirAllDurable: %v", err)
	}
}
