package e2e

import (
	"context"
	"fmt"
	"hash/fnv"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/braidstream/braid/internal/braidtest"
)

// Key compaction (cleanup.policy=compact) seen from outside: real kgo
// producers and consumers, the cleaner's progress read from
// `braid stream describe --format json` (cleaned_to, dirty_ratio,
// last_cleaned) and /metrics (braid_cleaner_*).
//
// The tests never sleep to let the cleaner work: they close the active head
// (rollHead) and poll until cleaned_to has passed the data they check.
// Everything below cleaned_to was covered by a cleaning pass, so there each
// key may keep only its latest record (of the records below cleaned_to);
// above it anything produced may still be there.
//
// Random tests log their seed; BRAID_COMPACTION_SEED replays one.

// rollBytes is the size of the record rollHead uses to close a segment: more
// than the largest segment.bytes any test here uses.
const rollBytes = 10100

// startCleaning starts a node whose cleaner looks for work every interval.
func startCleaning(t testing.TB, interval string, extra ...string) *braidtest.Proc {
	t.Helper()
	return braidtest.Start(t, append([]string{"--cleaner-interval", interval}, extra...)...)
}

// compactConfigs returns the configs of a compacted stream that cleans
// eagerly (small segments, any dirt triggers cleaning) and keeps tombstones
// for an hour, with overrides as alternating name, value.
func compactConfigs(overrides ...string) map[string]*string {
	c := map[string]*string{
		"cleanup.policy":            ptr("compact"),
		"segment.bytes":             ptr("1024"),
		"min.cleanable.dirty.ratio": ptr("0.01"),
		"delete.retention.ms":       ptr("3600000"),
	}
	for i := 0; i+1 < len(overrides); i += 2 {
		c[overrides[i]] = ptr(overrides[i+1])
	}
	return c
}

// testSeed returns BRAID_COMPACTION_SEED if set, else a fresh seed, and
// logs it.
func testSeed(t testing.TB) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("BRAID_COMPACTION_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("BRAID_COMPACTION_SEED=%q: %v", s, err)
		}
		seed = v
	}
	t.Logf("seed %d (replay with BRAID_COMPACTION_SEED=%d)", seed, seed)
	return seed
}

// cleanerShard is one shard of `stream describe --format json` with the
// cleaner's fields.
type cleanerShard struct {
	Shard       int32    `json:"shard"`
	Earliest    *int64   `json:"earliest"`
	Latest      *int64   `json:"latest"`
	DirtyRatio  *float64 `json:"dirty_ratio"`
	CleanedTo   *int64   `json:"cleaned_to"`
	LastCleaned *string  `json:"last_cleaned"`
	Error       string   `json:"error"`
}

func (s cleanerShard) String() string {
	return fmt.Sprintf("shard %d: earliest %s latest %s cleaned_to %s dirty_ratio %v last_cleaned %q error %q",
		s.Shard, optOffset(s.Earliest), optOffset(s.Latest), optOffset(s.CleanedTo), deref(s.DirtyRatio), deref(s.LastCleaned), s.Error)
}

func optOffset(o *int64) string {
	if o == nil {
		return "-"
	}
	return strconv.FormatInt(*o, 10)
}

func deref[T any](p *T) any {
	if p == nil {
		return "<missing>"
	}
	return *p
}

