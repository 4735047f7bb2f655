package cli

import (
	"testing"
	"time"
)

func TestIdleDeadline(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	for _, tc := range []struct {
		name        string
		timeout     time.Duration
		last, first time.Time
		want        time.Time
	}{
		{"no fetch answered yet", time.Second, t0, time.Time{}, at(firstFetchWait)},
		{"no fetch answered, long timeout", time.Minute, t0, time.Time{}, at(time.Minute)},
		{"slow first answer moves the clock", time.Second, t0, at(4 * time.Second), at(5 * time.Second)},
		{"records after the first answer", time.Second, at(7 * time.Second), at(4 * time.Second), at(8 * time.Second)},
	} {
		if got := idleDeadline(tc.timeout, t0, tc.last, tc.first); !got.Equal(tc.want) {
			t.Errorf("%s: idleDeadline = %s after the start, want %s", tc.name, got.Sub(t0), tc.want.Sub(t0))
		}
	}
}

func TestIdleFetchWait(t *testing.T) {
	for _, tc := range []struct{ timeout, want time.Duration }{
		{0, 5 * time.Second},
		{100 * time.Millisecond, 50 * time.Millisecond},
		{3 * time.Second, 750 * time.Millisecond},
		{time.Minute, 5 * time.Second},
	} {
		if got := idleFetchWait(tc.timeout); got != tc.want {
			t.Errorf("idleFetchWait(%s) = %s, want %s", tc.timeout, got, tc.want)
		}
	}
}
