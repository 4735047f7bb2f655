package wal

// worker is one of the log's background goroutines that wake when kicked:
// the pre-writer (prewrite.go) and the dropper (dropbehind.go). A worker
// that was never started ignores kick and stop.
type worker struct {
	kicks    chan struct{} // one pending kick at most
	stopping chan struct{} // closed by stop
	done     chan struct{} // closed when run returns
}

// start runs run in a goroutine of its own; run returns once stopping is
// closed.
func (k *worker) start(run func()) {
	k.kicks = make(chan struct{}, 1)
	k.stopping = make(chan struct{})
	k.done = make(chan struct{})
	go func() {
		defer close(k.done)
		run()
	}()
}

// kick wakes the worker, or leaves a kick pending if one is not already.
func (k *worker) kick() {
	if k.kicks == nil {
		return
	}
	select {
	case k.kicks <- struct{}{}:
	default:
	}
}

// stop tells the worker to stop and waits for it.
func (k *worker) stop() {
	if k.stopping == nil {
		return
	}
	close(k.stopping)
	<-k.done
}
