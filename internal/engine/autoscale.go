package engine

import (
	"context"
	"math/big"
	"sort"
	"time"

	"github.com/braidstream/braid/internal/catalog"
)

// Autoscale (docs/design/resharding.md, "Autoscale"): for every stream with
// braid.autoscale.enable=true, the autoscaler samples each open shard's
// write counters every AutoscaleEvery, and
//
//   - splits a shard (in the middle of its range) whose write rate stayed
//     over a split threshold in every sample interval of the window, while
//     the stream has fewer open shards than its maximum;
//   - merges two adjacent shards whose rates, summed at their highest in
//     the window, stayed under merge.ratio x the threshold, while the
//     stream has more open shards than its minimum;
//   - splits the widest shard of a stream below its minimum and merges the
//     coldest pair of one above its maximum (the bounds were changed);
//   - makes at most max.changes.per.minute changes per stream in any
//     minute, and never judges a shard observed for less than a window
//     (a child of a change has no full window yet).
//
// Hysteresis: a merged shard's rate is under ratio (< 1) x the threshold,
// so a merge never produces a shard that would split at once; a rate that
// goes up and down around the threshold splits nothing, since it must stay
// over it for a whole window.
//
// The state is owned by the autoscaler goroutine; decideAutoscale is pure.

// Rate is a write rate, per second.
type Rate struct {
	Bytes, Records float64
}

// ShardLoad is what the autoscaler knows of one open shard with a hash
// range: its write rates over the last window.
type ShardLoad struct {
	ID    catalog.ShardID
	Range catalog.HashRange
	// Judged is set when the shard was observed for a whole window; the
	// rates of a shard that was not mean nothing yet.
	Judged bool
	// Min and Max are the lowest and highest rates of the sample
	// intervals in the window; Mean is the rate over all of it.
	Min, Max, Mean Rate
	// Futile counts the splits in a row, up the shard's lineage, that
	// left the load on one side: the sibling judged cold while this side
	// was hot (one hot key, or keys too close to be told apart by a
	// split in the middle).
	Futile int
}

// maxFutileSplits is how many splits in a row may leave all the load on
// one side before autoscale stops splitting that side: a single hot key
// cannot be spread, and splitting its shard again and again while the
// cold halves merge would churn forever (and grow the catalog, which
// keeps every closed shard).
const maxFutileSplits = 3

// AutoscaleDecision is one change the autoscaler makes.
type AutoscaleDecision struct {
	Op     string            // "split" or "merge" ("hold": a hot shard left as it is, see step)
	Shards []catalog.ShardID // the shard to split, or the two to merge
	Reason string            // "hot", "cold", "below min", "above max"; for a hold, why
	Rate   Rate              // mean rate over the window: of the shard, or both summed
}

