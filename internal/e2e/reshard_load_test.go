package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/braidstream/braid/internal/braidtest"
)

// TestReshardUnderLoad splits, merges and scales a key-routed stream more
// than 30 times (up to 16 shards and down to 1) while three real clients
// write keyed records to it and three consumer groups (classic range,
// classic cooperative-sticky, KIP-848) read it, then checks every reader
// against the ledger of what the producers saw acknowledged (see
// ledger_helpers_test.go for the exact rules):
//
//   - a reader that walks the lineage (each shard read fully before its
//     children) reads every acknowledged record, exactly once for the
//     idempotent franz-go producer and at least once for kcat and
//     kafka-python, and each key's records in the order acknowledged;
//   - each group reads every record, and each key's records in order, where
//     a group may go back only to re-deliver records it already read.
func TestReshardUnderLoad(t *testing.T) {
	needKcat(t)
	needPythonModule(t, "kafka")
	p := braidtest.Start(t)
	ctx := testCtx(t, 100*time.Second)
	const stream = "ledger"
	routing := "key"
	createStream(t, ctx, newAdmin(t, p), stream, 4, map[string]*string{"braid.routing": &routing})

	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0x1ed9e5))
	const (
		load      = 12 * time.Second
		reshardOp = 34
	)

	// Consumer groups, reading from the start and committing as they go.
	groupsStop := make(chan struct{})
	var groupsWG sync.WaitGroup
	type group struct {
		log    *groupLog
		kip848 bool
		hook   *requestCounter
	}
	groups := []group{
		{log: newGroupLog("ledger-range"), hook: &requestCounter{}},
		{log: newGroupLog("ledger-coop"), hook: &requestCounter{}},
		{log: newGroupLog("ledger-848"), kip848: true, hook: &requestCounter{}},
	}
	balancers := [][]kgo.Opt{
		{kgo.Balancers(kgo.RangeBalancer())},
		{kgo.Balancers(kgo.CooperativeStickyBalancer())},
		{kgo.Balancers(kgo.StickyBalancer()), kgo.ServerSideBalancer()},
	}
	for i, g := range groups {
		for m := range 2 {
			opts := append([]kgo.Opt{kgo.WithHooks(g.hook), kgo.ClientID(fmt.Sprintf("%s-%d", g.log.name, m))}, balancers[i]...)
			groupsWG.Go(func() { runGroupMember(ctx, t, p, stream, g.log, groupsStop, opts...) })
		}
	}

	l := newLedger()
	prodStop := make(chan struct{})
	var prodWG sync.WaitGroup
	prodWG.Go(func() { produceKgoLedger(ctx, t, p, stream, 128, l, prodStop) })
	prodWG.Go(func() { produceKcatLedger(ctx, t, p, stream, 32, l, prodStop) })
	prodWG.Go(func() { producePythonLedger(ctx, t, p, stream, 16, load, l) })

	start := time.Now()
	took := reshardRandomly(ctx, t, p, stream, rng, reshardOp, load/(reshardOp+1))
	t.Logf("%d reshards in %v: %v", reshardOp, time.Since(start).Round(time.Millisecond), took)
	close(prodStop)
	prodWG.Wait()
	t.Logf("producers: %s", l.summary())
	if t.Failed() {
		close(groupsStop)
		groupsWG.Wait()
		return
	}

	// The lineage-walking reader: every shard read to its end, parents
	// before children.
	var st streamState
	if status, err := p.GetJSON("/v1/streams/"+stream, &st); err != nil || status != 200 {
		t.Fatalf("GET stream: %d %v", status, err)
	}
	var all []*kgo.Record
	for _, id := range lineageOrder(t, st) {
		all = append(all, p.ReadPartition(ctx, stream, id, false)...)
	}
	t.Logf("lineage reader: %d records in %d shards (%d open)", len(all), len(st.Shards), len(openShards(t, st)))
	kl := checkLedger(t, l, "lineage reader", all)

	// The groups must catch up with the whole log, then their order is
	// checked against it.
	caughtUp := time.Now()
	deadline := caughtUp.Add(30 * time.Second)
	for _, g := range groups {
		for g.log.covers(kl) < kl.total && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
	}
	t.Logf("groups caught up %v after the lineage reader", time.Since(caughtUp).Round(time.Millisecond))
	close(groupsStop)
	groupsWG.Wait()
	for _, g := range groups {
		n := g.log.covers(kl)
		g.log.mu.Lock()
		reads := len(g.log.read)
		g.log.mu.Unlock()
		if n < kl.total {
			t.Errorf("group %s read %d of the log's %d records within the deadline", g.log.name, n, kl.total)
		}
		rewinds := checkGroupOrder(t, g.log, kl)
		t.Logf("group %s: %d reads of %d distinct records, %d rewinds; requests: %s",
			g.log.name, reads, n, rewinds, g.hook)
		// Which protocol the group really spoke: JoinGroup (11) for the
		// classic ones, ConsumerGroupHeartbeat (68) for KIP-848.
		if joins, beats := g.hook.count(11), g.hook.count(68); g.kip848 != (beats > 0 && joins == 0) {
			t.Errorf("group %s: %d JoinGroup and %d ConsumerGroupHeartbeat requests, want KIP-848=%v", g.log.name, joins, beats, g.kip848)
		}
	}
}

