package e2e

import (
	"fmt"
	"maps"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// The ledger of the resharding-under-load tests: what every producer sent,
// which records it saw acknowledged, and checks of what readers read
// against it.
//
// Every record carries its identity in its value, "<producer>|<key>|<seq>":
// keys belong to one producer ("kgo-17", "kcat-3", "py-0") and seq counts
// that key's records from 0. A producer sends a key's next record only
// after the previous one was acknowledged (or failed): a client that moves a
// key to another partition when its partition count changes may otherwise
// have records of one key in flight to two partitions at once, and no
// broker can order those. So "the order acknowledged" of a key is simply
// increasing seq.

// recState is what a producer knows about one record it sent.
type recState uint8

const (
	recAcked   recState = iota + 1 // the client reported it delivered
	recUnknown                     // the client reported an error: it may or may not be in the log
)

type recID struct {
	key string
	seq int64
}

type ledger struct {
	mu         sync.Mutex
	idempotent map[string]bool // producer -> writes exactly once
	sent       map[recID]recState
	acked      map[string]int // producer -> records acknowledged
	failed     map[string]int // producer -> records with an unknown fate
	firstErr   map[string]string
}

func newLedger() *ledger {
	return &ledger{idempotent: map[string]bool{}, sent: map[recID]recState{},
		acked: map[string]int{}, failed: map[string]int{}, firstErr: map[string]string{}}
}

// producer registers a producer name; idempotent producers must be read
// exactly once, the others at least once.
func (l *ledger) producer(name string, idempotent bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.idempotent[name] = idempotent
}

// record notes the outcome of one sent record; err nil means acknowledged.
func (l *ledger) record(producer, key string, seq int64, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	id := recID{key, seq}
	if _, dup := l.sent[id]; dup {
		panic(fmt.Sprintf("ledger: %s/%d recorded twice", key, seq))
	}
	if err == nil {
		l.sent[id] = recAcked
		l.acked[producer]++
		return
	}
	l.sent[id] = recUnknown
	l.failed[producer]++
	if l.firstErr[producer] == "" {
		l.firstErr[producer] = err.Error()
	}
}

func (l *ledger) summary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var parts []string
	for _, p := range slices.Sorted(maps.Keys(l.idempotent)) {
		s := fmt.Sprintf("%s: %d acknowledged", p, l.acked[p])
		if n := l.failed[p]; n > 0 {
			s += fmt.Sprintf(", %d unknown (first error: %s)", n, l.firstErr[p])
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}

func ledgerValue(producer, key string, seq int64) string {
	return producer + "|" + key + "|" + strconv.FormatInt(seq, 10)
}

// logPos is a record's place in the log.
type logPos struct {
	part int32
	off  int64
}

func (p logPos) String() string { return fmt.Sprintf("%d@%d", p.part, p.off) }

// logRec is one record a reader read, decoded.
type logRec struct {
	logPos
	producer, key string
	seq           int64
}

func decodeLogRec(r *kgo.Record) (logRec, error) {
	f := strings.Split(string(r.Value), "|")
	if len(f) != 3 {
		return logRec{}, fmt.Errorf("record %d@%d: value %q is not producer|key|seq", r.Partition, r.Offset, r.Value)
	}
	seq, err := strconv.ParseInt(f[2], 10, 64)
	if err != nil || f[1] != string(r.Key) || !strings.HasPrefix(f[1], f[0]+"-") {
		return logRec{}, fmt.Errorf("record %d@%d: key %q value %q do not agree", r.Partition, r.Offset, r.Key, r.Value)
	}
	return logRec{logPos: logPos{r.Partition, r.Offset}, producer: f[0], key: f[1], seq: seq}, nil
}

// keyLog is the log as the lineage-walking reader read it: each key's
// records in the order read, and where each record sits in its key's list.
type keyLog struct {
	byKey map[string][]logRec
	index map[logPos]int // position in byKey[key]
	keyOf map[logPos]string
	total int
}

func newKeyLog() *keyLog {
	return &keyLog{byKey: map[string][]logRec{}, index: map[logPos]int{}, keyOf: map[logPos]string{}}
}

// add appends a record read after all those already added.
func (kl *keyLog) add(lr logRec) {
	kl.index[lr.logPos] = len(kl.byKey[lr.key])
	kl.keyOf[lr.logPos] = lr.key
	kl.byKey[lr.key] = append(kl.byKey[lr.key], lr)
	kl.total++
}

// checkLedger checks a complete read of the log (every shard read fully,
// each before its children) against the ledger:
//   - every record read was sent, and names its own key;
//   - every acknowledged record was read: exactly once for an idempotent
//     producer, at least once for the others; a record with an unknown fate
//     at most once for an idempotent producer;
//   - each key's records were read in the order acknowledged: seq strictly
//     increasing for an idempotent producer, never decreasing for the others
//     (a retried send may land twice, but always before the key's next
//     record, which is sent only after the retry was acknowledged).
//
// It returns the log by key for the group checks.
func checkLedger(t testing.TB, l *ledger, reader string, recs []*kgo.Record) *keyLog {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	kl := newKeyLog()
	reads := map[recID]int{}
	bad := 0
	fail := func(format string, args ...any) {
		t.Helper()
		if bad++; bad <= 10 {
			t.Errorf("%s: "+format, append([]any{reader}, args...)...)
		}
	}
	for _, r := range recs {
		lr, err := decodeLogRec(r)
		if err != nil {
			fail("%v", err)
			continue
		}
		id := recID{lr.key, lr.seq}
		if _, ok := l.sent[id]; !ok {
			fail("read %s/%d at %s, which no producer sent", lr.key, lr.seq, lr.logPos)
			continue
		}
		reads[id]++
		list := kl.byKey[lr.key]
		if n := len(list); n > 0 {
			prev := list[n-1]
			backwards := lr.seq < prev.seq || (lr.seq == prev.seq && l.idempotent[lr.producer])
			if backwards {
				fail("key %s out of order: seq %d at %s read after seq %d at %s", lr.key, lr.seq, lr.logPos, prev.seq, prev.logPos)
			}
		}
		kl.add(lr)
	}
	for id, st := range l.sent {
		n := reads[id]
		idem := l.idempotent[strings.SplitN(id.key, "-", 2)[0]]
		switch {
		case st == recAcked && n == 0:
			fail("acknowledged record %s/%d was not read", id.key, id.seq)
		case st == recAcked && idem && n > 1:
			fail("record %s/%d of an idempotent producer was read %d times", id.key, id.seq, n)
		case st == recUnknown && idem && n > 1:
			fail("record %s/%d (fate unknown) of an idempotent producer was read %d times", id.key, id.seq, n)
		}
	}
	if bad > 10 {
		t.Errorf("%s: %d ledger violations in all", reader, bad)
	}
	return kl
}

// groupLog collects what the members of one consumer group processed, in
// the order they processed it (one lock for the whole group: a member
// processes a poll's records and commits them before it lets a rebalance
// take partitions away, so this order is the group's order).
type groupLog struct {
	name string
	mu   sync.Mutex
	read []logPos
	seen map[logPos]bool
}

func newGroupLog(name string) *groupLog { return &groupLog{name: name, seen: map[logPos]bool{}} }

func (g *groupLog) add(recs []*kgo.Record) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, r := range recs {
		p := logPos{r.Partition, r.Offset}
		g.read = append(g.read, p)
		g.seen[p] = true
	}
}

// covers reports how many of the log's records the group has read.
func (g *groupLog) covers(kl *keyLog) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for p := range kl.keyOf {
		if g.seen[p] {
			n++
		}
	}
	return n
}

