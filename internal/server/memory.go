package server

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"time"
)

// MemoryHeadroom is what the default memory limit allows on top of
// --cache-bytes: requests being read and answered, the log's pending
// writes, shard indexes, fetch reads from disk, and the runtime. Measured
// peaks of the heaviest benchmark rows (docs/design/storage.md, "Memory")
// fit within it.
const MemoryHeadroom = 768 << 20

// minMemoryHeadroom is the least an explicit --memory-limit may leave
// above --cache-bytes: below it the collector would run all the time.
const minMemoryHeadroom = 128 << 20

// ApplyMemoryLimit sets the process's soft memory limit from cfg and says
// what it is and where it comes from: GOMEMLIMIT when set (the runtime has
// applied it already), else cfg.MemoryLimit, else CacheBytes +
// MemoryHeadroom; 0 means none. With a limit, the collector runs more
// often as the heap nears it instead of letting the heap double its live
// size, so the node's resident memory stays near the cache plus a
// constant rather than twice its working set.
func ApplyMemoryLimit(cfg *Config) (limit int64, source string) {
	switch {
	case os.Getenv("GOMEMLIMIT") != "":
		return debug.SetMemoryLimit(-1), "GOMEMLIMIT"
	case cfg.MemoryLimit < 0:
		return 0, "off"
	case cfg.MemoryLimit > 0:
		limit, source = cfg.MemoryLimit, "--memory-limit"
	default:
		limit, source = cfg.defaultMemoryLimit(), fmt.Sprintf("--cache-bytes + %d MiB", MemoryHeadroom>>20)
		source += " + the shard indexes"
		cfg.MemoryLimitFollowsIndex = true
	}
	debug.SetMemoryLimit(limit)
	return limit, source
}

// defaultMemoryLimit is the limit without --memory-limit, before the
// shard indexes are added.
func (c Config) defaultMemoryLimit() int64 { return c.cacheBytes() + MemoryHeadroom }

// followIndexEvery is how often FollowIndexLimit looks at the indexes:
// they grow by about a megabyte a second at the most.
const followIndexEvery = 10 * time.Second

// FollowIndexLimit keeps the process's soft memory limit at base plus
// indexBytes() until ctx ends. The shard indexes are the part of the heap
// that grows with what is retained (about 10 bytes a batch), not with the
// load: under a fixed limit a node retaining enough small batches would
// have its live heap reach the limit and the collector run all the time.
// Raises of 64 MiB or more are logged.
func FollowIndexLimit(ctx context.Context, base int64, indexBytes func() int64, logger *slog.Logger) {
	logged := base
	tick := time.NewTicker(followIndexEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		limit := base + indexBytes()
		debug.SetMemoryLimit(limit)
		if limit >= logged+64<<20 {
			logger.Info("memory limit raised by the shard indexes", "bytes", limit, "index_bytes", limit-base)
			logged = limit
		}
	}
}