// needPythonModule skips a test whose Python module is missing, except in
// CI, where .ci/run installs it and a skip would read as a pass.
func needPythonModule(t *testing.T, module string) {
	t.Helper()
	out, err := exec.Command("/usr/bin/python3", "-c", "import "+module).CombinedOutput()
	if err == nil {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("python3 module %s not available in CI (.ci/run installs it): %v %s", module, err, out)
	}
	t.Skipf("python3 module %s not available: %v %s", module, err, out)
}

// requestCounter counts the requests a client wrote, by API key.
type requestCounter struct {
	mu sync.Mutex
	n  map[int16]int
}

func (c *requestCounter) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if err != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[int16]int{}
	}
	c.n[key]++
}

func (c *requestCounter) count(key int16) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[key]
}

func (c *requestCounter) String() string {
	return fmt.Sprintf("JoinGroup=%d SyncGroup=%d ConsumerGroupHeartbeat=%d OffsetCommit=%d",
		c.count(11), c.count(14), c.count(68), c.count(8))
}

// runGroupMember reads stream as a member of group g until stop closes. It
// processes each poll's records, commits them, and only then lets a
// rebalance proceed, as a careful application does.
func runGroupMember(ctx context.Context, t *testing.T, p *braidtest.Proc, stream string, g *groupLog, stop <-chan struct{}, opts ...kgo.Opt) {
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(p.KafkaAddr),
		kgo.ConsumerGroup(g.name), kgo.ConsumeTopics(stream),
		kgo.DisableAutoCommit(), kgo.BlockRebalanceOnPoll(),
		kgo.FetchMaxWait(250 * time.Millisecond),
		kgo.MetadataMinAge(250 * time.Millisecond), kgo.MetadataMaxAge(time.Second),
		kgo.HeartbeatInterval(500 * time.Millisecond),
	}, opts...)...)
	if err != nil {
		t.Errorf("group %s: client: %v", g.name, err)
		return
	}
	defer cl.Close()
	fetchErrs := 0
	for {
		select {
		case <-stop:
			return
		default:
		}
		pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		fs := cl.PollFetches(pctx)
		cancel()
		fs.EachError(func(topic string, part int32, err error) {
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				return
			}
			if fetchErrs++; fetchErrs <= 3 {
				t.Logf("group %s: fetch %s/%d: %v", g.name, topic, part, err)
			}
		})
		if recs := fs.Records(); len(recs) > 0 {
			g.add(recs)
			if err := cl.CommitUncommittedOffsets(ctx); err != nil && ctx.Err() == nil {
				t.Logf("group %s: commit: %v", g.name, err)
			}
		}
		cl.AllowRebalance()
	}
}

