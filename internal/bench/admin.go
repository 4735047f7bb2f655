package bench

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	// adminTimeout bounds each admin step so a dead broker fails the run
	// instead of hanging it.
	adminTimeout = 30 * time.Second
	// readyTimeout bounds the wait for a new stream to have leaders.
	readyTimeout = 30 * time.Second
)

// baseOpts are the options every client of a run shares.
func baseOpts(brokers []string) []kgo.Opt {
	return []kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.ClientID("braid-bench"),
		kgo.DialTimeout(5 * time.Second),
		kgo.RetryTimeout(10 * time.Second),
	}
}

// admin keeps the kgo client next to the kadm wrapper because a few
// requests must bypass kadm's metadata cache.
type admin struct {
	cl  *kgo.Client
	adm *kadm.Client
}

func newAdmin(brokers []string) (*admin, error) {
	cl, err := kgo.NewClient(baseOpts(brokers)...)
	if err != nil {
		return nil, fmt.Errorf("create admin client: %w", err)
	}
	return &admin{cl: cl, adm: kadm.NewClient(cl)}, nil
}

func (a *admin) Close() { a.cl.Close() }

// ensureStream returns the stream's partition count, creating the stream
// with partitions shards when it does not exist. created tells the caller
// whether the run owns the stream (and may delete it).
func ensureStream(ctx context.Context, a *admin, stream string, partitions int, configs map[string]*string) (n int, created bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	td, err := describe(ctx, a, stream)
	if err != nil {
		return 0, false, err
	}
	if td.Err == nil {
		return len(td.Partitions), false, nil
	}
	if !errors.Is(td.Err, kerr.UnknownTopicOrPartition) {
		return 0, false, fmt.Errorf("look up stream %q: %w", stream, td.Err)
	}
	resp, err := a.adm.CreateTopic(ctx, int32(partitions), -1, configs, stream)
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		if resp.ErrMessage != "" {
			err = fmt.Errorf("%w: %s", err, resp.ErrMessage)
		}
		return 0, false, fmt.Errorf("create stream %q with %d partitions: %w", stream, partitions, err)
	}
	// Losing a creation race to another run means someone else owns it.
	created = err == nil
	n, err = waitReady(ctx, a, stream)
	return n, created, err
}

// describe looks the stream up with an uncached metadata request: kgo
// caches "unknown topic" answers for MetadataMinAge (5s), which would hide
// a stream we just created.
func describe(ctx context.Context, a *admin, stream string) (kadm.TopicDetail, error) {
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(stream)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, a.cl)
	if err != nil {
		return kadm.TopicDetail{}, fmt.Errorf("look up stream %q: %w", stream, err)
	}
	for _, t := range resp.Topics {
		if t.Topic == nil || *t.Topic != stream {
			continue
		}
		td := kadm.TopicDetail{
			Topic:      stream,
			ID:         t.TopicID,
			Partitions: make(kadm.PartitionDetails, len(t.Partitions)),
			Err:        kerr.ErrorForCode(t.ErrorCode),
		}
		for _, p := range t.Partitions {
			td.Partitions[p.Partition] = kadm.PartitionDetail{
				Topic:     stream,
				Partition: p.Partition,
				Leader:    p.Leader,
				Err:       kerr.ErrorForCode(p.ErrorCode),
			}
		}
		return td, nil
	}
	return kadm.TopicDetail{}, fmt.Errorf("look up stream %q: not in metadata response", stream)
}

// waitReady polls metadata until every partition has a leader; producing
// earlier would spend the client's unknown-topic retries on a stream that
// merely is not propagated yet.
func waitReady(ctx context.Context, a *admin, stream string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	for {
		td, err := describe(ctx, a, stream)
		if err == nil && td.Err == nil && len(td.Partitions) > 0 && allLed(td) {
			return len(td.Partitions), nil
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = td.Err
			}
			return 0, fmt.Errorf("stream %q not ready after creation: %w", stream, errors.Join(ctx.Err(), err))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func allLed(td kadm.TopicDetail) bool {
	for _, p := range td.Partitions {
		if p.Err != nil || p.Leader < 0 {
			return false
		}
	}
	return true
}

func deleteStream(ctx context.Context, a *admin, stream string) error {
	resp, err := a.adm.DeleteTopic(ctx, stream)
	if err != nil {
		if resp.ErrMessage != "" {
			err = fmt.Errorf("%w: %s", err, resp.ErrMessage)
		}
		return fmt.Errorf("delete benchmark stream %q: %w", stream, err)
	}
	return nil
}

// endOffsets returns each partition's high watermark.
func endOffsets(ctx context.Context, a *admin, stream string) (map[int32]int64, error) {
	ctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	listed, err := a.adm.ListEndOffsets(ctx, stream)
	if err == nil {
		err = listed.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("list end offsets of %q: %w", stream, err)
	}
	out := make(map[int32]int64)
	listed.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out, nil
}

// startOffsets returns each partition's log start offset.
func startOffsets(ctx context.Context, a *admin, stream string) (map[int32]int64, error) {
	ctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	listed, err := a.adm.ListStartOffsets(ctx, stream)
	if err == nil {
		err = listed.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("list start offsets of %q: %w", stream, err)
	}
	out := make(map[int32]int64)
	listed.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out, nil
}

// settledEndOffsets returns the end offsets after producing. With acks=0
// the client finishes before the broker has appended everything, so the
// offsets are re-read until they stop moving.
func settledEndOffsets(ctx context.Context, a *admin, stream string, noAcks bool) (map[int32]int64, error) {
	cur, err := endOffsets(ctx, a, stream)
	if err != nil || !noAcks {
		return cur, err
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
		next, err := endOffsets(ctx, a, stream)
		if err != nil {
			return nil, err
		}
		if maps.Equal(cur, next) {
			return cur, nil
		}
		cur = next
	}
	return cur, nil
}
