package bench

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// meter counts completed records across goroutines for progress lines.
type meter struct {
	records atomic.Int64
	bytes   atomic.Int64
	errors  atomic.Int64
}

func (m *meter) add(records, bytes int64) {
	m.records.Add(records)
	m.bytes.Add(bytes)
}

// progress prints a line per second to w until the returned stop is
// called; stop waits for the printer so no line follows the final report.
func (m *meter) progress(w io.Writer, phase string) (stop func()) {
	if w == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		start := time.Now()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		var lastBytes int64
		last := start
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				recs, b, errs := m.records.Load(), m.bytes.Load(), m.errors.Load()
				interval := now.Sub(last).Seconds()
				line := fmt.Sprintf("%s: %5.0fs  %d records  %.1f MB/s  (avg %.1f MB/s)",
					phase, now.Sub(start).Seconds(), recs,
					float64(b-lastBytes)/1e6/interval,
					float64(b)/1e6/now.Sub(start).Seconds())
				if errs > 0 {
					line += fmt.Sprintf("  %d errors", errs)
				}
				fmt.Fprintln(w, line)
				lastBytes, last = b, now
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(done)
			wg.Wait()
		})
	}
}
