package bench

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	// pollInterval bounds each poll so the loop can notice targets that
	// arrive while it waits (end-to-end mode) and check for stalls.
	pollInterval = 200 * time.Millisecond
	// stallTimeout fails a consume that stops making progress short of
	// its target, e.g. because the broker lost records.
	stallTimeout = 30 * time.Second
)

// errStopped reports that the consumer was told to stop before it had a
// target to reach.
var errStopped = errors.New("consumer stopped before the end of the run")

func newConsumer(cfg Config, from map[int32]int64) (*kgo.Client, error) {
	assign := make(map[int32]kgo.Offset, len(from))
	for p, o := range from {
		assign[p] = kgo.NewOffset().At(o)
	}
	opts := append(baseOpts(cfg.Brokers),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{cfg.Stream: assign}),
		kgo.FetchMaxBytes(cfg.FetchMaxBytes),
		kgo.FetchMaxPartitionBytes(cfg.FetchMaxPartitionBytes),
		// drain needs to see transaction markers to know it has passed
		// their offsets; it does not count them.
		kgo.KeepControlRecords(),
	)
	if cfg.TxnInterval > 0 {
		// Read what an application would: committed records only, each
		// arriving once its transaction commits.
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("create consumer client: %w", err)
	}
	return cl, nil
}

// consumePhase reads back [from, to) with a fresh client and times it.
// Only throughput is reported: latency measured now against when records
// were produced would mostly measure how long the produce phase took.
func consumePhase(ctx context.Context, cfg Config, from, to map[int32]int64) (*Phase, error) {
	cl, err := newConsumer(cfg, from)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	targets := make(chan map[int32]int64, 1)
	targets <- to

	var m meter
	stop := m.progress(cfg.Progress, "consume")
	start := time.Now()
	err = drain(ctx, cl, from, targets, &m, nil)
	elapsed := time.Since(start)
	stop()
	p := newPhase(m.records.Load(), m.bytes.Load(), elapsed)
	if err != nil {
		if ctx.Err() == nil {
			p.FirstError = err.Error()
		}
		return p, fmt.Errorf("consume phase: %w", err)
	}
	return p, nil
}

// e2eConsumer reads concurrently with the producers and records, for each
// record, the time from its Produce call (stamped in the value) to now.
type e2eConsumer struct {
	cl      *kgo.Client
	targets chan map[int32]int64
	done    chan struct{}
	rec     *Recorder
	err     error
}

func startE2E(ctx context.Context, cfg Config, from map[int32]int64) (*e2eConsumer, error) {
	cl, err := newConsumer(cfg, from)
	if err != nil {
		return nil, err
	}
	// Connect before the clock starts so early records do not carry the
	// dial and metadata time.
	pctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	if err := cl.Ping(pctx); err != nil {
		cl.Close()
		return nil, fmt.Errorf("end-to-end consumer: %w", err)
	}
	e := &e2eConsumer{
		cl:      cl,
		targets: make(chan map[int32]int64, 1),
		done:    make(chan struct{}),
		rec:     NewRecorder(DefaultMaxSamples, cfg.Count, 0x5eed),
	}
	go func() {
		defer close(e.done)
		e.err = drain(ctx, cl, from, e.targets, &meter{}, func(now time.Time, r *kgo.Record) {
			if t, ok := ReadStamp(r.Value); ok {
				// Both ends read the wall clock of this host; clamp the
				// rare negative from a clock step.
				e.rec.Record(max(time.Duration(now.UnixNano()-t), 0))
			}
		})
	}()
	return e, nil
}

// finish hands the consumer the offsets to read up to (nil = stop now),
// waits for it and returns what it measured.
func (e *e2eConsumer) finish(to map[int32]int64) (LatencySummary, error) {
	e.targets <- to
	<-e.done
	e.cl.Close()
	s := Summarize(e.rec)
	if e.err != nil {
		return s, fmt.Errorf("end-to-end consumer: %w", e.err)
	}
	return s, nil
}

// drain polls until every partition in from has been read up to its
// offset in the target, which arrives on targets (nil or a closed channel
// means stop). each, if set, sees every record with the time its poll
// returned, which is when the application would have received it.
//
// The end condition is by offset, so the client must return control
// records (kgo.KeepControlRecords): a transaction marker takes an offset,
// and when it is the last one before the target, no data record would
// ever move the position past it. Control records advance the position
// but are neither counted nor passed to each. Aborted data, which a
// read_committed fetch drops, is always followed by its abort marker.
func drain(ctx context.Context, cl *kgo.Client, from map[int32]int64, targets <-chan map[int32]int64,
	m *meter, each func(time.Time, *kgo.Record),
) error {
	next := maps.Clone(from)
	var want map[int32]int64
	lastProgress := time.Now()
	for {
		if want == nil {
			select {
			case t, ok := <-targets:
				if !ok || t == nil {
					return errStopped
				}
				want, lastProgress = t, time.Now()
			default:
			}
		}
		if want != nil {
			left := outstanding(next, want)
			if left == 0 {
				return nil
			}
			if time.Since(lastProgress) > stallTimeout {
				return fmt.Errorf("no records for %s with %d still to read", stallTimeout, left)
			}
		}

		pctx, cancel := context.WithTimeout(ctx, pollInterval)
		fs := cl.PollFetches(pctx)
		cancel()
		if err := ctx.Err(); err != nil {
			return err
		}
		var ferr error
		fs.EachError(func(_ string, p int32, err error) {
			if ferr == nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				ferr = fmt.Errorf("fetch partition %d: %w", p, err)
			}
		})
		if ferr != nil {
			return ferr
		}
		now := time.Now()
		var n, b int64
		fs.EachRecord(func(r *kgo.Record) {
			// Records past the target were written by someone else.
			if w, ok := want[r.Partition]; ok && r.Offset >= w {
				return
			}
			next[r.Partition] = r.Offset + 1
			if r.Attrs.IsControl() {
				return
			}
			n++
			b += int64(len(r.Key) + len(r.Value))
			if each != nil {
				each(now, r)
			}
		})
		if n > 0 {
			m.add(n, b)
		}
		if fs.NumRecords() > 0 {
			lastProgress = now // markers are progress too
		}
	}
}

// outstanding is how many offsets are left before every partition we
// consume reaches its target. Offsets, not records: a gap (a transaction
// marker, aborted data) still counts until a later offset is read.
func outstanding(next, want map[int32]int64) int64 {
	var left int64
	for p, n := range next {
		if w, ok := want[p]; ok && w > n {
			left += w - n
		}
	}
	return left
}
