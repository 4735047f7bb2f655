package connect

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Header keys of a dead-lettered record.
const (
	HeaderError     = "braid.connect.error"
	HeaderConnector = "braid.connect.connector"
	HeaderStream    = "braid.connect.stream"
	HeaderShard     = "braid.connect.shard"
	HeaderOffset    = "braid.connect.offset"
)

// GroupID is the consumer group of a sink connector.
func GroupID(name string) string { return "connect-" + name }

// sinkRun is one run of a sink worker: a kgo group consumer and a sink
// opened for the shards the group assigned. mu orders the sink's calls:
// kgo runs the assignment callbacks on its own goroutine (between polls,
// with BlockRebalanceOnPoll).
type sinkRun struct {
	c     *connector
	def   *Definition
	cl    *kgo.Client
	chain Chain

	mu        sync.Mutex
	sink      Sink
	owned     map[ShardKey]bool
	opened    map[ShardKey]int64 // offsets the sink asked to start at, until applied
	failed    error              // an Open that failed in a callback
	committed map[ShardKey]int64
	// Since the sink was opened: the offset after the last record read
	// (readEnd) and after the last one the sink took (putEnd). Records in
	// between were filtered, skipped or dead-lettered by the runtime.
	readEnd, putEnd map[ShardKey]int64
}

func (c *connector) runSink(ctx context.Context, def *Definition) error {
	chain, err := c.m.chain(def)
	if err != nil {
		return &fatalError{err}
	}
	if err := evictMembers(ctx, c.m.opts.KafkaAddr, GroupID(def.Name)); err != nil {
		return fmt.Errorf("group %s: %w", GroupID(def.Name), err)
	}
	r := &sinkRun{c: c, def: def, chain: chain, owned: map[ShardKey]bool{}, opened: map[ShardKey]int64{}, committed: map[ShardKey]int64{},
		readEnd: map[ShardKey]int64{}, putEnd: map[ShardKey]int64{}}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(c.m.opts.KafkaAddr),
		kgo.ClientID("braid-connect-"+def.Name),
		kgo.ConsumerGroup(GroupID(def.Name)),
		kgo.ConsumeTopics(def.Streams...),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(500*time.Millisecond),
		kgo.HeartbeatInterval(time.Second),
		kgo.SessionTimeout(10*time.Second),
		kgo.MetadataMaxAge(2*time.Second),
		kgo.MetadataMinAge(100*time.Millisecond),
		kgo.OnPartitionsAssigned(r.assigned),
		kgo.OnPartitionsRevoked(r.revoked),
		kgo.OnPartitionsLost(r.lost),
		kgo.AdjustFetchOffsetsFn(r.adjust),
		// Transaction markers move the read position (the lag is 0 at
		// a marker that ends a shard); they are not handed to the sink.
		kgo.KeepControlRecords(),
	)
	if err != nil {
		return &fatalError{err}
	}
	r.cl = cl
	defer cl.Close()
	if def.Errors.OnBadRecord == OnBadDeadLetter {
		if err := ensureStream(ctx, kadm.NewClient(cl), def.Errors.DeadLetterStream, nil); err != nil {
			return fmt.Errorf("dead-letter stream %s: %w", def.Errors.DeadLetterStream, err)
		}
	}
	stopStatus := c.watchEnds(ctx, kadm.NewClient(cl), def.Streams)
	defer stopStatus()
	lastCommit := time.Now()
	for {
		pollCtx, cancel := context.WithTimeout(ctx, time.Second)
		fetches := cl.PollRecords(pollCtx, 5000)
		cancel()
		if ctx.Err() != nil {
			cl.AllowRebalance()
			return r.stop()
		}
		var recs []Record
		var markers []Record
		size := 0
		fetches.EachRecord(func(kr *kgo.Record) {
			if kr.Attrs.IsControl() {
				markers = append(markers, Record{Stream: kr.Topic, Shard: kr.Partition, Offset: kr.Offset})
				return
			}
			rec := Record{Stream: kr.Topic, Shard: kr.Partition, Offset: kr.Offset, Timestamp: kr.Timestamp, Key: kr.Key, Value: kr.Value}
			for _, h := range kr.Headers {
				rec.Headers = append(rec.Headers, Header{Key: h.Key, Value: h.Value})
			}
			size += len(kr.Key) + len(kr.Value)
			recs = append(recs, rec)
		})
		r.mu.Lock()
		err := r.failed
		if err == nil && r.sink != nil {
			err = r.put(ctx, recs)
		} else if err == nil && len(recs) > 0 {
			err = errors.New("records of a shard no sink was opened for") // never dropped
		}
		// Running once the sink is open (or there is nothing to read yet).
		running := err == nil && (r.sink != nil || len(r.owned) == 0)
		if err == nil && r.sink != nil && time.Since(lastCommit) >= time.Second {
			err = r.commit(ctx)
			lastCommit = time.Now()
		}
		r.mu.Unlock()
		cl.AllowRebalance()
		if err != nil {
			r.mu.Lock()
			r.closeSink(ctx, false)
			r.mu.Unlock()
			return err
		}
		if running {
			c.setRunning()
		}
		if len(recs) > 0 {
			c.countRecords(len(recs), size)
		}
		c.advance(recs)
		c.advance(markers)
	}
}

