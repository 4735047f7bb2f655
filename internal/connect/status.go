package connect

import (
	"context"
	"encoding/base64"
	"errors"
	"sort"
	"sync"
	"time"
)

// States of a connector, as the describe object names them.
const (
	StateStarting = "starting"
	StateRunning  = "running"
	StatePaused   = "paused"
	StateRetrying = "retrying"
	StateFailed   = "failed"
)

// States lists every state (the state metric has one series each).
var States = []string{StateStarting, StateRunning, StatePaused, StateRetrying, StateFailed}

// Error kinds of braid_connector_errors_total.
const (
	errKindBadRecord = "bad_record"
	errKindTarget    = "target"
	errKindFatal     = "fatal"
)

// connector is one connector and its worker.
type connector struct {
	m    *Manager
	name string

	opMu    sync.Mutex // one life-cycle change at a time
	cancel  context.CancelFunc
	done    chan struct{}
	deleted bool

	mu       sync.Mutex // the fields below; a leaf
	def      *Definition
	paused   bool
	caughtUp bool
	state    string
	lastErr  *LastError
	records  int64
	bytes    int64
	dead     int64
	skipped  int64
	restarts int64
	errs     map[string]int64
	rate     rateWindow
	shards   map[ShardKey]*shardStatus
	backfill *Backfill
	position []byte // a source's last committed position
}

type shardStatus struct {
	position int64 // next offset to read; -1 unknown
	end      int64 // -1 unknown
	// a first run's backfill: where the shard started and the end to reach
	bfStart, bfEnd int64
	bfSet          bool
}

// LastError is the describe object's last_error.
type LastError struct {
	Message string    `json:"message"`
	At      time.Time `json:"at"`
}

// Backfill is a sink's first-run progress.
type Backfill struct {
	Done    int64   `json:"done"`
	Total   int64   `json:"total"`
	Percent float64 `json:"percent"`
}

// ShardDescribe is one shard of a sink in the describe object.
type ShardDescribe struct {
	Stream   string `json:"stream"`
	Shard    int32  `json:"shard"`
	Position int64  `json:"position"`
	End      int64  `json:"end"`
	Lag      int64  `json:"lag"`
}

// Describe is the admin API's describe object.
type Describe struct {
	Name              string          `json:"name"`
	Type              string          `json:"type"`
	Kind              string          `json:"kind"`
	State             string          `json:"state"`
	Delivery          Delivery        `json:"delivery"`
	Definition        *Definition     `json:"definition"`
	LastError         *LastError      `json:"last_error"`
	RecordsTotal      int64           `json:"records_total"`
	BytesTotal        int64           `json:"bytes_total"`
	RecordsPerSec     float64         `json:"records_per_sec"`
	Lag               int64           `json:"lag"`
	Shards            []ShardDescribe `json:"shards"`
	Backfill          *Backfill       `json:"backfill"`
	DeadLetteredTotal int64           `json:"dead_lettered_total"`
	SkippedTotal      int64           `json:"skipped_total"`
	Restarts          int64           `json:"restarts"`
	// Position is a source's last committed position (base64).
	Position *string `json:"position,omitempty"`
}

func (c *connector) describe() Describe {
	c.mu.Lock()
	defer c.mu.Unlock()
	d := Describe{Name: c.name, State: c.state, Definition: c.def, LastError: c.lastErr,
		RecordsTotal: c.records, BytesTotal: c.bytes, RecordsPerSec: c.rate.perSec(time.Now()),
		DeadLetteredTotal: c.dead, SkippedTotal: c.skipped, Restarts: c.restarts, Shards: []ShardDescribe{}}
	if c.def != nil {
		d.Type, d.Delivery = c.def.Type, c.def.Delivery
		if t, ok := c.m.opts.Types[c.def.Type]; ok {
			d.Kind = t.Kind()
		}
	}
	for k, s := range c.shards {
		sd := ShardDescribe{Stream: k.Stream, Shard: k.Shard, Position: s.position, End: s.end}
		if s.end >= 0 && s.position >= 0 && s.end > s.position {
			sd.Lag = s.end - s.position
		}
		d.Lag += sd.Lag
		d.Shards = append(d.Shards, sd)
	}
	sort.Slice(d.Shards, func(i, j int) bool {
		if d.Shards[i].Stream != d.Shards[j].Stream {
			return d.Shards[i].Stream < d.Shards[j].Stream
		}
		return d.Shards[i].Shard < d.Shards[j].Shard
	})
	if c.backfill != nil && !c.caughtUp {
		b := *c.backfill
		d.Backfill = &b
	}
	if d.Kind == "source" && c.position != nil {
		s := base64.StdEncoding.EncodeToString(c.position)
		d.Position = &s
	}
	return d
}

