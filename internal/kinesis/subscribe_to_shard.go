package kinesis

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream/eventstreamapi"

	"github.com/braidstream/braid/internal/catalog"
	"github.com/braidstream/braid/internal/engine"
	"github.com/braidstream/braid/internal/shard"
)

// SubscribeToShard pushes a shard's records to a registered consumer:
// the answer is a 200 with an application/vnd.amazon.eventstream body of
// framed messages, first an "initial-response" event, then
// SubscribeToShardEvent events, each flushed as it is written (HTTP/2 or
// HTTP/1.1 chunked). Records are read as GetRecords reads them (read
// committed); between events the stream waits for the log to change, and
// sends an empty event every heartbeat so a client sees it is alive. It
// ends after Options.SubscriptionTTL (5 minutes), when the client goes
// away, when the door closes, after the event carrying ChildShards at
// the end of a closed shard, or with an exception event (the consumer
// deregistered or the stream deleted: ResourceNotFoundException).
//
// ContinuationSequenceNumber is the sequence number of the last position
// consumed: a new subscription AFTER_SEQUENCE_NUMBER it resumes exactly
// (as the KCL does). It is absent while the shard's first position was
// not consumed, and in the last event of a closed shard.
func init() { register("SubscribeToShard", subscribeToShard) }

const (
	heartbeat = 5 * time.Second
	// recheck bounds how long a deregistration or deletion goes unseen.
	recheck = time.Second
)

type startingPosition struct {
	Type           string   `json:"Type"`
	SequenceNumber *string  `json:"SequenceNumber"`
	Timestamp      *float64 `json:"Timestamp"`
}

type subscribeToShardInput struct {
	ConsumerARN      string            `json:"ConsumerARN"`
	ShardId          string            `json:"ShardId"`
	StartingPosition *startingPosition `json:"StartingPosition"`
}

type subscribeToShardEvent struct {
	Records                    []record     `json:"Records"`
	ContinuationSequenceNumber *string      `json:"ContinuationSequenceNumber,omitempty"`
	MillisBehindLatest         int64        `json:"MillisBehindLatest"`
	ChildShards                []childShard `json:"ChildShards,omitempty"`
}

// eventStream is an answer that ServeHTTP streams instead of encoding.
type eventStream interface {
	serve(w http.ResponseWriter)
}

// takeoverAfter is how long a subscription holds its consumer and shard
// against a new SubscribeToShard: a call sooner gets ResourceInUseException,
// a later one takes the subscription over, as on AWS.
const takeoverAfter = 5 * time.Second

// subscriptions ends streams when the door closes, and knows the active
// subscription of each consumer and shard.
type subscriptions struct {
	once sync.Once
	done chan struct{}

	mu     sync.Mutex
	active map[subKey]*subscription
}

type subKey struct {
	consumerARN string
	shard       catalog.ShardID
}

// claim makes sub the active subscription of its consumer and shard. An
// active one younger than takeoverAfter keeps its place and sub is
// refused; an older one is told to end with ResourceInUseException. A
// subscription that has ended holds nothing, so a consumer may resume at
// once after one ends (AWS would also refuse a call within 5 seconds of
// the last successful one; Braid does not rate-limit here).
func (ss *subscriptions) claim(sub *subscription) error {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if old := ss.active[sub.key]; old != nil {
		if sub.started.Sub(old.started) < takeoverAfter {
			return errorf(errResourceInUse, "Another active subscription exists for this consumer: %s", sub.key.consumerARN)
		}
		close(old.taken)
	}
	if ss.active == nil {
		ss.active = map[subKey]*subscription{}
	}
	ss.active[sub.key] = sub
	return nil
}

// release forgets sub once it has ended, unless it was taken over.
func (ss *subscriptions) release(sub *subscription) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.active[sub.key] == sub {
		delete(ss.active, sub.key)
	}
}

func (s *Server) closing() <-chan struct{} {
	s.subs.once.Do(func() {
		s.subs.done = make(chan struct{})
		s.http.RegisterOnShutdown(func() { close(s.subs.done) })
	})
	return s.subs.done
}

