package kafka

import (
	"context"
	"errors"
	"sync"
	"time"
)

// errBudgetWait is returned by budget.acquire when the bytes did not become
// free in time.
var errBudgetWait = errors.New("no request memory free in time")

// budget counts bytes held by requests in flight against a limit. Readers
// take bytes as request bodies arrive and give them back once the request
// is answered; a reader over the limit waits (it stops reading its socket,
// as Kafka does when queued.max.request.bytes is reached).
type budget struct {
	limit int64

	mu      sync.Mutex
	used    int64
	changed chan struct{} // closed and replaced on every release
}

func newBudget(limit int64) *budget {
	return &budget{limit: limit, changed: make(chan struct{})}
}

// acquire takes n bytes, waiting up to wait for them to be free.
func (b *budget) acquire(ctx context.Context, n int64, wait time.Duration) error {
	var timer *time.Timer
	for {
		b.mu.Lock()
		if b.used+n <= b.limit {
			b.used += n
			b.mu.Unlock()
			if timer != nil {
				timer.Stop()
			}
			return nil
		}
		ch := b.changed
		b.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(wait)
		}
		select {
		case <-ch:
		case <-timer.C:
			return errBudgetWait
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		}
	}
}

// release gives back n bytes.
func (b *budget) release(n int64) {
	if n == 0 {
		return
	}
	b.mu.Lock()
	b.used -= n
	close(b.changed)
	b.changed = make(chan struct{})
	b.mu.Unlock()
}

// inUse returns the bytes held now.
func (b *budget) inUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}
