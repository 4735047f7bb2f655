package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/braidstream/braid/internal/braidtest"
)

// The resharding CLI: braid stream split, merge and scale against a real
// node's admin API, describe's lineage, the refusals, consume following
// lineage, and the reshard metrics.

// cliAdmin runs a stream command against p with both its addresses.
func cliAdmin(t testing.TB, ctx context.Context, p *braidtest.Proc, args ...string) cliResult {
	t.Helper()
	return runCLI(t, ctx, "", nil, append(args, "--brokers", p.KafkaAddr, "--admin-addr", p.HTTPAddr)...)
}

func getStreamState(t testing.TB, p *braidtest.Proc, name string) streamState {
	t.Helper()
	var st streamState
	if status, err := p.GetJSON("/v1/streams/"+name, &st); err != nil || status != 200 {
		t.Fatalf("GET /v1/streams/%s: %d %v", name, status, err)
	}
	return st
}

// joinOpen lists a stream's open shards as the CLI does, "1, 2".
func joinOpen(st streamState) string {
	var ids []string
	for _, s := range st.Shards {
		if s.State == "open" {
			ids = append(ids, strconv.Itoa(int(s.Shard)))
		}
	}
	return strings.Join(ids, ", ")
}

func TestCLIReshard(t *testing.T) {
	t.Parallel()
	p := braidtest.Start(t)
	ctx := testCtx(t, 60*time.Second)
	ok := func(args ...string) cliResult {
		t.Helper()
		r := cliAdmin(t, ctx, p, args...)
		if r.code != 0 || r.stderr != "" {
			t.Fatalf("want exit 0 and an empty stderr; %s", r)
		}
		return r
	}

	ok("stream", "create", "rs", "--shards", "2")
	if st := getStreamState(t, p, "rs"); st.Routing != "key" {
		t.Fatalf("braid stream create: routing %q, want key", st.Routing)
	}
	ok("stream", "create", "rs-part", "--config", "braid.routing=partition")
	if st := getStreamState(t, p, "rs-part"); st.Routing != "partition" {
		t.Fatalf("create --config braid.routing=partition: routing %q", st.Routing)
	}

	// split, text: one line per op and the time taken.
	r := ok("stream", "split", "rs", "--shard", "0")
	if !strings.Contains(r.stdout, "split shard 0 -> 2, 3\n") ||
		!regexp.MustCompile(`stream "rs": 3 open shards \(1, 2, 3\), took [0-9.]+[µm]?s\n`).MatchString(r.stdout) {
		t.Errorf("split text output; %s", r)
	}
	// merge, json: the server's reply.
	r = ok("stream", "merge", "rs", "--shards", "3,1", "--format", "json")
	var rep reshardReply
	cliDecodeJSON(t, r, &rep)
	if rep.Stream != "rs" || len(rep.Ops) != 1 || rep.Ops[0].Op != "merge" || fmt.Sprint(rep.Ops[0].Parents) != "[3 1]" ||
		fmt.Sprint(rep.Ops[0].Children) != "[4]" || fmt.Sprint(rep.Closed) != "[3 1]" || fmt.Sprint(rep.Open) != "[2 4]" || rep.TookMs <= 0 {
		t.Errorf("merge json reply %+v; %s", rep, r)
	}

	// describe, json: lineage fields per shard, as the admin API says.
	var d struct {
		Routing string `json:"routing"`
		Shards  []struct {
			Shard     int32           `json:"shard"`
			Latest    *int64          `json:"latest"`
			State     string          `json:"state"`
			EndOffset *int64          `json:"end_offset"`
			Range     *json2HashRange `json:"range"`
			Parents   []int32         `json:"parents"`
			Children  []int32         `json:"children"`
		} `json:"shards"`
	}
	cliDecodeJSON(t, ok("stream", "describe", "rs", "--format", "json"), &d)
	st := getStreamState(t, p, "rs")
	if d.Routing != "key" || len(d.Shards) != 5 || len(st.Shards) != 5 {
		t.Fatalf("describe json: routing %q, %d shards (admin API: %d)", d.Routing, len(d.Shards), len(st.Shards))
	}
	for i, s := range d.Shards {
		a := st.Shards[i]
		if s.Shard != a.Shard || s.State != a.State || cliOptInt(s.EndOffset) != cliOptInt(a.EndOffset) || s.Range == nil ||
			*s.Range != *a.Range || fmt.Sprint(s.Parents) != fmt.Sprint(a.Parents) || fmt.Sprint(s.Children) != fmt.Sprint(a.Children) {
			t.Errorf("describe shard %d: %+v, admin API says %+v", i, s, a)
		}
	}
	if s := d.Shards[4]; s.State != "open" || fmt.Sprint(s.Parents) != "[3 1]" || s.Range.End != "340282366920938463463374607431768211455" {
		t.Errorf("merged child: %+v", s)
	}

	// describe, text: the lineage table and tree; the merged child 4 is
	// under both parents and says so.
	r = ok("stream", "describe", "rs")
	for _, want := range [][]string{
		{"SHARD", "STATE", "END", "PARENTS", "CHILDREN", "HASH", "RANGE"},
		{"0", "closed", "0", "-", "2,3", "0", "-", "170141183460469231731687303715884105727"},
		{"4", "open", "-", "3,1", "-", "85070591730234615865843651857942052864", "-", "340282366920938463463374607431768211455"},
	} {
		if !cliHasRow(r.stdout, want) {
			t.Errorf("describe text lacks row %q; %s", want, r)
		}
	}
	tree := "LINEAGE\n" +
		"0 closed, end 0\n" +
		"  2 open\n" +
		"  3 closed, end 0\n" +
		"    4 open (also under 1)\n" +
		"1 closed, end 0\n" +
		"  4 open (also under 3)\n"
	if !strings.Contains(r.stdout, tree) {
		t.Errorf("describe text lacks the lineage tree\n%s; %s", tree, r)
	}

	// scale, text; then split with --at, json.
	r = ok("stream", "scale", "rs", "--shards", "4")
	if !regexp.MustCompile(`(?m)^split shard \d+ -> \d+, \d+$`).MatchString(r.stdout) || !strings.Contains(r.stdout, `stream "rs": 4 open shards`) {
		t.Errorf("scale text output; %s", r)
	}
	st = getStreamState(t, p, "rs")
	open := 0
	for _, s := range st.Shards {
		if s.State == "open" {
			open++
		}
	}
	if open != 4 {
		t.Fatalf("after scale to 4: %d open shards", open)
	}
	r = ok("stream", "scale", "rs", "--shards", "4")
	if r.stdout != "stream \"rs\": nothing to change, 4 open shards ("+joinOpen(st)+")\n" {
		t.Errorf("scale to the current count; %s", r)
	}
	ok("stream", "create", "rs-at")
	cliDecodeJSON(t, ok("stream", "split", "rs-at", "--shard", "0", "--at", "1000", "--format", "json"), &rep)
	st = getStreamState(t, p, "rs-at")
	if fmt.Sprint(rep.Open) != "[1 2]" || len(st.Shards) != 3 || st.Shards[1].Range.End != "999" || st.Shards[2].Range.Start != "1000" {
		t.Errorf("split --at 1000: reply %+v, shards %+v", rep, st.Shards)
	}

	// Refusals: exit 1, nothing on stdout, a message that says why, and
	// the stream as it was.
	before := getStreamState(t, p, "rs")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"stream", "split", "rs"}, "--shard is required"},
		{[]string{"stream", "split", "rs", "--shard", "x"}, `--shard "x": want a shard id`},
		{[]string{"stream", "split", "rs", "--shard", "-1"}, "want a shard id"},
		{[]string{"stream", "split", "rs", "--shard", "5", "--at", "12ab"}, "want a decimal hash key"},
		{[]string{"stream", "split", "rs", "--shard", "5", "--at", "340282366920938463463374607431768211456"}, "want a decimal hash key"},
		{[]string{"stream", "split", "rs", "--shard", "0"}, `split stream "rs": catalog: shard is closed`},
		{[]string{"stream", "split", "rs", "--shard", "4242"}, "unknown shard"},
		{[]string{"stream", "merge", "rs", "--shards", "5"}, `--shards "5": want two shard ids`},
		{[]string{"stream", "merge", "rs", "--shards", "5,6,7"}, "want two shard ids"},
		{[]string{"stream", "merge", "rs", "--shards", "5,b"}, `--shards "b": want a shard id`},
		{[]string{"stream", "merge", "rs", "--shards", "5,5"}, "cannot merge with itself"},
		{[]string{"stream", "merge", "rs", "--shards", "0,2"}, `merge stream "rs"`},
		{[]string{"stream", "merge", "rs"}, `required flag(s) "shards" not set`},
		{[]string{"stream", "scale", "rs", "--shards", "0"}, "--shards must be at least 1"},
		{[]string{"stream", "scale", "rs", "--shards", "1025"}, "1 to 1024"},
		{[]string{"stream", "scale", "nope", "--shards", "2"}, `scale stream "nope": stream does not exist`},
	} {
		r := cliAdmin(t, ctx, p, tc.args...)
		cliCheckFailure(t, r, []string{tc.want})
		if r.code != 1 {
			t.Errorf("%q: exit %d, want 1", tc.args, r.code)
		}
	}
	// No admin API at the address: the error names it.
	dead := braidtest.FreeAddr(t)
	r = runCLI(t, ctx, "", nil, "stream", "scale", "rs", "--shards", "2", "--brokers", p.KafkaAddr, "--admin-addr", dead)
	cliCheckFailure(t, r, []string{`scale stream "rs"`, dead, "connection refused"})
	r = runCLI(t, ctx, "", nil, "stream", "scale", "rs", "--shards", "2", "--brokers", p.KafkaAddr, "--admin-addr", "")
	cliCheckFailure(t, r, []string{"no admin address"})

	after := getStreamState(t, p, "rs")
	b, _ := json.Marshal(before)
	a, _ := json.Marshal(after)
	if string(a) != string(b) {
		t.Errorf("refused commands changed the stream:\nbefore %s\nafter  %s", b, a)
	}
}