func subscribeToShard(ctx context.Context, s *Server, body []byte) (any, error) {
	var in subscribeToShardInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if in.ConsumerARN == "" {
		return nil, errorf(errValidation, "1 validation error detected: Value null at 'consumerARN' failed to satisfy constraint: Member must not be null")
	}
	if in.StartingPosition == nil {
		return nil, errorf(errValidation, "1 validation error detected: Value null at 'startingPosition' failed to satisfy constraint: Member must not be null")
	}
	st, c, err := s.consumerByARN(in.ConsumerARN)
	if err != nil {
		return nil, err
	}
	id, sh, err := s.shardOf(st, in.ShardId)
	if err != nil {
		return nil, err
	}
	p := in.StartingPosition
	from, err := s.startOffset("SubscribeToShard", st, id, sh, p.Type, p.SequenceNumber, p.Timestamp)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	sub := &subscription{ctx: ctx, s: s, stream: st.ID, name: st.Name, consumer: c, shard: id, sh: sh, next: from,
		key: subKey{s.consumerARN(st.Name, c), id}, started: now, taken: make(chan struct{}),
		deadline: now.Add(s.opts.SubscriptionTTL), closing: s.closing()}
	if err := s.subs.claim(sub); err != nil {
		return nil, err
	}
	return sub, nil
}

// subscription is one SubscribeToShard stream; serve owns it.
type subscription struct {
	ctx      context.Context
	s        *Server
	stream   catalog.StreamID
	name     string
	consumer catalog.Consumer
	shard    catalog.ShardID
	sh       *shard.Shard
	next     shard.Offset
	deadline time.Time
	closing  <-chan struct{}
	key      subKey
	started  time.Time
	// taken is closed when a newer subscription takes this one over.
	taken chan struct{}

	w   http.ResponseWriter
	rc  *http.ResponseController
	enc *eventstream.Encoder
	buf bytes.Buffer
}

func (sub *subscription) serve(w http.ResponseWriter) {
	sub.w, sub.rc, sub.enc = w, http.NewResponseController(w), eventstream.NewEncoder()
	w.Header().Set("Content-Type", "application/vnd.amazon.eventstream")
	w.WriteHeader(http.StatusOK)
	err := sub.event("initial-response", struct{}{})
	if err == nil {
		err = sub.run()
	}
	sub.s.subs.release(sub)
	sub.s.opts.Logger.Debug("kinesis: subscription ended", "consumer", sub.consumer.Name, "shard", ShardName(sub.shard), "err", err)
}

// run sends events until the subscription ends.
func (sub *subscription) run() error {
	var lastSent time.Time
	for {
		// Checked here too, not only while idle: a shard written faster
		// than it is pushed must not keep its subscription past the end.
		select {
		case <-sub.closing:
			return nil
		case <-sub.taken:
			return sub.takenOver()
		default:
		}
		if !lastSent.IsZero() && !time.Now().Before(sub.deadline) {
			return nil
		}
		changed := sub.s.eng.Changed()
		st, cs, err := sub.current()
		if err != nil {
			sub.exception(err)
			return err
		}
		// Throttled (braid.kinesis.throttle): events of at most one
		// second's budget, paced below.
		maxBytes := maxGetRecordsBytes
		if st.KinesisThrottle {
			maxBytes = pushBytesPerSec
		}
		recs, next, err := readCommitted(sub.sh, sub.next, maxGetRecords, maxBytes)
		if err != nil {
			sub.exception(err)
			return err
		}
		sub.next = next
		_, hw, _ := sub.sh.Offsets()
		ended := cs.State == catalog.ShardClosed && next >= max(shard.Offset(cs.EndOffset), hw)
		if st.KinesisThrottle && len(recs) > 0 {
			// Slow down, never fail: hold the event until it fits the
			// consumer's 2 MiB/s on this shard.
			if err := sub.pause(sub.s.throttle.push(sub.pushKey(), recordBytes(recs))); err != nil {
				return err
			}
		}
		now := time.Now()
		if len(recs) > 0 || ended || lastSent.IsZero() || now.Sub(lastSent) >= heartbeat {
			if err := sub.event("SubscribeToShardEvent", sub.build(st, cs, recs, ended, now)); err != nil {
				return err
			}
			lastSent = now
		}
		if ended {
			return nil
		}
		if len(recs) > 0 {
			continue // more may be there already
		}
		wait := min(time.Until(sub.deadline), recheck, time.Until(lastSent.Add(heartbeat)))
		if wait <= 0 && !time.Now().Before(sub.deadline) {
			return nil
		}
		t := time.NewTimer(max(wait, 0))
		select {
		case <-changed:
		case <-t.C:
		case <-sub.ctx.Done():
			t.Stop()
			return sub.ctx.Err()
		case <-sub.closing:
			t.Stop()
			return nil
		case <-sub.taken:
			t.Stop()
			return sub.takenOver()
		}
		t.Stop()
	}
}