// produceKgoLedger writes keyed records with an idempotent franz-go client
// and its default partitioner (murmur2 of the key modulo the partition
// count, which is not Braid's MD5 rule, so most batches get routed) until
// stop closes; at most one record per key is in flight. Metadata is refreshed every second so the client sees the
// partition count change and moves keys between partitions.
func produceKgoLedger(ctx context.Context, t *testing.T, p *braidtest.Proc, stream string, keys int, l *ledger, stop <-chan struct{}) {
	var routed atomic.Int64 // acknowledged with offset -1: the server moved the record (docs/design/resharding.md)
	defer func() {
		t.Logf("kgo: %d records acknowledged at a negative offset (routed; a batch's later records get -1+delta and are not counted)", routed.Load())
		if routed.Load() == 0 {
			t.Errorf("kgo: no record was routed: the test did not exercise server-side routing")
		}
	}()
	l.producer("kgo", true)
	cl, err := kgo.NewClient(kgo.SeedBrokers(p.KafkaAddr), kgo.DefaultProduceTopic(stream),
		kgo.MetadataMinAge(250*time.Millisecond), kgo.MetadataMaxAge(time.Second),
		kgo.RecordRetries(20), kgo.RetryTimeout(30*time.Second))
	if err != nil {
		t.Errorf("kgo producer: %v", err)
		return
	}
	defer cl.Close()
	ready := make(chan int, keys)
	for i := range keys {
		ready <- i
	}
	next := make([]int64, keys)
	var inflight sync.WaitGroup
	for {
		var i int
		select {
		case <-stop:
			inflight.Wait()
			return
		case i = <-ready:
		}
		key, seq := "kgo-"+strconv.Itoa(i), next[i]
		next[i]++
		inflight.Add(1)
		cl.Produce(ctx, &kgo.Record{Key: []byte(key), Value: []byte(ledgerValue("kgo", key, seq))},
			func(r *kgo.Record, err error) {
				if err == nil && r.Offset < 0 {
					routed.Add(1)
				}
				l.record("kgo", key, seq, err)
				inflight.Done()
				ready <- i
			})
	}
}

// produceKcatLedger runs kcat (librdkafka) once per round until stop
// closes; each run writes one record of every key with acks=all. kcat says
// nothing about single records, so a run's records count as acknowledged
// only if kcat exited 0 and wrote nothing to stderr (librdkafka reports a
// failed delivery there); otherwise their fate is unknown.
func produceKcatLedger(ctx context.Context, t *testing.T, p *braidtest.Proc, stream string, keys int, l *ledger, stop <-chan struct{}) {
	l.producer("kcat", false)
	for round := int64(0); ; round++ {
		select {
		case <-stop:
			return
		default:
		}
		var in strings.Builder
		for i := range keys {
			key := "kcat-" + strconv.Itoa(i)
			fmt.Fprintf(&in, "%s:%s\n", key, ledgerValue("kcat", key, round))
		}
		var stderr bytes.Buffer
		cmd := exec.CommandContext(ctx, kcatPath, "-P", "-b", p.KafkaAddr, "-t", stream, "-K", ":",
			"-X", "acks=all", "-X", "linger.ms=1")
		cmd.Stdin, cmd.Stderr = strings.NewReader(in.String()), &stderr
		err := cmd.Run()
		if err == nil && stderr.Len() > 0 {
			err = fmt.Errorf("kcat stderr: %s", strings.TrimSpace(stderr.String()))
		} else if err != nil {
			err = fmt.Errorf("kcat: %v: %s", err, strings.TrimSpace(stderr.String()))
		}
		for i := range keys {
			l.record("kcat", "kcat-"+strconv.Itoa(i), round, err)
		}
	}
}