// put hands records to the sink after the transforms, applying the error
// policy to records it refuses. Once it returns nil, every record of recs
// was taken by the sink or handled by the runtime.
func (r *sinkRun) put(ctx context.Context, recs []Record) error {
	if err := r.putChain(ctx, recs); err != nil {
		return err
	}
	for _, rec := range recs {
		r.readEnd[ShardKey{rec.Stream, rec.Shard}] = rec.Offset + 1
	}
	return nil
}

func (r *sinkRun) putChain(ctx context.Context, recs []Record) error {
	out := recs[:0:0]
	for _, rec := range recs {
		orig := rec
		if r.chain != nil {
			keep, err := r.chain.Apply(&rec)
			if err != nil {
				if err := r.bad(ctx, orig, fmt.Errorf("transform: %w", err)); err != nil {
					return err
				}
				continue
			}
			if !keep {
				continue
			}
		}
		out = append(out, rec)
	}
	for {
		err := r.sink.Put(ctx, out)
		var bre *BadRecordError
		if err == nil {
			r.took(out)
			return nil
		}
		if !errors.As(err, &bre) || bre.Index < 0 || bre.Index >= len(out) {
			return err
		}
		r.took(out[:bre.Index])
		if err := r.bad(ctx, out[bre.Index], bre); err != nil {
			return err
		}
		out = out[bre.Index+1:]
		if len(out) == 0 {
			return nil
		}
	}
}

func (r *sinkRun) took(recs []Record) {
	for _, rec := range recs {
		r.putEnd[ShardKey{rec.Stream, rec.Shard}] = rec.Offset + 1
	}
}

// bad applies the error policy to one refused record.
func (r *sinkRun) bad(ctx context.Context, rec Record, cause error) error {
	policy := r.def.Errors.OnBadRecord
	r.c.countBadRecord(fmt.Errorf("%s/%d@%d: %w", rec.Stream, rec.Shard, rec.Offset, cause), policy)
	switch policy {
	case OnBadSkip:
		return nil
	case OnBadDeadLetter:
		return deadLetter(ctx, r.cl, r.def, rec, cause)
	default:
		// The records before it were taken: keep them, so that a restart
		// starts at the bad record.
		err := r.sink.Flush(ctx)
		if err == nil {
			err = r.commit(ctx)
		}
		if err != nil {
			r.c.m.log.Warn("connector: commit before failing", "connector", r.def.Name, "err", err)
		}
		return &fatalError{fmt.Errorf("bad record %s/%d at offset %d: %w", rec.Stream, rec.Shard, rec.Offset, cause)}
	}
}

