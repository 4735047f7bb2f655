package engine

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/braidstream/braid/internal/catalog"
)

// Unit tests of the autoscaler's pure logic with made-up rates; the real
// thing is driven end to end in internal/e2e (TestAutoscaleSkewedLoad).

func testPolicy() catalog.AutoscalePolicy {
	return catalog.AutoscalePolicy{Enabled: true, MinShards: 1, MaxShards: 4, SplitBytesPerSec: 1000,
		MergeRatio: 0.25, Window: 5 * time.Second, MaxChangesPerMinute: 4}
}

// loads returns n judged loads over even ranges, with the given steady
// byte rates.
func loads(rates ...float64) []ShardLoad {
	out := make([]ShardLoad, len(rates))
	for i, r := range catalog.SplitEvenly(len(rates)) {
		rt := Rate{Bytes: rates[i]}
		out[i] = ShardLoad{ID: catalog.ShardID(i), Range: r, Judged: true, Min: rt, Max: rt, Mean: rt}
	}
	return out
}

func TestDecideAutoscale(t *testing.T) {
	p := testPolicy()
	recs := p
	recs.SplitBytesPerSec, recs.SplitRecordsPerSec = 0, 100
	notJudged := loads(5000, 0)
	notJudged[0].Judged = false
	dipped := loads(5000, 0)
	dipped[0].Min.Bytes = 900 // one interval under the threshold
	spiky := loads(10, 10, 10)
	spiky[1].Max.Bytes = 300 // 10+300 is over 0.25 x 1000 at its peak
	withRecs := loads(10, 10)
	withRecs[0].Min.Records, withRecs[0].Max.Records, withRecs[0].Mean.Records = 150, 150, 150
	narrow := loads(5000, 0)
	narrow[0].Range = catalog.HashRange{Start: narrow[0].Range.Start, End: narrow[0].Range.Start}
	minMax := func(min, max int) catalog.AutoscalePolicy { q := p; q.MinShards, q.MaxShards = min, max; return q }
	for _, tc := range []struct {
		name   string
		p      catalog.AutoscalePolicy
		open   int // 0: len(loads)
		loads  []ShardLoad
		budget int
		want   string
	}{
		{"hot shard splits", p, 0, loads(5000, 100), 4, "split[0] hot"},
		{"hottest first", p, 0, loads(2000, 100, 5000), 1, "split[2] hot"},
		{"no split at max", minMax(1, 2), 0, loads(5000, 100), 4, ""},
		{"splits stop at max", minMax(1, 3), 0, loads(5000, 4000), 4, "split[0] hot"},
		{"not judged before a whole window", p, 0, notJudged, 4, ""},
		{"a dip in the window splits nothing", p, 0, dipped, 4, ""},
		{"exactly at the threshold is not over it", p, 0, loads(1000, 0), 4, ""},
		{"a range of one key is not split", p, 0, narrow, 4, ""},
		{"cold pair merges", p, 0, loads(100, 100), 4, "merge[0 1] cold"},
		{"coldest pair first", p, 0, loads(200, 40, 10, 700), 1, "merge[1 2] cold"},
		{"merges stop at min", minMax(2, 4), 0, loads(0, 0, 0, 0), 4, "merge[0 1] cold merge[2 3] cold"},
		{"no merge at min", minMax(2, 4), 0, loads(0, 0), 4, ""},
		{"unranged open shards count", minMax(3, 6), 3, loads(0, 0), 4, ""},
		{"combined peak decides, not the mean", p, 0, spiky, 4, ""},
		{"merge ratio: 240+0 merges, 260+0 does not", p, 0, loads(240, 0, 260), 4, "merge[0 1] cold"},
		{"ratio 0 never merges", func() catalog.AutoscalePolicy { q := p; q.MergeRatio = 0; return q }(), 0, loads(0, 0), 4, ""},
		{"hot and cold at once", p, 0, loads(5000, 10, 10), 4, "split[0] hot merge[1 2] cold"},
		{"budget spent", p, 0, loads(5000, 10, 10), 0, ""},
		{"budget of one", p, 0, loads(5000, 10, 10), 1, "split[0] hot"},
		{"records threshold", recs, 0, withRecs, 4, "split[0] hot"},
		{"records threshold, cold", recs, 0, loads(5000, 5000), 4, "merge[0 1] cold"},
		{"below min: widest splits, whatever the load", minMax(3, 4), 0, loads(0, 0)[:1], 4, "split[0] below min"},
		{"below min, budget bound", minMax(4, 4), 0, loads(0, 0), 1, "split[0] below min"},
		{"above max: coldest pairs merge, whatever the load", minMax(1, 2), 0, loads(5000, 5000, 100, 5000), 4, "merge[1 2] above max"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			open := tc.open
			if open == 0 {
				open = len(tc.loads)
			}
			got := decideAutoscale(tc.p, open, tc.loads, tc.budget)
			if s := showDecisions(got); s != tc.want {
				t.Fatalf("decisions %q, want %q", s, tc.want)
			}
			splits, merges := 0, 0
			for _, d := range got {
				if d.Op == "split" {
					splits++
				} else {
					merges++
				}
			}
			if len(got) > max(tc.budget, 0) {
				t.Fatalf("%d decisions over a budget of %d", len(got), tc.budget)
			}
			if open >= tc.p.MinShards && open <= tc.p.MaxShards && (open+splits > tc.p.MaxShards || open-merges < tc.p.MinShards) {
				t.Fatalf("open %d, %d splits, %d merges: outside [%d, %d]", open, splits, merges, tc.p.MinShards, tc.p.MaxShards)
			}
		})
	}
}

