package kafka

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestBudget(t *testing.T) {
	ctx := context.Background()
	t.Run("within limit", func(t *testing.T) {
		b := newBudget(100)
		for _, n := range []int64{40, 60} {
			if err := b.acquire(ctx, n, time.Second); err != nil {
				t.Fatalf("acquire %d: %v", n, err)
			}
		}
		if got := b.inUse(); got != 100 {
			t.Fatalf("in use %d, want 100", got)
		}
	})
	t.Run("over limit times out and takes nothing", func(t *testing.T) {
		b := newBudget(100)
		b.acquire(ctx, 90, time.Second)
		began := time.Now()
		if err := b.acquire(ctx, 20, 50*time.Millisecond); !errors.Is(err, errBudgetWait) {
			t.Fatalf("acquire over the limit: %v, want %v", err, errBudgetWait)
		}
		if d := time.Since(began); d < 40*time.Millisecond {
			t.Fatalf("gave up after %s, want the 50ms wait", d)
		}
		if got := b.inUse(); got != 90 {
			t.Fatalf("in use %d after a failed acquire, want 90", got)
		}
	})
	t.Run("waiter wakes on release", func(t *testing.T) {
		b := newBudget(100)
		b.acquire(ctx, 90, time.Second)
		done := make(chan error)
		go func() { done <- b.acquire(ctx, 50, 10*time.Second) }()
		select {
		case err := <-done:
			t.Fatalf("acquire over the limit returned %v before a release", err)
		case <-time.After(50 * time.Millisecond):
		}
		b.release(60)
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("acquire after release: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("waiter not woken by release")
		}
		if got := b.inUse(); got != 80 {
			t.Fatalf("in use %d, want 80", got)
		}
	})
	t.Run("context ends the wait", func(t *testing.T) {
		b := newBudget(10)
		b.acquire(ctx, 10, time.Second)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := b.acquire(cctx, 1, 10*time.Second); !errors.Is(err, context.Canceled) {
			t.Fatalf("acquire with a canceled context: %v", err)
		}
	})
}
