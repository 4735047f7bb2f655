package kafka

import (
	"context"
	"encoding/binary"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/braidstream/braid/internal/engine"
	"github.com/braidstream/braid/internal/shard"
	"github.com/braidstream/braid/internal/vfs"
)

// TestFetchWindowReadsTheLogInOrder: a consumer of many partitions
// catching up past the page cache gets answers that are ranges of the log
// (fetch windows): each partition's own batches, whole, in order from its
// fetch offset, within its limit and the answer's; most partitions served
// in each answer (partition by partition, an answer held eight); the
// range after each read ahead and used by the next answer, and read again
// after a rewind. From the page cache (small batches), windows too, read
// through it.
func TestFetchWindowReadsTheLogInOrder(t *testing.T) {
	const (
		partitions = 80
		rounds     = 40
	)
	dir := t.TempDir()
	eng := openEngine(t, engine.Options{Dir: dir})
	createStream(t, eng, "m", partitions)
	createStream(t, eng, "thin", partitions)
	createStream(t, eng, "big", 1)
	s, cl := serve(t, eng)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// One request per round, a batch of 1 to 4 records of 2 KiB per
	// partition: the partitions' batches lie between each other's in the
	// log, and drift apart (some partitions hold more per round). Then the
	// same for "thin", each round followed by a batch of "big" three times
	// the round's size: thin's batches fill a quarter of the log they lie
	// in.
	m := newWindowReader(t, eng, "m", partitions, rounds)
	thin := newWindowReader(t, eng, "thin", partitions, rounds)
	// m's tail is read (a consumer waits at its end) while it is
	// written, so its shards hold what is appended.
	for _, sh := range eng.Stream("m").Shards {
		if _, err := sh.Read(0, 1, false); err != nil {
			t.Fatal(err)
		}
	}
	for _, w := range []*windowReader{m, thin} {
		for r := range rounds {
			w.produce(ctx, cl, r)
			if w == thin {
				for range 2 {
					produceBatch(t, ctx, cl, "big", 0, wideBatch(0, r, 12, 50<<10))
				}
			}
		}
	}
	ahead := s.opts.Metrics.fetchWindows.WithLabelValues("ahead")
	direct := s.opts.Metrics.fetchWindows.WithLabelValues("direct")

	// The first answer, partition by partition from the tail cache, makes
	// the connection a catching-up one, and its 32 or so partitions run
	// ahead of the rest (a third of their data read, some 5 MB of log
	// ahead of the others); then the batches are read from the log, and
	// the log leaves the page cache.
	m.partMax = 64 << 10
	if _, served := m.fetch(ctx, cl); served < windowBudget/int(m.partMax) || served > partitions/2 {
		t.Fatalf("the first answer served %d partitions; read partition by partition it holds about %d", served, windowBudget/int(m.partMax))
	}
	m.partMax = windowPartMax
	for _, name := range []string{"m", "thin", "big"} {
		for _, sh := range eng.Stream(name).Shards {
			sh.DropCacheIfIdle(0)
		}
	}
	dropLogPages(t, dir)
	fromWindows := shard.ReadWindowBytes()
	total, answers, widest := 0, 0, 0
	for ; !m.done() && answers < 100; answers++ {
		if answers == 3 {
			// A rewind: the range read ahead is not where the next answer
			// starts.
			m.rewind()
		}
		n, served := m.fetch(ctx, cl)
		total += n
		widest = max(widest, served)
	}
	if !m.done() {
		t.Fatalf("%d answers did not read everything", answers)
	}
	if widest < partitions*3/4 {
		t.Errorf("at most %d of %d partitions served in an answer: not read as ranges of the log", widest, partitions)
	}
	if got := windowsTaken(t, s); got < float64(answers-1) {
		t.Errorf("%v of %d answers read as windows", got, answers)
	}
	if got := counterValue(t, ahead); got < float64(answers-3) {
		t.Errorf("%v of %d answers found their window read ahead", got, answers)
	}
	if got := counterValue(t, direct); got < 2 {
		t.Errorf("%v windows read while the fetch waited; want the first and the one after the rewind", got)
	}
	// Everything came out of windows (no partition whose next batch lies
	// past the window took one whole as the answer's first: KIP-74).
	if got := shard.ReadWindowBytes() - fromWindows; got != int64(total) {
		t.Errorf("%d of %d bytes read from windows", got, total)
	}

	// From the page cache, m's small batches (5 KiB on average) are read
	// as windows too, through the page cache, not past it.
	warmLogPages(t, dir)
	m.rewind()
	before, fromWindows, fromCache := windowsTaken(t, s), shard.ReadWindowBytes(), shard.ReadWindowCachedBytes()
	directBefore := counterValue(t, direct)
	total = 0
	for answers = 0; !m.done() && answers < 100; answers++ {
		n, _ := m.fetch(ctx, cl)
		total += n
	}
	if !m.done() {
		t.Fatalf("warm: %d answers did not read everything", answers)
	}
	if got := windowsTaken(t, s) - before; got < float64(answers-1) {
		t.Errorf("warm: %v of %d answers read as windows", got, answers)
	}
	if got := shard.ReadWindowBytes() - fromWindows; got != int64(total) {
		t.Errorf("warm: %d of %d bytes read from windows", got, total)
	}
	if got := shard.ReadWindowCachedBytes() - fromCache; got < int64(total) || counterValue(t, direct) != directBefore {
		t.Errorf("warm: windows read %d bytes through the page cache for %d served, %v past it", got, total, counterValue(t, direct)-directBefore)
	}

	// Partition by partition, with no window: a consumer whose batches
	// fill a quarter of the log they lie in (all of its partitions there:
	// none is a laggard).
	dropLogPages(t, dir)
	thin.rewind()
	before, fromWindows = windowsTaken(t, s), shard.ReadWindowBytes()
	lagged := counterValue(t, s.opts.Metrics.fetchLaggards)
	for answers = 0; !thin.done() && answers < 100; answers++ {
		thin.fetch(ctx, cl)
	}
	if !thin.done() {
		t.Fatalf("thin: %d answers did not read everything", answers)
	}
	if windowsTaken(t, s) != before || shard.ReadWindowBytes() != fromWindows {
		t.Errorf("thin read through windows: %v answers, %d bytes", windowsTaken(t, s)-before, shard.ReadWindowBytes()-fromWindows)
	}
	if got := counterValue(t, s.opts.Metrics.fetchLaggards) - lagged; got != 0 {
		t.Errorf("thin: %v answers served as the laggards'", got)
	}
}

