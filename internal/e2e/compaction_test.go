package e2e

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"maps"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/braidstream/braid/internal/braidtest"
)

// TestCompactionKeepsLatestPerKey is the model test: a random keyed
// sequence (tombstones included, kept by a long delete.retention.ms) over
// two partitions; after the cleaner has cleaned all of it, each partition
// holds exactly the latest record of every key, at its original offset and
// unchanged, and far fewer records than were produced.
func TestCompactionKeepsLatestPerKey(t *testing.T) {
	seed := testSeed(t)
	began := time.Now()
	p := startCleaning(t, "200ms")
	ctx := testCtx(t, 60*time.Second)
	adm := newAdmin(t, p)
	const topic, parts, keys, n, chunk = "cmodel", 2, 50, 2000, 50
	createStream(t, ctx, adm, topic, parts, compactConfigs("segment.bytes", "2048"))
	prod := newProducer(t, p) // snappy batches: the cleaner must decode and re-encode them
	rng := rand.New(rand.NewPCG(seed, 1))
	produced := map[int32]producedLog{0: {}, 1: {}}
	for c := range n / chunk {
		recs := make([]*kgo.Record, chunk)
		for i := range recs {
			seq := c*chunk + i
			key := fmt.Sprintf("key-%02d", rng.IntN(keys))
			r := &kgo.Record{Topic: topic, Partition: int32(rng.IntN(parts)), Key: []byte(key)}
			if rng.IntN(100) >= 5 {
				r.Value = []byte(fmt.Sprintf("%s=%d;%s", key, seq, strings.Repeat("v", rng.IntN(60))))
			}
			r.Headers = []kgo.RecordHeader{{Key: "seq", Value: []byte(strconv.Itoa(seq))}}
			if seq%3 == 0 {
				r.Headers = append(r.Headers, kgo.RecordHeader{Key: "third", Value: []byte("yes")})
			}
			recs[i] = r
		}
		produce(t, ctx, prod, recs...)
		for _, r := range recs {
			produced[r.Partition].add(r)
		}
	}
	produceDone := time.Now()

	// A first cleaning happens on its own: the data spans many segments.
	waitFor(t, ctx, "a first cleaning", func() bool {
		return cleanerCounter(t, ctx, p, "braid_cleaner_runs_total") >= 1
	})
	// Then close the head and wait until all the data is cleaned.
	cleaned := map[int32]int64{}
	for part := range int32(parts) {
		last := int64(len(produced[part]) - 1)
		big, head := rollHead(t, ctx, prod, topic, part, "end")
		produced[part].add(big, head)
		s := waitCleaned(t, ctx, p, topic, part, last)
		cleaned[part] = *s.CleanedTo
		t.Logf("partition %d: %d records produced, cleaned: %v", part, len(produced[part]), s)
		if *s.LastCleaned == "" {
			t.Errorf("partition %d: cleaned to %d but last_cleaned is empty", part, *s.CleanedTo)
		}
	}
	cleanDone := time.Now()
	total := 0
	for part := range int32(parts) {
		got := checkCompacted(t, ctx, p, topic, part, produced[part], cleaned[part], nil)
		total += len(got)
		// With all data cleaned, exactly one record per key is left below
		// the rolled head.
		if keysBelow := len(produced[part].latestBelow(cleaned[part])); len(got) > keysBelow+2 {
			t.Errorf("partition %d: %d records left, want at most %d (one per key, plus the head)", part, len(got), keysBelow+2)
		}
		if start, end := startEnd(t, ctx, adm, topic, part); start != 0 || end != int64(len(produced[part])) {
			t.Errorf("partition %d: log start %d, end %d after cleaning; want 0 and %d (cleaning moves neither)", part, start, end, len(produced[part]))
		}
	}
	if total > n/4 {
		t.Errorf("%d of %d records left after cleaning: compaction removed too little", total, n)
	}
	checkCleanerMetrics(t, ctx, p)
	if removed := cleanerCounter(t, ctx, p, "braid_cleaner_removed_bytes_total"); removed <= 0 {
		t.Errorf("braid_cleaner_removed_bytes_total %v after removing records", removed)
	}
	if read := cleanerCounter(t, ctx, p, "braid_cleaner_cleaned_bytes_total"); read <= 0 {
		t.Errorf("braid_cleaner_cleaned_bytes_total %v after cleaning", read)
	}
	t.Logf("%d records left of %d; produce %s, clean %s, check %s; %s", total, n,
		produceDone.Sub(began).Round(time.Millisecond), cleanDone.Sub(produceDone).Round(time.Millisecond),
		time.Since(cleanDone).Round(time.Millisecond), cleanerMetrics(t, ctx, p))
}

// rawBatchInfo is a record batch's place in the log as fetched.
type rawBatchInfo struct {
	base, last int64
	records    int32
	control    bool
}