// takenOver ends a subscription that a newer one replaced.
func (sub *subscription) takenOver() error {
	err := errorf(errResourceInUse, "Another active subscription exists for this consumer: %s", sub.key.consumerARN)
	sub.exception(err)
	return err
}

// pushKey names this subscription's throttle budget: its consumer
// registration on its shard.
func (sub *subscription) pushKey() pushKey {
	return pushKey{shardKey{sub.stream, sub.shard}, sub.key.consumerARN}
}

// pause waits d, or less if the subscription ends meanwhile (a nil
// error then: run sees closing, a takeover or the deadline next).
func (sub *subscription) pause(d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-sub.closing:
	case <-sub.taken:
	case <-sub.ctx.Done():
		return sub.ctx.Err()
	}
	return nil
}

// current checks that the stream and the consumer still exist.
func (sub *subscription) current() (*engine.Stream, catalog.Shard, error) {
	st := sub.s.streamByID(sub.stream)
	if st == nil {
		return nil, catalog.Shard{}, errorf(errResourceNotFound, "Stream %s under account %s not found.", sub.name, sub.s.opts.Account)
	}
	if c, ok := st.Consumer(sub.consumer.Name); !ok || c.Created != sub.consumer.Created {
		return nil, catalog.Shard{}, errorf(errResourceNotFound, "Consumer %s under account %s not found.", sub.s.consumerARN(sub.name, sub.consumer), sub.s.opts.Account)
	}
	return st, st.Stream.Shards[sub.shard], nil
}

func (sub *subscription) build(st *engine.Stream, cs catalog.Shard, recs []batchRecord, ended bool, now time.Time) subscribeToShardEvent {
	ev := subscribeToShardEvent{Records: make([]record, 0, len(recs))}
	for _, r := range recs {
		ev.Records = append(ev.Records, record{
			Data: r.value, PartitionKey: string(r.key), SequenceNumber: SequenceNumber(sub.shard, r.offset),
			ApproximateArrivalTimestamp: float64(r.ts) / 1000, EncryptionType: "NONE",
		})
	}
	if sub.next < sub.sh.LastStableOffset() && len(recs) > 0 {
		ev.MillisBehindLatest = max(0, now.UnixMilli()-recs[len(recs)-1].ts)
	}
	if ended {
		ev.ChildShards = childShards(st, cs)
		return ev
	}
	if sub.next > 0 {
		seq := SequenceNumber(sub.shard, sub.next-1)
		ev.ContinuationSequenceNumber = &seq
	}
	return ev
}

// event writes and flushes one event message.
func (sub *subscription) event(typ string, v any) error {
	payload, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var msg eventstream.Message
	msg.Headers.Set(eventstreamapi.MessageTypeHeader, eventstream.StringValue(eventstreamapi.EventMessageType))
	msg.Headers.Set(eventstreamapi.EventTypeHeader, eventstream.StringValue(typ))
	msg.Headers.Set(eventstreamapi.ContentTypeHeader, eventstream.StringValue("application/x-amz-json-1.1"))
	msg.Payload = payload
	return sub.write(msg)
}

// exception writes err as the stream's last message.
func (sub *subscription) exception(err error) {
	typ, _, text := mapError(err)
	if typ == errInternalFailure {
		typ = "InternalFailureException" // the event stream's name for it
	}
	payload, _ := json.Marshal(map[string]string{"message": text})
	var msg eventstream.Message
	msg.Headers.Set(eventstreamapi.MessageTypeHeader, eventstream.StringValue(eventstreamapi.ExceptionMessageType))
	msg.Headers.Set(eventstreamapi.ExceptionTypeHeader, eventstream.StringValue(typ))
	msg.Headers.Set(eventstreamapi.ContentTypeHeader, eventstream.StringValue("application/x-amz-json-1.1"))
	msg.Payload = payload
	sub.write(msg)
}

func (sub *subscription) write(msg eventstream.Message) error {
	sub.buf.Reset()
	if err := sub.enc.Encode(&sub.buf, msg); err != nil {
		return err
	}
	if _, err := sub.w.Write(sub.buf.Bytes()); err != nil {
		return err
	}
	return sub.rc.Flush()
}
