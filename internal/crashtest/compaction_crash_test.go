package crashtest

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/braidstream/braid/internal/braidtest"
)

// compactAttempt is one record a producer tried to write to the compacted
// stream: it may be in the log whether or not it was acknowledged.
type compactAttempt struct {
	part       int32
	key, value []byte // value nil: a tombstone
}

// compactLedger remembers every record tried and every acknowledgement.
// Records carry their id in an "id" header.
type compactLedger struct {
	mu        sync.Mutex
	attempted map[string]compactAttempt
	ackedAt   map[string]int64           // id -> acknowledged offset
	atOffset  map[int32]map[int64]string // partition -> offset -> acknowledged id
	latest    map[int32]map[string]int64 // partition -> key -> highest acknowledged offset
	acks      int
}

func newCompactLedger() *compactLedger {
	return &compactLedger{attempted: map[string]compactAttempt{}, ackedAt: map[string]int64{},
		atOffset: map[int32]map[int64]string{0: {}, 1: {}}, latest: map[int32]map[string]int64{0: {}, 1: {}}}
}

func (l *compactLedger) try(id string, a compactAttempt) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.attempted[id] = a
}

func (l *compactLedger) ack(t *testing.T, r *kgo.Record) {
	l.mu.Lock()
	defer l.mu.Unlock()
	id := recordID(r)
	if prev, dup := l.atOffset[r.Partition][r.Offset]; dup {
		t.Errorf("offset %d/%d acknowledged twice (%s and %s)", r.Partition, r.Offset, prev, id)
	}
	l.ackedAt[id] = r.Offset
	l.atOffset[r.Partition][r.Offset] = id
	if cur, ok := l.latest[r.Partition][string(r.Key)]; !ok || cur < r.Offset {
		l.latest[r.Partition][string(r.Key)] = r.Offset
	}
	l.acks++
}

func recordID(r *kgo.Record) string {
	for _, h := range r.Headers {
		if h.Key == "id" {
			return string(h.Value)
		}
	}
	return ""
}