// decideAutoscale returns the changes to make to a stream with open open
// shards (loads lists those that have a hash range), at most budget of
// them. Applied in any subset, the changes keep a stream whose open shard
// count is within [MinShards, MaxShards] within it.
func decideAutoscale(p catalog.AutoscalePolicy, open int, loads []ShardLoad, budget int) []AutoscaleDecision {
	var out []AutoscaleDecision
	if budget <= 0 || len(loads) == 0 {
		return nil
	}
	sorted := append([]ShardLoad(nil), loads...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Range.Start.Less(sorted[j].Range.Start) })
	used := map[catalog.ShardID]bool{}
	splits, merges := 0, 0
	split := func(l ShardLoad, reason string) {
		out = append(out, AutoscaleDecision{Op: "split", Shards: []catalog.ShardID{l.ID}, Reason: reason, Rate: l.Mean})
		used[l.ID] = true
		splits++
	}
	merge := func(a, b ShardLoad, reason string) {
		out = append(out, AutoscaleDecision{Op: "merge", Shards: []catalog.ShardID{a.ID, b.ID}, Reason: reason,
			Rate: Rate{a.Mean.Bytes + b.Mean.Bytes, a.Mean.Records + b.Mean.Records}})
		used[a.ID], used[b.ID] = true, true
		merges++
	}
	// pairs lists the adjacent pairs (ranges of open shards tile the
	// space, so neighbours by range start are adjacent), coldest first.
	pairs := func(ok func(a, b ShardLoad) bool) [][2]ShardLoad {
		var ps [][2]ShardLoad
		for i := 0; i+1 < len(sorted); i++ {
			if ok(sorted[i], sorted[i+1]) {
				ps = append(ps, [2]ShardLoad{sorted[i], sorted[i+1]})
			}
		}
		sort.SliceStable(ps, func(i, j int) bool { return pairHeat(p, ps[i]) < pairHeat(p, ps[j]) })
		return ps
	}

	// Bounds first: a stream outside them (the bounds were just changed)
	// is brought back, whatever its load.
	if open < p.MinShards {
		wide := append([]ShardLoad(nil), sorted...)
		sort.SliceStable(wide, func(i, j int) bool { return width(wide[i].Range).Cmp(width(wide[j].Range)) > 0 })
		for _, l := range wide {
			if len(out) == budget || open+splits >= p.MinShards || width(l.Range).Sign() == 0 {
				break
			}
			split(l, "below min")
		}
		return out
	}
	if open > p.MaxShards {
		for _, pr := range pairs(func(a, b ShardLoad) bool { return true }) {
			if len(out) == budget || open-merges <= p.MaxShards {
				break
			}
			if !used[pr[0].ID] && !used[pr[1].ID] {
				merge(pr[0], pr[1], "above max")
			}
		}
		return out
	}

	var hot []ShardLoad
	for _, l := range sorted {
		// A range of one hash key cannot be split.
		if l.Judged && isHot(p, l.Min) && width(l.Range).Sign() > 0 && l.Futile < maxFutileSplits {
			hot = append(hot, l)
		}
	}
	sort.SliceStable(hot, func(i, j int) bool { return heat(p, hot[i].Mean) > heat(p, hot[j].Mean) })
	for _, l := range hot {
		if len(out) == budget || open+splits+1 > p.MaxShards {
			break
		}
		split(l, "hot")
	}
	cold := func(a, b ShardLoad) bool {
		return a.Judged && b.Judged && !used[a.ID] && !used[b.ID] &&
			isCold(p, Rate{a.Max.Bytes + b.Max.Bytes, a.Max.Records + b.Max.Records})
	}
	for _, pr := range pairs(cold) {
		if len(out) == budget || open-merges-1 < p.MinShards {
			break
		}
		if !used[pr[0].ID] && !used[pr[1].ID] {
			merge(pr[0], pr[1], "cold")
		}
	}
	return out
}

// isHot: r is over a split threshold that is set.
func isHot(p catalog.AutoscalePolicy, r Rate) bool {
	return (p.SplitBytesPerSec > 0 && r.Bytes > p.SplitBytesPerSec) ||
		(p.SplitRecordsPerSec > 0 && r.Records > p.SplitRecordsPerSec)
}

// isCold: r is under ratio x every split threshold that is set.
func isCold(p catalog.AutoscalePolicy, r Rate) bool {
	if p.SplitBytesPerSec <= 0 && p.SplitRecordsPerSec <= 0 {
		return false
	}
	return (p.SplitBytesPerSec <= 0 || r.Bytes < p.MergeRatio*p.SplitBytesPerSec) &&
		(p.SplitRecordsPerSec <= 0 || r.Records < p.MergeRatio*p.SplitRecordsPerSec)
}

// heat is a rate as a fraction of the split threshold, the larger of the
// two that are set.
func heat(p catalog.AutoscalePolicy, r Rate) float64 {
	h := 0.0
	if p.SplitBytesPerSec > 0 {
		h = r.Bytes / p.SplitBytesPerSec
	}
	if p.SplitRecordsPerSec > 0 {
		h = max(h, r.Records/p.SplitRecordsPerSec)
	}
	return h
}