func showDecisions(ds []AutoscaleDecision) string {
	var out []string
	for _, d := range ds {
		out = append(out, fmt.Sprintf("%s%v %s", d.Op, d.Shards, d.Reason))
	}
	return strings.Join(out, " ")
}

// TestStreamScalerWindow: a shard is judged only once observed for a
// whole window, and its rates are those of the window's intervals.
func TestStreamScalerWindow(t *testing.T) {
	sc := newStreamScaler()
	r := catalog.SplitEvenly(1)[0]
	t0 := time.Unix(1000, 0)
	var bytes int64
	rates := []int64{0, 2000, 2000, 500, 2000, 2000, 2000, 2000, 2000, 3000}
	for i, rate := range rates {
		bytes += rate
		ls := sc.observe(t0.Add(time.Duration(i)*time.Second), catalog.AutoscalePolicy{Window: 3 * time.Second}, []OpenShard{{ID: 7, Range: r, Bytes: bytes}})
		l := ls[0]
		if want := i >= 3; l.Judged != want {
			t.Fatalf("tick %d: judged %v, want %v", i, l.Judged, want)
		}
		if i < 3 {
			continue
		}
		lo, hi := rates[i], rates[i]
		for _, x := range rates[i-2 : i+1] {
			lo, hi = min(lo, x), max(hi, x)
		}
		if l.Min.Bytes != float64(lo) || l.Max.Bytes != float64(hi) {
			t.Fatalf("tick %d: min %v max %v, want %d %d", i, l.Min.Bytes, l.Max.Bytes, lo, hi)
		}
		if got := len(sc.series[7]); got != 4 {
			t.Fatalf("tick %d: %d samples kept, want 4", i, got)
		}
	}
	// A shard no longer open is forgotten; one that comes back later
	// starts afresh.
	sc.observe(t0.Add(20*time.Second), catalog.AutoscalePolicy{Window: 3 * time.Second}, nil)
	if len(sc.series) != 0 {
		t.Fatalf("series of closed shards kept: %v", sc.series)
	}
}

// simShard is a shard of the simulated stream.
type simShard struct {
	id             catalog.ShardID
	r              catalog.HashRange
	parents        []catalog.ShardID
	records, bytes float64
}

// sim runs the autoscaler's step against a simulated stream whose load is
// rate(t, keys) bytes per second at each hash key of keys, applying the
// decisions as the engine would, once a second for d. It fails the test
// when a bound is broken and returns the changes by time.
type simResult struct {
	splits, merges int
	open           int
	changes        []time.Time
	log            []string
	holds          []string // "shard reason", as step reported them
}