// readBatches fetches topic/part from offset 0 to its high watermark with
// raw Fetch requests and returns every batch's offsets.
func readBatches(t testing.TB, ctx context.Context, cl *kgo.Client, adm *kadm.Client, topic string, part int32) []rawBatchInfo {
	t.Helper()
	id := topicID(t, ctx, adm, topic)
	_, end := startEnd(t, ctx, adm, topic, part)
	var out []rawBatchInfo
	for pos := int64(0); pos < end; {
		fp := fetchRaw(t, ctx, cl, topic, id, part, pos)
		if fp.ErrorCode != 0 {
			t.Fatalf("fetch %s/%d@%d: %v", topic, part, pos, kerr.ErrorForCode(fp.ErrorCode))
		}
		b := fp.RecordBatches
		next := pos
		for len(b) >= 12 {
			size := 12 + int(binary.BigEndian.Uint32(b[8:12]))
			if size > len(b) {
				break // a partial batch at the end of the response
			}
			var rb kmsg.RecordBatch
			if err := rb.ReadFrom(b[:size]); err != nil {
				t.Fatalf("fetch %s/%d@%d: decode batch: %v", topic, part, pos, err)
			}
			bi := rawBatchInfo{base: rb.FirstOffset, last: rb.FirstOffset + int64(rb.LastOffsetDelta), records: rb.NumRecords, control: rb.Attributes&0x20 != 0}
			if bi.last >= pos { // a fetch may start with a batch holding pos
				out = append(out, bi)
				next = bi.last + 1
			}
			b = b[size:]
		}
		if next <= pos {
			t.Fatalf("fetch %s/%d@%d: no progress (end %d)", topic, part, pos, end)
		}
		pos = next
	}
	return out
}

// TestCompactionKeepsBatchOffsets: a stream switched from delete to compact
// with IncrementalAlterConfigs is cleaned, and every batch left keeps the
// base and last offsets it had when produced (Kafka does the same, so
// producer state and fetch positions stay valid); no two batches overlap.
func TestCompactionKeepsBatchOffsets(t *testing.T) {
	seed := testSeed(t)
	p := startCleaning(t, "100ms")
	ctx := testCtx(t, 60*time.Second)
	adm := newAdmin(t, p)
	const topic = "cbatch"
	createStream(t, ctx, adm, topic, 1, compactConfigs("cleanup.policy", "delete"))
	prod := newProducer(t, p, kgo.ProducerBatchCompression(kgo.NoCompression()))
	rng := rand.New(rand.NewPCG(seed, 2))
	produced := producedLog{}
	for b := range 40 {
		recs := make([]*kgo.Record, 1+rng.IntN(8))
		for i := range recs {
			key := fmt.Sprintf("k%d", rng.IntN(6))
			recs[i] = &kgo.Record{Topic: topic, Key: []byte(key), Value: []byte(fmt.Sprintf("%s@%d.%d", key, b, i))}
		}
		produce(t, ctx, prod, recs...)
		produced.add(recs...)
	}
	last := int64(len(produced) - 1)
	big, head := rollHead(t, ctx, prod, topic, 0, "end")
	produced.add(big, head)
	before := readBatches(t, ctx, newClient(t, p), adm, topic, 0)

	resp, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "cleanup.policy", Value: kadm.StringPtr("compact")}}, topic)
	if err != nil || resp[0].Err != nil {
		t.Fatalf("alter cleanup.policy=compact: %v %v", err, resp)
	}
	s := waitCleaned(t, ctx, p, topic, 0, last)
	after := readBatches(t, ctx, newClient(t, p), adm, topic, 0)
	got := checkCompacted(t, ctx, p, topic, 0, produced, *s.CleanedTo, nil)

	orig := map[[2]int64]bool{}
	for _, b := range before {
		orig[[2]int64{b.base, b.last}] = true
	}
	prevLast := int64(-1)
	var records int32
	for _, b := range after {
		if !orig[[2]int64{b.base, b.last}] {
			t.Errorf("after cleaning a batch spans offsets %d-%d (%d records); no batch produced did (produced: %v)", b.base, b.last, b.records, before)
		}
		if b.base <= prevLast {
			t.Errorf("batch %d-%d overlaps the one before it (ending at %d)", b.base, b.last, prevLast)
		}
		prevLast = b.last
		records += b.records
	}
	if int(records) != len(got) {
		t.Errorf("batches after cleaning count %d records, reading returned %d", records, len(got))
	}
	if len(got) >= len(produced)/2 {
		t.Errorf("%d of %d records left: the stream was not compacted after cleanup.policy=compact was set", len(got), len(produced))
	}
	t.Logf("%d batches (%d records) before cleaning, %d batches (%d records) after", len(before), len(produced), len(after), len(got))
}

