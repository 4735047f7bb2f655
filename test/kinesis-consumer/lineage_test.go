package kinesisconsumer

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"math/rand"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	consumer "github.com/harlow/kinesis-consumer"
	memstore "github.com/harlow/kinesis-consumer/store/memory"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/braidstream/braid/internal/braidtest"
)

const (
	stream  = "lineage"
	numKeys = 200
	// The consumer reads at most readBatch records per shard every
	// scanInterval, slower than the producer writes, so that it lags and
	// children are listed while their parents still have unread records:
	// only then does reading a child early reorder a key.
	readBatch    = 40
	scanInterval = 40 * time.Millisecond
	// discoverEvery is how often the consumer lists shards (the library's
	// own cadence is a fixed 30 s; see pollingGroup).
	discoverEvery = 150 * time.Millisecond
)

// TestHarlowConsumerFollowsLineage reads a stream with harlow/kinesis-consumer
// while keyed records are written through both doors and the stream is split,
// merged and scaled, and checks that every acknowledged record is read once
// and each key's records in the order they were written.
func TestHarlowConsumerFollowsLineage(t *testing.T) {
	// harlow/kinesis-consumer v0.3.6's Scan writes its shardsInProcess map
	// from every shard's goroutine without a lock (consumer.go:130): two
	// shards starting or ending at once crash the process with "fatal
	// error: concurrent map writes" (seen here when all shards start
	// together; fixed upstream after v0.3.6, untagged). On one P the
	// runtime's map code is not preempted midway, so it cannot happen;
	// braid is another process and keeps every core.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	p := braidtest.Start(t)
	// Bounded once braid is built and running.
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	kc := p.Kinesis()
	if _, err := kc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(stream), ShardCount: aws.Int32(2)}); err != nil {
		t.Fatalf("CreateStream: %v", err)
	}

	// A consumer reads from the start; midway it is stopped and a second
	// one resumes from the checkpoints the first left in the store (after
	// the last record it handed out, AFTER_SEQUENCE_NUMBER), parents
	// half-read included.
	seen := newLedger()
	var logs scanLog
	store := memstore.New()
	cur := startScan(t, ctx, kc, store, seen, &logs)
	restartAfter := 4

	// The producer writes until stop is closed; the resharder works
	// meanwhile.
	prod := &producer{kc: kc, kafka: p.Client(), next: make(map[string]int), acked: newLedger(), rng: rand.New(rand.NewSource(1))}
	stop := make(chan struct{})
	prodDone := make(chan error, 1)
	go func() { prodDone <- prod.run(ctx, stop) }()

	reshard := []func() error{
		func() error { return splitKinesis(ctx, kc, 0) },
		func() error { return mergeKinesis(ctx, kc, 1) },
		func() error { return scaleKinesis(ctx, kc, 5) },
		func() error { return splitHTTP(ctx, p, kc, 2) },
		func() error { return mergeKinesis(ctx, kc, 0) },
		func() error { return scaleKinesis(ctx, kc, 2) },
		func() error { return mergeKinesis(ctx, kc, 0) },
		func() error { return splitKinesis(ctx, kc, 0) },
		func() error { return scaleKinesis(ctx, kc, 3) },
	}
	time.Sleep(400 * time.Millisecond)
	for i, op := range reshard {
		if err := op(); err != nil {
			close(stop)
			<-prodDone
			t.Fatalf("reshard step %d: %v", i, err)
		}
		time.Sleep(400 * time.Millisecond)
		if i == restartAfter {
			if err := cur.stop(); err != nil {
				t.Fatalf("first consumer: %v", err)
			}
			logs.Log("[TEST] restart after", seen.count(), "records")
			cur = startScan(t, ctx, kc, store, seen, &logs)
		}
	}
	close(stop)
	if err := <-prodDone; err != nil {
		t.Fatalf("producer: %v", err)
	}
	acked := prod.acked.count()
	t.Logf("acknowledged %d records (%d through the Kafka door) in %d Kinesis and %d Kafka calls",
		acked, prod.kafkaRecords, prod.kinesisCalls, prod.kafkaCalls)

	// Wait until the consumer has read every acknowledged record (or has
	// read nothing new for 10 s), then a few scans more for duplicates to
	// show.
	began := time.Now()
	last, lastAt := -1, time.Now()
	for n := seen.distinct(); n < acked && time.Since(lastAt) < 10*time.Second; n = seen.distinct() {
		if n != last {
			last, lastAt = n, time.Now()
		}
		select {
		case err := <-cur.done:
			t.Fatalf("Scan ended early with %d of %d records read: %v\n%s", n, acked, err, logs.String())
		case <-ctx.Done():
			t.Fatalf("read %d of %d acknowledged records before the deadline\n%s", n, acked, logs.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Logf("the consumer read %d of %d records %v after the producer stopped", seen.distinct(), acked, time.Since(began).Round(time.Millisecond))
	time.Sleep(5 * scanInterval)
	if err := cur.stop(); err != nil {
		t.Fatalf("second consumer: %v", err)
	}

	shards, err := listAll(ctx, kc)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d shards listed at the end", len(shards))
	if problems := seen.check(prod.acked); len(problems) > 0 {
		sort.Strings(problems)
		shown := problems[:min(len(problems), 10)]
		t.Fatalf("%d problems, %d of them:\n%s\nscan log:\n%s", len(problems), len(shown), strings.Join(shown, "\n"), logs.String())
	}
	// The check above has teeth only if keys did move between shards
	// while being read.
	moved := seen.keysReadFrom(3)
	t.Logf("%d of %d keys were read from 3 or more shards", moved, numKeys)
	if moved < numKeys/2 {
		t.Fatalf("only %d keys were read from 3 or more shards: the reshards did not move keys as meant", moved)
	}
}

// scan is a running consumer.Scan.
type scan struct {
	cancel context.CancelFunc
	done   chan error
}

// startScan starts a harlow consumer that reads the stream from
// TRIM_HORIZON, or from the checkpoints in store, into seen.
func startScan(t *testing.T, ctx context.Context, kc *kinesis.Client, store *memstore.Store, seen *ledger, logs *scanLog) *scan {
	t.Helper()
	group := &pollingGroup{AllGroup: consumer.NewAllGroup(kc, store, stream, logs), every: discoverEvery}
	c, err := consumer.New(stream,
		consumer.WithClient(kc),
		consumer.WithGroup(group),
		consumer.WithLogger(logs),
		consumer.WithShardIteratorType(string(types.ShardIteratorTypeTrimHorizon)),
		consumer.WithScanInterval(scanInterval),
		consumer.WithMaxRecords(readBatch),
	)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	s := &scan{cancel: cancel, done: make(chan error, 1)}
	go func() {
		s.done <- c.Scan(ctx, func(r *consumer.Record) error {
			return seen.add(r.ShardID, string(r.Data))
		})
	}()
	return s
}

// stop cancels the scan and returns its error, if the cancel did not
// cause it. A call the cancel cuts short ends Scan with an error, which
// the library sometimes flattens to text ("get records error: %v"): only
// the text then says it was the cancel.
func (s *scan) stop() error {
	s.cancel()
	err := <-s.done
	if err == nil || errors.Is(err, context.Canceled) || strings.HasSuffix(err.Error(), context.Canceled.Error()) {
		return nil
	}
	return err
}

// pollingGroup is the library's AllGroup (its lineage walk: a shard is
// handed out only once its parents are closed by the consumer), listing
// shards every `every` instead of every 30 s, its fixed cadence. Each
// AllGroup.Start lists shards at once and then every 30 s until ctx ends, so
// starting one more every `every` lists more often; all of them share the
// AllGroup's state under its lock, as its own ticker would.
type pollingGroup struct {
	*consumer.AllGroup
	every time.Duration
}

func (g *pollingGroup) Start(ctx context.Context, shardC chan types.Shard) error {
	// Scan closes shardC once Start returns, while AllGroup's goroutines
	// may still send to it (a parent the cancel ended counts as read, so
	// its children are handed out): a send on a closed channel. They send
	// to found instead, which nobody closes, and only this loop sends to
	// shardC.
	found := make(chan types.Shard)
	errC := make(chan error, 1)
	list := func() {
		go func() {
			if err := g.AllGroup.Start(ctx, found); err != nil {
				select {
				case errC <- err:
				default:
				}
			}
		}()
	}
	tick := time.NewTicker(g.every)
	defer tick.Stop()
	list()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errC:
			return err
		case <-tick.C:
			list()
		case sh := <-found:
			select {
			case shardC <- sh:
			case <-ctx.Done():
				return nil
			}
		}
	}
}

