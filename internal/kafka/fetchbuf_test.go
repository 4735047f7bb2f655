package kafka

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/braidstream/braid/internal/engine"
	"github.com/braidstream/braid/internal/shard"
)

// TestFetchBufsAlloc: reads of a chunk's range are carved from one chunk,
// side by side, each with exactly its room; smaller and larger reads get
// their own memory, but for an answer read from a window small reads are
// carved from the chunks too; release hands the chunks back.
func TestFetchBufsAlloc(t *testing.T) {
	var b fetchBufs
	small := b.alloc(fetchChunkMin - 1)
	huge := b.alloc(fetchChunk + 1)
	if len(b.chunks) != 0 || cap(small) != fetchChunkMin-1 || cap(huge) != fetchChunk+1 {
		t.Fatalf("small and huge reads: %d chunks taken, caps %d and %d", len(b.chunks), cap(small), cap(huge))
	}
	x, y := b.alloc(100<<10), b.alloc(200<<10)
	if len(x) != 0 || cap(x) != 100<<10 || cap(y) != 200<<10 {
		t.Fatalf("len %d cap %d, cap %d: want empty slices with exactly their room", len(x), cap(x), cap(y))
	}
	if len(b.chunks) != 1 || &x[:1][0] != &b.chunks[0][:1][0] || &y[:1][0] != &b.chunks[0][:cap(x)+1][cap(x)] {
		t.Fatal("two reads that fit one chunk are not side by side at its start")
	}
	// An append to a full read copies it away instead of writing over the
	// next read's bytes.
	y = append(y[:0], 'y')
	x = append(x[:cap(x)], 'x')
	if y[0] != 'y' {
		t.Fatal("an append to one read wrote over the next")
	}
	for range fetchChunk / (200 << 10) {
		b.alloc(200 << 10)
	}
	if len(b.chunks) != 2 {
		t.Fatalf("%d chunks after more than one chunk's reads, want 2", len(b.chunks))
	}
	b.release()
	if b.chunks != nil || b.free != nil {
		t.Fatal("release kept its chunks")
	}

	b.win = &shard.LogWindow{}
	if small := b.alloc(100); len(b.chunks) != 1 || cap(small) != 100 || &small[:1][0] != &b.chunks[0][:1][0] {
		t.Fatalf("a small read of a window's answer: %d chunks taken, cap %d", len(b.chunks), cap(small))
	}
	b.release()
}

// TestFetchLongPollKeepsEveryPartition: a long poll reads two partitions
// into one chunk side by side, then, woken by a new batch, adds it to the
// first partition's answer; the second partition's bytes must come back
// as they were written (every batch's CRC holds).
func TestFetchLongPollKeepsEveryPartition(t *testing.T) {
	eng := openEngine(t, engine.Options{Dir: t.TempDir()})
	st := createStream(t, eng, "s", 2)
	_, cl := serve(t, eng)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	produce := func(part int32, r int) {
		t.Helper()
		produceBatch(t, ctx, cl, "s", part, wideBatch(part, r, 25, 4<<10)) // 100 KiB: a chunk's read
	}
	produce(0, 0)
	produce(1, 0)

	fetch := kmsg.NewPtrFetchRequest()
	fetch.ReplicaID, fetch.MaxWaitMillis, fetch.MinBytes, fetch.MaxBytes = -1, 2000, 50<<20, 50<<20
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic, ft.TopicID = "s", st.TopicID // by name or by id, as the version asks
	for p := range int32(2) {
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.Partition, fp.PartitionMaxBytes = p, 1<<20
		ft.Partitions = append(ft.Partitions, fp)
	}
	fetch.Topics = append(fetch.Topics, ft)
	type answer struct {
		resp *kmsg.FetchResponse
		err  error
	}
	done := make(chan answer, 1)
	go func() {
		resp, err := fetch.RequestWith(ctx, cl)
		done <- answer{resp, err}
	}()
	time.Sleep(300 * time.Millisecond) // the poll has read both and waits
	produce(0, 1)
	a := <-done
	if a.err != nil {
		t.Fatal(a.err)
	}
	for i, p := range a.resp.Topics[0].Partitions {
		if p.ErrorCode != 0 {
			t.Fatalf("partition %d: error %d", i, p.ErrorCode)
		}
		want := 1 + 1 - i // the first partition has both batches
		got := 0
		for b := p.RecordBatches; len(b) > 0; got++ {
			b = b[checkWideBatch(t, b, i, got):]
		}
		if got != want {
			t.Fatalf("partition %d: %d batches, want %d", i, got, want)
		}
	}
}