func sim(t *testing.T, p catalog.AutoscalePolicy, startShards int, keys []catalog.HashKey, d time.Duration, rate func(t time.Duration, key int) float64) simResult {
	t.Helper()
	sc := newStreamScaler()
	var shards []*simShard
	next := catalog.ShardID(0)
	for _, r := range catalog.SplitEvenly(startShards) {
		shards = append(shards, &simShard{id: next, r: r})
		next++
	}
	var res simResult
	t0 := time.Unix(1_000_000, 0)
	for el := time.Duration(0); el <= d; el += time.Second {
		now := t0.Add(el)
		// Load of the last second, to the shard owning each key.
		for i, k := range keys {
			for _, sh := range shards {
				if sh.r.Contains(k) {
					sh.bytes += rate(el, i)
					sh.records += rate(el, i) / 100
				}
			}
		}
		var open []OpenShard
		for _, sh := range shards {
			open = append(open, OpenShard{ID: sh.id, Range: sh.r, Parents: sh.parents, Bytes: int64(sh.bytes), Records: int64(sh.records)})
		}
		ds, holds := sc.step(now, p, len(shards), open)
		for _, h := range holds {
			res.holds = append(res.holds, fmt.Sprintf("%d %s", h.Shards[0], h.Reason))
		}
		for _, dc := range ds {
			switch dc.Op {
			case "split":
				i := slices.IndexFunc(shards, func(s *simShard) bool { return s.id == dc.Shards[0] })
				lo, hi := halves(shards[i].r)
				shards = slices.Replace(shards, i, i+1, &simShard{id: next, r: lo, parents: dc.Shards}, &simShard{id: next + 1, r: hi, parents: dc.Shards})
				next += 2
				res.splits++
			case "merge":
				i := slices.IndexFunc(shards, func(s *simShard) bool { return s.id == dc.Shards[0] })
				j := slices.IndexFunc(shards, func(s *simShard) bool { return s.id == dc.Shards[1] })
				if j != i+1 {
					t.Fatalf("%v: merge of shards %v that are not neighbours", el, dc.Shards)
				}
				m := &simShard{id: next, r: catalog.HashRange{Start: shards[i].r.Start, End: shards[j].r.End}, parents: dc.Shards}
				shards = slices.Replace(shards, i, j+1, m)
				next++
				res.merges++
			}
			sc.changed(now)
			res.changes = append(res.changes, now)
			res.log = append(res.log, fmt.Sprintf("%v %s%v %s (%.0f B/s) -> %d open", el, dc.Op, dc.Shards, dc.Reason, dc.Rate.Bytes, len(shards)))
		}
		if len(shards) < p.MinShards || len(shards) > p.MaxShards {
			t.Fatalf("%v: %d open shards, outside [%d, %d]\n%s", el, len(shards), p.MinShards, p.MaxShards, joinLines(res.log))
		}
	}
	for i := range res.changes {
		n := 0
		for _, c := range res.changes[i:] {
			if c.Sub(res.changes[i]) < time.Minute {
				n++
			}
		}
		if n > p.MaxChangesPerMinute {
			t.Fatalf("%d changes within a minute from %v, bound %d\n%s", n, res.changes[i].Sub(t0), p.MaxChangesPerMinute, joinLines(res.log))
		}
	}
	res.open = len(shards)
	return res
}

func joinLines(s []string) string { return strings.Join(s, "\n") }

func halves(r catalog.HashRange) (lo, hi catalog.HashRange) {
	a, b := bigKey(r.Start), bigKey(r.End)
	mid := new(big.Int).Add(a, b)
	mid.Rsh(mid, 1)
	mid.Add(mid, big.NewInt(1))
	m := keyOf(mid)
	return catalog.HashRange{Start: r.Start, End: keyOf(new(big.Int).Sub(mid, big.NewInt(1)))}, catalog.HashRange{Start: m, End: r.End}
}