// TestCompactionTombstones: a tombstone that is the latest of its key
// removes the key's older records; it is itself removed once its batch's
// max timestamp is older than delete.retention.ms at cleaning time, and
// kept before.
func TestCompactionTombstones(t *testing.T) {
	p := startCleaning(t, "100ms")
	ctx := testCtx(t, 60*time.Second)
	adm := newAdmin(t, p)
	prod := newProducer(t, p)

	// write produces k1=v1, k1=null (in its own batch, at ts) and k2=v2.
	write := func(topic string, ts time.Time) (producedLog, *kgo.Record) {
		l := producedLog{}
		v1 := &kgo.Record{Topic: topic, Key: []byte("k1"), Value: []byte("v1"), Timestamp: ts}
		tomb := &kgo.Record{Topic: topic, Key: []byte("k1"), Timestamp: ts}
		v2 := &kgo.Record{Topic: topic, Key: []byte("k2"), Value: []byte("v2")}
		for _, r := range []*kgo.Record{v1, tomb, v2} {
			produce(t, ctx, prod, r)
			l.add(r)
		}
		return l, tomb
	}
	keysRead := func(recs []*kgo.Record) []string {
		var ks []string
		for _, r := range recs {
			if !strings.HasPrefix(string(r.Key), "roll-") {
				ks = append(ks, fmt.Sprintf("%s@%d=%s", r.Key, r.Offset, showBytes(r.Value)))
			}
		}
		return ks
	}

	t.Run("expired", func(t *testing.T) {
		// The tombstone's timestamp is a minute old: past delete.retention.ms
		// (1 s) at any cleaning.
		createStream(t, ctx, adm, "tomb-expired", 1, compactConfigs("delete.retention.ms", "1000"))
		l, tomb := write("tomb-expired", time.Now().Add(-time.Minute))
		l.add(rollHead(t, ctx, prod, "tomb-expired", 0, "1"))
		s := waitCleaned(t, ctx, p, "tomb-expired", 0, 2)
		got := checkCompacted(t, ctx, p, "tomb-expired", 0, l, *s.CleanedTo, func(r *kgo.Record) bool { return r.Offset == tomb.Offset })
		if ks := keysRead(got); !slices.Equal(ks, []string{`k2@2="v2"`}) {
			t.Errorf("read %q, want only k2@2 (k1 gone entirely)", ks)
		}
	})
	t.Run("kept", func(t *testing.T) {
		createStream(t, ctx, adm, "tomb-kept", 1, compactConfigs("delete.retention.ms", "3600000"))
		l, _ := write("tomb-kept", time.Now())
		l.add(rollHead(t, ctx, prod, "tomb-kept", 0, "1"))
		s := waitCleaned(t, ctx, p, "tomb-kept", 0, 2)
		got := checkCompacted(t, ctx, p, "tomb-kept", 0, l, *s.CleanedTo, nil)
		if ks := keysRead(got); !slices.Equal(ks, []string{"k1@1=<nil>", `k2@2="v2"`}) {
			t.Errorf("read %q, want the tombstone k1@1 and k2@2", ks)
		}
	})
	t.Run("ages", func(t *testing.T) {
		// The same tombstone is kept by a cleaning while it is younger than
		// delete.retention.ms and removed by the first cleaning once it is
		// older. Its age against the setting is fixed by the setting, not
		// by how fast the machine cleans: 1 h at the first cleaning, then
		// 1 s once the tombstone is past 1 s old.
		const retention = time.Second
		createStream(t, ctx, adm, "tomb-ages", 1, compactConfigs("delete.retention.ms", "3600000"))
		ts := time.Now()
		l, tomb := write("tomb-ages", ts)
		l.add(rollHead(t, ctx, prod, "tomb-ages", 0, "1"))
		s := waitCleaned(t, ctx, p, "tomb-ages", 0, 2)
		got := checkCompacted(t, ctx, p, "tomb-ages", 0, l, *s.CleanedTo, nil)
		if ks := keysRead(got); !slices.Equal(ks, []string{"k1@1=<nil>", `k2@2="v2"`}) {
			t.Errorf("cleaned while the tombstone was young: read %q, want the tombstone k1@1 and k2@2", ks)
		}
		setTopicConfig(t, ctx, adm, "tomb-ages", "delete.retention.ms", strconv.Itoa(int(retention.Milliseconds())))
		// Once the tombstone is older than delete.retention.ms, new dirt
		// makes the cleaner run again over the whole cleanable range.
		time.Sleep(time.Until(ts.Add(retention + 300*time.Millisecond)))
		big, head := rollHead(t, ctx, prod, "tomb-ages", 0, "2")
		l.add(big, head)
		s = waitCleaned(t, ctx, p, "tomb-ages", 0, big.Offset)
		got = checkCompacted(t, ctx, p, "tomb-ages", 0, l, *s.CleanedTo, func(r *kgo.Record) bool { return r.Offset == tomb.Offset })
		if ks := keysRead(got); !slices.Equal(ks, []string{`k2@2="v2"`}) {
			t.Errorf("cleaned after the tombstone expired: read %q, want only k2@2 (k1 gone entirely)", ks)
		}
	})
}

// setTopicConfig sets one config of a stream and fails t on error.
func setTopicConfig(t testing.TB, ctx context.Context, adm *kadm.Client, topic, name, value string) {
	t.Helper()
	resp, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: name, Value: kadm.StringPtr(value)}}, topic)
	if err == nil {
		err = resp[0].Err
	}
	if err != nil {
		t.Fatalf("set %s=%s on %s: %v", name, value, topic, err)
	}
}