// describeCleaner runs `braid stream describe NAME --format json` (with
// --admin-addr, where the compaction state comes from) and
// returns its shards; it fails t if a shard lacks the cleaner's fields or
// they are out of range.
func describeCleaner(t testing.TB, ctx context.Context, p *braidtest.Proc, topic string) map[int32]cleanerShard {
	t.Helper()
	r := cliOK(t, ctx, p, "", "stream", "describe", topic, "--format", "json", "--admin-addr", p.HTTPAddr)
	var d struct {
		Shards      []cleanerShard `json:"shards"`
		OffsetError string         `json:"offset_error"`
	}
	cliDecodeJSON(t, r, &d)
	out := map[int32]cleanerShard{}
	for _, s := range d.Shards {
		if s.CleanedTo == nil || s.DirtyRatio == nil || s.LastCleaned == nil {
			t.Fatalf("describe %s: %v lacks dirty_ratio, cleaned_to or last_cleaned; %s", topic, s, r)
		}
		if r := *s.DirtyRatio; r < 0 || r > 1 {
			t.Errorf("describe %s: %v: dirty_ratio outside [0, 1]", topic, s)
		}
		if s.Latest != nil && *s.CleanedTo > *s.Latest {
			t.Errorf("describe %s: %v: cleaned_to past the end of the shard", topic, s)
		}
		if lc := *s.LastCleaned; lc != "" {
			when, err := time.Parse(time.RFC3339, lc)
			if err != nil {
				t.Errorf("describe %s: %v: last_cleaned is not RFC 3339: %v", topic, s, err)
			} else if d := time.Since(when); d < -5*time.Second || d > 10*time.Minute {
				t.Errorf("describe %s: %v: last_cleaned %s from now", topic, s, -d)
			}
		}
		out[s.Shard] = s
	}
	return out
}

// cleanerCounter sums every sample of a braid_cleaner_* counter, whatever
// its labels; 0 if there is none yet (a labelled counter has no sample
// before its first increment).
func cleanerCounter(t testing.TB, ctx context.Context, p *braidtest.Proc, name string) float64 {
	t.Helper()
	sum := 0.0
	for _, smp := range scrapeMetrics(t, ctx, p).samples {
		if smp.name == name {
			sum += smp.value
		}
	}
	return sum
}

// checkCleanerMetrics fails t unless /metrics exports the cleaner's
// counters as counters.
func checkCleanerMetrics(t testing.TB, ctx context.Context, p *braidtest.Proc) {
	t.Helper()
	s := scrapeMetrics(t, ctx, p)
	for _, name := range []string{"braid_cleaner_runs_total", "braid_cleaner_cleaned_bytes_total", "braid_cleaner_removed_bytes_total"} {
		family := strings.TrimSuffix(name, "_total")
		if s.types[name] != "counter" && s.types[family] != "counter" {
			t.Errorf("/metrics: %s is not typed counter (types %q / %q); braid_ lines:\n%s", name, s.types[name], s.types[family], s.braidLines())
		}
		found := false
		for _, smp := range s.samples {
			found = found || smp.name == name
		}
		if !found {
			t.Errorf("/metrics has no sample of %s after cleaning; braid_ lines:\n%s", name, s.braidLines())
		}
	}
}

func cleanerMetrics(t testing.TB, ctx context.Context, p *braidtest.Proc) string {
	t.Helper()
	return fmt.Sprintf("braid_cleaner_runs_total %v, braid_cleaner_cleaned_bytes_total %v, braid_cleaner_removed_bytes_total %v",
		cleanerCounter(t, ctx, p, "braid_cleaner_runs_total"),
		cleanerCounter(t, ctx, p, "braid_cleaner_cleaned_bytes_total"),
		cleanerCounter(t, ctx, p, "braid_cleaner_removed_bytes_total"))
}