// producePythonLedger runs testdata/ledger_producer.py (kafka-python) for
// d and enters what it printed in the ledger.
func producePythonLedger(ctx context.Context, t *testing.T, p *braidtest.Proc, stream string, keys int, d time.Duration, l *ledger) {
	l.producer("py", false)
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "/usr/bin/python3", "testdata/ledger_producer.py",
		p.KafkaAddr, stream, strconv.Itoa(keys), strconv.FormatFloat(d.Seconds(), 'f', 1, 64))
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Errorf("ledger_producer.py: %v\n%s", err, stderr.String())
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.SplitN(sc.Text(), " ", 4)
		if len(f) < 3 {
			t.Errorf("ledger_producer.py: bad line %q", sc.Text())
			continue
		}
		seq, perr := strconv.ParseInt(f[2], 10, 64)
		if perr != nil {
			t.Errorf("ledger_producer.py: bad line %q", sc.Text())
			continue
		}
		var rerr error
		if f[0] != "ack" {
			rerr = fmt.Errorf("%s", strings.Join(f[3:], " "))
		}
		l.record("py", f[1], seq, rerr)
	}
}

// reshardRandomly does ops reshards through the admin HTTP API, one every
// `every`: random splits of an open shard and merges of two adjacent open
// shards, a scale to 16 a quarter of the way, a scale to 1 at five eighths
// and a scale to 4 (8 if there are 4) at the end. Each changes the layout.
// It returns the took_ms of the replies.
func reshardRandomly(ctx context.Context, t *testing.T, p *braidtest.Proc, stream string, rng *rand.Rand, ops int, every time.Duration) tookStats {
	took := tookStats{}
	for i := range ops {
		select {
		case <-ctx.Done():
			t.Errorf("reshards: %v after %d", ctx.Err(), i)
			return took
		case <-time.After(every):
		}
		var st streamState
		if status, err := p.GetJSON("/v1/streams/"+stream, &st); err != nil || status != 200 {
			t.Errorf("GET stream: %d %v", status, err)
			return took
		}
		open := openShards(t, st)
		var op string
		var body map[string]any
		switch {
		case i == ops/4:
			op, body = "scale", map[string]any{"shards": 16}
		case i == ops*5/8:
			op, body = "scale", map[string]any{"shards": 1}
		case i == ops-1 && len(open) != 4:
			op, body = "scale", map[string]any{"shards": 4}
		case i == ops-1:
			op, body = "scale", map[string]any{"shards": 8}
		case len(open) >= 16 || (len(open) > 1 && rng.IntN(2) == 0):
			j := rng.IntN(len(open) - 1)
			a, b := open[j], open[j+1]
			if !adjacent(a, b) {
				t.Fatalf("open shards %d and %d are neighbours by range start but not adjacent", a.id, b.id)
			}
			op, body = "merge", map[string]any{"shards": []int32{a.id, b.id}}
		default:
			op, body = "split", map[string]any{"shard": open[rng.IntN(len(open))].id}
		}
		var r reshardReply
		status, err := p.PostJSON("/v1/streams/"+stream+"/"+op, body, &r)
		if err != nil || status != 200 {
			t.Errorf("reshard %d: %s %v: status %d (%v) %q", i, op, body, status, err, r.Error)
			continue
		}
		if want, ok := body["shards"].(int); ok && op == "scale" && len(r.Open) != want {
			t.Errorf("scale to %d left %d open shards: %v", want, len(r.Open), r.Open)
		}
		if len(r.Ops) == 0 || len(r.Closed) == 0 {
			t.Errorf("reshard %d: %s %v changed nothing: %+v", i, op, body, r)
		}
		took[op] = append(took[op], r.TookMs)
	}
	return took
}

