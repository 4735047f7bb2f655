package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

func randSeed() uint64 { return rand.Uint64() }

// partitionKey is record i of caller c among callers: callers interleave,
// so together they never repeat a key, and MD5 spreads the keys evenly
// over the shards' hash ranges.
func partitionKey(buf []byte, i int64, c, callers int) string {
	return string(strconv.AppendInt(append(buf[:0], 'k'), i*int64(callers)+int64(c), 10))
}

// caller is the state of one client in a write phase. Only its goroutine
// touches it until the phase has waited for it.
type caller struct {
	kc       *kinesis.Client
	payloads *Payloads
	rec      *Recorder
	maxLag   time.Duration
	firstErr error
}

func (c *caller) fail(err error) {
	if c.firstErr == nil {
		c.firstErr = err
	}
}

// writePhase runs one write loop per client until the duration has passed
// or ctx ends, then folds the callers' results into a Phase.
func writePhase(ctx context.Context, cfg KinesisConfig, kcs []*kinesis.Client, pool []byte, name string,
	loop func(c *caller, i int, m *meter, start, deadline time.Time)) *Phase {
	n := len(kcs)
	capacity := max(DefaultMaxSamples/n, 1)
	var m meter
	stop := m.progress(cfg.Progress, name)
	start := time.Now()
	deadline := start.Add(cfg.Duration)
	callers := make([]*caller, n)
	var wg sync.WaitGroup
	for i, kc := range kcs {
		c := &caller{
			kc:       kc,
			payloads: NewPayloads(pool, cfg.RecordSize, i*len(pool)/n),
			rec:      NewRecorder(capacity, 0, uint64(i)+1),
		}
		callers[i] = c
		wg.Go(func() { loop(c, i, &m, start, deadline) })
	}
	wg.Wait()
	elapsed := time.Since(start)
	stop()

	p := newPhase(m.records.Load(), m.bytes.Load(), elapsed)
	p.Errors = m.errors.Load()
	recs := make([]*Recorder, n)
	for i, c := range callers {
		recs[i] = c.rec
		if c.firstErr != nil && p.FirstError == "" {
			p.FirstError = c.firstErr.Error()
		}
		p.MaxLagMs = max(p.MaxLagMs, float64(c.maxLag)/1e6)
	}
	if s := Summarize(recs...); s.Count > 0 {
		p.Latency = &s
	}
	return p
}

// putRecordsPhase sends PutRecords calls of RecordsPerCall records back to
// back from every caller. Latency is per call. A record the answer marks
// failed (ErrorCode set) counts as an error, as does every record of a
// call that failed whole.
func putRecordsPhase(ctx context.Context, cfg KinesisConfig, kcs []*kinesis.Client, pool []byte) *Phase {
	n := len(kcs)
	return writePhase(ctx, cfg, kcs, pool, "putrecords", func(c *caller, ci int, m *meter, _, deadline time.Time) {
		entries := make([]types.PutRecordsRequestEntry, cfg.RecordsPerCall)
		keyBuf := make([]byte, 0, 24)
		var i int64
		for ctx.Err() == nil && time.Now().Before(deadline) {
			for j := range entries {
				entries[j] = types.PutRecordsRequestEntry{
					Data:         c.payloads.Next(),
					PartitionKey: aws.String(partitionKey(keyBuf, i, ci, n)),
				}
				i++
			}
			cctx, cancel := context.WithTimeout(ctx, callTimeout)
			sent := time.Now()
			out, err := c.kc.PutRecords(cctx, &kinesis.PutRecordsInput{StreamName: &cfg.Stream, Records: entries})
			lat := time.Since(sent)
			cancel()
			if err != nil {
				if ctx.Err() != nil {
					return // a casualty of the interrupt, not an endpoint error
				}
				m.errors.Add(int64(len(entries)))
				c.fail(err)
				continue
			}
			c.rec.Record(lat)
			failed := int64(aws.ToInt32(out.FailedRecordCount))
			if failed > 0 {
				m.errors.Add(failed)
				for _, r := range out.Records {
					if r.ErrorCode != nil {
						c.fail(fmt.Errorf("PutRecords: %s: %s", aws.ToString(r.ErrorCode), aws.ToString(r.ErrorMessage)))
						break
					}
				}
			}
			ok := int64(len(entries)) - failed
			m.add(ok, ok*int64(cfg.RecordSize))
		}
	})
}