// TestSIGKILLDuringCompaction SIGKILLs a node again and again while
// producers rewrite a small key set of a compacted stream with tiny
// segments and the cleaner runs every 50 ms, so kills land during cleaning
// and segment removal. After every restart:
//   - every record read is one a producer sent (key, value, id header), at
//     the offset it was acknowledged with if it was;
//   - for every key, a record at or after its latest acknowledged offset is
//     there: the acknowledged one itself, or a later write of the key that
//     was in flight at the kill (and so may legitimately have replaced it);
//   - the cleaner resumes: braid_cleaner_runs_total of the restarted process
//     grows (checked in two rounds of three; the third kills within 150 ms
//     of the restart, while the cleaner works through the backlog).
//
// One round in three lives past the 1 s checkpoint tick, so recoveries
// start both from the beginning of the log and from a checkpoint taken
// after compactions (the test fails if none did).
//
// At the end the heads are closed and, once all is cleaned, each key has
// exactly one record left.
func TestSIGKILLDuringCompaction(t *testing.T) {
	kills := killCount(t, "BRAID_COMPACTION_KILLS", 10)
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("BRAID_COMPACTION_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("seed %d (replay the kill timing with BRAID_COMPACTION_SEED=%d)", seed, seed)
	// Unthrottled, passes take a few milliseconds and come often: kills
	// land around index switches and file removals. Under the smallest I/O
	// budget (1 MiB/s) passes take tens of milliseconds, so more kills land
	// in the middle of one; there the producers pause 3 ms between chunks
	// so that the cleaner keeps up and the test's length stays bounded.
	for _, budget := range []string{"", "1048576"} {
		name, pace := "default-budget", time.Duration(0)
		// Small WAL segments and a short move interval, so the mover copies
		// log data into segment files while the cleaner rewrites them.
		args := []string{"--cleaner-interval", "50ms", "--wal-segment-bytes", "1048576", "--checkpoint-interval", "1s",
			"--move-interval", "300ms"}
		if budget != "" {
			name, pace = "budget-"+budget, 3*time.Millisecond
			args = append(args, "--cleaner-bytes-per-sec", budget)
		}
		t.Run(name, func(t *testing.T) { compactionKills(t, kills, seed, pace, args) })
	}
}

func compactionKills(t *testing.T, kills int, seed uint64, pace time.Duration, args []string) {
	began := time.Now()
	proc := braidtest.Start(t, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const stream, partitions = "ccrash", 2
	str := func(s string) *string { return &s }
	proc.CreateStream(ctx, stream, partitions, map[string]*string{
		"cleanup.policy":            str("compact"),
		"segment.bytes":             str("1024"),
		"min.cleanable.dirty.ratio": str("0.01"),
		"delete.retention.ms":       str("3600000"),
	})

	led := newCompactLedger()
	rng := rand.New(rand.NewPCG(seed, 7))
	var resumed []float64
	for round := range kills {
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for p := range 2 {
			wg.Go(func() {
				produceCompacted(t, ctx, proc, stream, round, p, rand.New(rand.NewPCG(seed, uint64(round*2+p))), pace, led, stop)
			})
		}
		if round%3 == 2 {
			time.Sleep(time.Duration(rng.IntN(150)) * time.Millisecond)
		} else {
			runs := waitCleanerRuns(t, ctx, proc, 15*time.Second)
			resumed = append(resumed, runs)
			life := time.Duration(50+rng.IntN(400)) * time.Millisecond
			if round%3 == 1 {
				// Past the 1 s checkpoint tick: the next recovery starts
				// from a checkpoint taken after compactions.
				life = time.Duration(1100+rng.IntN(900)) * time.Millisecond
			}
			time.Sleep(life)
		}
		proc.Kill()
		close(stop)
		wg.Wait()
		proc.Restart()
		verifyCompacted(t, ctx, proc, stream, partitions, led, nil)
		if t.Failed() {
			t.Fatalf("round %d failed", round)
		}
	}
	if led.acks < kills*20 {
		t.Fatalf("only %d records acknowledged over %d rounds: the load did not run", led.acks, kills)
	}

	// Close both heads, let the cleaner finish, and check that each key has
	// exactly one record left below them.
	// The first record is larger than segment.bytes even compressed (random
	// bytes), so it ends the segment; the second opens the new head.
	cl := proc.Client(kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RequiredAcks(kgo.AllISRAcks()))
	below := map[int32]int64{}
	for part := range int32(partitions) {
		for i, size := range []int{1100, 10} {
			id := fmt.Sprintf("roll-%d-%d", part, i)
			value := make([]byte, size)
			rand.NewChaCha8([32]byte{byte(part), byte(i)}).Read(value)
			r := &kgo.Record{Topic: stream, Partition: part, Key: []byte(id), Value: value,
				Headers: []kgo.RecordHeader{{Key: "id", Value: []byte(id)}}}
			led.try(id, compactAttempt{part: part, key: r.Key, value: r.Value})
			if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatalf("roll the head of %d: %v", part, err)
			}
			led.ack(t, r)
			if i == 0 {
				below[part] = r.Offset
			}
		}
		waitCleanedCrash(t, ctx, proc, stream, part, below[part]-1)
	}
	verifyCompacted(t, ctx, proc, stream, partitions, led, below)
	logs := proc.Logs()
	if kills >= 2 && !regexp.MustCompile(`msg="engine: recovered" .*checkpoint_at=[1-9]`).MatchString(logs) {
		t.Errorf("no restart recovered from a checkpoint: the rounds meant to live past one did not")
	}
	passes, busy := cleanerPasses(logs)
	t.Logf("%d kills, %d records acknowledged, cleaner runs seen after restarts %v; %d passes completed, %s cleaning in all; took %s",
		kills, led.acks, resumed, passes, busy.Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
}

// cleanerPasses counts the node's "engine: compacted shard" log lines and
// sums how long those passes took: a rough measure of how much of the time
// the kills had a pass to interrupt.
func cleanerPasses(logs string) (int, time.Duration) {
	n, busy := 0, time.Duration(0)
	for _, line := range strings.Split(logs, "\n") {
		if !strings.Contains(line, "engine: compacted shard") {
			continue
		}
		n++
		if _, took, ok := strings.Cut(line, " took="); ok {
			took, _, _ = strings.Cut(took, " ")
			d, _ := time.ParseDuration(took)
			busy += d
		}
	}
	return n, busy
}

// produceCompacted writes chunks of records of 40 keys (key i to partition
// i%2, 5% tombstones) with acks=all until stop is closed, pausing pace
// between chunks, and records every attempt and every acknowledgement.
func produceCompacted(t *testing.T, ctx context.Context, proc *braidtest.Proc, stream string, round, p int, rng *rand.Rand, pace time.Duration, led *compactLedger, stop chan struct{}) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(proc.KafkaAddr), kgo.DisableIdempotentWrite(),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(time.Millisecond),
		kgo.RecordRetries(0), kgo.RequestRetries(0), kgo.ProduceRequestTimeout(5*time.Second),
		kgo.RecordDeliveryTimeout(5*time.Second))
	if err != nil {
		t.Error(err)
		return
	}
	defer cl.Close()
	for i := 0; ; {
		select {
		case <-stop:
			return
		default:
		}
		recs := make([]*kgo.Record, 1+rng.IntN(8))
		for j := range recs {
			k := rng.IntN(40)
			id := fmt.Sprintf("r%d-p%d-%d", round, p, i)
			i++
			r := &kgo.Record{Topic: stream, Partition: int32(k % 2), Key: []byte(fmt.Sprintf("key-%02d", k)),
				Headers: []kgo.RecordHeader{{Key: "id", Value: []byte(id)}}}
			if rng.IntN(100) >= 5 {
				r.Value = bytes.Repeat([]byte(id+";"), 1+rng.IntN(20))
			}
			led.try(id, compactAttempt{part: r.Partition, key: r.Key, value: r.Value})
			recs[j] = r
		}
		for _, res := range cl.ProduceSync(ctx, recs...) {
			if res.Err == nil {
				led.ack(t, res.Record)
			}
		}
		if pace > 0 {
			time.Sleep(pace)
		}
	}
}

