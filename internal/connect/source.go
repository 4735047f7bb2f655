package connect

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// OffsetsStream is the compacted stream where sources keep their
// positions: key = connector name, value = position (empty: none).
const OffsetsStream = "__connect_offsets"

// TransactionalID is the transactional id of an exactly-once source.
func TransactionalID(name string) string { return "connect-" + name }

func (c *connector) runSource(ctx context.Context, def *Definition) error {
	chain, err := c.m.chain(def)
	if err != nil {
		return &fatalError{err}
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.m.opts.KafkaAddr),
		kgo.ClientID("braid-connect-" + def.Name),
		kgo.DefaultProduceTopic(def.Stream),
		kgo.ProducerLinger(5 * time.Millisecond),
		kgo.RecordRetries(10),
	}
	eo := def.Delivery == ExactlyOnce
	if eo {
		opts = append(opts, kgo.TransactionalID(TransactionalID(def.Name)), kgo.TransactionTimeout(30*time.Second))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return &fatalError{err}
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if err := ensureStream(ctx, adm, OffsetsStream, map[string]*string{"cleanup.policy": ptr("compact")}); err != nil {
		return fmt.Errorf("create %s: %w", OffsetsStream, err)
	}
	if def.Errors.OnBadRecord == OnBadDeadLetter {
		if err := ensureStream(ctx, adm, def.Errors.DeadLetterStream, nil); err != nil {
			return fmt.Errorf("dead-letter stream %s: %w", def.Errors.DeadLetterStream, err)
		}
	}
	if eo {
		// Take the transactional id over first: that aborts a transaction
		// a predecessor left open, so the position read below is final.
		if _, _, err := cl.ProducerID(ctx); err != nil {
			return fmt.Errorf("init transactional producer: %w", err)
		}
	}
	pos, err := readPosition(ctx, c.m.opts.KafkaAddr, def.Name)
	if err != nil {
		return fmt.Errorf("read position: %w", err)
	}
	c.mu.Lock()
	c.position = pos
	c.mu.Unlock()
	src, _, err := c.buildSource(def)
	if err != nil {
		return &fatalError{err}
	}
	defer src.Close()
	if err := src.Open(ctx, pos); err != nil {
		return fmt.Errorf("open source: %w", err)
	}
	c.setState(StateRunning)
	for {
		recs, next, err := src.Poll(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return fmt.Errorf("poll: %w", err)
		}
		var out []*kgo.Record
		size := 0
		for _, rec := range recs {
			orig := rec
			if chain != nil {
				keep, err := chain.Apply(&rec)
				if err != nil {
					if err := c.sourceBad(ctx, cl, def, orig, fmt.Errorf("transform: %w", err)); err != nil {
						return err
					}
					continue
				}
				if !keep {
					continue
				}
			}
			kr := &kgo.Record{Topic: rec.Stream, Key: rec.Key, Value: rec.Value, Timestamp: rec.Timestamp}
			if kr.Topic == "" {
				kr.Topic = def.Stream
			}
			for _, h := range rec.Headers {
				kr.Headers = append(kr.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
			}
			size += len(rec.Key) + len(rec.Value)
			out = append(out, kr)
		}
		if len(out) == 0 && (next == nil || bytes.Equal(next, pos)) {
			continue
		}
		if err := writeBatch(ctx, cl, eo, def.Name, out, next); err != nil {
			return err
		}
		if next != nil {
			pos = next
		}
		c.mu.Lock()
		c.position = pos
		c.mu.Unlock()
		c.countRecords(len(out), size)
		if err := src.Committed(ctx, pos); err != nil {
			return fmt.Errorf("committed: %w", err)
		}
	}
}

func (c *connector) buildSource(def *Definition) (Source, Sink, error) {
	sink, src, err := def.Build(c.m.opts.Types, c.env(def))
	return src, sink, err
}

// sourceBad applies the error policy to a record a transform refused.
func (c *connector) sourceBad(ctx context.Context, cl *kgo.Client, def *Definition, rec Record, cause error) error {
	c.countBadRecord(cause, def.Errors.OnBadRecord)
	switch def.Errors.OnBadRecord {
	case OnBadSkip:
		return nil
	case OnBadDeadLetter:
		if rec.Stream == "" {
			rec.Stream = def.Stream
		}
		rec.Shard, rec.Offset = -1, -1
		if def.Delivery == ExactlyOnce {
			// The transactional client produces only inside transactions.
			dl, err := kgo.NewClient(kgo.SeedBrokers(c.m.opts.KafkaAddr))
			if err != nil {
				return err
			}
			defer dl.Close()
			cl = dl
		}
		return deadLetter(ctx, cl, def, rec, cause)
	default:
		return &fatalError{fmt.Errorf("bad record: %w", cause)}
	}
}

// writeBatch writes records and the position after them: in one
// transaction (exactly-once), or records first, then the position.
func writeBatch(ctx context.Context, cl *kgo.Client, eo bool, name string, recs []*kgo.Record, pos []byte) error {
	var posRec *kgo.Record
	if pos != nil {
		posRec = &kgo.Record{Topic: OffsetsStream, Key: []byte(name), Value: append([]byte{}, pos...)}
	}
	if !eo {
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			return fmt.Errorf("produce: %w", err)
		}
		if posRec != nil {
			if err := cl.ProduceSync(ctx, posRec).FirstErr(); err != nil {
				return fmt.Errorf("store position: %w", err)
			}
		}
		return nil
	}
	if err := cl.BeginTransaction(); err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	all := recs
	if posRec != nil {
		all = append(all[:len(all):len(all)], posRec)
	}
	perr := cl.ProduceSync(ctx, all...).FirstErr()
	commit := kgo.TryCommit
	if perr != nil {
		commit = kgo.TryAbort
	}
	if err := cl.EndTransaction(ctx, commit); err != nil {
		return fmt.Errorf("end transaction: %w", errors.Join(perr, err))
	}
	if perr != nil {
		return fmt.Errorf("produce (transaction aborted): %w", perr)
	}
	return nil
}

// readPosition reads a source's last committed position from
// OffsetsStream (read_committed, up to the last stable offset).
func readPosition(ctx context.Context, addr, name string) ([]byte, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ends, err := adm.ListCommittedOffsets(ctx, OffsetsStream)
	if err != nil {
		return nil, err
	}
	want := map[int32]int64{}
	parts := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err == nil && o.Partition >= 0 && o.Offset > 0 {
			want[o.Partition] = o.Offset
			parts[o.Partition] = kgo.NewOffset().AtStart()
		}
	})
	if err := ends.Error(); err != nil {
		return nil, err
	}
	if len(want) == 0 {
		return nil, nil
	}
	cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{OffsetsStream: parts})
	var pos []byte
	key := []byte(name)
	for len(want) > 0 {
		// What is stable is there to fetch at once: a poll that gets
		// nothing for a second means only control records were left.
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		for _, fe := range fs.Errors() {
			if !errors.Is(fe.Err, context.DeadlineExceeded) && !errors.Is(fe.Err, context.Canceled) {
				return nil, fe.Err
			}
		}
		if fs.NumRecords() == 0 {
			break
		}
		fs.EachRecord(func(r *kgo.Record) {
			if bytes.Equal(r.Key, key) {
				pos = r.Value
				if len(pos) == 0 {
					pos = nil
				}
			}
			if r.Offset+1 >= want[r.Partition] {
				delete(want, r.Partition)
			}
		})
	}
	return pos, nil
}

func ptr[T any](v T) *T { return &v }