// putRecordPhase sends single-record PutRecord calls at cfg.Rate records/s
// across the callers, each caller on its own schedule of Rate/callers.
// A caller waits for each answer, so a caller whose calls take longer than
// its interval falls behind schedule; MaxLagMs says how far.
func putRecordPhase(ctx context.Context, cfg KinesisConfig, kcs []*kinesis.Client, pool []byte) *Phase {
	n := len(kcs)
	return writePhase(ctx, cfg, kcs, pool, "putrecord", func(c *caller, ci int, m *meter, start, deadline time.Time) {
		pacer := NewPacer(cfg.Rate / float64(n))
		keyBuf := make([]byte, 0, 24)
		for i := int64(0); ; i++ {
			if pacer.pace(ctx, i, start) != nil {
				return
			}
			sent := time.Now()
			if !sent.Before(deadline) {
				return
			}
			c.maxLag = max(c.maxLag, pacer.Lag(i, sent.Sub(start)))
			cctx, cancel := context.WithTimeout(ctx, callTimeout)
			_, err := c.kc.PutRecord(cctx, &kinesis.PutRecordInput{
				StreamName:   &cfg.Stream,
				Data:         c.payloads.Next(),
				PartitionKey: aws.String(partitionKey(keyBuf, i, ci, n)),
			})
			lat := time.Since(sent)
			cancel()
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				m.errors.Add(1)
				c.fail(err)
				continue
			}
			c.rec.Record(lat)
			m.add(1, int64(cfg.RecordSize))
		}
	})
}

// getRecordsLimit is the most records one GetRecords call may ask for.
const getRecordsLimit = 10000

// getRecordsPhase reads every shard of the stream (open and closed) from
// TRIM_HORIZON to its end, min(callers, shards) shards at a time, and
// times the whole read including listing the shards. Bytes are bytes of
// record data.
func getRecordsPhase(ctx context.Context, cfg KinesisConfig, kcs []*kinesis.Client) *Phase {
	var m meter
	stop := m.progress(cfg.Progress, "getrecords")
	start := time.Now()
	var (
		mu       sync.Mutex
		firstErr error
	)
	fail := func(err error) {
		m.errors.Add(1)
		mu.Lock()
		defer mu.Unlock()
		if firstErr == nil {
			firstErr = err
		}
	}
	shards, err := listShards(ctx, kcs[0], cfg.Stream)
	if err != nil {
		fail(err)
	}
	queue := make(chan string, len(shards))
	for _, s := range shards {
		queue <- s
	}
	close(queue)
	var wg sync.WaitGroup
	for _, kc := range kcs[:min(len(kcs), len(shards))] {
		wg.Go(func() {
			for shard := range queue {
				if err := readShard(ctx, kc, cfg.Stream, shard, &m); err != nil && ctx.Err() == nil {
					fail(fmt.Errorf("read %s: %w", shard, err))
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	stop()
	p := newPhase(m.records.Load(), m.bytes.Load(), elapsed)
	p.Errors = m.errors.Load()
	if firstErr != nil {
		p.FirstError = firstErr.Error()
	}
	return p
}

// listShards returns the ids of every shard of the stream, following
// NextToken.
func listShards(ctx context.Context, kc *kinesis.Client, stream string) ([]string, error) {
	var ids []string
	in := &kinesis.ListShardsInput{StreamName: &stream}
	for {
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		out, err := kc.ListShards(cctx, in)
		cancel()
		if err != nil {
			return ids, fmt.Errorf("list shards: %w", err)
		}
		for _, s := range out.Shards {
			ids = append(ids, aws.ToString(s.ShardId))
		}
		if out.NextToken == nil {
			return ids, nil
		}
		in = &kinesis.ListShardsInput{NextToken: out.NextToken}
	}
}

// readShard reads one shard from TRIM_HORIZON until shardEnd says it is at
// the end, counting records and data bytes into m.
func readShard(ctx context.Context, kc *kinesis.Client, stream, shard string, m *meter) error {
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	it, err := kc.GetShardIterator(cctx, &kinesis.GetShardIteratorInput{
		StreamName: &stream, ShardId: &shard, ShardIteratorType: types.ShardIteratorTypeTrimHorizon,
	})
	cancel()
	if err != nil {
		return fmt.Errorf("get shard iterator: %w", err)
	}
	next := it.ShardIterator
	lastProgress := time.Now()
	for {
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		out, err := kc.GetRecords(cctx, &kinesis.GetRecordsInput{ShardIterator: next, Limit: aws.Int32(getRecordsLimit)})
		cancel()
		if err != nil {
			return fmt.Errorf("get records: %w", err)
		}
		var b int64
		for _, r := range out.Records {
			b += int64(len(r.Data))
		}
		m.add(int64(len(out.Records)), b)
		if shardEnd(len(out.Records), out.NextShardIterator, out.MillisBehindLatest) {
			return nil
		}
		next = out.NextShardIterator
		if len(out.Records) > 0 {
			lastProgress = time.Now()
			continue
		}
		// Empty yet behind the tip: Kinesis may answer that way inside
		// a shard; try again, but not forever.
		if time.Since(lastProgress) > stallTimeout {
			return errors.New("no progress for 30s while behind the tip")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// shardEnd reports whether a GetRecords answer shows the reader at the end
// of the shard: a closed shard read to its end has no next iterator; an
// open one is at its tip when an answer brings no records and is not
// behind the latest record (a missing MillisBehindLatest counts as 0).
// Records are written before the read starts, so the tip is the end.
func shardEnd(records int, next *string, millisBehind *int64) bool {
	if next == nil {
		return true
	}
	return records == 0 && aws.ToInt64(millisBehind) == 0
}