// scanLog keeps the library's log lines (which shard it started and
// stopped when) for a failure report.
type scanLog struct {
	mu    sync.Mutex
	lines []string
	start time.Time
}

func (l *scanLog) Log(args ...interface{}) {
	line := fmt.Sprintln(args...)
	if strings.Contains(line, "fetching shards") {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.start.IsZero() {
		l.start = time.Now()
	}
	l.lines = append(l.lines, fmt.Sprintf("%6dms %s", time.Since(l.start).Milliseconds(), strings.TrimSpace(line)))
}

func (l *scanLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// ledger records, per key, the sequence numbers in the order they were
// written (acknowledged) or read, and for reads the shard each came from.
type ledger struct {
	mu     sync.Mutex
	seqs   map[string][]int
	shards map[string][]string
	n      int
	unique map[string]bool
}

func newLedger() *ledger {
	return &ledger{seqs: make(map[string][]int), shards: make(map[string][]string), unique: make(map[string]bool)}
}

// add records a read or write of data "key:seq".
func (l *ledger) add(shard, data string) error {
	key, s, ok := strings.Cut(data, ":")
	seq, err := strconv.Atoi(s)
	if !ok || err != nil {
		return fmt.Errorf("record %q from %s is not key:seq", data, shard)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seqs[key] = append(l.seqs[key], seq)
	l.shards[key] = append(l.shards[key], shard)
	l.n++
	l.unique[data] = true
	return nil
}

func (l *ledger) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}

func (l *ledger) distinct() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.unique)
}

