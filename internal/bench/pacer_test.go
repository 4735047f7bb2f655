package bench

import (
	"context"
	"slices"
	"testing"
	"time"
)

func TestPacerDue(t *testing.T) {
	tests := []struct {
		name string
		rate float64
		i    int64
		want time.Duration
	}{
		{"unpaced", 0, 1000, 0},
		{"first record immediately", 1000, 0, 0},
		{"1000/s spacing", 1000, 1, time.Millisecond},
		{"1000/s later", 1000, 2500, 2500 * time.Millisecond},
		{"fractional rate", 0.5, 3, 6 * time.Second},
		{"high rate", 2_000_000, 1, 500 * time.Nanosecond},
		{"no drift over many records", 3, 3_000_000, 1_000_000 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NewPacer(tt.rate).Due(tt.i); got != tt.want {
				t.Errorf("Due(%d) at %v/s = %v, want %v", tt.i, tt.rate, got, tt.want)
			}
		})
	}
}

func TestPacerWaitAndLag(t *testing.T) {
	tests := []struct {
		name     string
		rate     float64
		i        int64
		elapsed  time.Duration
		wantWait time.Duration
		wantLag  time.Duration
	}{
		{"early waits", 100, 5, 20 * time.Millisecond, 30 * time.Millisecond, 0},
		{"on time", 100, 5, 50 * time.Millisecond, 0, 0},
		{"late sends at once and reports lag", 100, 5, 80 * time.Millisecond, 0, 30 * time.Millisecond},
		{"unpaced never waits or lags", 0, 5, time.Hour, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NewPacer(tt.rate)
			if got := p.Wait(tt.i, tt.elapsed); got != tt.wantWait {
				t.Errorf("Wait = %v, want %v", got, tt.wantWait)
			}
			if got := p.Lag(tt.i, tt.elapsed); got != tt.wantLag {
				t.Errorf("Lag = %v, want %v", got, tt.wantLag)
			}
		})
	}
}

func TestPace(t *testing.T) {
	// 10 records at 200/s should take about 45ms (the first is immediate).
	p := NewPacer(200)
	start := time.Now()
	for i := range int64(10) {
		if err := p.pace(context.Background(), i, start); err != nil {
			t.Fatal(err)
		}
	}
	if got := time.Since(start); got < 44*time.Millisecond || got > 500*time.Millisecond {
		t.Errorf("10 records at 200/s took %v, want about 45ms", got)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := NewPacer(1).pace(ctx, 10, time.Now()); err == nil {
		t.Error("pace ignored a cancelled context")
	}
}

func TestSplit(t *testing.T) {
	tests := []struct {
		name  string
		total int64
		n     int
		want  []int64
	}{
		{"even", 9, 3, []int64{3, 3, 3}},
		{"remainder goes first", 10, 3, []int64{4, 3, 3}},
		{"fewer than workers", 2, 4, []int64{1, 1, 0, 0}},
		{"one worker", 7, 1, []int64{7}},
		{"zero", 0, 2, []int64{0, 0}},
		{"no workers", 5, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Split(tt.total, tt.n)
			if !slices.Equal(got, tt.want) {
				t.Errorf("Split(%d, %d) = %v, want %v", tt.total, tt.n, got, tt.want)
			}
		})
	}
}

func TestAutoMaxBuffered(t *testing.T) {
	tests := []struct {
		name                             string
		recordSize, batchMax, partitions int
		want                             int
	}{
		{"floor", 1024, 1 << 20, 1, 10_000},
		{"many partitions", 1024, 1 << 20, 16, 65_536},
		{"small records", 100, 1 << 20, 1, 41_943},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := autoMaxBuffered(tt.recordSize, tt.batchMax, tt.partitions); got != tt.want {
				t.Errorf("autoMaxBuffered = %d, want %d", got, tt.want)
			}
		})
	}
}