func bigKey(k catalog.HashKey) *big.Int {
	v := new(big.Int).SetUint64(k.Hi)
	return v.Lsh(v, 64).Or(v, new(big.Int).SetUint64(k.Lo))
}

func keyOf(v *big.Int) catalog.HashKey {
	lo := new(big.Int).And(v, new(big.Int).SetUint64(math.MaxUint64))
	return catalog.HashKey{Hi: new(big.Int).Rsh(v, 64).Uint64(), Lo: lo.Uint64()}
}

// hotKeys returns n hash keys spread over the first 1/8 of the space.
func hotKeys(n int) []catalog.HashKey {
	var out []catalog.HashKey
	for i := range n {
		out = append(out, catalog.HashKey{Hi: uint64(i) * (1 << 61 / uint64(n)), Lo: 12345})
	}
	return out
}

func TestAutoscaleSimulated(t *testing.T) {
	t.Run("skewed load splits the hot range and merges back when it stops", func(t *testing.T) {
		p := testPolicy()
		p.MinShards, p.MaxShards, p.MaxChangesPerMinute = 2, 6, 3
		keys := hotKeys(16)
		// 16 keys x 1000 B/s: 16x the threshold, all in one eighth.
		res := sim(t, p, 2, keys, 10*time.Minute, func(el time.Duration, _ int) float64 {
			if el < 4*time.Minute {
				return 1000
			}
			return 0
		})
		if res.splits < p.MaxShards-2 || res.open != p.MinShards || res.merges != res.splits {
			t.Fatalf("%d splits, %d merges, %d open at the end\n%s", res.splits, res.merges, res.open, joinLines(res.log))
		}
		if !slices.ContainsFunc(res.holds, func(h string) bool { return strings.HasSuffix(h, " at max") }) {
			t.Fatalf("holds reported: %q, want some at max\n%s", res.holds, joinLines(res.log))
		}
	})
	t.Run("a rate oscillating around the threshold changes nothing", func(t *testing.T) {
		// Window 5 s: every window holds a second under the threshold.
		p := testPolicy()
		for _, period := range []int{2, 3, 5} {
			res := sim(t, p, 1, hotKeys(1), 10*time.Minute, func(el time.Duration, _ int) float64 {
				if int(el/time.Second)%period == 0 {
					return 700
				}
				return 1300
			})
			if len(res.changes) != 0 {
				t.Fatalf("period %ds: %d changes\n%s", period, len(res.changes), joinLines(res.log))
			}
		}
	})
	t.Run("a noisy rate at the threshold splits at most once and never merges back", func(t *testing.T) {
		// 1000 +- 30% at random each second over keys all over the
		// space: now and then five seconds in a row are over; the halves
		// (about 0.5x each, 1x together) are far from both thresholds.
		p := testPolicy()
		var keys []catalog.HashKey
		for _, r := range catalog.SplitEvenly(8) {
			keys = append(keys, r.Start)
		}
		rng := rand.New(rand.NewPCG(1, 2))
		res := sim(t, p, 1, keys, 30*time.Minute, func(time.Duration, int) float64 {
			return 125 * (0.7 + 0.6*rng.Float64())
		})
		if res.merges != 0 || res.splits > 1 {
			t.Fatalf("%d splits, %d merges\n%s", res.splits, res.merges, joinLines(res.log))
		}
	})
	t.Run("one hot key: a few splits, then it settles", func(t *testing.T) {
		// Splitting cannot spread one key: after maxFutileSplits splits
		// that left the load on one side, the hot side is left alone and
		// the cold halves merge back, instead of churning for ever.
		p := testPolicy()
		p.MaxShards = 16
		res := sim(t, p, 1, hotKeys(1), 30*time.Minute, func(el time.Duration, _ int) float64 {
			return 1000 * (1.6 + math.Sin(2*math.Pi*el.Seconds()/100))
		})
		last := res.changes[len(res.changes)-1].Sub(time.Unix(1_000_000, 0))
		if res.splits > maxFutileSplits+1 || last > 10*time.Minute {
			t.Fatalf("%d splits, %d merges, last change at %v\n%s", res.splits, res.merges, last, joinLines(res.log))
		}
		// Said once, not at every tick the key stays hot.
		if n := len(res.holds); n != 1 || !strings.HasSuffix(res.holds[0], " one hot key") {
			t.Fatalf("holds reported: %q, want one for the hot key", res.holds)
		}
	})
	t.Run("many hot shards: the per-minute bound holds", func(t *testing.T) {
		p := testPolicy()
		p.MaxShards, p.MaxChangesPerMinute = 64, 2
		var keys []catalog.HashKey
		for _, r := range catalog.SplitEvenly(64) {
			keys = append(keys, r.Start)
		}
		res := sim(t, p, 1, keys, 3*time.Minute, func(time.Duration, int) float64 { return 5000 })
		// sim checks the bound; it must also have been reached.
		if res.splits < 5 || res.splits > 6 {
			t.Fatalf("%d splits in 3 minutes at 2 a minute\n%s", res.splits, joinLines(res.log))
		}
	})
}

