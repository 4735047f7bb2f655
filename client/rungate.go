package client

import (
	"context"
	"sync"
)

// runGate is the life cycle the reading side (Consumer, Reader,
// Transformer) shares: one Run at a time, and a Close that stops a
// running Run and waits for it to return.
type runGate struct {
	mu      sync.Mutex
	closed  bool
	running bool
	stopRun context.CancelFunc
	runDone chan struct{} // closed when the running Run returns
}

// begin starts a Run: it returns the Run's context and the function the
// Run calls when it returns; ErrClosed after close, ErrRunning while
// another Run is active.
func (g *runGate) begin(ctx context.Context) (context.Context, func(), error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case g.closed:
		return nil, nil, ErrClosed
	case g.running:
		return nil, nil, ErrRunning
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	g.running, g.stopRun, g.runDone = true, stop, done
	return runCtx, func() {
		stop()
		g.mu.Lock()
		g.running = false
		g.mu.Unlock()
		close(done)
	}, nil
}

// close marks the gate closed and stops a running Run, waiting until it
// returns or ctx ends (then ctx's error). A second close returns
// ErrClosed.
func (g *runGate) close(ctx context.Context) error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return ErrClosed
	}
	g.closed = true
	running, stop, done := g.running, g.stopRun, g.runDone
	g.mu.Unlock()
	if !running {
		return nil
	}
	stop()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// isClosed reports whether close was called.
func (g *runGate) isClosed() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.closed
}