// TestReshardTransactions writes transactions whose records a franz-go
// transactional producer addresses to shards that are not their key's home
// (so the server reroutes every one), commits some and aborts others, and
// splits and merges shards while transactions are open. A read_committed
// reader walking the lineage sees exactly the committed records, a
// read_uncommitted one sees all of them, both with each key in order, and
// every record sits in a shard whose range owns MD5(key).
func TestReshardTransactions(t *testing.T) {
	p := braidtest.Start(t)
	ctx := testCtx(t, 60*time.Second)
	const stream = "ledger-txn"
	routing := "key"
	createStream(t, ctx, newAdmin(t, p), stream, 4, map[string]*string{"braid.routing": &routing})
	part := &awayPartitioner{addr: map[string]int32{}, home: map[string]int32{}}
	cl := txnProducer(t, p, "ledger-txn", kgo.RecordPartitioner(part))

	layout := func() streamState {
		var st streamState
		if status, err := p.GetJSON("/v1/streams/"+stream, &st); err != nil || status != 200 {
			t.Fatalf("GET stream: %d %v", status, err)
		}
		return st
	}
	reshard := func(op string, body map[string]any) {
		var r reshardReply
		if status, err := p.PostJSON("/v1/streams/"+stream+"/"+op, body, &r); err != nil || status != 200 {
			t.Fatalf("%s %v: %d %v %q", op, body, status, err, r.Error)
		}
		t.Logf("%s %v in a transaction: took %.1fms", op, body, r.TookMs)
	}

	const keys, perKey = 16, 3
	seq := make([]int64, keys)
	committed, all := map[recID]bool{}, map[recID]bool{}
	toClosed := 0
	// send produces perKey records of every key, one per key at a time, each
	// addressed to a shard that does not own the key in layout st: the next
	// open shard after its home in range order, or every other time a closed
	// shard when there is one.
	send := func(txn int, st streamState, wantCommit bool) {
		open := openShards(t, st)
		var closed []int32
		for _, s := range st.Shards {
			if s.State != "open" {
				closed = append(closed, s.Shard)
			}
		}
		part.mu.Lock()
		for k := range keys {
			key := "tx-" + strconv.Itoa(k)
			h := md5HashKey(key)
			home := -1
			for i, s := range open {
				if s.start.Cmp(h) <= 0 && h.Cmp(s.end) <= 0 {
					home = i
				}
			}
			if home < 0 || len(open) < 2 {
				t.Fatalf("key %s: no open shard owns it, or no other open shard (%d open)", key, len(open))
			}
			part.home[key] = open[home].id
			part.addr[key] = open[(home+1)%len(open)].id
			if len(closed) > 0 && (k+txn)%2 == 0 {
				part.addr[key] = closed[(k+txn)%len(closed)]
			}
		}
		part.mu.Unlock()
		for range perKey {
			var recs []*kgo.Record
			for k := range keys {
				key := "tx-" + strconv.Itoa(k)
				id := recID{key, seq[k]}
				seq[k]++
				all[id] = true
				if wantCommit {
					committed[id] = true
				}
				recs = append(recs, &kgo.Record{Topic: stream, Key: []byte(key), Value: []byte(ledgerValue("tx", key, id.seq))})
			}
			produce(t, ctx, cl, recs...)
			for _, r := range recs {
				if slices.Contains(closed, r.Partition) {
					toClosed++
				}
			}
		}
	}
	// Transaction i commits unless it is in aborts; reshards[i] happens in
	// its middle, between two sends.
	aborts := map[int]bool{2: true, 5: true, 7: true}
	reshards := map[int]func(st streamState){
		4: func(st streamState) { reshard("split", map[string]any{"shard": openShards(t, st)[0].id}) },
		7: func(st streamState) { reshard("split", map[string]any{"shard": openShards(t, st)[2].id}) },
		9: func(st streamState) {
			o := openShards(t, st)
			reshard("merge", map[string]any{"shards": []int32{o[1].id, o[2].id}})
		},
	}
	for txn := range 11 {
		commit := !aborts[txn]
		if err := cl.BeginTransaction(); err != nil {
			t.Fatalf("begin %d: %v", txn, err)
		}
		st := layout()
		send(txn, st, commit)
		if rs := reshards[txn]; rs != nil {
			rs(st)
			send(txn, st, commit) // still addressed by the old layout
			send(txn, layout(), commit)
		}
		if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatalf("end transaction %d (commit %v): %v", txn, commit, err)
		}
	}

	t.Logf("%d records, %d committed; %d addressed to a closed shard, the others to an open shard not their home", len(all), len(committed), toClosed)
	st := layout()
	ranges := map[int32]json2HashRange{}
	for _, s := range st.Shards {
		ranges[s.Shard] = *s.Range
	}
	for _, c := range []struct {
		name      string
		committed bool
		want      map[recID]bool
	}{
		{"read_committed", true, committed},
		{"read_uncommitted", false, all},
	} {
		var recs []*kgo.Record
		for _, id := range lineageOrder(t, st) {
			recs = append(recs, p.ReadPartition(ctx, stream, id, c.committed)...)
		}
		bad := 0
		fail := func(format string, args ...any) {
			t.Helper()
			if bad++; bad <= 10 {
				t.Errorf(c.name+": "+format, args...)
			}
		}
		got := map[recID]int{}
		last := map[string]int64{}
		for _, r := range recs {
			lr, err := decodeLogRec(r)
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			id := recID{lr.key, lr.seq}
			got[id]++
			if prev, ok := last[lr.key]; ok && lr.seq <= prev {
				fail("key %s: seq %d at %s read after seq %d", lr.key, lr.seq, lr.logPos, prev)
			}
			last[lr.key] = lr.seq
			rg := ranges[r.Partition]
			a, _ := new(big.Int).SetString(rg.Start, 10)
			b, _ := new(big.Int).SetString(rg.End, 10)
			if h := md5HashKey(lr.key); a.Cmp(h) > 0 || h.Cmp(b) > 0 {
				fail("key %s seq %d sits in shard %d, whose range [%s, %s] does not own MD5(key)", lr.key, lr.seq, r.Partition, rg.Start, rg.End)
			}
		}
		for id, n := range got {
			if n != 1 || !c.want[id] {
				fail("%s/%d read %d times; in this view: %v, committed: %v", id.key, id.seq, n, c.want[id], committed[id])
			}
		}
		for id := range c.want {
			if got[id] == 0 {
				fail("%s/%d (committed: %v) not read", id.key, id.seq, committed[id])
			}
		}
		if bad > 10 {
			t.Errorf("%s: %d violations in all", c.name, bad)
		}
		t.Logf("%s: %d records read, want %d, from %d shards", c.name, len(recs), len(c.want), len(st.Shards))
	}
}

// md5HashKey is a key's place in the hash-key space, computed here on its
// own: MD5 of the key read as a big-endian 128-bit number.
func md5HashKey(key string) *big.Int {
	sum := md5.Sum([]byte(key))
	return new(big.Int).SetBytes(sum[:])
}

// awayPartitioner addresses each record to addr[key] when the client knows
// that partition, else to the lowest partition that is not home[key]: never
// to the key's home shard, so the server has to reroute every record.
type awayPartitioner struct {
	mu         sync.Mutex
	addr, home map[string]int32
}

func (a *awayPartitioner) ForTopic(string) kgo.TopicPartitioner { return a }

func (a *awayPartitioner) RequiresConsistency(*kgo.Record) bool { return true }

func (a *awayPartitioner) Partition(r *kgo.Record, n int) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	key := string(r.Key)
	if p := int(a.addr[key]); p < n {
		return p
	}
	for p := range n {
		if int32(p) != a.home[key] {
			return p
		}
	}
	return 0
}