// TestFetchWindowFewPartitions: a consumer of a few partitions catching
// up past the page cache is answered from windows too, although its
// per-partition reads had the shards ask the kernel for the log its next
// answers start in (shard/prefetch.go): the page cache then holds that
// range because the consumer reads from the disk, not because the log is
// warm.
func TestFetchWindowFewPartitions(t *testing.T) {
	const (
		partitions = 4
		rounds     = 240 // of 32 KiB records: about 75 MiB of log
	)
	dir := t.TempDir()
	eng := openEngine(t, engine.Options{Dir: dir})
	createStream(t, eng, "few", partitions)
	s, cl := serve(t, eng)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	w := newWindowReader(t, eng, "few", partitions, rounds)
	w.recBytes, w.partMax, w.rotate = 32<<10, 1<<20, true
	for r := range rounds {
		w.produce(ctx, cl, r)
	}
	for _, sh := range eng.Stream("few").Shards {
		sh.DropCacheIfIdle(0)
	}
	dropLogPages(t, dir)
	before := windowsTaken(t, s)
	fromWindows := shard.ReadWindowBytes()
	answers, total := 0, 0
	for ; !w.done() && answers < 200; answers++ {
		n, _ := w.fetch(ctx, cl)
		total += n
	}
	if !w.done() {
		t.Fatalf("%d answers did not read everything", answers)
	}
	// Every answer is a window, the first too (its partition's next batch
	// lies in the log, and the page cache does not hold the range): once
	// read partition by partition, the shards would have asked the kernel
	// for the ranges the next answers start with.
	if got := windowsTaken(t, s) - before; got != float64(answers) {
		t.Errorf("%v of %d answers read as windows", got, answers)
	}
	if got := shard.ReadWindowBytes() - fromWindows; got != int64(total) {
		t.Errorf("%d of %d bytes read from windows", got, total)
	}

	// From the page cache, batches of 80 KiB on average (1 to 4 records):
	// partition by partition, no window (a few large reads cost less than
	// a window's copy).
	warmLogPages(t, dir)
	w.rewind()
	before = windowsTaken(t, s)
	for answers = 0; !w.done() && answers < 200; answers++ {
		w.fetch(ctx, cl)
	}
	if got := windowsTaken(t, s) - before; got != 0 || !w.done() {
		t.Errorf("warm: %v of %d answers read as windows (done %v)", got, answers, w.done())
	}
}