// deadLetter writes the original record to the dead-letter stream with
// headers saying where it came from and why it was refused.
func deadLetter(ctx context.Context, cl *kgo.Client, def *Definition, rec Record, cause error) error {
	kr := &kgo.Record{Topic: def.Errors.DeadLetterStream, Key: rec.Key, Value: rec.Value, Timestamp: rec.Timestamp}
	for _, h := range rec.Headers {
		kr.Headers = append(kr.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
	}
	kr.Headers = append(kr.Headers,
		kgo.RecordHeader{Key: HeaderError, Value: []byte(cause.Error())},
		kgo.RecordHeader{Key: HeaderConnector, Value: []byte(def.Name)},
		kgo.RecordHeader{Key: HeaderStream, Value: []byte(rec.Stream)},
		kgo.RecordHeader{Key: HeaderShard, Value: []byte(strconv.Itoa(int(rec.Shard)))},
		kgo.RecordHeader{Key: HeaderOffset, Value: []byte(strconv.FormatInt(rec.Offset, 10))},
	)
	if err := cl.ProduceSync(ctx, kr).FirstErr(); err != nil {
		return fmt.Errorf("dead-letter to %s: %w", def.Errors.DeadLetterStream, err)
	}
	return nil
}

// commit commits, as the group's offsets, what the sink reports durable
// for the shards this run owns; the caller holds mu.
func (r *sinkRun) commit(ctx context.Context) error {
	if r.sink == nil {
		return nil
	}
	offs := map[string]map[int32]kgo.EpochOffset{}
	var keys []ShardKey
	durable := r.sink.Durable()
	for k := range r.owned {
		off, ok := durable[k]
		// Once all the sink took is durable, records read after it that
		// the runtime handled itself (filtered, skipped, dead-lettered)
		// are done too: without this a shard ending in one would never
		// be committed to its end, and its children never assigned.
		if read, ok2 := r.readEnd[k]; ok2 {
			if put, took := r.putEnd[k]; !took || (ok && off >= put) {
				off, ok = max(off, read), true
			}
		}
		if !ok || r.committed[k] == off {
			continue
		}
		if offs[k.Stream] == nil {
			offs[k.Stream] = map[int32]kgo.EpochOffset{}
		}
		offs[k.Stream][k.Shard] = kgo.EpochOffset{Epoch: -1, Offset: off}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil
	}
	var cerr error
	r.cl.CommitOffsetsSync(ctx, offs, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			cerr = err
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if e := kerr.ErrorForCode(p.ErrorCode); e != nil && cerr == nil {
					cerr = e
				}
			}
		}
	})
	if cerr != nil {
		return fmt.Errorf("commit offsets: %w", cerr)
	}
	for _, k := range keys {
		r.committed[k] = offs[k.Stream][k.Shard].Offset
	}
	return nil
}

// closeSink flushes (when asked), commits and closes the sink; the caller
// holds mu.
func (r *sinkRun) closeSink(ctx context.Context, flush bool) error {
	if r.sink == nil {
		return nil
	}
	var err error
	if flush {
		err = r.sink.Flush(ctx)
		if err == nil {
			err = r.commit(ctx)
		}
	} else {
		// What is durable already is worth keeping.
		r.commit(ctx)
	}
	r.sink.Close()
	r.sink = nil
	clear(r.readEnd)
	clear(r.putEnd)
	return err
}

// stop ends the run: flush and a final commit.
func (r *sinkRun) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r.mu.Lock()
	err := r.closeSink(ctx, true)
	r.mu.Unlock()
	if err != nil {
		r.c.m.log.Warn("connector: final flush", "connector", r.def.Name, "err", err)
	}
	return nil
}

// assigned (re)opens the sink for every shard now owned: an exactly-once
// sink says where each shard starts.
func (r *sinkRun) assigned(ctx context.Context, _ *kgo.Client, as map[string][]int32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.closeSink(ctx, true); err != nil && r.failed == nil {
		r.failed = err
	}
	for t, ps := range as {
		for _, p := range ps {
			r.owned[ShardKey{t, p}] = true
		}
	}
	r.reopen(ctx)
}