// checkGroupOrder checks a group's reads against the log by key. Per key,
// let the log hold the key's records at positions 0..n-1 (the order the
// lineage-walking reader read them, checked against the ledger). A group
// may read a record more than once (a member that takes over a partition
// resumes from the last commit), so its reads of one key, as positions
// p1, p2, ..., are in order when:
//
//   - each read is either the key's next record (p+1 after p, so p1 = 0)
//     or a rewind: a step back to a record the group has already read,
//     after which it again moves one record at a time;
//   - in the end it has read all n records.
//
// So reads never skip a record and never go back except to re-deliver a
// suffix already seen. Reading a child shard's records for a key before
// its parent's last ones is a skip, and fails. It returns the number of
// rewinds.
func checkGroupOrder(t testing.TB, g *groupLog, kl *keyLog) (rewinds int) {
	t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	violations, rewinds := groupOrderViolations(g.read, kl)
	for i, v := range violations {
		if i == 10 {
			t.Errorf("group %s: %d order violations in all", g.name, len(violations))
			break
		}
		t.Errorf("group %s: %s", g.name, v)
	}
	return rewinds
}

// groupOrderViolations applies checkGroupOrder's rules to reads, the
// group's reads in order.
func groupOrderViolations(reads []logPos, kl *keyLog) (violations []string, rewinds int) {
	type progress struct {
		last int
		seen []bool
	}
	state := map[string]*progress{}
	fail := func(format string, args ...any) {
		violations = append(violations, fmt.Sprintf(format, args...))
	}
	for _, p := range reads {
		key, ok := kl.keyOf[p]
		if !ok {
			fail("read %s, which the lineage-walking reader did not", p)
			continue
		}
		list := kl.byKey[key]
		i := kl.index[p]
		st := state[key]
		if st == nil {
			st = &progress{last: -1, seen: make([]bool, len(list))}
			state[key] = st
		}
		switch {
		case i == st.last+1:
		case i < st.last+1 && st.seen[i]:
			rewinds++
		default:
			prev := "nothing"
			if st.last >= 0 {
				prev = fmt.Sprintf("seq %d at %s", list[st.last].seq, list[st.last].logPos)
			}
			next := "none: it was read to its end"
			if st.last+1 < len(list) {
				next = fmt.Sprintf("seq %d at %s", list[st.last+1].seq, list[st.last+1].logPos)
			}
			fail("key %s: read seq %d at %s right after %s; the key's next record is %s", key, list[i].seq, p, prev, next)
		}
		st.last = i
		st.seen[i] = true
	}
	for _, key := range slices.Sorted(maps.Keys(kl.byKey)) {
		list := kl.byKey[key]
		n := 0
		if st := state[key]; st != nil {
			for _, s := range st.seen {
				if s {
					n++
				}
			}
		}
		if n != len(list) {
			fail("key %s: read %d of its %d records", key, n, len(list))
		}
	}
	return violations, rewinds
}