// TestCLIConsumeLineage: keyed records produced across splits and a merge
// print, per key, in the order they were produced, and a reshard made
// while consume runs is followed.
func TestCLIConsumeLineage(t *testing.T) {
	t.Parallel()
	p := braidtest.Start(t)
	ctx := testCtx(t, 60*time.Second)
	if r := cliAdmin(t, ctx, p, "stream", "create", "lin"); r.code != 0 {
		t.Fatalf("create: %s", r)
	}
	cl := newClient(t, p, kgo.ProducerLinger(0))
	const keys = 8
	seq := make([]int, keys)
	// Each round writes every key; the first is big (about 2 MiB) so that
	// a reader taking all shards at once gets the children's records
	// before the end of the parent's.
	round := func(n, size int) {
		t.Helper()
		var recs []*kgo.Record
		pad := strings.Repeat("x", size)
		for range n {
			for k := range keys {
				seq[k]++
				recs = append(recs, &kgo.Record{Topic: "lin", Key: []byte("k" + strconv.Itoa(k)), Value: []byte(fmt.Sprintf("%d %s", seq[k], pad))})
			}
		}
		produce(t, ctx, cl, recs...)
	}
	reshard := func(args ...string) {
		t.Helper()
		if r := cliAdmin(t, ctx, p, append([]string{"stream"}, args...)...); r.code != 0 {
			t.Fatalf("%s", r)
		}
	}
	round(256, 1024)
	reshard("split", "lin", "--shard", "0")
	round(20, 10)
	reshard("split", "lin", "--shard", "1")
	round(20, 10)
	reshard("merge", "lin", "--shards", "3,4")
	round(20, 10)

	check := func(r cliResult) {
		t.Helper()
		if r.code != 0 || r.stderr != "" {
			t.Fatalf("consume: %s", r)
		}
		next := make([]int, keys)
		n := 0
		for _, line := range strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n") {
			var rec cliRecord
			if err := json.Unmarshal([]byte(line), &rec); err != nil || rec.Key == nil || rec.Value == nil {
				t.Fatalf("line %q: %v", line, err)
			}
			k, _ := strconv.Atoi(strings.TrimPrefix(*rec.Key, "k"))
			v, _ := strconv.Atoi(strings.Fields(*rec.Value)[0])
			if v != next[k]+1 {
				t.Fatalf("key %s: record %d (shard %d offset %d) after record %d: out of order", *rec.Key, v, rec.Partition, rec.Offset, next[k])
			}
			next[k] = v
			n++
		}
		for k := range keys {
			if next[k] != seq[k] {
				t.Errorf("key k%d: read up to %d of %d records", k, next[k], seq[k])
			}
		}
		t.Logf("consumed %d records in %s", n, r.elapsed)
	}
	check(cliAdmin(t, ctx, p, "consume", "lin", "--timeout", "1s", "--format", "json"))

	// A reshard while consume runs: the new children are found and read
	// after their parent.
	var wg sync.WaitGroup
	var live cliResult
	wg.Add(1)
	go func() {
		defer wg.Done()
		live = cliAdmin(t, ctx, p, "consume", "lin", "--timeout", "3s", "--format", "json")
	}()
	time.Sleep(500 * time.Millisecond)
	round(5, 10)
	reshard("split", "lin", "--shard", "5")
	round(20, 10)
	wg.Wait()
	check(live)
}