// TestFetchWindowLaggards: a few partitions left behind the rest (5 of
// 80 at their start, the others half-way) are served alone, their batches
// in the range a window would start with, until they reach the others;
// then the answers are windows again. Read partition by partition instead,
// the laggards, last in each request, would wait for all the others.
func TestFetchWindowLaggards(t *testing.T) {
	const (
		partitions = 80
		rounds     = 40
		behind     = 5
	)
	dir := t.TempDir()
	eng := openEngine(t, engine.Options{Dir: dir})
	createStream(t, eng, "lag", partitions)
	s, cl := serve(t, eng)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	w := newWindowReader(t, eng, "lag", partitions, rounds)
	for r := range rounds {
		w.produce(ctx, cl, r)
	}
	for _, sh := range eng.Stream("lag").Shards {
		sh.DropCacheIfIdle(0)
	}
	dropLogPages(t, dir)
	for p := behind; p < partitions; p++ {
		for w.round[p] < rounds/2 {
			w.next[p] += int64(w.counts[p][w.round[p]])
			w.round[p]++
		}
	}
	lagged := s.opts.Metrics.fetchLaggards
	lagBefore, winBefore := counterValue(t, lagged), windowsTaken(t, s)

	w.fetch(ctx, cl)
	for p := range partitions {
		if moved := p < behind && w.round[p] > 0 || p >= behind && w.round[p] > rounds/2; moved != (p < behind) {
			t.Fatalf("the first answer moved partition %d to round %d: want the %d laggards served alone", p, w.round[p], behind)
		}
	}
	answers := 1
	for ; !w.done() && answers < 100; answers++ {
		w.fetch(ctx, cl)
	}
	if !w.done() {
		t.Fatalf("%d answers did not read everything", answers)
	}
	if got := counterValue(t, lagged) - lagBefore; got < 1 {
		t.Errorf("%v answers counted as the laggards'", got)
	}
	if got := windowsTaken(t, s) - winBefore; got < 1 {
		t.Errorf("no window once the laggards caught up (%d answers)", answers)
	}
}

// windowsTaken counts the answers s read as windows, read ahead or not.
func windowsTaken(t *testing.T, s *Server) float64 {
	t.Helper()
	m := s.opts.Metrics.fetchWindows
	return counterValue(t, m.WithLabelValues("ahead")) + counterValue(t, m.WithLabelValues("direct")) + counterValue(t, m.WithLabelValues("cached"))
}

const (
	windowBudget  = 2 << 20
	windowPartMax = 256 << 10
)

// windowReader produces a stream's rounds and fetches them back, checking
// each answer.
type windowReader struct {
	t      *testing.T
	eng    *engine.Engine
	topic  string
	counts [][]int // records per partition per round
	next   []int64 // per partition, the offset to fetch from
	round  []int   // and its round
	// partMax is each partition's limit in the fetch requests.
	partMax int32
	// recBytes is the size of each record's value.
	recBytes int
	// rotate: each request starts one partition further on, as clients
	// rotate theirs so that none waits for the others' limits for good
	// (read partition by partition, the last two would wait here).
	rotate bool
	turn   int
}

func newWindowReader(t *testing.T, eng *engine.Engine, topic string, partitions, rounds int) *windowReader {
	w := &windowReader{t: t, eng: eng, topic: topic, counts: make([][]int, partitions), next: make([]int64, partitions), round: make([]int, partitions),
		partMax: windowPartMax, recBytes: 2 << 10}
	for p := range w.counts {
		w.counts[p] = make([]int, rounds)
		for r := range w.counts[p] {
			w.counts[p][r] = 1 + (p*7+r*3)%4
		}
	}
	return w
}