// TestCompactionLiveReaders: while a producer rewrites a small set of keys
// and the cleaner runs every 100 ms, consumers read the stream from the
// start again and again. In each pass, every key's versions only go up, and
// every key acknowledged before the pass began shows up with at least that
// version (tombstones are kept, so deleted keys show up as tombstones).
func TestCompactionLiveReaders(t *testing.T) {
	seed := testSeed(t)
	p := startCleaning(t, "100ms")
	ctx := testCtx(t, 60*time.Second)
	adm := newAdmin(t, p)
	const topic, parts, keys = "clive", 2, 24
	const produceFor = 6 * time.Second
	createStream(t, ctx, adm, topic, parts, compactConfigs())

	var (
		mu       sync.Mutex
		acked    = map[string]int{} // key -> latest acknowledged version
		produced = map[int32]producedLog{0: {}, 1: {}}
	)
	// One producer, one request in flight, each chunk acknowledged before
	// the next: versions of a key are in offset order.
	prod := newProducer(t, p, kgo.MaxProduceRequestsInflightPerBroker(1))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		rng := rand.New(rand.NewPCG(seed, 3))
		version := map[string]int{}
		lastOff := map[string]int64{}
		for {
			select {
			case <-stop:
				return
			default:
			}
			recs := make([]*kgo.Record, 1+rng.IntN(12))
			for i := range recs {
				k := rng.IntN(keys)
				key := fmt.Sprintf("k%02d", k)
				version[key]++
				v := version[key]
				r := &kgo.Record{Topic: topic, Partition: int32(k % parts), Key: []byte(key),
					Headers: []kgo.RecordHeader{{Key: "v", Value: []byte(strconv.Itoa(v))}}}
				if rng.IntN(100) >= 5 {
					r.Value = []byte(fmt.Sprintf("%s:%d:%s", key, v, strings.Repeat("x", rng.IntN(80))))
				}
				recs[i] = r
			}
			if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				t.Errorf("produce: %v", err)
				return
			}
			mu.Lock()
			for _, r := range recs {
				if prev, ok := lastOff[string(r.Key)]; ok && r.Offset <= prev {
					t.Errorf("harness: %s written at %d after a later version at %d", r.Key, r.Offset, prev)
				}
				lastOff[string(r.Key)] = r.Offset
				acked[string(r.Key)] = max(acked[string(r.Key)], versionOf(r))
				produced[r.Partition].add(r)
			}
			mu.Unlock()
		}
	})

	var passes, lastPass int
	var all []*kgo.Record
	began := time.Now()
	runsBefore := cleanerCounter(t, ctx, p, "braid_cleaner_runs_total")
	for done := false; !done && !t.Failed(); {
		if time.Since(began) > produceFor {
			close(stop)
			wg.Wait()
			done = true // one last pass over the quiet stream
		}
		mu.Lock()
		want := maps.Clone(acked)
		mu.Unlock()
		recs := livePass(t, ctx, p, topic, parts, passes, want)
		passes, lastPass = passes+1, len(recs)
		all = append(all, recs...)
	}
	if t.Failed() {
		return
	}
	// Everything read in any pass was produced, at that offset.
	bad := 0
	for i, r := range all {
		want, ok := produced[r.Partition][r.Offset]
		if !ok {
			t.Errorf("read %s: nothing was produced there", describe(r))
		} else if checkRecord(t, i, r, want, true) {
			continue
		}
		if bad++; bad == 5 {
			t.FailNow()
		}
	}
	runs := cleanerCounter(t, ctx, p, "braid_cleaner_runs_total") - runsBefore
	removed := cleanerCounter(t, ctx, p, "braid_cleaner_removed_bytes_total")
	total := len(produced[0]) + len(produced[1])
	t.Logf("%d records produced in %s; %d passes read %d records in all (%d in the last); cleaner: %v runs, %v bytes removed",
		total, produceFor, passes, len(all), lastPass, runs, removed)
	if passes < 5 || runs < 5 || removed <= 0 {
		t.Fatalf("%d passes, %v cleaner runs, %v bytes removed: readers and the cleaner did not overlap enough to test anything", passes, runs, removed)
	}
}

func versionOf(r *kgo.Record) int {
	for _, h := range r.Headers {
		if h.Key == "v" {
			v, _ := strconv.Atoi(string(h.Value))
			return v
		}
	}
	return -1
}

// livePass reads every partition with a new kgo consumer from the start
// until it has caught up with the high watermark, and checks the pass:
// versions per key only go up, values match their version, and every key
// of want appears with at least its version.
func livePass(t *testing.T, ctx context.Context, p *braidtest.Proc, topic string, parts int32, pass int, want map[string]int) []*kgo.Record {
	t.Helper()
	starts := map[int32]kgo.Offset{}
	for part := range parts {
		starts[part] = kgo.NewOffset().At(0)
	}
	cl := newClient(t, p, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: starts}), kgo.FetchMaxWait(50*time.Millisecond))
	defer cl.Close()
	pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	caught := map[int32]bool{}
	for part := range parts {
		if p.EndOffset(ctx, topic, part, false) == 0 {
			caught[part] = true // nothing to read yet
		}
	}
	seen := map[string]int{}
	seenAt := map[string]int64{}
	var out []*kgo.Record
	for len(caught) < int(parts) {
		fs := cl.PollFetches(pctx)
		if pctx.Err() != nil {
			t.Fatalf("pass %d: did not catch up with the stream within 15 s (caught up: %v)", pass, caught)
		}
		failOnFetchErrors(t, fs)
		fs.EachPartition(func(fp kgo.FetchTopicPartition) {
			for _, r := range fp.Records {
				key, v := string(r.Key), versionOf(r)
				if v <= seen[key] {
					t.Errorf("pass %d: key %s went back from version %d (offset %d) to %d (offset %d)", pass, key, seen[key], seenAt[key], v, r.Offset)
				}
				if r.Value != nil && !strings.HasPrefix(string(r.Value), fmt.Sprintf("%s:%d:", key, v)) {
					t.Errorf("pass %d: %s carries version %d", pass, describe(r), v)
				}
				seen[key], seenAt[key] = v, r.Offset
				out = append(out, r)
			}
			if n := len(fp.Records); n > 0 && fp.Records[n-1].Offset+1 >= fp.HighWatermark {
				caught[fp.Partition] = true
			}
		})
	}
	for key, v := range want {
		if seen[key] < v {
			t.Errorf("pass %d: key %s was acknowledged at version %d before the pass, the pass saw version %d (0: none)", pass, key, v, seen[key])
		}
	}
	return out
}