func (r *sinkRun) reopen(ctx context.Context) {
	clear(r.opened) // a new sink says again where its shards start
	if r.failed != nil || len(r.owned) == 0 {
		return
	}
	sink, _, err := r.def.Build(r.c.m.opts.Types, r.c.env(r.def))
	if err != nil {
		r.failed = &fatalError{err}
		return
	}
	keys := make([]ShardKey, 0, len(r.owned))
	for k := range r.owned {
		keys = append(keys, k)
	}
	start, err := sink.Open(ctx, keys)
	if err != nil {
		sink.Close()
		r.failed = fmt.Errorf("open sink: %w", err)
		return
	}
	r.sink = sink
	for k, off := range start {
		if r.owned[k] {
			r.opened[k] = off
		}
	}
}

// adjust starts shards the sink keeps its own progress for where it says.
func (r *sinkRun) adjust(_ context.Context, offs map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for t, ps := range offs {
		for p, o := range ps {
			k := ShardKey{t, p}
			if off, ok := r.opened[k]; ok {
				ps[p] = kgo.NewOffset().At(off)
				delete(r.opened, k)
				r.c.setPosition(k, off)
			} else if eo := o.EpochOffset(); eo.Offset >= 0 {
				r.c.setPosition(k, eo.Offset)
			}
		}
	}
	return offs, nil
}

func (r *sinkRun) revoked(ctx context.Context, _ *kgo.Client, rv map[string][]int32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.closeSink(ctx, true); err != nil && r.failed == nil {
		r.failed = err
	}
	for t, ps := range rv {
		for _, p := range ps {
			delete(r.owned, ShardKey{t, p})
			r.c.dropShard(ShardKey{t, p})
		}
	}
	r.reopen(ctx)
}

func (r *sinkRun) lost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sink != nil {
		r.sink.Close() // the shards are someone else's now: commit nothing
		r.sink = nil
		clear(r.readEnd)
		clear(r.putEnd)
	}
	for t, ps := range lost {
		for _, p := range ps {
			delete(r.owned, ShardKey{t, p})
		}
	}
	if r.failed == nil {
		r.failed = errors.New("group membership lost")
	}
}

// env is the Env of a run; the connector's data directory is created here
// (not when a definition is checked: a refused one leaves nothing behind).
func (c *connector) env(def *Definition) Env {
	if err := os.MkdirAll(c.m.store.DataDir(def.Name), 0o755); err != nil {
		c.m.log.Warn("connector data directory", "connector", def.Name, "err", err)
	}
	return Env{Name: def.Name, Delivery: def.Delivery, DataDir: c.m.store.DataDir(def.Name), Logger: c.m.log.With("connector", def.Name)}
}

// ensureStream creates a stream with one shard if it does not exist.
func ensureStream(ctx context.Context, adm *kadm.Client, name string, configs map[string]*string) error {
	resp, err := adm.CreateTopic(ctx, 1, -1, configs, name)
	if err == nil {
		err = resp.Err
	}
	if errors.Is(err, kerr.TopicAlreadyExists) {
		return nil
	}
	return err
}

// evictMembers removes the members a group still lists before a sink run
// joins it. The group is this connector's alone and one run at a time
// uses it, so any member is one a killed process or an ended run left
// behind; waiting out its session would stall the run's first rebalance.
func evictMembers(ctx context.Context, addr, group string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return err
	}
	defer cl.Close()
	described, err := kadm.NewClient(cl).DescribeGroups(ctx, group)
	if err != nil {
		return err
	}
	dg, ok := described[group]
	if !ok || dg.Err != nil || len(dg.Members) == 0 {
		return nil // no such group yet: nothing to remove
	}
	req := kmsg.NewPtrLeaveGroupRequest()
	req.Group = group
	for _, m := range dg.Members {
		lm := kmsg.NewLeaveGroupRequestMember()
		lm.MemberID, lm.InstanceID = m.MemberID, m.InstanceID
		req.Members = append(req.Members, lm)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return err
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return err
	}
	return nil
}