// waitCleaned polls until the cleaner has cleaned topic/part past offset
// (cleaned_to > past), for at most 25 s, and returns the shard as described
// then.
func waitCleaned(t testing.TB, ctx context.Context, p *braidtest.Proc, topic string, part int32, past int64) cleanerShard {
	t.Helper()
	deadline := time.Now().Add(25 * time.Second)
	for {
		s, ok := describeCleaner(t, ctx, p, topic)[part]
		if !ok {
			t.Fatalf("describe %s: no shard %d", topic, part)
		}
		if *s.CleanedTo > past {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cleaner did not clean %s/%d past offset %d within 25 s; last described %v; %s",
				topic, part, past, s, cleanerMetrics(t, ctx, p))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// rollHead closes the segment that holds everything produced to topic/part
// so far and starts a new active head. A record larger than any
// segment.bytes used here ends that segment whichever way the server cuts
// (after the batch that reaches segment.bytes, or before the batch that
// would pass it, as Kafka rolls), and a small record after it opens the new
// head. Both keys are fresh, so both records stay the latest of their key.
// It returns the two records as produced (offsets set).
func rollHead(t testing.TB, ctx context.Context, prod *kgo.Client, topic string, part int32, tag string) (big, head *kgo.Record) {
	t.Helper()
	h := fnv.New64a()
	h.Write([]byte(topic + "/" + tag))
	big = &kgo.Record{Topic: topic, Partition: part, Key: []byte("roll-" + tag + "-big"), Value: randomBytes(h.Sum64(), rollBytes)}
	produce(t, ctx, prod, big)
	head = &kgo.Record{Topic: topic, Partition: part, Key: []byte("roll-" + tag + "-head"), Value: []byte("head " + tag)}
	produce(t, ctx, prod, head)
	return big, head
}

// producedLog is what was produced to one partition, by offset.
type producedLog map[int64]*kgo.Record

func (l producedLog) add(recs ...*kgo.Record) {
	for _, r := range recs {
		l[r.Offset] = r
	}
}

// latestBelow returns, for each key, the produced record with the highest
// offset below `below`.
func (l producedLog) latestBelow(below int64) map[string]*kgo.Record {
	out := map[string]*kgo.Record{}
	for off, r := range l {
		if off >= below {
			continue
		}
		if cur, ok := out[string(r.Key)]; !ok || cur.Offset < off {
			out[string(r.Key)] = r
		}
	}
	return out
}

// checkCompacted reads topic/part from offset 0 (read_uncommitted) and
// checks it against what was produced, given that the cleaner has cleaned
// everything below cleanedTo (described before this call):
//   - offsets strictly increase and every record is exactly the one produced
//     at its offset (key, value or null, headers, timestamp);
//   - below cleanedTo a record is the latest of its key among the records
//     produced below cleanedTo, and not a tombstone `expired` says was past
//     delete.retention.ms (nil: none was);
//   - every key's latest record is there, unless it is such an expired
//     tombstone below cleanedTo.
//
// It returns the records read.
func checkCompacted(t testing.TB, ctx context.Context, p *braidtest.Proc, topic string, part int32, produced producedLog, cleanedTo int64, expired func(*kgo.Record) bool) []*kgo.Record {
	t.Helper()
	if expired == nil {
		expired = func(*kgo.Record) bool { return false }
	}
	got := p.ReadPartition(ctx, topic, part, false)
	latestClean := produced.latestBelow(cleanedTo)
	latest := produced.latestBelow(1 << 62)
	read := map[int64]bool{}
	bad := 0
	fail := func(format string, args ...any) {
		t.Helper()
		t.Errorf("%s/%d (cleaned_to %d): "+format, append([]any{topic, part, cleanedTo}, args...)...)
		if bad++; bad == 10 {
			t.Fatalf("%s/%d: stopping after %d errors", topic, part, bad)
		}
	}
	prev := int64(-1)
	for i, r := range got {
		if r.Offset <= prev {
			fail("record %d at offset %d follows offset %d", i, r.Offset, prev)
		}
		prev = r.Offset
		read[r.Offset] = true
		want, ok := produced[r.Offset]
		if !ok {
			fail("read %s: nothing was produced at that offset", describe(r))
			continue
		}
		if !checkRecord(t, i, r, want, true) {
			fail("record at offset %d differs from what was produced there", r.Offset)
			continue
		}
		if r.Offset < cleanedTo {
			if lc := latestClean[string(r.Key)]; lc.Offset != r.Offset {
				fail("cleaned range holds %s, but key %s has a later record at %d: %s", describe(r), showBytes(r.Key), lc.Offset, describe(lc))
			} else if expired(r) {
				fail("cleaned range still holds tombstone %s, older than delete.retention.ms", describe(r))
			}
		}
	}
	for key, l := range latest {
		if read[l.Offset] || (expired(l) && l.Offset < cleanedTo) {
			continue
		}
		fail("key %s lost its latest record %s", showBytes([]byte(key)), describe(l))
	}
	return got
}