// TestCompactionIsIndependentOfSegmenting: one deterministic write sequence
// against three nodes that cut segments differently (segment.bytes 200,
// 1500, 10000) and clean at different paces. Once each has cleaned
// everything below a sentinel record, the records below the sentinel are
// identical on all three and are what the model says: the latest record
// per key, minus the tombstones older than delete.retention.ms.
func TestCompactionIsIndependentOfSegmenting(t *testing.T) {
	seed := testSeed(t)
	const topic, keys, chunks = "cmeta", 30, 70
	retention := time.Hour
	recent := time.Now().Add(-time.Minute)
	old := recent.Add(-2 * retention) // tombstones in chunks stamped this old are past delete.retention.ms

	// The write sequence, identical for all nodes. Each chunk is all old or
	// all new, so whatever batches a client makes of it, a batch's max
	// timestamp says the same about delete.retention.ms.
	type chunk struct {
		recs []*kgo.Record
		old  bool
	}
	var seq []chunk
	rng := rand.New(rand.NewPCG(seed, 4))
	n := 0
	for range chunks {
		c := chunk{old: rng.IntN(2) == 0}
		for range 1 + rng.IntN(15) {
			key := fmt.Sprintf("key-%02d", rng.IntN(keys))
			ts := recent.Add(time.Duration(n) * time.Millisecond)
			if c.old {
				ts = old.Add(time.Duration(n) * time.Millisecond)
			}
			r := kgo.Record{Topic: topic, Key: []byte(key), Timestamp: ts,
				Headers: []kgo.RecordHeader{{Key: "n", Value: []byte(strconv.Itoa(n))}}}
			if rng.IntN(100) >= 10 {
				r.Value = []byte(fmt.Sprintf("%s#%d%s", key, n, strings.Repeat("~", rng.IntN(120))))
			}
			c.recs = append(c.recs, &r)
			n++
		}
		seq = append(seq, c)
	}

	type run struct {
		segBytes int
		interval string
		got      []*kgo.Record
		took     time.Duration
	}
	runs := []*run{{segBytes: 200, interval: "50ms"}, {segBytes: 1500, interval: "200ms"}, {segBytes: 10000, interval: "700ms"}}
	t.Run("nodes", func(t *testing.T) {
		for _, rn := range runs {
			t.Run(fmt.Sprintf("segment.bytes=%d", rn.segBytes), func(t *testing.T) {
				t.Parallel()
				began := time.Now()
				p := startCleaning(t, rn.interval)
				ctx := testCtx(t, 50*time.Second)
				createStream(t, ctx, newAdmin(t, p), topic, 1, compactConfigs(
					"segment.bytes", strconv.Itoa(rn.segBytes), "delete.retention.ms", strconv.Itoa(int(retention.Milliseconds()))))
				prod := newProducer(t, p)
				produced := producedLog{}
				oldTomb := map[int64]bool{}
				for _, c := range seq {
					recs := make([]*kgo.Record, len(c.recs))
					for i, r := range c.recs {
						cp := *r
						recs[i] = &cp
					}
					produce(t, ctx, prod, recs...)
					produced.add(recs...)
					for _, r := range recs {
						if c.old && r.Value == nil {
							oldTomb[r.Offset] = true
						}
					}
					// Spread the writes over about a second, so that the
					// faster cleaners run between them.
					time.Sleep(15 * time.Millisecond)
				}
				if len(produced) != n {
					t.Fatalf("produced %d records at %d distinct offsets", n, len(produced))
				}
				// The sentinel: rollHead's small record heads the log alone.
				big, sentinel := rollHead(t, ctx, prod, topic, 0, "sentinel")
				produced.add(big, sentinel)
				s := waitCleaned(t, ctx, p, topic, 0, sentinel.Offset-1)
				got := checkCompacted(t, ctx, p, topic, 0, produced, *s.CleanedTo, func(r *kgo.Record) bool { return oldTomb[r.Offset] })
				for _, r := range got {
					if r.Offset < sentinel.Offset {
						rn.got = append(rn.got, r)
					}
				}
				rn.took = time.Since(began)
				t.Logf("%d records produced, %d left below the sentinel at %d; %v; %s", n, len(rn.got), sentinel.Offset, s, cleanerMetrics(t, ctx, p))
			})
		}
	})
	if t.Failed() {
		return
	}
	show := func(rs []*kgo.Record) []string {
		var out []string
		for _, r := range rs {
			out = append(out, fmt.Sprintf("%d %s=%s %v", r.Offset, r.Key, showBytes(r.Value), r.Headers))
		}
		return out
	}
	want := show(runs[0].got)
	for _, rn := range runs[1:] {
		if got := show(rn.got); !slices.Equal(got, want) {
			t.Errorf("segment.bytes=%d left %d records below the sentinel, segment.bytes=%d left %d; first difference at %d:\n%s\nvs\n%s",
				rn.segBytes, len(got), runs[0].segBytes, len(want), firstDiff(got, want), strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	for _, rn := range runs {
		t.Logf("segment.bytes=%d, cleaner interval %s: %d records left, took %s", rn.segBytes, rn.interval, len(rn.got), rn.took.Round(time.Millisecond))
	}
}

func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// inTxnKV runs one transaction of keyed records on topic/part, ending it
// with commit or abort, and returns the records as produced.
func inTxnKV(t testing.TB, ctx context.Context, cl *kgo.Client, topic string, part int32, commit bool, kvs ...string) []*kgo.Record {
	t.Helper()
	if err := cl.BeginTransaction(); err != nil {
		t.Fatalf("begin: %v", err)
	}
	var recs []*kgo.Record
	for i := 0; i+1 < len(kvs); i += 2 {
		recs = append(recs, &kgo.Record{Topic: topic, Partition: part, Key: []byte(kvs[i]), Value: []byte(kvs[i+1])})
	}
	produce(t, ctx, cl, recs...)
	if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
		t.Fatalf("end transaction (commit %v): %v", commit, err)
	}
	return recs
}

// TestCompactionTransactions: committed records compact like any other;
// aborted records are removed (read_uncommitted no longer sees them), and
// read_committed sees the latest committed value per key. Nothing at or
// past the last stable offset is cleaned while a transaction is open.
func TestCompactionTransactions(t *testing.T) {
	p := startCleaning(t, "100ms")
	ctx := testCtx(t, 60*time.Second)
	adm := newAdmin(t, p)
	const topic = "ctxn"
	createStream(t, ctx, adm, topic, 1, compactConfigs())
	createStream(t, ctx, adm, "ctick", 1, compactConfigs())
	tx := txnProducer(t, p, "tx-compact")
	plain := newProducer(t, p)

	committed := producedLog{} // everything but aborted records
	aborted := producedLog{}
	txn := func(commit bool, kvs ...string) {
		recs := inTxnKV(t, ctx, tx, topic, 0, commit, kvs...)
		if commit {
			committed.add(recs...)
		} else {
			aborted.add(recs...)
		}
	}
	txn(true, "a", "a1", "b", "b1", "c", "c1")
	txn(false, "a", "a-aborted", "d", "d-aborted")
	txn(true, "b", "b2")
	txn(false, "c", "c-aborted", "b", "b-aborted")
	e := &kgo.Record{Topic: topic, Key: []byte("e"), Value: []byte("e1")}
	produce(t, ctx, plain, e)
	committed.add(e)
	txn(true, "a", "a2")
	big, head := rollHead(t, ctx, plain, topic, 0, "1")
	committed.add(big, head)

	check := func(stage string, cleanedTo int64) {
		t.Helper()
		var want []string
		for _, r := range committed.latestBelow(1 << 62) {
			want = append(want, fmt.Sprintf("%d %s=%s", r.Offset, r.Key, r.Value))
		}
		sort.Slice(want, func(i, j int) bool { return offsetOf(want[i]) < offsetOf(want[j]) })
		for _, isolation := range []bool{false, true} {
			var got []string
			for _, r := range p.ReadPartition(ctx, topic, 0, isolation) {
				if a, ok := aborted[r.Offset]; ok {
					t.Errorf("%s (cleaned_to %d, read_committed %v): aborted record %s still there", stage, cleanedTo, isolation, describe(a))
					continue
				}
				got = append(got, fmt.Sprintf("%d %s=%s", r.Offset, r.Key, r.Value))
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s (cleaned_to %d, read_committed %v):\n got %q\nwant %q (latest committed per key)", stage, cleanedTo, isolation, got, want)
			}
		}
	}
	s := waitCleaned(t, ctx, p, topic, 0, big.Offset-1) // past a2's commit marker
	check("after cleaning", *s.CleanedTo)

	// An open transaction holds the last stable offset: the records after
	// it stay, superseded or not, until it ends.
	if err := tx.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	open := &kgo.Record{Topic: topic, Key: []byte("x"), Value: []byte("x-open")}
	produce(t, ctx, tx, open)
	y1 := &kgo.Record{Topic: topic, Key: []byte("y"), Value: []byte("y1")}
	y2 := &kgo.Record{Topic: topic, Key: []byte("y"), Value: []byte("y2")}
	produce(t, ctx, plain, y1)
	produce(t, ctx, plain, y2)
	big2, head2 := rollHead(t, ctx, plain, topic, 0, "2")
	// Let the cleaner go round: another stream cleaned twice after this
	// point means at least one full cleaner pass saw ctxn.
	tick := producedLog{}
	for i := range 2 {
		tb, th := rollHead(t, ctx, plain, "ctick", 0, strconv.Itoa(i))
		tick.add(tb, th)
		waitCleaned(t, ctx, p, "ctick", 0, tb.Offset)
	}
	s = describeCleaner(t, ctx, p, topic)[0]
	if *s.CleanedTo > open.Offset {
		t.Errorf("cleaned_to %d is past the open transaction's first offset %d (the last stable offset)", *s.CleanedTo, open.Offset)
	}
	if lso := p.EndOffset(ctx, topic, 0, true); lso != open.Offset {
		t.Errorf("last stable offset %d with the transaction open at %d", lso, open.Offset)
	}
	var seenY []string
	for _, r := range p.ReadPartition(ctx, topic, 0, false) {
		if string(r.Key) == "y" {
			seenY = append(seenY, string(r.Value))
		}
	}
	if !slices.Equal(seenY, []string{"y1", "y2"}) {
		t.Errorf("with a transaction open before them, y's records read %q, want both (nothing past the last stable offset is cleaned)", seenY)
	}
	if err := tx.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	committed.add(open, y1, y2, big2, head2)
	big3, head3 := rollHead(t, ctx, plain, topic, 0, "3")
	committed.add(big3, head3)
	s = waitCleaned(t, ctx, p, topic, 0, big3.Offset)
	check("after the transaction committed", *s.CleanedTo)
}

func offsetOf(s string) int64 {
	o, _ := strconv.ParseInt(s[:strings.IndexByte(s, ' ')], 10, 64)
	return o
}

// TestCompactionRefusesNullKeys: a record without a key cannot be compacted,
// so a compacted stream refuses it with INVALID_RECORD and writes nothing
// (a batch mixing keyed and keyless records is refused whole); a delete
// stream takes it.
func TestCompactionRefusesNullKeys(t *testing.T) {
	p := startCleaning(t, "200ms")
	ctx := testCtx(t, 30*time.Second)
	adm := newAdmin(t, p)
	prod := newProducer(t, p)
	raw := newClient(t, p)
	for _, policy := range []string{"compact", "compact,delete", "delete"} {
		t.Run(strings.ReplaceAll(policy, ",", "+"), func(t *testing.T) {
			topic := "nullkey-" + strings.ReplaceAll(policy, ",", "-")
			createStream(t, ctx, adm, topic, 1, compactConfigs("cleanup.policy", policy))
			refused := strings.Contains(policy, "compact")
			err := prod.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("no key")}).FirstErr()
			switch {
			case refused && !errors.Is(err, kerr.InvalidRecord):
				t.Fatalf("keyless record: %v, want INVALID_RECORD", err)
			case !refused && err != nil:
				t.Fatalf("keyless record on a delete stream: %v", err)
			}
			want := int64(1)
			if refused {
				want = 0
			}
			if end := p.EndOffset(ctx, topic, 0, false); end != want {
				t.Fatalf("end offset %d after the keyless record, want %d", end, want)
			}
			// One raw batch, a keyed record then a keyless one.
			code := rawProduce(t, ctx, raw, nil, topic, keyedBatch([]byte("k"), nil))
			if refused {
				if code != kerr.InvalidRecord.Code {
					t.Errorf("batch with one keyless record: %v, want INVALID_RECORD", kerr.ErrorForCode(code))
				}
			} else {
				want += 2
				if code != 0 {
					t.Errorf("batch with a keyless record on a delete stream: %v", kerr.ErrorForCode(code))
				}
			}
			if end := p.EndOffset(ctx, topic, 0, false); end != want {
				t.Fatalf("end offset %d after the mixed batch, want %d", end, want)
			}
			// A keyed record still goes in, right at the end.
			r := &kgo.Record{Topic: topic, Key: []byte("k"), Value: []byte("keyed")}
			produce(t, ctx, prod, r)
			if r.Offset != want {
				t.Errorf("keyed record at offset %d, want %d", r.Offset, want)
			}
		})
	}
}