// TestAutoscaleConfigsChecked: configs that are each valid but at odds
// with each other are refused with a clear error and change nothing.
func TestAutoscaleConfigsChecked(t *testing.T) {
	e := openEngine(t, t.TempDir())
	defer e.Close()
	if _, err := e.CreateStream("s", 1, nil, false); err != nil {
		t.Fatal(err)
	}
	s := func(v string) *string { return &v }
	for _, tc := range []struct {
		set  map[string]*string
		want string
	}{
		{map[string]*string{catalog.AutoscaleEnableConfig: s("true"), catalog.AutoscaleMinShardsConfig: s("5"), catalog.AutoscaleMaxShardsConfig: s("4")},
			"braid.autoscale.min.shards (5) is above braid.autoscale.max.shards (4)"},
		{map[string]*string{catalog.AutoscaleEnableConfig: s("true"), catalog.MaxShardsConfig: s("8")},
			"braid.autoscale.max.shards (16) is above braid.shards.max (8)"},
		{map[string]*string{catalog.AutoscaleEnableConfig: s("true"), catalog.AutoscaleSplitBytesConfig: s("0")},
			"neither"},
		{map[string]*string{catalog.AutoscaleEnableConfig: s("true"), catalog.AutoscaleMinShardsConfig: s("x")},
			`braid.autoscale.min.shards="x"`},
		{map[string]*string{catalog.AutoscaleMergeRatioConfig: s("1")}, "below 1"},
	} {
		err := e.SetConfigs("s", tc.set, false, false)
		if !errors.Is(err, catalog.ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("set %v: %v, want an invalid config error mentioning %q", tc.set, err, tc.want)
		}
		if _, err := e.CreateStream("c", 1, derefConfigs(tc.set), false); !errors.Is(err, catalog.ErrInvalidConfig) {
			t.Errorf("create with %v: %v, want an invalid config error", tc.set, err)
		}
	}
	if cfg := e.Stream("s").Configs; len(cfg) != 0 || e.Stream("c") != nil {
		t.Fatalf("refused changes changed something: %v, stream c %v", cfg, e.Stream("c"))
	}
	// Autoscale off: the others may be set in any order.
	if err := e.SetConfigs("s", map[string]*string{catalog.AutoscaleMinShardsConfig: s("20")}, false, false); err != nil {
		t.Fatal(err)
	}
	if err := e.SetConfigs("s", map[string]*string{catalog.AutoscaleEnableConfig: s("true"), catalog.AutoscaleMaxShardsConfig: s("32")}, false, false); err != nil {
		t.Fatal(err)
	}
	if p := e.Stream("s").Configs.Autoscale(e.Defaults()); !p.Enabled || p.MinShards != 20 || p.MaxShards != 32 {
		t.Fatalf("policy %+v", p)
	}
}

func derefConfigs(set map[string]*string) catalog.Configs {
	out := catalog.Configs{}
	for k, v := range set {
		out[k] = *v
	}
	return out
}