// produce writes round r, a batch per partition, in one request.
func (w *windowReader) produce(ctx context.Context, cl *kgo.Client, r int) {
	w.t.Helper()
	produceRound(w.t, ctx, cl, w.topic, len(w.counts), r, func(p int32) []byte { return wideBatch(p, r, w.counts[p][r], w.recBytes) })
}

// produceRound writes round r to topic in one request, batch(p) to each of
// its partitions, and checks that every one was appended.
func produceRound(t *testing.T, ctx context.Context, cl *kgo.Client, topic string, partitions, r int, batch func(p int32) []byte) {
	t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 10000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	for p := range int32(partitions) {
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition, rp.Records = p, batch(p)
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range resp.Topics[0].Partitions {
		if p.ErrorCode != 0 {
			t.Fatalf("%s: produce round %d to %d: error %d", topic, r, p.Partition, p.ErrorCode)
		}
	}
}

// fetch asks for every partition from where it is and checks the answer:
// each partition's own batches, whole, in order from its fetch offset,
// within its limit and the answer's.
func (w *windowReader) fetch(ctx context.Context, cl *kgo.Client) (bytes, served int) {
	t := w.t
	t.Helper()
	// The last partition of each round first: its next batch is the one
	// most often past the window (a window ends within a round), where
	// the answer's first read may not take it whole (KIP-74).
	parts := make([]int32, len(w.next))
	for j := range parts {
		parts[j] = int32((w.turn + len(parts) - 1 - j) % len(parts))
	}
	if w.rotate {
		w.turn++
	}
	req := fetchParts(w.eng, w.topic, windowBudget, parts, int(w.partMax), func(p int32) int64 { return w.next[p] })
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	for j, p := range resp.Topics[0].Partitions {
		i := int(parts[j])
		if p.ErrorCode != 0 || p.Partition != int32(i) {
			t.Fatalf("%s: answer %d: partition %d, error %d", w.topic, i, p.Partition, p.ErrorCode)
		}
		if len(p.RecordBatches) > int(w.partMax) {
			t.Fatalf("%s: partition %d: %d bytes, over its limit of %d", w.topic, i, len(p.RecordBatches), w.partMax)
		}
		if len(p.RecordBatches) > 0 {
			served++
		}
		bytes += len(p.RecordBatches)
		for b := p.RecordBatches; len(b) > 0; w.round[i]++ {
			if base := int64(binary.BigEndian.Uint64(b)); w.round[i] >= len(w.counts[i]) || base != w.next[i] {
				t.Fatalf("%s: partition %d: batch at offset %d, want %d (round %d)", w.topic, i, base, w.next[i], w.round[i])
			}
			b = b[checkWideBatch(t, b, i, w.round[i]):]
			w.next[i] += int64(w.counts[i][w.round[i]])
		}
	}
	if bytes > windowBudget {
		t.Fatalf("%s: an answer of %d record bytes, over the budget of %d", w.topic, bytes, windowBudget)
	}
	return bytes, served
}

// done reports whether every partition has been read to its end.
func (w *windowReader) done() bool {
	for p := range w.round {
		if w.round[p] < len(w.counts[p]) {
			return false
		}
	}
	return true
}

// rewind starts every partition from its first offset again.
func (w *windowReader) rewind() {
	clear(w.next)
	clear(w.round)
}

// produceBatch writes one batch to partition p of topic.
func produceBatch(t *testing.T, ctx context.Context, cl *kgo.Client, topic string, p int32, batch []byte) {
	t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 10000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = p, batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("produce to %s/%d: error %d", topic, p, code)
	}
}

// dropLogPages drops every file of dir from the page cache, and skips the
// test where the filesystem keeps them (tmpfs).
func dropLogPages(t *testing.T, dir string) {
	t.Helper()
	var left int64
	walkFiles(t, dir, func(f vfs.File, size int64) {
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
		vfs.DontNeed(f, 0, size)
		if c, _, ok := vfs.Cached(f, 0, size); ok {
			left += c
		} else {
			t.Skip("the page cache cannot be asked here (cachestat)")
		}
	})
	if left > 0 {
		t.Skipf("%d pages stay in the page cache here (tmpfs?)", left)
	}
}