// keyedBatch builds an uncompressed, non-idempotent batch of records with
// these keys (nil: no key) and values "v<i>".
func keyedBatch(keys ...[]byte) []byte {
	now := time.Now().UnixMilli()
	rb := kmsg.RecordBatch{
		Magic: 2, LastOffsetDelta: int32(len(keys) - 1), FirstTimestamp: now, MaxTimestamp: now,
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: int32(len(keys)),
	}
	for i, k := range keys {
		rec := kmsg.Record{Key: k, Value: []byte(fmt.Sprintf("v%d", i)), OffsetDelta: int32(i)}
		body := rec.AppendTo(nil)[1:] // encoded with Length 0: one varint byte
		rec.Length = int32(len(body))
		rb.Records = rec.AppendTo(rb.Records)
	}
	b := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

// cleanerCycles rolls the head of the eagerly cleaned stream tick and waits
// until it is cleaned, n times: at least n-1 full cleaner passes over every
// shard have run since the call began.
func cleanerCycles(t testing.TB, ctx context.Context, p *braidtest.Proc, prod *kgo.Client, tick string, n int) {
	t.Helper()
	for range n {
		big, _ := rollHead(t, ctx, prod, tick, 0, fmt.Sprint(time.Now().UnixNano()))
		waitCleaned(t, ctx, p, tick, 0, big.Offset)
	}
}

// TestCompactionTriggers: a pass runs only when the dirty ratio reaches
// min.cleanable.dirty.ratio or a dirty record is older than
// max.compaction.lag.ms, and never touches the active head or batches
// younger than min.compaction.lag.ms.
func TestCompactionTriggers(t *testing.T) {
	p := startCleaning(t, "100ms")
	ctx := testCtx(t, 60*time.Second)
	adm := newAdmin(t, p)
	prod := newProducer(t, p, kgo.ProducerBatchCompression(kgo.NoCompression()))
	createStream(t, ctx, adm, "ctick", 1, compactConfigs())

	// base writes 100 distinct keys (about 21 KB, plus a 10 KB rolled head)
	// and has them cleaned once (a never cleaned shard is all dirt), then
	// adds some dirt: a new value for u000 and a rolled head, about 10 KB,
	// a quarter of the cleanable range. It returns what was produced,
	// cleaned_to after the first pass and u000's old record.
	base := func(topic string) (producedLog, int64, *kgo.Record) {
		l := producedLog{}
		for c := range 10 {
			recs := make([]*kgo.Record, 10)
			for i := range recs {
				key := fmt.Sprintf("u%03d", c*10+i)
				recs[i] = &kgo.Record{Topic: topic, Key: []byte(key), Value: randomBytes(uint64(c*10+i), 200)}
			}
			produce(t, ctx, prod, recs...)
			l.add(recs...)
		}
		big, head := rollHead(t, ctx, prod, topic, 0, "1")
		l.add(big, head)
		cleaned := *waitCleaned(t, ctx, p, topic, 0, big.Offset).CleanedTo
		upd := &kgo.Record{Topic: topic, Key: []byte("u000"), Value: []byte("new")}
		produce(t, ctx, prod, upd)
		l.add(upd)
		big, head = rollHead(t, ctx, prod, topic, 0, "2")
		l.add(big, head)
		return l, cleaned, l[0]
	}

	t.Run("ratio-not-reached", func(t *testing.T) {
		const topic = "cratio"
		createStream(t, ctx, adm, topic, 1, compactConfigs("min.cleanable.dirty.ratio", "0.5"))
		l, cleaned, old := base(topic)
		cleanerCycles(t, ctx, p, prod, "ctick", 3)
		s := describeCleaner(t, ctx, p, topic)[0]
		if *s.CleanedTo != cleaned || *s.DirtyRatio <= 0 || *s.DirtyRatio >= 0.5 {
			t.Errorf("with about 25%% dirt and min.cleanable.dirty.ratio 0.5: %v; want cleaned_to still %d and a dirty ratio in (0, 0.5)", s, cleaned)
		}
		t.Logf("not cleaned: %v", s)
		got := checkCompacted(t, ctx, p, topic, 0, l, *s.CleanedTo, nil)
		if len(got) == 0 || got[0].Offset != old.Offset {
			t.Errorf("u000's old record %s went without a pass being due", describe(old))
		}
	})
	t.Run("max-lag", func(t *testing.T) {
		// The same shape, but dirt older than 2 s forces a pass.
		const topic = "cmaxlag"
		createStream(t, ctx, adm, topic, 1, compactConfigs("min.cleanable.dirty.ratio", "0.5", "max.compaction.lag.ms", "2000"))
		l, _, old := base(topic)
		s := waitCleaned(t, ctx, p, topic, 0, int64(len(l)-3))
		got := checkCompacted(t, ctx, p, topic, 0, l, *s.CleanedTo, nil)
		if len(got) > 0 && got[0].Offset == old.Offset {
			t.Errorf("u000's old record %s survived a pass forced by max.compaction.lag.ms", describe(old))
		}
	})
	t.Run("head", func(t *testing.T) {
		// A segment of one large record, then k=v1, k=v2 in the active
		// head: passes clean the first segment and leave the head alone.
		const topic = "chead"
		createStream(t, ctx, adm, topic, 1, compactConfigs())
		l := producedLog{}
		big := &kgo.Record{Topic: topic, Key: []byte("big"), Value: randomBytes(99, rollBytes)}
		produce(t, ctx, prod, big)
		l.add(big)
		for _, v := range []string{"v1", "v2"} {
			r := &kgo.Record{Topic: topic, Key: []byte("k"), Value: []byte(v)}
			produce(t, ctx, prod, r)
			l.add(r)
		}
		waitCleaned(t, ctx, p, topic, 0, big.Offset)
		cleanerCycles(t, ctx, p, prod, "ctick", 3)
		s := describeCleaner(t, ctx, p, topic)[0]
		if *s.CleanedTo > big.Offset+1 {
			t.Errorf("cleaned_to %d reaches into the active head at %d: %v", *s.CleanedTo, big.Offset+1, s)
		}
		if got := readAll(t, ctx, p, topic, 0, false); len(got) != 3 || got[1] != "v1" || got[2] != "v2" {
			t.Errorf("read %d records, want the large one, v1 and v2 (the head is never cleaned)", len(got))
		}
		checkCompacted(t, ctx, p, topic, 0, l, *s.CleanedTo, nil)
	})
	t.Run("min-lag", func(t *testing.T) {
		// While min.compaction.lag.ms is 1 h, nothing written here is old
		// enough to clean, however long the cleaner cycles take; lowered to
		// 2 s, the batches are cleaned, and not before they are 2 s old.
		const topic, lag = "cminlag", 2 * time.Second
		createStream(t, ctx, adm, topic, 1, compactConfigs("min.compaction.lag.ms", "3600000"))
		l := producedLog{}
		began := time.Now()
		for _, v := range []string{"v1", "v2"} {
			r := &kgo.Record{Topic: topic, Key: []byte("k"), Value: []byte(v)}
			produce(t, ctx, prod, r)
			l.add(r)
		}
		big, head := rollHead(t, ctx, prod, topic, 0, "1")
		l.add(big, head)
		cleanerCycles(t, ctx, p, prod, "ctick", 2)
		s := describeCleaner(t, ctx, p, topic)[0]
		if *s.CleanedTo != 0 {
			t.Errorf("with min.compaction.lag.ms 1h: %v, want nothing cleaned", s)
		}
		if got := readAll(t, ctx, p, topic, 0, false); len(got) < 2 || got[0] != "v1" {
			t.Errorf("with min.compaction.lag.ms 1h: read %q, want v1 still there", got)
		}
		setTopicConfig(t, ctx, adm, topic, "min.compaction.lag.ms", strconv.Itoa(int(lag.Milliseconds())))
		s = waitCleaned(t, ctx, p, topic, 0, big.Offset-1)
		if age := time.Since(began); age < lag {
			t.Errorf("cleaned %s after writing, before min.compaction.lag.ms %s: %v", age.Round(time.Millisecond), lag, s)
		}
		checkCompacted(t, ctx, p, topic, 0, l, *s.CleanedTo, nil)
	})
}
