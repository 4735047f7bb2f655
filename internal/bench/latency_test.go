package bench

import (
	"encoding/json"
	"slices"
	"testing"
	"time"
)

func durations(ms ...int) []time.Duration {
	out := make([]time.Duration, len(ms))
	for i, m := range ms {
		out[i] = time.Duration(m) * time.Millisecond
	}
	return out
}

func seq(n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = time.Duration(i + 1)
	}
	return out
}

func TestPercentile(t *testing.T) {
	tests := []struct {
		name   string
		sorted []time.Duration
		q      float64
		want   time.Duration
	}{
		{"empty", nil, 0.5, 0},
		{"single p50", durations(7), 0.5, 7 * time.Millisecond},
		{"single p999", durations(7), 0.999, 7 * time.Millisecond},
		{"two p50 takes lower", durations(1, 2), 0.5, 1 * time.Millisecond},
		{"odd p50 is median", durations(1, 2, 3), 0.5, 2 * time.Millisecond},
		{"p100 is max", durations(1, 2, 3), 1, 3 * time.Millisecond},
		{"q zero clamps to min", durations(1, 2, 3), 0, 1 * time.Millisecond},
		{"100 p50", seq(100), 0.50, 50},
		{"100 p99", seq(100), 0.99, 99},
		{"100 p999 rounds up to max", seq(100), 0.999, 100},
		{"1000 p99", seq(1000), 0.99, 990},
		{"1000 p999", seq(1000), 0.999, 999},
		{"10 p99 needs the max", seq(10), 0.99, 10},
		{"1e6 p999", seq(1_000_000), 0.999, 999_000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Percentile(tt.sorted, tt.q); got != tt.want {
				t.Errorf("Percentile(q=%v) = %v, want %v", tt.q, got, tt.want)
			}
		})
	}
}

func TestRecorderExactBelowCapacity(t *testing.T) {
	tests := []struct {
		name    string
		in      []time.Duration
		wantSum LatencySummary
	}{
		{"none", nil, LatencySummary{}},
		{
			"three",
			durations(3, 1, 2),
			LatencySummary{Count: 3, Samples: 3, Min: ms(1), Mean: ms(2), P50: ms(2), P90: ms(3), P99: ms(3), P999: ms(3), Max: ms(3)},
		},
		{
			"equal",
			durations(5, 5, 5, 5),
			LatencySummary{Count: 4, Samples: 4, Min: ms(5), Mean: ms(5), P50: ms(5), P90: ms(5), P99: ms(5), P999: ms(5), Max: ms(5)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRecorder(10, int64(len(tt.in)), 1)
			for _, d := range tt.in {
				r.Record(d)
			}
			if got := Summarize(r); got != tt.wantSum {
				t.Errorf("Summarize = %+v, want %+v", got, tt.wantSum)
			}
		})
	}
}

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func TestRecorderReservoir(t *testing.T) {
	const capacity, n = 1000, 100_000
	r := NewRecorder(capacity, n, 42)
	for i := 1; i <= n; i++ {
		r.Record(time.Duration(i))
	}
	if len(r.samples) != capacity {
		t.Fatalf("kept %d samples, want %d", len(r.samples), capacity)
	}
	if cap(r.samples) != capacity {
		t.Errorf("samples grew to cap %d; want preallocated %d", cap(r.samples), capacity)
	}
	s := Summarize(r)
	if s.Count != n || s.Min != 1 || s.Max != n || s.Mean != (n+1)/2 {
		t.Errorf("exact stats wrong: %+v", s)
	}
	// A uniform sample of 1..n has its median near n/2; 1000 samples put
	// the standard error around 1.6% of n, so 10% is a safe bound.
	if lo, hi := time.Duration(n*4/10), time.Duration(n*6/10); s.P50 < lo || s.P50 > hi {
		t.Errorf("reservoir median %v outside [%v, %v]: sample not uniform", s.P50, lo, hi)
	}
}

func TestSummarizeMerges(t *testing.T) {
	a, b := NewRecorder(10, 0, 1), NewRecorder(10, 0, 2)
	for _, d := range durations(1, 2) {
		a.Record(d)
	}
	for _, d := range durations(3, 4) {
		b.Record(d)
	}
	s := Summarize(a, nil, b, NewRecorder(10, 0, 3))
	want := LatencySummary{Count: 4, Samples: 4, Min: ms(1), Mean: 2500 * time.Microsecond, P50: ms(2), P90: ms(4), P99: ms(4), P999: ms(4), Max: ms(4)}
	if s != want {
		t.Errorf("Summarize = %+v, want %+v", s, want)
	}
	if !slices.IsSorted(a.samples) || a.samples[0] != ms(1) {
		t.Errorf("Summarize modified a recorder's samples: %v", a.samples)
	}
}

func TestLatencySummaryJSON(t *testing.T) {
	s := LatencySummary{Count: 2, Samples: 2, P50: 1500 * time.Microsecond, P90: 1800 * time.Microsecond, Max: 2 * time.Second}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]float64
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got["p50_ms"] != 1.5 || got["p90_ms"] != 1.8 || got["max_ms"] != 2000 || got["count"] != 2 {
		t.Errorf("json = %s", b)
	}
}