// openShard is an open shard of a key-routed stream and its hash range.
type openShard struct {
	id         int32
	start, end *big.Int
}

// openShards returns the open shards of st ordered by range start.
func openShards(t testing.TB, st streamState) []openShard {
	t.Helper()
	var out []openShard
	for _, s := range st.Shards {
		if s.State != "open" || s.Range == nil {
			continue
		}
		a, ok1 := new(big.Int).SetString(s.Range.Start, 10)
		b, ok2 := new(big.Int).SetString(s.Range.End, 10)
		if !ok1 || !ok2 {
			t.Fatalf("shard %d: bad range %+v", s.Shard, *s.Range)
		}
		out = append(out, openShard{s.Shard, a, b})
	}
	slices.SortFunc(out, func(a, b openShard) int { return a.start.Cmp(b.start) })
	return out
}

// adjacent reports whether b's range starts right after a's.
func adjacent(a, b openShard) bool {
	return new(big.Int).Add(a.end, big.NewInt(1)).Cmp(b.start) == 0
}

// lineageOrder returns every shard of st in an order where each comes after
// all its parents (ids ascending among the ready ones).
func lineageOrder(t testing.TB, st streamState) []int32 {
	t.Helper()
	done := map[int32]bool{}
	var order []int32
	for len(order) < len(st.Shards) {
		progress := false
		for _, s := range st.Shards {
			if done[s.Shard] || !allIn(s.Parents, done) {
				continue
			}
			done[s.Shard] = true
			order = append(order, s.Shard)
			progress = true
		}
		if !progress {
			t.Fatalf("lineage has a cycle or an unknown parent: %+v", st.Shards)
		}
	}
	return order
}

func allIn(ids []int32, set map[int32]bool) bool {
	for _, id := range ids {
		if !set[id] {
			return false
		}
	}
	return true
}

// tookStats summarizes the took_ms of reshard replies by kind.
type tookStats map[string][]float64

func (ts tookStats) String() string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(ts)) {
		v := slices.Clone(ts[k])
		slices.Sort(v)
		parts = append(parts, fmt.Sprintf("%s n=%d min=%.1fms median=%.1fms max=%.1fms",
			k, len(v), v[0], v[len(v)/2], v[len(v)-1]))
	}
	return strings.Join(parts, "; ")
}