// verifyCompacted reads every partition from offset 0 and checks it against
// the ledger (see TestSIGKILLDuringCompaction). With below set, each
// partition is fully cleaned below that offset: every key has exactly one
// record there.
func verifyCompacted(t *testing.T, ctx context.Context, proc *braidtest.Proc, stream string, partitions int32, led *compactLedger, below map[int32]int64) {
	t.Helper()
	led.mu.Lock()
	defer led.mu.Unlock()
	readAt := map[string]int64{}
	for part := range partitions {
		end := proc.EndOffset(ctx, stream, part, false)
		recs := proc.ReadPartition(ctx, stream, part, false)
		last := map[string]int64{} // key -> offset of its last record read
		count := map[string]int{}  // key -> records read below `below`
		prev := int64(-1)
		bad := 0
		fail := func(format string, args ...any) {
			t.Helper()
			t.Errorf("partition %d (end %d): "+format, append([]any{part, end}, args...)...)
			if bad++; bad == 10 {
				t.Fatalf("partition %d: stopping after %d errors", part, bad)
			}
		}
		for _, r := range recs {
			if r.Offset <= prev {
				fail("offset %d follows %d", r.Offset, prev)
			}
			prev = r.Offset
			id := recordID(r)
			a, ok := led.attempted[id]
			switch {
			case !ok:
				fail("offset %d holds key %q with id %q, which no producer sent", r.Offset, r.Key, id)
				continue
			case a.part != part || !bytes.Equal(a.key, r.Key) || (a.value == nil) != (r.Value == nil) || !bytes.Equal(a.value, r.Value):
				fail("offset %d: id %s reads key %q value %q, was sent to partition %d as key %q value %q", r.Offset, id, r.Key, r.Value, a.part, a.key, a.value)
			}
			if at, acked := led.ackedAt[id]; acked && at != r.Offset {
				fail("id %s read at offset %d, acknowledged at %d", id, r.Offset, at)
			}
			if other, acked := led.atOffset[part][r.Offset]; acked && other != id {
				fail("offset %d reads id %s, acknowledged as %s", r.Offset, id, other)
			}
			if at, dup := readAt[id]; dup {
				fail("id %s read twice, at %d and %d", id, at, r.Offset)
			}
			readAt[id] = r.Offset
			last[string(r.Key)] = r.Offset
			if below != nil && r.Offset < below[part] {
				count[string(r.Key)]++
			}
		}
		for key, off := range led.latest[part] {
			if off >= end {
				fail("key %s acknowledged at %d, at or past the end", key, off)
			} else if got, ok := last[key]; !ok || got < off {
				fail("key %s: latest acknowledged record at %d (id %s) is gone, and no later record of the key replaced it (last read: %d, found %v)",
					key, off, led.atOffset[part][off], got, ok)
			}
		}
		if below != nil {
			for key, n := range count {
				if n != 1 {
					fail("key %s has %d records below %d, after cleaning up to there", key, n, below[part])
				}
			}
		}
	}
}

