package bench

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

// DefaultMaxSamples bounds the memory a Recorder keeps (8 MiB of
// durations). Beyond it, samples are a uniform reservoir, which keeps p99.9
// well resolved (a thousand samples above it) without an HDR histogram.
const DefaultMaxSamples = 1 << 20

// Recorder collects latencies from one goroutine. kgo runs a client's
// promises serially, so one Recorder per client needs no locking.
type Recorder struct {
	samples  []time.Duration
	capacity int
	n        int64
	sum      time.Duration
	min, max time.Duration
	rng      *rand.Rand
}

// NewRecorder returns a Recorder that keeps every sample up to capacity
// and a uniform random sample of capacity beyond that. expected sizes the
// initial allocation so a run of known length never grows the slice.
func NewRecorder(capacity int, expected int64, seed uint64) *Recorder {
	if capacity < 1 {
		capacity = 1
	}
	prealloc := capacity
	if expected > 0 && expected < int64(capacity) {
		prealloc = int(expected)
	}
	return &Recorder{
		samples:  make([]time.Duration, 0, prealloc),
		capacity: capacity,
		rng:      rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
	}
}

// Record adds one observation.
func (r *Recorder) Record(d time.Duration) {
	r.n++
	r.sum += d
	if r.n == 1 || d < r.min {
		r.min = d
	}
	if d > r.max {
		r.max = d
	}
	if len(r.samples) < r.capacity {
		r.samples = append(r.samples, d)
		return
	}
	// Algorithm R: the n-th observation replaces a random slot with
	// probability capacity/n, so every observation is equally likely kept.
	if j := r.rng.Int64N(r.n); j < int64(r.capacity) {
		r.samples[j] = d
	}
}

// Count is the number of observations, kept or not.
func (r *Recorder) Count() int64 { return r.n }

// LatencySummary describes a latency distribution. Min, max, mean and
// count are exact; percentiles come from the kept samples.
type LatencySummary struct {
	Count   int64
	Samples int
	Min     time.Duration
	Mean    time.Duration
	P50     time.Duration
	P90     time.Duration
	P99     time.Duration
	P999    time.Duration
	Max     time.Duration
}

// MarshalJSON reports durations in milliseconds, which is what people read
// and plot; nanosecond integers invite unit mistakes.
func (s LatencySummary) MarshalJSON() ([]byte, error) {
	ms := func(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }
	return json.Marshal(struct {
		Count   int64   `json:"count"`
		Samples int     `json:"samples"`
		Min     float64 `json:"min_ms"`
		Mean    float64 `json:"mean_ms"`
		P50     float64 `json:"p50_ms"`
		P90     float64 `json:"p90_ms"`
		P99     float64 `json:"p99_ms"`
		P999    float64 `json:"p999_ms"`
		Max     float64 `json:"max_ms"`
	}{s.Count, s.Samples, ms(s.Min), ms(s.Mean), ms(s.P50), ms(s.P90), ms(s.P99), ms(s.P999), ms(s.Max)})
}

// Summarize merges recorders and computes the summary. Concatenating
// reservoirs is only approximately uniform when recorders saw different
// counts; producers get equal shares of the work, so they are close.
func Summarize(recs ...*Recorder) LatencySummary {
	var (
		s     LatencySummary
		sum   time.Duration
		total int
		first = true
	)
	for _, r := range recs {
		if r == nil || r.n == 0 {
			continue
		}
		total += len(r.samples)
		s.Count += r.n
		sum += r.sum
		if first || r.min < s.Min {
			s.Min = r.min
		}
		if r.max > s.Max {
			s.Max = r.max
		}
		first = false
	}
	if s.Count == 0 {
		return s
	}
	all := make([]time.Duration, 0, total)
	for _, r := range recs {
		if r != nil {
			all = append(all, r.samples...)
		}
	}
	slices.Sort(all)
	s.Samples = len(all)
	s.Mean = sum / time.Duration(s.Count)
	s.P50 = Percentile(all, 0.50)
	s.P90 = Percentile(all, 0.90)
	s.P99 = Percentile(all, 0.99)
	s.P999 = Percentile(all, 0.999)
	return s
}

// Percentile returns the nearest-rank q-quantile (0 < q <= 1) of sorted:
// the smallest sample with at least q of all samples at or below it. Unlike
// interpolation it always returns an observed value.
func Percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	// The epsilon keeps q*n that is integral in exact arithmetic from
	// rounding up a whole rank through floating-point error.
	rank := int(math.Ceil(q*float64(len(sorted)) - 1e-9))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}
