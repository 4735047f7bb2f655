package kafka

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/braidstream/braid/internal/engine"
)

// TestFetchReadsPartitionsInParallel: an answer over many partitions with
// data, read by several goroutines once the first partitions filled
// fetchParallelFrom, is the answer read one partition after the other:
// within the request's and each partition's limits, full, every
// partition's own batches, whole, in order from its fetch offset.
func TestFetchReadsPartitionsInParallel(t *testing.T) {
	const (
		partitions = 16
		rounds     = 12
		budget     = 8 << 20
	)
	eng := openEngine(t, engine.Options{Dir: t.TempDir()})
	createStream(t, eng, "s", partitions)
	_, cl := serve(t, eng)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for r := range rounds {
		produceRound(t, ctx, cl, "s", partitions, r, func(p int32) []byte { return wideBatch(p, r, 25, 4<<10) }) // 100 KiB
	}

	defer fetchWorkerCount.Store(0)
	fetchAll := func(workers int, topic string, partitions, partMax int, from func(p int32) int64) *kmsg.FetchResponse {
		t.Helper()
		fetchWorkerCount.Store(int32(workers))
		parts := make([]int32, partitions)
		for p := range parts {
			parts[p] = int32(p)
		}
		fetch := fetchParts(eng, topic, budget, parts, partMax, from)
		runs := fetchParallelRuns.Load()
		resp, err := fetch.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		if parallel := fetchParallelRuns.Load() != runs; parallel != (workers > 1) {
			t.Fatalf("%d workers: read in parallel %v", workers, parallel)
		}
		return resp
	}
	// Partition 3 from its third batch, the others from the start.
	from := func(p int32) int64 {
		if p == 3 {
			return 2 * 25
		}
		return 0
	}
	// Partitions' limits under what they hold (1 MiB of 1.2), and over
	// (4 MiB): then the reads running start with more than they may
	// keep. The first answer of each is read one partition after the
	// other up to 1 MiB, the next ones in parallel from the first
	// partition on (the connection's last answer was large).
	for _, partMax := range []int{1 << 20, 4 << 20} {
		t.Run(fmt.Sprintf("partition-max-%d", partMax), func(t *testing.T) {
			seq := fetchAll(1, "s", partitions, partMax, from)
			for range 3 {
				checkParallelAnswer(t, fetchAll(4, "s", partitions, partMax, from), seq, partitions, rounds, budget, partMax)
			}
		})
	}

	// The first partition with data returns its first batch whole, over
	// its limit (KIP-74), and no other does: three empty partitions, two
	// of a 300 KiB batch, three of 20 KiB batches, a 100 KiB limit, read
	// in parallel from the first partition on.
	if _, err := eng.CreateStream("w", 8, nil, false); err != nil {
		t.Fatal(err)
	}
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 10000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "w"
	for p := int32(3); p < 8; p++ {
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition, rp.Records = p, wideBatch(p, 0, 3, 100<<10)
		if p >= 5 {
			rp.Records = slices.Concat(wideBatch(p, 0, 1, 20<<10), wideBatch(p, 1, 1, 20<<10), wideBatch(p, 2, 1, 20<<10))
		}
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	if _, err := req.RequestWith(ctx, cl); err != nil {
		t.Fatal(err)
	}
	zero := func(int32) int64 { return 0 }
	seq := fetchAll(1, "w", 8, 100<<10, zero)
	for i, p := range seq.Topics[0].Partitions {
		if want := i == 3 || i >= 5; (len(p.RecordBatches) > 0) != want {
			t.Fatalf("one after the other: partition %d answered %d bytes", i, len(p.RecordBatches))
		}
	}
	for range 3 {
		fetchAll(4, "s", partitions, 1<<20, from) // a large answer: the next is read in parallel from its start
		resp := fetchAll(4, "w", 8, 100<<10, zero)
		for i, p := range resp.Topics[0].Partitions {
			if s := seq.Topics[0].Partitions[i].RecordBatches; !bytes.Equal(p.RecordBatches, s) {
				t.Fatalf("partition %d: %d bytes read in parallel, %d one after the other", i, len(p.RecordBatches), len(s))
			}
		}
	}
}

// fetchParts asks for parts of topic, in that order, each with limit
// partMax from offset from(p), the answer within budget and at once.
func fetchParts(eng *engine.Engine, topic string, budget int, parts []int32, partMax int, from func(p int32) int64) *kmsg.FetchRequest {
	fetch := kmsg.NewPtrFetchRequest()
	fetch.ReplicaID, fetch.MaxWaitMillis, fetch.MinBytes, fetch.MaxBytes = -1, 0, 1, int32(budget)
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic, ft.TopicID = topic, eng.Stream(topic).TopicID // by name or by id, as the version asks
	for _, p := range parts {
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.Partition, fp.PartitionMaxBytes, fp.FetchOffset = p, int32(partMax), from(p)
		ft.Partitions = append(ft.Partitions, fp)
	}
	fetch.Topics = append(fetch.Topics, ft)
	return fetch
}

// checkParallelAnswer checks a fetch answer read in parallel against
// the one read one partition after the other (seq): the same bytes for
// every partition; and that those are whole batches of the partition's
// own, in order from its fetch offset (partition 3 from its third
// batch), within the partition's limit and the answer's.
func checkParallelAnswer(t *testing.T, resp, seq *kmsg.FetchResponse, partitions, rounds, budget, partMax int) {
	t.Helper()
	total, served := 0, 0
	for i, p := range resp.Topics[0].Partitions {
		if p.ErrorCode != 0 || p.Partition != int32(i) {
			t.Fatalf("answer %d: partition %d, error %d", i, p.Partition, p.ErrorCode)
		}
		if p.HighWatermark != int64(rounds*25) {
			t.Fatalf("partition %d: high watermark %d, want %d", i, p.HighWatermark, rounds*25)
		}
		if len(p.RecordBatches) > partMax {
			t.Fatalf("partition %d: %d bytes, over its limit of %d", i, len(p.RecordBatches), partMax)
		}
		if s := seq.Topics[0].Partitions[i].RecordBatches; !bytes.Equal(p.RecordBatches, s) {
			t.Fatalf("partition %d: %d bytes read in parallel, %d one after the other", i, len(p.RecordBatches), len(s))
		}
		total += len(p.RecordBatches)
		if len(p.RecordBatches) > 0 {
			served++
		}
		r := 0
		if i == 3 {
			r = 2
		}
		for b := p.RecordBatches; len(b) > 0; r++ {
			if base := int64(binary.BigEndian.Uint64(b)); base != int64(r*25) {
				t.Fatalf("partition %d: batch at offset %d, want %d", i, base, r*25)
			}
			b = b[checkWideBatch(t, b, i, r):]
		}
	}
	// Full: what is left of the budget is less than a batch (100 KiB).
	if total > budget || total < budget-(110<<10) {
		t.Fatalf("%d record bytes in %d partitions, want at most %d and at least %d", total, served, budget, budget-(110<<10))
	}
}

// TestSettleRead: a read cut to a smaller limit keeps the whole batches
// that fit (the first whole if it may), and the aborted transactions
// that begin within them.
func TestSettleRead(t *testing.T) {
	var batches []byte
	for base := int64(0); base < 30; base += 10 {
		b := wideBatch(0, int(base), 10, 100)
		binary.BigEndian.PutUint64(b, uint64(base))
		batches = append(batches, b...)
	}
	size := len(batches) / 3
	for _, c := range []struct {
		limit   int
		whole   bool
		batches int
		aborted []int64
	}{
		{3 * size, false, 3, []int64{5, 15, 25}},
		{3*size - 1, false, 2, []int64{5, 15}},
		{size, false, 1, []int64{5}},
		{size - 1, false, 0, nil},
		{0, true, 1, []int64{5}},
	} {
		p := kmsg.NewFetchResponseTopicPartition()
		p.RecordBatches = slices.Clone(batches)
		for _, first := range []int64{5, 15, 25} {
			p.AbortedTransactions = append(p.AbortedTransactions, kmsg.FetchResponseTopicPartitionAbortedTransaction{ProducerID: first, FirstOffset: first})
		}
		n := settleRead(&p, len(batches), c.limit, c.whole)
		var aborted []int64
		for _, a := range p.AbortedTransactions {
			aborted = append(aborted, a.FirstOffset)
		}
		if n != c.batches*size || len(p.RecordBatches) != n || !bytes.Equal(p.RecordBatches, batches[:n]) || !slices.Equal(aborted, c.aborted) {
			t.Errorf("limit %d whole %v: %d bytes (%d batches), aborted %v; want %d batches, aborted %v",
				c.limit, c.whole, n, n/size, aborted, c.batches, c.aborted)
		}
	}
}

// checkWideBatch checks that b begins with a whole batch, as written
// (length, CRC), whose first record is wideBatch's for partition part,
// request r, and returns the batch's length.
func checkWideBatch(t *testing.T, b []byte, part, r int) int {
	t.Helper()
	if len(b) < 61 {
		t.Fatalf("partition %d: %d bytes left, not a batch", part, len(b))
	}
	n := 12 + int(binary.BigEndian.Uint32(b[8:]))
	if n > len(b) || crcOf(b[21:n]) != binary.BigEndian.Uint32(b[17:]) {
		t.Fatalf("partition %d: batch %d is not as written (bad CRC or length)", part, r)
	}
	first := readRecords(t, b[61:n], 1)[0]
	if w := fmt.Sprintf("p%d/r%d/0", part, r); !bytes.HasPrefix(first.Value, []byte(w)) {
		t.Fatalf("partition %d: batch %d begins with %.12q, want %s", part, r, first.Value, w)
	}
	return n
}