// cleanerRuns sums braid_cleaner_runs_total over its samples on /metrics.
func cleanerRuns(t *testing.T, ctx context.Context, proc *braidtest.Proc) float64 {
	t.Helper()
	return proc.MetricSum(ctx, "braid_cleaner_runs_total")
}

// waitCleanerRuns polls until the (restarted) node has counted a cleaner
// run, and returns the count.
func waitCleanerRuns(t *testing.T, ctx context.Context, proc *braidtest.Proc, within time.Duration) float64 {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if n := cleanerRuns(t, ctx, proc); n >= 1 {
			return n
		}
		if time.Now().After(deadline) {
			t.Fatalf("braid_cleaner_runs_total still 0 %s after the restart while producers write: the cleaner did not resume", within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitCleanedCrash polls `braid stream describe --format json` until the
// shard's cleaned_to is past `past`, for at most 30 s.
func waitCleanedCrash(t *testing.T, ctx context.Context, proc *braidtest.Proc, stream string, part int32, past int64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		cmd := exec.CommandContext(ctx, braidtest.Binary(t), "stream", "describe", stream, "--format", "json", "--brokers", proc.KafkaAddr, "--admin-addr", proc.HTTPAddr)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("braid stream describe: %v\n%s", err, out)
		}
		var d struct {
			Shards []struct {
				Shard     int32  `json:"shard"`
				CleanedTo *int64 `json:"cleaned_to"`
			} `json:"shards"`
		}
		if err := json.Unmarshal(out, &d); err != nil {
			t.Fatalf("braid stream describe: %v\n%s", err, out)
		}
		var cleaned *int64
		for _, s := range d.Shards {
			if s.Shard == part {
				cleaned = s.CleanedTo
			}
		}
		if cleaned == nil {
			t.Fatalf("braid stream describe: no cleaned_to for shard %d:\n%s", part, out)
		}
		if *cleaned > past {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("shard %d not cleaned past %d within 30 s (cleaned_to %d); GET /v1/streams/%s: %s; batches from %d: %s",
				part, past, *cleaned, stream, streamState(ctx, proc, stream), *cleaned-20, tailBatches(ctx, proc, stream, part, *cleaned-20))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// streamState returns GET /v1/streams/{name} from the node's HTTP address,
// for failure messages.
func streamState(ctx context.Context, proc *braidtest.Proc, stream string) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+proc.HTTPAddr+"/v1/streams/"+stream, nil)
	if err != nil {
		return err.Error()
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return strings.TrimSpace(b.String())
}

// tailBatches describes the batches of a shard from offset `from` on (base,
// last offset, records, bytes, max timestamp), for failure messages.
func tailBatches(ctx context.Context, proc *braidtest.Proc, stream string, part int32, from int64) string {
	v := kversion.Stable()
	v.SetMaxKeyVersion(1, 12) // Fetch by topic name
	cl, err := kgo.NewClient(kgo.SeedBrokers(proc.KafkaAddr), kgo.MaxVersions(v))
	if err != nil {
		return err.Error()
	}
	defer cl.Close()
	req := kmsg.NewPtrFetchRequest()
	req.MaxWaitMillis, req.MinBytes, req.MaxBytes = 0, 1, 8<<20
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = stream
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = part, max(from, 0), 4<<20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return fmt.Sprintf("fetch: %v", err)
	}
	b := resp.Topics[0].Partitions[0].RecordBatches
	var out []string
	for len(b) >= 12 {
		size := 12 + int(binary.BigEndian.Uint32(b[8:12]))
		if size > len(b) {
			break
		}
		var rb kmsg.RecordBatch
		if err := rb.ReadFrom(b[:size]); err != nil {
			out = append(out, err.Error())
			break
		}
		out = append(out, fmt.Sprintf("%d-%d:%dr/%dB/ts%d", rb.FirstOffset, rb.FirstOffset+int64(rb.LastOffsetDelta), rb.NumRecords, size, rb.MaxTimestamp))
		b = b[size:]
	}
	return strings.Join(out, " ")
}