// TestReshardMetrics: after a split, /metrics counts it, its duration, the
// records and bytes each shard took and the batches routed away from the
// closed parent.
func TestReshardMetrics(t *testing.T) {
	t.Parallel()
	p := braidtest.Start(t)
	ctx := testCtx(t, 30*time.Second)
	if r := cliAdmin(t, ctx, p, "stream", "create", "met"); r.code != 0 {
		t.Fatalf("create: %s", r)
	}
	cl := newProducer(t, p, kgo.ProducerLinger(0), kgo.MaxBufferedRecords(1))
	for i := range 7 {
		produce(t, ctx, cl, &kgo.Record{Topic: "met", Partition: 0, Key: []byte("k" + strconv.Itoa(i)), Value: []byte("v")})
	}
	if r := cliAdmin(t, ctx, p, "stream", "split", "met", "--shard", "0"); r.code != 0 {
		t.Fatalf("split: %s", r)
	}
	// Addressed to the closed parent: every batch is routed to a child.
	for i := range 5 {
		produce(t, ctx, cl, &kgo.Record{Topic: "met", Partition: 0, Key: []byte("k" + strconv.Itoa(i)), Value: []byte("v")})
	}
	_, body := cliHTTPGet(t, ctx, "http://"+p.HTTPAddr+"/metrics")
	metric := func(name string) (float64, bool) {
		for _, l := range strings.Split(body, "\n") {
			if v, ok := strings.CutPrefix(l, name+" "); ok {
				f, err := strconv.ParseFloat(v, 64)
				return f, err == nil
			}
		}
		return 0, false
	}
	for _, c := range []struct {
		name string
		want float64
	}{
		{`braid_reshards_total{op="split",stream="met"}`, 1},
		{`braid_reshard_seconds_count`, 1},
		{`braid_shard_written_records_total{shard="0",stream="met"}`, 7},
		{`braid_routed_batches_total`, 5},
	} {
		if v, ok := metric(c.name); !ok || v != c.want {
			t.Errorf("%s = %v (found %v), want %v", c.name, v, ok, c.want)
		}
	}
	children, bytes := 0.0, 0.0
	for _, s := range []string{"1", "2"} {
		v, ok := metric(`braid_shard_written_records_total{shard="` + s + `",stream="met"}`)
		if !ok {
			t.Errorf("no written records for shard %s", s)
		}
		children += v
		b, _ := metric(`braid_shard_written_bytes_total{shard="` + s + `",stream="met"}`)
		bytes += b
	}
	if children != 5 || bytes <= 0 {
		t.Errorf("children took %v records, %v bytes; want 5 records", children, bytes)
	}
	if v, ok := metric(`braid_shard_written_bytes_total{shard="0",stream="met"}`); !ok || v <= 0 {
		t.Errorf("parent written bytes %v %v", v, ok)
	}
	if s, ok := metric("braid_reshard_seconds_sum"); !ok || s <= 0 || s > 10 {
		t.Errorf("braid_reshard_seconds_sum = %v", s)
	}
	// The indexes hold the 12 batches (48 bytes each) and the internal
	// streams' few, with their arrays' spare room: not the data.
	if v, ok := metric("braid_shard_index_bytes"); !ok || v < 12*48 || v > 64<<10 || int64(v)%48 != 0 {
		t.Errorf("braid_shard_index_bytes = %v (found %v), want whole entries of 48 bytes, at least 12, far less than 64 KiB", v, ok)
	}
}