func (c *connector) setState(s string) {
	c.mu.Lock()
	c.state = s
	c.mu.Unlock()
}

func (c *connector) setRunning() {
	c.mu.Lock()
	if c.state != StateRunning {
		c.state = StateRunning
	}
	c.mu.Unlock()
}

func (c *connector) setFailed(err error) {
	c.mu.Lock()
	c.state = StateFailed
	c.lastErr = &LastError{Message: err.Error(), At: time.Now().UTC()}
	c.errs[errKindFatal]++
	c.mu.Unlock()
}

func (c *connector) setRetrying(err error) {
	c.mu.Lock()
	c.state = StateRetrying
	c.lastErr = &LastError{Message: err.Error(), At: time.Now().UTC()}
	c.errs[errKindTarget]++
	c.restarts++
	c.mu.Unlock()
}

func (c *connector) countBadRecord(err error, policy BadRecordPolicy) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.errs[errKindBadRecord]++
	c.lastErr = &LastError{Message: err.Error(), At: time.Now().UTC()}
	switch policy {
	case OnBadSkip:
		c.skipped++
	case OnBadDeadLetter:
		c.dead++
	}
}

func (c *connector) countRecords(n int, bytes int) {
	c.mu.Lock()
	c.records += int64(n)
	c.bytes += int64(bytes)
	c.rate.add(time.Now(), int64(n))
	c.mu.Unlock()
}

// start runs the worker; the caller holds opMu.
func (c *connector) start() {
	ctx, cancel := context.WithCancel(c.m.ctx)
	c.cancel, c.done = cancel, make(chan struct{})
	c.setState(StateStarting)
	go func(done chan struct{}) {
		defer close(done)
		c.run(ctx)
	}(c.done)
}

// stopWorker stops the worker and waits for it (it flushes and commits
// on the way out); the caller holds opMu.
func (c *connector) stopWorker() {
	if c.cancel == nil {
		return
	}
	c.cancel()
	<-c.done
	c.cancel, c.done = nil, nil
}

// fatalError stops a connector for good (state failed) until restarted.
type fatalError struct{ err error }

func (e *fatalError) Error() string { return e.err.Error() }
func (e *fatalError) Unwrap() error { return e.err }

// run is the worker: runs until ctx ends, retrying with backoff.
func (c *connector) run(ctx context.Context) {
	c.mu.Lock()
	def := c.def
	c.mu.Unlock()
	kind := c.m.opts.Types[def.Type].Kind()
	for attempt := 0; ; {
		began := time.Now()
		var err error
		if kind == "sink" {
			err = c.runSink(ctx, def)
		} else {
			err = c.runSource(ctx, def)
		}
		if ctx.Err() != nil {
			return
		}
		var fe *fatalError
		if errors.As(err, &fe) {
			c.m.log.Error("connector failed", "connector", c.name, "err", err)
			c.setFailed(err)
			return
		}
		if err == nil {
			err = errors.New("worker stopped")
		}
		if time.Since(began) > def.RetryMax() {
			attempt = 0 // it ran well for a while: start the backoff again
		}
		wait := backoff(attempt, def.RetryMax())
		attempt++
		c.m.log.Warn("connector retrying", "connector", c.name, "err", err, "in", wait)
		c.setRetrying(err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// rateWindow counts records over the last 10 seconds, one slot a second.
type rateWindow struct {
	slots [10]int64
	secs  [10]int64
}

func (w *rateWindow) add(now time.Time, n int64) {
	s := now.Unix()
	i := s % 10
	if w.secs[i] != s {
		w.secs[i], w.slots[i] = s, 0
	}
	w.slots[i] += n
}

func (w *rateWindow) perSec(now time.Time) float64 {
	s := now.Unix()
	var sum int64
	for i := range w.slots {
		if s-w.secs[i] < 10 {
			sum += w.slots[i]
		}
	}
	return float64(sum) / 10
}
