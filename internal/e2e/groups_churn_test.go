package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/braidstream/braid/internal/braidtest"
)

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// kcatMember is one `kcat -G` process (librdkafka's balanced consumer) whose
// output lines "partition offset value" are collected as they come.
type kcatMember struct {
	name   string
	cmd    *exec.Cmd
	stderr syncBuffer
	exited chan struct{} // closed once stdout hit EOF and the process was reaped
	err    error         // Wait's result, set before exited is closed

	mu   sync.Mutex
	seen map[string]int    // value -> times consumed
	at   map[string]string // "shard/offset" -> value
	bad  []string          // malformed lines or one (shard, offset) printed with two values
}

// startKcatMember runs kcat in balanced consumer-group mode with client.id
// name, so DescribeGroups tells the members apart, and extra options.
func startKcatMember(t *testing.T, ctx context.Context, p *braidtest.Proc, group, stream, name string, extra ...string) *kcatMember {
	t.Helper()
	args := append([]string{"-b", p.KafkaAddr, "-G", group,
		"-X", "client.id=" + name,
		"-X", "session.timeout.ms=6000", "-X", "heartbeat.interval.ms=500",
		"-X", "auto.offset.reset=earliest",
		"-u", "-f", "%p %o %s\n"}, extra...)
	args = append(args, stream)
	m := &kcatMember{name: name, exited: make(chan struct{}), seen: map[string]int{}, at: map[string]string{}}
	m.cmd = exec.CommandContext(ctx, kcatPath, args...) // SIGKILLed if ctx ends first
	m.cmd.Stderr = &m.stderr
	out, err := m.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := m.cmd.Start(); err != nil {
		t.Fatalf("start kcat %s: %v", strings.Join(args, " "), err)
	}
	go func() {
		defer close(m.exited)
		m.read(out)
		m.err = m.cmd.Wait()
	}()
	t.Cleanup(func() {
		select {
		case <-m.exited:
		default:
			m.cmd.Process.Kill()
			<-m.exited
		}
		if t.Failed() {
			t.Logf("kcat %s stderr:\n%s", m.name, m.stderr.String())
		}
	})
	return m
}

func (m *kcatMember) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		m.mu.Lock()
		if len(f) != 3 {
			m.bad = append(m.bad, fmt.Sprintf("malformed line %q", line))
			m.mu.Unlock()
			continue
		}
		if _, err := strconv.ParseInt(f[0], 10, 32); err != nil {
			m.bad = append(m.bad, fmt.Sprintf("malformed line %q", line))
		}
		key := f[0] + "/" + f[1]
		if prev, ok := m.at[key]; ok && prev != f[2] {
			m.bad = append(m.bad, fmt.Sprintf("%s printed as %s and as %s", key, prev, f[2]))
		}
		m.at[key] = f[2]
		m.seen[f[2]]++
		m.mu.Unlock()
	}
	io.Copy(io.Discard, r)
}

// stop sends sig and waits up to d for kcat to exit; it reports whether kcat
// exited in time (it is SIGKILLed otherwise).
func (m *kcatMember) stop(sig os.Signal, d time.Duration) bool {
	m.cmd.Process.Signal(sig)
	select {
	case <-m.exited:
		return true
	case <-time.After(d):
		m.cmd.Process.Kill()
		<-m.exited
		return false
	}
}

func kcatUnion(ms ...*kcatMember) map[string]int {
	out := map[string]int{}
	for _, m := range ms {
		m.mu.Lock()
		for v, n := range m.seen {
			out[v] += n
		}
		m.mu.Unlock()
	}
	return out
}

// groupAssignment describes a group and returns its state and each member's
// assigned shards of stream by client id (suffixed #2, #3... for members
// sharing one).
func groupAssignment(ctx context.Context, adm *kadm.Client, group, stream string) (string, map[string][]int32, error) {
	ds, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return "", nil, err
	}
	d, ok := ds[group]
	if !ok {
		return "", nil, fmt.Errorf("group %s not described", group)
	}
	if d.Err != nil {
		return "", nil, d.Err
	}
	out := map[string][]int32{}
	for _, m := range d.Members {
		var parts []int32
		if ca, ok := m.Assigned.AsConsumer(); ok {
			for _, tp := range ca.Topics {
				if tp.Topic == stream {
					parts = append(parts, tp.Partitions...)
				}
			}
		}
		slices.Sort(parts)
		key := m.ClientID
		for i := 2; ; i++ { // two members with one client id both count
			if _, dup := out[key]; !dup {
				break
			}
			key = fmt.Sprintf("%s#%d", m.ClientID, i)
		}
		out[key] = parts
	}
	return d.State, out, nil
}