// warmLogPages reads every file of dir into the page cache.
func warmLogPages(t *testing.T, dir string) {
	t.Helper()
	walkFiles(t, dir, func(f vfs.File, size int64) {
		buf := make([]byte, 1<<20)
		for off := int64(0); off < size; off += int64(len(buf)) {
			f.ReadAt(buf, off)
		}
	})
}

// walkFiles calls each with every regular file under dir, open for
// reading, and its size.
func walkFiles(t *testing.T, dir string, each func(f vfs.File, size int64)) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		f, err := vfs.Default.OpenFile(path, os.O_RDONLY, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		size, err := f.Size()
		if err != nil {
			return err
		}
		each(f, size)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestWindowBuffers: the read ahead never goes into the buffer of the
// window being served, nor into the one the read before it fills; all
// connections together hold at most windowBuffers buffers, and release
// gives them back, to be used again, not made anew.
func TestWindowBuffers(t *testing.T) {
	if n := len(windowSlots); n != 0 {
		t.Fatalf("%d window buffers held before the test", n)
	}
	a, b := fetchWindow{cur: -1}, fetchWindow{cur: -1}
	i := a.buffer()
	a.cur = i
	j := a.buffer()
	if i < 0 || j < 0 || i == j {
		t.Fatalf("the window's buffer %d, the read ahead's %d", i, j)
	}
	done := make(chan struct{})
	close(done)
	a.ahead = &windowRead{buf: j, done: done}
	if k := a.buffer(); k >= 0 {
		t.Fatalf("a third buffer (%d) past the budget of %d", k, windowBuffers)
	}
	if k := b.buffer(); k >= 0 {
		t.Fatalf("another connection got buffer %d past the budget", k)
	}
	a.cur = -1
	if k := a.buffer(); k != i {
		t.Fatalf("buffer %d, want %d: neither served nor read ahead into", k, i)
	}
	made := map[*byte]bool{&a.bufs[i][0]: true, &a.bufs[j][0]: true}
	a.release()
	if n := len(windowSlots); n != 0 || a.ahead != nil {
		t.Fatalf("%d window buffers held after release (read ahead %v)", n, a.ahead)
	}
	if b.cur = b.buffer(); b.cur != 0 {
		t.Fatalf("buffer %d after the other connection's release", b.cur)
	}
	if k := b.buffer(); k != 1 {
		t.Fatalf("buffer %d, want a second one after the other connection's release", k)
	}
	for k, buf := range b.bufs {
		if !made[&buf[0]] {
			t.Errorf("buffer %d was made anew: the released ones were not kept", k)
		}
	}
	b.release()
}

// TestAheadBytes: the read ahead covers the next answer's budget, but no
// more than twice what its partitions in the log may take.
func TestAheadBytes(t *testing.T) {
	reads := func(n int, partMax int32) []fetchRead {
		r := make([]fetchRead, n)
		for i := range r {
			r[i].rp.PartitionMaxBytes = partMax
		}
		return r
	}
	all := func(n int) []bool {
		b := make([]bool, n)
		for i := range b {
			b[i] = true
		}
		return b
	}
	some := all(100)
	for i := range 90 {
		some[i] = false
	}
	for _, c := range []struct {
		name   string
		reads  []fetchRead
		inLog  []bool
		budget int
		want   int
	}{
		{"1,000 partitions of 8 MiB", reads(1000, 8<<20), all(1000), 55 << 20, 55 << 20},
		{"over the largest window", reads(1000, 8<<20), all(1000), 100 << 20, windowBytes},
		{"100 partitions of 64 KiB", reads(100, 64<<10), all(100), 55 << 20, 2 * 100 * 64 << 10},
		{"10 of them in the log", reads(100, 64<<10), some, 55 << 20, 2 * 10 * 64 << 10},
	} {
		if got := aheadBytes(c.reads, c.inLog, c.budget); got != c.want {
			t.Errorf("%s: %d bytes ahead, want %d", c.name, got, c.want)
		}
	}
}