func pairHeat(p catalog.AutoscalePolicy, pr [2]ShardLoad) float64 {
	return heat(p, Rate{pr[0].Mean.Bytes + pr[1].Mean.Bytes, pr[0].Mean.Records + pr[1].Mean.Records})
}

func width(r catalog.HashRange) *big.Int {
	key := func(k catalog.HashKey) *big.Int {
		v := new(big.Int).SetUint64(k.Hi)
		return v.Lsh(v, 64).Or(v, new(big.Int).SetUint64(k.Lo))
	}
	return new(big.Int).Sub(key(r.End), key(r.Start))
}

// sample is a shard's cumulative write counters at one time.
type sample struct {
	at             time.Time
	records, bytes int64
}

// OpenShard is one open ranged shard's cumulative counters, as sampled.
type OpenShard struct {
	ID             catalog.ShardID
	Range          catalog.HashRange
	Parents        []catalog.ShardID
	Records, Bytes int64
}

// streamScaler is the autoscaler's state for one stream.
type streamScaler struct {
	series  map[catalog.ShardID][]sample
	changes []time.Time // autoscale changes in the last minute
	warned  string      // the last policy problem logged
	// inherit is the parent's futile count of a split child not judged
	// yet; futile is the count of a judged shard (see ShardLoad.Futile).
	inherit map[catalog.ShardID]int
	futile  map[catalog.ShardID]int
	held    map[catalog.ShardID]string // hot shards left unsplit, and why
}

func newStreamScaler() *streamScaler {
	return &streamScaler{series: map[catalog.ShardID][]sample{},
		inherit: map[catalog.ShardID]int{}, futile: map[catalog.ShardID]int{}, held: map[catalog.ShardID]string{}}
}

// observe records the counters of the stream's open ranged shards at now
// and returns their loads over the window. Shards no longer open are
// forgotten.
func (s *streamScaler) observe(now time.Time, p catalog.AutoscalePolicy, shards []OpenShard) []ShardLoad {
	seen := make(map[catalog.ShardID]bool, len(shards))
	loads := make([]ShardLoad, 0, len(shards))
	from := now.Add(-p.Window)
	parent := map[catalog.ShardID]catalog.ShardID{}
	for _, sh := range shards {
		seen[sh.ID] = true
		if len(sh.Parents) == 1 {
			parent[sh.ID] = sh.Parents[0]
			if _, known := s.series[sh.ID]; !known {
				s.inherit[sh.ID] = s.futile[sh.Parents[0]]
			}
		}
		ser := append(s.series[sh.ID], sample{now, sh.Records, sh.Bytes})
		// Keep the last sample at or before the window's start and all
		// after it: the intervals then cover the whole window.
		i := 0
		for i+1 < len(ser) && !ser[i+1].at.After(from) {
			i++
		}
		ser = ser[i:]
		s.series[sh.ID] = ser
		loads = append(loads, summarize(sh.ID, sh.Range, ser, from))
	}
	// A split child judged for the first time: was its split futile?
	for _, l := range loads {
		inh, pending := s.inherit[l.ID]
		if !pending || !l.Judged {
			continue
		}
		delete(s.inherit, l.ID)
		s.futile[l.ID] = 0
		for _, sib := range loads {
			if sib.ID != l.ID && sib.Judged && parent[sib.ID] == parent[l.ID] &&
				isHot(p, l.Min) && isCold(p, sib.Max) {
				s.futile[l.ID] = inh + 1
			}
		}
	}
	for i, l := range loads {
		loads[i].Futile = s.futile[l.ID]
	}
	for id := range s.series {
		if !seen[id] {
			delete(s.series, id)
		}
	}
	for id := range s.futile {
		if !seen[id] {
			delete(s.futile, id)
		}
	}
	for id := range s.inherit {
		if !seen[id] {
			delete(s.inherit, id)
		}
	}
	for id := range s.held {
		if !seen[id] {
			delete(s.held, id)
		}
	}
	return loads
}