// TestKcatGroupBalanced: three librdkafka balanced consumers (kcat -G) share
// a 6-shard stream; every record is consumed and each member owns shards.
// One member is SIGKILLed: once its session expires the other two take over
// its shards and consume what was produced after the kill, so nothing is
// skipped. The survivors stop cleanly on SIGTERM, leaving the group Empty
// with its offsets committed at the end of every shard.
//
// With -o beginning kcat seeks every partition it is assigned to the
// beginning, at each rebalance, so the takeover re-reads whole shards. The
// "committed" variant drops -o: once librdkafka's auto-commit (every 5 s;
// kcat's -X auto.commit.interval.ms sets the legacy topic property, not the
// consumer's) has committed everything consumed before the kill, the
// survivors resume the victim's shards from its committed offsets and
// re-read none of it.
func TestKcatGroupBalanced(t *testing.T) {
	needKcat(t)
	p := braidtest.Start(t)
	// In parallel: both mostly wait for the victim's session to expire.
	t.Run("offset=beginning", func(t *testing.T) {
		t.Parallel()
		testKcatGroup(t, p, "kcg-beginning", false, "-o", "beginning")
	})
	t.Run("offset=committed", func(t *testing.T) {
		t.Parallel()
		testKcatGroup(t, p, "kcg-committed", true)
	})
}

func testKcatGroup(t *testing.T, p *braidtest.Proc, stream string, resume bool, extra ...string) {
	ctx := testCtx(t, 40*time.Second)
	group := stream + "-group"
	const parts = 6
	const n, m = 1200, 600
	adm := newAdmin(t, p)
	createStream(t, ctx, adm, stream, parts, nil)
	prod := newProducer(t, p)
	produceRange := func(from, to int) {
		var recs []*kgo.Record
		for i := from; i < to; i++ {
			recs = append(recs, &kgo.Record{Topic: stream, Partition: int32(i % parts), Value: []byte(fmt.Sprintf("v%05d", i))})
		}
		produce(t, ctx, prod, recs...)
	}
	produceRange(0, n)

	ms := make([]*kcatMember, 3)
	for i := range ms {
		ms[i] = startKcatMember(t, ctx, p, group, stream, fmt.Sprintf("kcat-%d", i), extra...)
	}
	checkOutputs := func() {
		t.Helper()
		for _, km := range ms {
			km.mu.Lock()
			if len(km.bad) > 0 {
				t.Errorf("kcat %s output: %s", km.name, strings.Join(km.bad, "; "))
			}
			km.mu.Unlock()
		}
	}
	var assigned map[string][]int32
	settle := testCtx(t, 30*time.Second)
	waitFor(t, settle, "three stable kcat members each owning shards", func() bool {
		state, as, err := groupAssignment(ctx, adm, group, stream)
		if err != nil || state != "Stable" || len(as) != 3 {
			return false
		}
		for _, km := range ms {
			if len(as[km.name]) == 0 {
				return false
			}
		}
		assigned = as
		return true
	})
	t.Logf("assignment: %v", assigned)
	waitFor(t, settle, fmt.Sprintf("all %d records consumed by the kcats", n), func() bool { return len(kcatUnion(ms...)) == n })
	checkOutputs()

	if resume {
		waitFor(t, settle, "everything consumed committed", func() bool { return committedAtEnd(ctx, adm, group, stream) })
	}
	before := kcatUnion(ms...)
	victim, survivors := ms[0], ms[1:]
	victimParts := assigned[victim.name]
	victim.cmd.Process.Kill()
	<-victim.exited
	killed := time.Now()
	produceRange(n, n+m)

	// The session timeout is 6 s; allow it, the broker's expiry tick, the
	// survivors' next heartbeats and one rebalance.
	takeover := testCtx(t, 20*time.Second)
	waitFor(t, takeover, "the survivors consuming the killed member's shards", func() bool {
		if takeover.Err() != nil { // say where it stands before waitFor fails
			state, as, err := groupAssignment(ctx, adm, group, stream)
			t.Logf("%d of %d records consumed; group %s, assignment %v (%v); victim owned %v",
				len(kcatUnion(ms...)), n+m, state, as, err, assigned[victim.name])
			return false
		}
		return len(kcatUnion(ms...)) == n+m
	})
	all := kcatUnion(ms...)
	dups := 0
	for _, c := range all {
		dups += c - 1
	}
	t.Logf("all %d records consumed %v after the kill (%d duplicates)", n+m, time.Since(killed).Round(time.Millisecond), dups)
	for i := range n + m {
		if all[fmt.Sprintf("v%05d", i)] == 0 {
			t.Errorf("record v%05d (shard %d) never consumed", i, i%parts)
		}
	}
	// What was produced after the kill reached the survivors only, including
	// the victim's shards.
	after := kcatUnion(survivors...)
	for i := n; i < n+m; i++ {
		if after[fmt.Sprintf("v%05d", i)] == 0 {
			t.Errorf("record v%05d (shard %d) produced after the kill not consumed by a survivor", i, i%parts)
		}
	}
	waitFor(t, takeover, "two stable members owning all six shards", func() bool {
		state, as, err := groupAssignment(ctx, adm, group, stream)
		if err != nil || state != "Stable" || len(as) != 2 {
			return false
		}
		var owned []int32
		for _, km := range survivors {
			if len(as[km.name]) == 0 {
				return false
			}
			owned = append(owned, as[km.name]...)
		}
		slices.Sort(owned)
		assigned = as
		return slices.Equal(owned, []int32{0, 1, 2, 3, 4, 5})
	})
	t.Logf("after the kill: assignment %v (victim owned %v)", assigned, victimParts)
	checkOutputs()
	if resume {
		// Everything consumed before the kill was committed: no member may
		// read any of it again.
		all := kcatUnion(ms...)
		again := 0
		for v, c := range before {
			if all[v] != c {
				if again++; again <= 5 {
					t.Errorf("record %s consumed %d times before the kill, %d times in all: re-read after the takeover despite its commit", v, c, all[v])
				}
			}
		}
		if again > 5 {
			t.Errorf("%d records committed before the kill were re-read", again)
		}
	}

	for i, km := range survivors {
		sig := os.Signal(syscall.SIGTERM)
		if i == 1 {
			sig = os.Interrupt
		}
		if !km.stop(sig, 15*time.Second) {
			t.Errorf("kcat %s did not exit within 15s of %v", km.name, sig)
		} else if km.err != nil {
			t.Errorf("kcat %s exited with %v after %v", km.name, km.err, sig)
		}
	}
	// librdkafka commits the final offsets when its consumer closes.
	waitFor(t, testCtx(t, 10*time.Second), "the group Empty with offsets committed at the end of every shard", func() bool {
		state, _, err := groupAssignment(ctx, adm, group, stream)
		return err == nil && state == "Empty" && committedAtEnd(ctx, adm, group, stream)
	})
}

