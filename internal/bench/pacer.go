package bench

import (
	"context"
	"time"
)

// Pacer spaces records evenly at a fixed rate. Each record's send time is
// computed from the start rather than from the previous send, so sleep
// overshoot is not accumulated: a late record is followed by records sent
// back to back until the schedule is met again.
type Pacer struct {
	rate float64 // records per second; <= 0 means unpaced
}

// NewPacer returns a pacer for rate records per second (0 = unpaced).
func NewPacer(rate float64) Pacer { return Pacer{rate: rate} }

// Paced reports whether the pacer limits the rate at all.
func (p Pacer) Paced() bool { return p.rate > 0 }

// Due is when record i (counting from 0) should be sent, relative to the
// start of the run.
func (p Pacer) Due(i int64) time.Duration {
	if p.rate <= 0 || i <= 0 {
		return 0
	}
	return time.Duration(float64(i) * float64(time.Second) / p.rate)
}

// Wait is how long to wait before sending record i when elapsed has passed
// since the start; zero when the record is due or overdue.
func (p Pacer) Wait(i int64, elapsed time.Duration) time.Duration {
	return max(p.Due(i)-elapsed, 0)
}

// Lag is how far behind schedule record i is sent at elapsed; zero when on
// time. A persistent lag means the target rate was not reached and
// latencies describe a lower load than asked for.
func (p Pacer) Lag(i int64, elapsed time.Duration) time.Duration {
	if !p.Paced() {
		return 0
	}
	return max(elapsed-p.Due(i), 0)
}

// minSleep is the shortest wait worth a timer; below it the scheduler's
// wake-up jitter is as large as the wait itself, so the record is sent a
// little early instead and the next ones stay on schedule.
const minSleep = 50 * time.Microsecond

// pace blocks until record i is due or ctx is done.
func (p Pacer) pace(ctx context.Context, i int64, start time.Time) error {
	w := p.Wait(i, time.Since(start))
	if w < minSleep {
		return ctx.Err()
	}
	t := time.NewTimer(w)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Split divides total into n near-equal shares that sum to total, the
// first total%n shares one larger. Producers use it for record counts.
func Split(total int64, n int) []int64 {
	if n < 1 {
		return nil
	}
	out := make([]int64, n)
	base, rem := total/int64(n), total%int64(n)
	for i := range out {
		out[i] = base
		if int64(i) < rem {
			out[i]++
		}
	}
	return out
}