// summarize computes a shard's load from its samples, oldest first.
func summarize(id catalog.ShardID, r catalog.HashRange, ser []sample, from time.Time) ShardLoad {
	l := ShardLoad{ID: id, Range: r}
	if len(ser) < 2 {
		return l
	}
	l.Judged = !ser[0].at.After(from)
	first := true
	for i := 1; i < len(ser); i++ {
		dt := ser[i].at.Sub(ser[i-1].at).Seconds()
		if dt <= 0 {
			continue
		}
		r := Rate{float64(ser[i].bytes-ser[i-1].bytes) / dt, float64(ser[i].records-ser[i-1].records) / dt}
		if first {
			l.Min, l.Max, first = r, r, false
			continue
		}
		l.Min = Rate{min(l.Min.Bytes, r.Bytes), min(l.Min.Records, r.Records)}
		l.Max = Rate{max(l.Max.Bytes, r.Bytes), max(l.Max.Records, r.Records)}
	}
	if dt := ser[len(ser)-1].at.Sub(ser[0].at).Seconds(); dt > 0 {
		last := ser[len(ser)-1]
		l.Mean = Rate{float64(last.bytes-ser[0].bytes) / dt, float64(last.records-ser[0].records) / dt}
	}
	if first {
		l.Judged = false
	}
	return l
}

// step observes the stream at now and returns what to change; the caller
// reports each change made with changed.
//
// holds lists the hot shards left unsplit (Op "hold", Reason "at max",
// "one hot key" or "change budget spent"), each once per shard and reason,
// so that the log says why without repeating it every second.
func (s *streamScaler) step(now time.Time, p catalog.AutoscalePolicy, open int, shards []OpenShard) (decisions, holds []AutoscaleDecision) {
	loads := s.observe(now, p, shards)
	i := 0
	for i < len(s.changes) && now.Sub(s.changes[i]) >= time.Minute {
		i++
	}
	s.changes = s.changes[i:]
	budget := p.MaxChangesPerMinute - len(s.changes)
	decisions = decideAutoscale(p, open, loads, budget)
	split := map[catalog.ShardID]bool{}
	after := open // open shards once the splits are made
	for _, d := range decisions {
		for _, id := range d.Shards {
			split[id] = true
		}
		if d.Op == "split" {
			after++
		}
	}
	for _, l := range loads {
		if !l.Judged || !isHot(p, l.Min) || split[l.ID] {
			continue
		}
		reason := "change budget spent"
		switch {
		case l.Futile >= maxFutileSplits || width(l.Range).Sign() == 0:
			reason = "one hot key"
		case after >= p.MaxShards:
			reason = "at max"
		}
		if s.held[l.ID] != reason {
			s.held[l.ID] = reason
			holds = append(holds, AutoscaleDecision{Op: "hold", Shards: []catalog.ShardID{l.ID}, Reason: reason, Rate: l.Mean})
		}
	}
	return decisions, holds
}

// changed counts a change made at now against the per-minute bound.
func (s *streamScaler) changed(now time.Time) { s.changes = append(s.changes, now) }

// autoscaler runs an autoscale pass every AutoscaleEvery until Close.
func (e *Engine) autoscaler() {
	defer e.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-e.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	scalers := map[uint64]*streamScaler{}
	e.every(e.opts.AutoscaleEvery, func() { e.autoscalePass(ctx, time.Now(), scalers) })
}

