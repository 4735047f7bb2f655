package engine

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/braidstream/braid/internal/catalog"
	"github.com/braidstream/braid/internal/shard"
	"github.com/braidstream/braid/internal/wal"
)

// BenchmarkProduceDurable measures the acks=all write path below the
// protocol: validate, append, wait for the group commit. Parallel producers
// on separate shards share fsyncs. Figures: MB/s of record batches.
func BenchmarkProduceDurable(b *testing.B) {
	for _, tc := range []struct {
		name   string
		shards int
		values int // 1 KiB records per batch
	}{
		{"1shard/16KiB-batches", 1, 16},
		{"1shard/1MiB-batches", 1, 1000},
		{"64shards/16KiB-batches", 64, 16},
	} {
		b.Run(tc.name, func(b *testing.B) {
			e, err := Open(Options{Dir: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close()
			e.CreateStream("s", tc.shards, nil, false)
			st := e.Stream("s")
			vals := make([]string, tc.values)
			for i := range vals {
				v := make([]byte, 1024)
				rand.Read(v)
				vals[i] = string(v)
			}
			proto := batch(vals...)
			b.SetBytes(int64(len(proto)))
			var next atomic.Int64
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				sh := st.Shards[int(next.Add(1))%tc.shards]
				for pb.Next() {
					_, _, end, err := e.Produce(st, sh, append([]byte(nil), proto...), nil)
					if err != nil {
						b.Fatal(err)
					}
					if err := e.WaitDurable(context.Background(), end); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// BenchmarkReadTail measures a tailing fetch of 1 MiB served from the shard
// cache, and the same from the WAL files (page cache) once evicted.
func BenchmarkReadTail(b *testing.B) {
	for _, cached := range []bool{true, false} {
		name := "from-cache"
		if !cached {
			name = "from-file"
		}
		b.Run(name, func(b *testing.B) {
			e, err := Open(Options{Dir: b.TempDir(), CacheBytes: 1})
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close()
			e.CreateStream("s", 1, nil, false)
			st := e.Stream("s")
			sh := st.Shards[0]
			if cached {
				sh.SetCacheLimit(1 << 30)
			}
			vals := make([]string, 64)
			for i := range vals {
				vals[i] = string(make([]byte, 1024))
			}
			for range 64 {
				_, _, end, err := e.Produce(st, sh, batch(vals...), nil)
				if err != nil {
					b.Fatal(err)
				}
				if err := e.WaitDurable(context.Background(), end); err != nil {
					b.Fatal(err)
				}
			}
			if _, hw, _ := sh.Offsets(); hw != 64*64 {
				b.Fatalf("high watermark %d, want %d", hw, 64*64)
			}
			b.SetBytes(1 << 20)
			b.ResetTimer()
			for range b.N {
				data, err := sh.Read(shard.Offset(0), 1<<20, true)
				if err != nil || len(data) == 0 {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCompact measures one cleaning pass over a shard of 64 MiB of
// 1 KiB keyed records in batches of 16, 1,000 distinct keys (so nearly
// every batch is rebuilt or dropped), uncompressed and with each codec. Figures:
// MB/s of log cleaned (the cleanable range), without the I/O budget.
func BenchmarkCompact(b *testing.B) {
	for _, tc := range []struct {
		name  string
		codec kgo.CompressionCodec
	}{{"none", kgo.NoCompression()}, {"snappy", kgo.SnappyCompression()}, {"lz4", kgo.Lz4Compression()}, {"zstd", kgo.ZstdCompression()}} {
		codec := tc.codec
		b.Run(tc.name, func(b *testing.B) {
			t := &testing.T{}
			var rangeBytes int64
			for range b.N {
				b.StopTimer()
				e, err := Open(Options{Dir: b.TempDir(), CleanerBytesPerSec: 1 << 40, CleanerEvery: time.Hour})
				if err != nil {
					b.Fatal(err)
				}
				e.CreateStream("c", 1, catalog.Configs{"cleanup.policy": "compact", "segment.bytes": "1048576"}, false)
				st := e.Stream("c")
				val := make([]byte, 1024)
				rand.Read(val)
				rangeBytes = 0
				var last wal.Position
				for n := 0; rangeBytes < 64<<20; n++ {
					recs := make([]kv, 16)
					for i := range recs {
						v := string(val)
						recs[i] = kv{fmt.Sprintf("key-%04d", (n*16+i)%1000), &v}
					}
					bb := keyedBatch(t, time.Now(), codec, recs...)
					rangeBytes += int64(len(bb))
					_, _, end, err := e.Produce(st, st.Shards[0], bb, nil)
					if err != nil {
						b.Fatal(err)
					}
					if last = end; n%64 == 63 {
						e.WaitDurable(context.Background(), end)
					}
				}
				e.WaitDurable(context.Background(), last)
				b.StartTimer()
				stats := e.CleanPass(context.Background(), true)
				b.StopTimer()
				if stats.Removed == 0 {
					b.Fatalf("pass removed nothing: %+v", stats)
				}
				b.SetBytes(rangeBytes)
				e.Close()
			}
		})
	}
}