// check compares what was read (l) with what was acknowledged: every
// acknowledged record read exactly once, nothing else, and each key's
// records read in increasing sequence.
func (l *ledger) check(acked *ledger) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	acked.mu.Lock()
	defer acked.mu.Unlock()
	var problems []string
	for data := range acked.unique {
		if !l.unique[data] {
			problems = append(problems, fmt.Sprintf("acknowledged record %q was not read", data))
		}
	}
	for data := range l.unique {
		if !acked.unique[data] {
			problems = append(problems, fmt.Sprintf("record %q was read but never acknowledged", data))
		}
	}
	keys := make([]string, 0, len(l.seqs))
	for k := range l.seqs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		seqs, shards := l.seqs[k], l.shards[k]
		for i := 1; i < len(seqs); i++ {
			switch {
			case seqs[i] == seqs[i-1]:
				problems = append(problems, fmt.Sprintf("key %s: seq %d read twice (from %s, then %s)", k, seqs[i], shards[i-1], shards[i]))
			case seqs[i] < seqs[i-1]:
				problems = append(problems, fmt.Sprintf("key %s: seq %d (from %s) read after seq %d (from %s)", k, seqs[i], shards[i], seqs[i-1], shards[i-1]))
			}
		}
	}
	if len(problems) == 0 && l.n != len(l.unique) {
		problems = append(problems, fmt.Sprintf("%d records read, %d distinct", l.n, len(l.unique)))
	}
	return problems
}

// keysReadFrom counts the keys whose records came from at least n shards.
func (l *ledger) keysReadFrom(n int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	count := 0
	for _, shards := range l.shards {
		distinct := make(map[string]bool)
		for _, s := range shards {
			distinct[s] = true
		}
		if len(distinct) >= n {
			count++
		}
	}
	return count
}

// producer writes keyed records "key:seq", each key's seq 0, 1, 2, ...,
// one call at a time so that a key's records are acknowledged in seq order:
// three calls in four through Kinesis PutRecords, one through the Kafka door.
type producer struct {
	kc    *kinesis.Client
	kafka *kgo.Client
	rng   *rand.Rand
	next  map[string]int
	acked *ledger

	kinesisCalls, kafkaCalls, kafkaRecords int
}

func (p *producer) run(ctx context.Context, stop <-chan struct{}) error {
	for call := 0; ; call++ {
		select {
		case <-stop:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		batch := make([]string, 0, 100)
		for range cap(batch) {
			key := fmt.Sprintf("k%03d", p.rng.Intn(numKeys))
			batch = append(batch, fmt.Sprintf("%s:%d", key, p.next[key]))
			p.next[key]++
		}
		var err error
		if call%4 == 3 {
			err = p.putKafka(ctx, batch)
		} else {
			err = p.putKinesis(ctx, batch)
		}
		if err != nil {
			return fmt.Errorf("call %d: %w", call, err)
		}
		for _, data := range batch {
			p.acked.add("", data)
		}
		time.Sleep(15 * time.Millisecond)
	}
}

func (p *producer) putKinesis(ctx context.Context, batch []string) error {
	in := &kinesis.PutRecordsInput{StreamName: aws.String(stream)}
	for _, data := range batch {
		key, _, _ := strings.Cut(data, ":")
		in.Records = append(in.Records, types.PutRecordsRequestEntry{PartitionKey: aws.String(key), Data: []byte(data)})
	}
	out, err := p.kc.PutRecords(ctx, in)
	if err != nil {
		return err
	}
	if n := aws.ToInt32(out.FailedRecordCount); n != 0 {
		return fmt.Errorf("PutRecords: %d of %d records failed", n, len(batch))
	}
	p.kinesisCalls++
	return nil
}

func (p *producer) putKafka(ctx context.Context, batch []string) error {
	recs := make([]*kgo.Record, 0, len(batch))
	for _, data := range batch {
		key, _, _ := strings.Cut(data, ":")
		recs = append(recs, &kgo.Record{Topic: stream, Key: []byte(key), Value: []byte(data)})
	}
	if err := p.kafka.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("Kafka produce: %w", err)
	}
	p.kafkaCalls++
	p.kafkaRecords += len(batch)
	return nil
}