// committedAtEnd reports whether group's committed offset on every shard of
// stream equals the shard's end offset.
func committedAtEnd(ctx context.Context, adm *kadm.Client, group, stream string) bool {
	ends, err1 := adm.ListEndOffsets(ctx, stream)
	committed, err2 := adm.FetchOffsets(ctx, group)
	if err1 != nil || err2 != nil || ends.Error() != nil {
		return false
	}
	ok := true
	ends.Each(func(e kadm.ListedOffset) {
		if c, found := committed.Lookup(stream, e.Partition); !found || c.Err != nil || c.At != e.Offset {
			ok = false
		}
	})
	return ok
}

// fetchClock records when a client last read a Fetch response.
type fetchClock struct{ last atomic.Int64 }

func (h *fetchClock) OnBrokerRead(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if key == 1 && err == nil {
		h.last.Store(time.Now().UnixNano())
	}
}

// churnMember is one kgo member of the churning group.
type churnMember struct {
	id      int
	gc      *groupConsumer
	clock   *fetchClock
	started time.Time
	closed  bool
	closeIn time.Duration
}

// closeWithin closes the member and fails t if Close (and the end of its
// poll loop) takes longer than d.
func (cm *churnMember) closeWithin(t *testing.T, d time.Duration) {
	t.Helper()
	cm.closed = true
	began := time.Now()
	done := make(chan struct{})
	go func() { cm.gc.stop(); close(done) }()
	select {
	case <-done:
		cm.closeIn = time.Since(began)
	case <-time.After(d):
		t.Fatalf("member %d: Close did not return within %v", cm.id, d)
	}
}

// offsetWatch polls a group's committed offsets and remembers every time a
// shard's committed offset went backwards.
type offsetWatch struct {
	mu        sync.Mutex
	last      map[int32]int64
	backwards []string
	polls     int
	failures  int
}