// TestCLIConsumeLineageTxn: a parent whose last offset is a transaction's
// commit marker is still read to its end, so its children are read.
func TestCLIConsumeLineageTxn(t *testing.T) {
	t.Parallel()
	p := braidtest.Start(t)
	ctx := testCtx(t, 30*time.Second)
	if r := cliAdmin(t, ctx, p, "stream", "create", "lintx"); r.code != 0 {
		t.Fatalf("create: %s", r)
	}
	tx, err := kgo.NewClient(kgo.SeedBrokers(p.KafkaAddr), kgo.TransactionalID("lintx-tx"), kgo.RetryTimeout(15*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	if err := tx.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	produce(t, ctx, tx, &kgo.Record{Topic: "lintx", Key: []byte("k"), Value: []byte("1")}, &kgo.Record{Topic: "lintx", Key: []byte("k"), Value: []byte("2")})
	if err := tx.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	if r := cliAdmin(t, ctx, p, "stream", "split", "lintx", "--shard", "0"); r.code != 0 {
		t.Fatalf("split: %s", r)
	}
	st := getStreamState(t, p, "lintx")
	if end := st.Shards[0].EndOffset; end == nil || *end != 3 {
		t.Fatalf("parent end offset %s, want 3 (two records and the commit marker)", cliOptInt(st.Shards[0].EndOffset))
	}
	produce(t, ctx, newClient(t, p), &kgo.Record{Topic: "lintx", Key: []byte("k"), Value: []byte("3")})
	r := cliAdmin(t, ctx, p, "consume", "lintx", "--timeout", "1s")
	if r.code != 0 || r.stdout != "1\n2\n3\n" {
		t.Fatalf("want 1, 2, 3 in order; %s", r)
	}
}