// openShards lists the open shards in hash-key order.
func openShards(ctx context.Context, kc *kinesis.Client) ([]types.Shard, error) {
	out, err := kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(stream),
		ShardFilter: &types.ShardFilter{Type: types.ShardFilterTypeAtLatest}})
	if err != nil {
		return nil, err
	}
	open := out.Shards
	sort.Slice(open, func(i, j int) bool {
		return hashKey(open[i].HashKeyRange.StartingHashKey).Cmp(hashKey(open[j].HashKeyRange.StartingHashKey)) < 0
	})
	return open, nil
}

func listAll(ctx context.Context, kc *kinesis.Client) ([]types.Shard, error) {
	out, err := kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(stream)})
	if err != nil {
		return nil, err
	}
	return out.Shards, nil
}

func hashKey(s *string) *big.Int {
	n, _ := new(big.Int).SetString(aws.ToString(s), 10)
	return n
}

// pick returns the i-th open shard (in hash-key order).
func pick(ctx context.Context, kc *kinesis.Client, i int) (types.Shard, []types.Shard, error) {
	open, err := openShards(ctx, kc)
	if err != nil {
		return types.Shard{}, nil, err
	}
	if i >= len(open) {
		return types.Shard{}, nil, fmt.Errorf("no open shard %d of %d", i, len(open))
	}
	return open[i], open, nil
}

// splitKinesis splits the i-th open shard in the middle with SplitShard.
func splitKinesis(ctx context.Context, kc *kinesis.Client, i int) error {
	sh, _, err := pick(ctx, kc, i)
	if err != nil {
		return err
	}
	lo, hi := hashKey(sh.HashKeyRange.StartingHashKey), hashKey(sh.HashKeyRange.EndingHashKey)
	mid := new(big.Int).Add(lo, hi)
	mid.Rsh(mid, 1)
	mid.Add(mid, big.NewInt(1))
	_, err = kc.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String(stream), ShardToSplit: sh.ShardId, NewStartingHashKey: aws.String(mid.String())})
	return err
}

// mergeKinesis merges the i-th and i+1-th open shards with MergeShards,
// naming the higher range first.
func mergeKinesis(ctx context.Context, kc *kinesis.Client, i int) error {
	_, open, err := pick(ctx, kc, i+1)
	if err != nil {
		return err
	}
	_, err = kc.MergeShards(ctx, &kinesis.MergeShardsInput{StreamName: aws.String(stream), ShardToMerge: open[i+1].ShardId, AdjacentShardToMerge: open[i].ShardId})
	return err
}

func scaleKinesis(ctx context.Context, kc *kinesis.Client, n int32) error {
	_, err := kc.UpdateShardCount(ctx, &kinesis.UpdateShardCountInput{StreamName: aws.String(stream), TargetShardCount: aws.Int32(n), ScalingType: types.ScalingTypeUniformScaling})
	return err
}

// splitHTTP splits the i-th open shard through the admin HTTP API (in the
// middle, its default).
func splitHTTP(ctx context.Context, p *braidtest.Proc, kc *kinesis.Client, i int) error {
	sh, _, err := pick(ctx, kc, i)
	if err != nil {
		return err
	}
	id, err := strconv.Atoi(strings.TrimPrefix(aws.ToString(sh.ShardId), "shardId-"))
	if err != nil {
		return err
	}
	var reply map[string]any
	status, err := p.PostJSON("/v1/streams/"+stream+"/split", map[string]any{"shard": id}, &reply)
	if err == nil && status != 200 {
		err = errors.New(fmt.Sprint("status ", status, reply))
	}
	return err
}