func (w *offsetWatch) run(ctx context.Context, adm *kadm.Client, group, stream string, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		w.poll(ctx, adm, group, stream)
		select {
		case <-stop:
			w.poll(ctx, adm, group, stream)
			return
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (w *offsetWatch) poll(ctx context.Context, adm *kadm.Client, group, stream string) {
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	committed, err := adm.FetchOffsets(pctx, group)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.polls++
	if err != nil {
		w.failures++
		return
	}
	committed.Each(func(o kadm.OffsetResponse) {
		if o.Topic != stream || o.Err != nil {
			return
		}
		if prev, ok := w.last[o.Partition]; ok && o.At < prev {
			w.backwards = append(w.backwards, fmt.Sprintf("shard %d: %d -> %d at %s", o.Partition, prev, o.At, time.Now().Format("15:04:05.000")))
		}
		w.last[o.Partition] = o.At
	})
}

// TestGroupChurn: kgo members join and leave an 8-shard group every few
// hundred milliseconds (one to four alive) while a producer writes
// continuously. Every record is consumed at least once, committed offsets
// never go backwards, members never get stuck and Close never hangs; once
// everyone has left the group is Empty with its offsets at the end of every
// shard. It runs with kgo's default cooperative-sticky balancer (incremental
// rebalances) and with the eager range balancer (every member revokes and
// commits everything at each rebalance).
func TestGroupChurn(t *testing.T) {
	p := braidtest.Start(t)
	for _, b := range []struct {
		name string
		bal  kgo.GroupBalancer
	}{
		{"cooperative-sticky", kgo.CooperativeStickyBalancer()},
		{"range", kgo.RangeBalancer()},
	} {
		t.Run(b.name, func(t *testing.T) { testGroupChurn(t, p, b.name, b.bal) })
	}
}

func testGroupChurn(t *testing.T, p *braidtest.Proc, name string, bal kgo.GroupBalancer) {
	ctx := testCtx(t, 40*time.Second)
	stream, group := "churn-"+name, "churn-group-"+name
	const parts = 8
	const produceFor, closeBound = 6 * time.Second, 5 * time.Second
	adm := newAdmin(t, p)
	createStream(t, ctx, adm, stream, parts, nil)

	// The producer: batches of 20 records every 20 ms, values c0000000,
	// c0000001, ..., keyed by value so they spread over the shards.
	var produced atomic.Int64
	prodDone := make(chan struct{})
	prodErr := make(chan error, 1)
	prod := newClient(t, p, kgo.DefaultProduceTopic(stream))
	go func() {
		defer close(prodDone)
		end := time.Now().Add(produceFor)
		next := 0
		for time.Now().Before(end) && ctx.Err() == nil {
			var recs []*kgo.Record
			for range 20 {
				v := []byte(fmt.Sprintf("c%07d", next))
				recs = append(recs, &kgo.Record{Key: v, Value: v})
				next++
			}
			for _, r := range prod.ProduceSync(ctx, recs...) {
				if r.Err != nil {
					prodErr <- fmt.Errorf("produce %s: %v", r.Record.Value, r.Err)
					return
				}
			}
			produced.Store(int64(next))
			time.Sleep(20 * time.Millisecond)
		}
	}()

	watch := &offsetWatch{last: map[int32]int64{}}
	watchStop, watchDone := make(chan struct{}), make(chan struct{})
	go watch.run(ctx, adm, group, stream, watchStop, watchDone)
	defer func() { // on an early failure too
		select {
		case <-watchStop:
		default:
			close(watchStop)
		}
		<-watchDone
	}()

	var members []*churnMember
	t.Cleanup(func() { // members left open by a failure
		for _, cm := range members {
			if !cm.closed {
				go cm.gc.cl.Close()
			}
		}
	})
	alive := func() []*churnMember {
		var out []*churnMember
		for _, cm := range members {
			if !cm.closed {
				out = append(out, cm)
			}
		}
		return out
	}
	join := func() {
		clock := &fetchClock{}
		cm := &churnMember{id: len(members), clock: clock, started: time.Now()}
		cm.gc = startGroupConsumer(t, ctx, p, group, stream, kgo.WithHooks(clock),
			kgo.ClientID(fmt.Sprintf("churn-%d", cm.id)), kgo.Balancers(bal))
		members = append(members, cm)
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("churn seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	join()
	joins, leaves := 1, 0
	for churning := true; churning; {
		select {
		case <-prodDone:
			churning = false
			continue
		case <-time.After(time.Duration(200+rng.IntN(200)) * time.Millisecond):
		}
		live := alive()
		if len(live) == 1 || len(live) < 4 && rng.IntN(2) == 0 {
			join()
			joins++
		} else {
			live[rng.IntN(len(live))].closeWithin(t, closeBound)
			leaves++
		}
	}
	select {
	case err := <-prodErr:
		t.Fatal(err)
	default:
	}
	total := int(produced.Load())
	t.Logf("produced %d records; %d joins, %d leaves, %d members alive", total, joins, leaves, len(alive()))

	var all []*groupConsumer
	for _, cm := range members {
		all = append(all, cm.gc)
	}
	drain := testCtx(t, 25*time.Second)
	waitFor(t, drain, fmt.Sprintf("all %d produced records consumed", total), func() bool {
		if drain.Err() != nil || ctx.Err() != nil { // report what is missing before waitFor fails
			u := union(all...)
			missing := 0
			for i := range total {
				if u[fmt.Sprintf("c%07d", i)] == 0 {
					missing++
				}
			}
			committed, _ := adm.FetchOffsets(ctx, group)
			ends, _ := adm.ListEndOffsets(ctx, stream)
			_, as, err := groupAssignment(ctx, adm, group, stream)
			t.Logf("%d of %d records never consumed; committed %v; ends %v; assignment %v (%v)",
				missing, total, committed.Offsets(), ends.Offsets(), as, err)
			return false
		}
		return len(union(all...)) >= total
	})
	u := union(all...)
	dups := 0
	for i := range total {
		switch c := u[fmt.Sprintf("c%07d", i)]; {
		case c == 0:
			t.Errorf("record c%07d never consumed", i)
		case c > 1:
			dups += c - 1
		}
	}
	if len(u) != total {
		t.Errorf("consumed %d distinct values, produced %d", len(u), total)
	}

	// No live member is stuck: each still runs its poll loop and, in the
	// settled group, owns shards and keeps fetching.
	live := alive()
	waitFor(t, testCtx(t, 15*time.Second), "the live members stable, each owning shards and fetching", func() bool {
		state, as, err := groupAssignment(ctx, adm, group, stream)
		if err != nil || state != "Stable" || len(as) != len(live) {
			return false
		}
		for _, parts := range as {
			if len(parts) == 0 {
				return false
			}
		}
		for _, cm := range live {
			if time.Since(time.Unix(0, cm.clock.last.Load())) > 2*time.Second {
				return false
			}
		}
		return true
	})
	for _, cm := range live {
		select {
		case <-cm.gc.done:
			t.Errorf("member %d stopped polling without being closed", cm.id)
		default:
		}
	}
	for _, cm := range live {
		cm.closeWithin(t, closeBound)
	}
	close(watchStop)
	<-watchDone

	var slowest time.Duration
	for _, cm := range members {
		cm.gc.mu.Lock()
		n := 0
		for _, c := range cm.gc.seen {
			n += c
		}
		cm.gc.mu.Unlock()
		slowest = max(slowest, cm.closeIn)
		t.Logf("member %d: joined at +%v, consumed %d, Close took %v", cm.id,
			cm.started.Sub(members[0].started).Round(time.Millisecond), n, cm.closeIn.Round(time.Millisecond))
	}
	watch.mu.Lock()
	t.Logf("%d duplicates; slowest Close %v; %d offset polls (%d failed)", dups, slowest.Round(time.Millisecond), watch.polls, watch.failures)
	if len(watch.backwards) > 0 {
		t.Errorf("committed offsets went backwards %d times: %s", len(watch.backwards), strings.Join(watch.backwards, "; "))
	}
	if watch.polls-watch.failures < 10 {
		t.Errorf("only %d of %d FetchOffsets polls succeeded", watch.polls-watch.failures, watch.polls)
	}
	watch.mu.Unlock()

	ends, err := adm.ListEndOffsets(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	ends.Each(func(e kadm.ListedOffset) {
		sum += e.Offset
		c, ok := committed.Lookup(stream, e.Partition)
		if !ok || c.Err != nil || c.At != e.Offset {
			t.Errorf("shard %d: committed %d (found %v, err %v), end %d", e.Partition, c.At, ok, c.Err, e.Offset)
		}
	})
	if sum != int64(total) {
		t.Errorf("end offsets sum to %d, produced %d", sum, total)
	}
	state, _, err := groupAssignment(ctx, adm, group, stream)
	if err != nil || state != "Empty" {
		t.Errorf("group is %q (%v) after every member left, want Empty", state, err)
	}
}