// autoscalePass samples every autoscaled stream and makes the changes
// decideAutoscale asks for. scalers holds the state by stream id (a stream
// recreated under the same name starts afresh).
func (e *Engine) autoscalePass(ctx context.Context, now time.Time, scalers map[uint64]*streamScaler) {
	defaults := e.Defaults()
	live := map[uint64]bool{}
	for _, st := range e.Streams() {
		if st.Internal {
			continue
		}
		p := st.Configs.Autoscale(defaults)
		if !p.Enabled {
			continue
		}
		id := uint64(st.ID)
		live[id] = true
		sc := scalers[id]
		if sc == nil {
			sc = newStreamScaler()
			scalers[id] = sc
		}
		if err := st.Configs.CheckAutoscale(defaults); err != nil {
			// Possible only through broker defaults changed since.
			if msg := err.Error(); msg != sc.warned {
				e.opts.Logger.Warn("autoscale: stream skipped, its configs are at odds", "stream", st.Name, "err", err)
				sc.warned = msg
			}
			continue
		}
		sc.warned = ""
		open := 0
		var shards []OpenShard
		for _, cs := range st.Stream.Shards {
			if cs.State != catalog.ShardOpen {
				continue
			}
			open++
			if cs.Range != nil && int(cs.ID) < len(st.Shards) {
				recs, bytes := st.Shards[cs.ID].Written()
				shards = append(shards, OpenShard{ID: cs.ID, Range: *cs.Range, Parents: cs.Parents, Records: recs, Bytes: bytes})
			}
		}
		decisions, holds := sc.step(now, p, open, shards)
		for _, h := range holds {
			e.opts.Logger.Info("autoscale: hot shard not split", "stream", st.Name, "shard", h.Shards[0], "reason", h.Reason,
				"bytes_per_sec", int64(h.Rate.Bytes), "records_per_sec", int64(h.Rate.Records), "open", open,
				"max_shards", p.MaxShards)
		}
		for _, d := range decisions {
			if ctx.Err() != nil {
				return
			}
			if e.autoscaleApply(ctx, st.Name, p, open, d) {
				sc.changed(now)
			}
		}
	}
	for id := range scalers {
		if !live[id] {
			delete(scalers, id)
		}
	}
}

// autoscaleApply makes one decision, logs it and counts it; it reports
// whether the change was made.
func (e *Engine) autoscaleApply(ctx context.Context, name string, p catalog.AutoscalePolicy, open int, d AutoscaleDecision) bool {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var res *ReshardResult
	var err error
	e.mu.Lock()
	switch d.Op {
	case "split":
		var plan *catalog.Reshard
		if plan, err = e.cat.PlanSplit(name, d.Shards[0], nil); err == nil {
			res, err = e.applyReshard(ctx, plan, "autoscale")
		}
	case "merge":
		var plan *catalog.Reshard
		if plan, err = e.cat.PlanMerge(name, d.Shards[0], d.Shards[1]); err == nil {
			res, err = e.applyReshard(ctx, plan, "autoscale")
		}
	}
	e.mu.Unlock()
	attrs := []any{"stream", name, "op", d.Op, "shards", d.Shards, "reason", d.Reason,
		"bytes_per_sec", int64(d.Rate.Bytes), "records_per_sec", int64(d.Rate.Records),
		"split_bytes_per_sec", int64(p.SplitBytesPerSec), "split_records_per_sec", int64(p.SplitRecordsPerSec),
		"merge_ratio", p.MergeRatio, "window", p.Window, "open_before", open,
		"min_shards", p.MinShards, "max_shards", p.MaxShards}
	if err != nil {
		// A manual reshard may have closed the shard since it was judged.
		e.opts.Logger.Warn("autoscale: change not made", append(attrs, "err", err)...)
		return false
	}
	switch d.Op {
	case "split":
		e.autoscaleSplits.Add(1)
	case "merge":
		e.autoscaleMerges.Add(1)
	}
	e.opts.Logger.Info("autoscale: "+d.Op, append(attrs, "opened", res.Opened)...)
	if e.opts.OnAutoscale != nil {
		e.opts.OnAutoscale(name, d.Op)
	}
	return true
}

// AutoscaleChanges counts the splits and merges autoscale made since the
// engine opened.
func (e *Engine) AutoscaleChanges() (splits, merges int64) {
	return e.autoscaleSplits.Load(), e.autoscaleMerges.Load()
}
