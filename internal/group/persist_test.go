package group

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/braidstream/braid/internal/wal"
)

// A restarted coordinator finds classic and KIP-848 groups as they were
// stored: same generation or epochs, members and assignments, and commits
// made with them are accepted.
func TestGroupsSurviveRestart(t *testing.T) {
	off := NewOffsets()
	topics := map[string]TopicInfo{"t": {Name: "t", Partitions: 4}}
	c := NewCoordinator(off, Options{})
	c.EnableConsumerProtocol(ConsumerOptions{Topics: func() map[string]TopicInfo { return topics }})

	// Classic: one static member joins, syncs an assignment.
	j := <-c.Join(JoinRequest{Group: "classic", InstanceID: "i1", ClientID: "c", ProtocolType: "consumer",
		SessionTimeout: 10 * time.Second, RebalanceTimeout: time.Second, Protocols: []Protocol{{"range", []byte("meta")}}})
	if j.Err != nil {
		t.Fatalf("join: %v", j.Err)
	}
	if s := <-c.Sync("classic", j.MemberID, "i1", j.Generation, map[string][]byte{j.MemberID: []byte("assignment")}); s.Err != nil {
		t.Fatalf("sync: %v", s.Err)
	}
	// KIP-848: two members converge.
	var epochs = map[string]int32{}
	var owned = map[string][]TopicPartition{}
	for range 4 {
		for _, id := range []string{"a", "b"} {
			r, err := c.ConsumerHeartbeat(HeartbeatRequest{Group: "cg", MemberID: id, MemberEpoch: epochs[id],
				SubscribedTopics: []string{"t"}, Owned: owned[id], OwnedKnown: true, RebalanceTimeout: time.Minute})
			if err != nil {
				t.Fatalf("heartbeat %s: %v", id, err)
			}
			epochs[id] = r.MemberEpoch
			if r.AssignmentSent {
				owned[id] = r.Assignment
			}
		}
	}
	before, _ := c.DescribeConsumer("cg")
	c.Close()

	// Through a checkpoint, as the engine restores it.
	restored := NewOffsets()
	if err := restored.Restore(off.Snapshot()); err != nil {
		t.Fatalf("restore: %v", err)
	}
	for name, o := range map[string]*Offsets{"log": off, "checkpoint": restored} {
		t.Run(name, func(t *testing.T) {
			c2 := NewCoordinator(o, Options{})
			defer c2.Close()
			c2.EnableConsumerProtocol(ConsumerOptions{Topics: func() map[string]TopicInfo { return topics }})
			if d, _ := c2.DescribeConsumer("cg"); d.State != StateStable || d.Epoch != before.Epoch {
				t.Fatalf("consumer group before any heartbeat: %s in epoch %d, want Stable in %d", d.State, d.Epoch, before.Epoch)
			}
			if err := c2.Heartbeat("classic", j.MemberID, "i1", j.Generation); err != nil {
				t.Fatalf("classic heartbeat after restart: %v", err)
			}
			if err := c2.ValidateCommit("classic", j.MemberID, "i1", j.Generation); err != nil {
				t.Fatalf("classic commit after restart: %v", err)
			}
			if s := <-c2.Sync("classic", j.MemberID, "i1", j.Generation, nil); s.Err != nil || string(s.Assignment) != "assignment" {
				t.Fatalf("classic sync after restart: %q %v", s.Assignment, s.Err)
			}
			for _, id := range []string{"a", "b"} {
				if err := c2.ValidateCommit("cg", id, "", epochs[id]); err != nil {
					t.Fatalf("consumer commit of %s after restart: %v", id, err)
				}
				r, err := c2.ConsumerHeartbeat(HeartbeatRequest{Group: "cg", MemberID: id, MemberEpoch: epochs[id], Owned: owned[id], OwnedKnown: true})
				if err != nil || r.MemberEpoch != epochs[id] || r.AssignmentSent {
					t.Fatalf("heartbeat of %s after restart: epoch %d (was %d), new assignment %v, %v", id, r.MemberEpoch, epochs[id], r.Assignment, err)
				}
			}
			after, _ := c2.DescribeConsumer("cg")
			if after.Epoch != before.Epoch || len(after.Members) != 2 {
				t.Fatalf("consumer group after restart: epoch %d members %d, was %d and 2", after.Epoch, len(after.Members), before.Epoch)
			}
			for i := range after.Members {
				if !slices.Equal(after.Members[i].Assignment, before.Members[i].Assignment) {
					t.Fatalf("member %s owns %v after restart, %v before", after.Members[i].MemberID, after.Members[i].Assignment, before.Members[i].Assignment)
				}
			}
		})
	}
}

// A group whose members all left is gone after a restart too.
func TestEmptiedGroupStaysGone(t *testing.T) {
	off := NewOffsets()
	c := NewCoordinator(off, Options{})
	c.EnableConsumerProtocol(ConsumerOptions{Topics: func() map[string]TopicInfo { return nil }})
	j := <-c.Join(JoinRequest{Group: "g", ClientID: "c", ProtocolType: "consumer", SessionTimeout: 10 * time.Second,
		RebalanceTimeout: time.Second, Protocols: []Protocol{{"range", nil}}})
	<-c.Sync("g", j.MemberID, "", j.Generation, nil)
	c.Leave("g", []LeaveMember{{MemberID: j.MemberID}})
	if _, err := c.ConsumerHeartbeat(HeartbeatRequest{Group: "cg", MemberID: "a", SubscribedTopics: []string{}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ConsumerHeartbeat(HeartbeatRequest{Group: "cg", MemberID: "a", MemberEpoch: -1}); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if recs := off.groupRecordsLocked(); len(recs) != 0 {
		t.Fatalf("stored groups after everyone left: %+v", recs)
	}
}

func TestDecodeGroupRecordRejects(t *testing.T) {
	good := encodeGroupRecord(groupRecord{G: "g", Type: typeClassic, Full: true, Leader: "m", Members: []memberRecord{{ID: "m"}}})
	if _, err := decodeGroupRecord(good); err != nil {
		t.Fatalf("good record: %v", err)
	}
	for name, body := range map[string][]byte{
		"empty":          nil,
		"version 2":      append([]byte{2}, good[1:]...),
		"not json":       []byte("\x01{"),
		"no name":        encodeGroupRecord(groupRecord{Type: typeClassic, Full: true}),
		"unknown type":   encodeGroupRecord(groupRecord{G: "g", Type: "share", Full: true}),
		"classic delta":  encodeGroupRecord(groupRecord{G: "g", Type: typeClassic}),
		"leader missing": encodeGroupRecord(groupRecord{G: "g", Type: typeClassic, Full: true, Leader: "x", Members: []memberRecord{{ID: "m"}}}),
		"repeated id":    encodeGroupRecord(groupRecord{G: "g", Type: typeConsumer, Members: []memberRecord{{ID: "m"}, {ID: "m"}}}),
		"negative shard": encodeGroupRecord(groupRecord{G: "g", Type: typeConsumer, Members: []memberRecord{{ID: "m", Owned: []tpsRecord{{T: "t", P: []int32{-1}}}}}}),
	} {
		if _, err := decodeGroupRecord(body); !errors.Is(err, ErrCorruptGroupRecord) {
			t.Errorf("%s: %v, want ErrCorruptGroupRecord", name, err)
		}
	}
}

// FuzzDecodeGroupRecord: the decoder never panics, and what it accepts
// applies to a store and survives a snapshot round trip unchanged.
func FuzzDecodeGroupRecord(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/group-records/*")
	for _, p := range seeds {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := decodeGroupRecord(body)
		if err != nil {
			return
		}
		o := NewOffsets()
		o.applyGroupLocked(r)
		again := NewOffsets()
		if err := again.Restore(o.Snapshot()); err != nil {
			t.Fatalf("snapshot of an accepted record does not restore: %v", err)
		}
		if a, b := string(o.Snapshot()), string(again.Snapshot()); a != b {
			t.Fatalf("snapshot round trip changed the state:\n%s\n%s", a, b)
		}
		c := NewCoordinator(o, Options{})
		c.Close()
	})
}

// slowLog is a write-ahead log whose durable position moves only when the
// test says so.
type slowLog struct {
	mu      sync.Mutex
	end     wal.Position
	durable wal.Position
	moved   chan struct{}
}

func newSlowLog() *slowLog { return &slowLog{moved: make(chan struct{})} }

func (l *slowLog) Append(kind wal.Kind, parts ...[]byte) (wal.Position, wal.Position, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	start := l.end
	for _, p := range parts {
		l.end += wal.Position(len(p))
	}
	return start, l.end, nil
}

func (l *slowLog) Durable() wal.Position {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.durable
}

func (l *slowLog) WaitDurable(ctx context.Context, end wal.Position) error {
	for {
		l.mu.Lock()
		ok, moved := l.durable >= end, l.moved
		l.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-moved:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (l *slowLog) flush() {
	l.mu.Lock()
	l.durable = l.end
	close(l.moved)
	l.moved = make(chan struct{})
	l.mu.Unlock()
}

// Group state handed to a member is durable first: the answer carries the
// position to wait for, and until it is durable neither the durable state
// nor a checkpoint holds it (a crash then forgets what nobody was told).
func TestGroupStateDurableBeforeAnswer(t *testing.T) {
	log := newSlowLog()
	off := NewOffsets()
	off.Attach(log)
	c := NewCoordinator(off, Options{})
	defer c.Close()
	c.EnableConsumerProtocol(ConsumerOptions{Topics: topicsOf(map[string]int32{"t": 2})})
	r, err := c.ConsumerHeartbeat(HeartbeatRequest{Group: "g", MemberID: "a", SubscribedTopics: []string{"t"}})
	if err != nil || r.Wait == 0 {
		t.Fatalf("joining heartbeat: wait at %d, %v; want a position to wait for", r.Wait, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := off.WaitDurable(ctx, r.Wait); err == nil {
		t.Fatalf("WaitDurable returned before the log was durable")
	}
	if restored := NewOffsets(); restored.Restore(off.Snapshot()) != nil || len(restored.groupRecordsLocked()) != 0 {
		t.Fatalf("a checkpoint holds group state that is not durable yet")
	}
	log.flush()
	if err := off.WaitDurable(context.Background(), r.Wait); err != nil {
		t.Fatal(err)
	}
	restored := NewOffsets()
	if err := restored.Restore(off.Snapshot()); err != nil {
		t.Fatal(err)
	}
	if recs := restored.groupRecordsLocked(); len(recs) != 1 || len(recs[0].Members) != 1 || recs[0].Members[0].ID != "a" {
		t.Fatalf("durable group state: %+v", recs)
	}
	// A heartbeat that changes nothing writes nothing and waits for nothing.
	r2, err := c.ConsumerHeartbeat(HeartbeatRequest{Group: "g", MemberID: "a", MemberEpoch: r.MemberEpoch, Owned: r.Assignment, OwnedKnown: true})
	if err != nil || r2.Wait != 0 {
		t.Fatalf("quiet heartbeat: wait at %d, %v; want none", r2.Wait, err)
	}
}

// KIP-848 static membership across a restart: a member that left with
// epoch -2 is remembered as gone, so its instance rejoins under a new
// member id at once and takes its shards back.
func TestStaticLeaveSurvivesRestart(t *testing.T) {
	off := NewOffsets()
	topics := topicsOf(map[string]int32{"t": 2})
	c := NewCoordinator(off, Options{})
	c.EnableConsumerProtocol(ConsumerOptions{Topics: topics})
	r, err := c.ConsumerHeartbeat(HeartbeatRequest{Group: "g", MemberID: "a1", InstanceID: "i", SubscribedTopics: []string{"t"}})
	if err != nil || len(r.Assignment) != 2 {
		t.Fatalf("join: %v %v", r.Assignment, err)
	}
	if _, err := c.ConsumerHeartbeat(HeartbeatRequest{Group: "g", MemberID: "a1", InstanceID: "i", MemberEpoch: -2}); err != nil {
		t.Fatal(err)
	}
	// Without a restart, too.
	r1, err := c.ConsumerHeartbeat(HeartbeatRequest{Group: "g", MemberID: "a1b", InstanceID: "i", SubscribedTopics: []string{"t"}})
	if err != nil || !slices.Equal(r1.Assignment, r.Assignment) {
		t.Fatalf("static rejoin: %v %v, want %v", r1.Assignment, err, r.Assignment)
	}
	if _, err := c.ConsumerHeartbeat(HeartbeatRequest{Group: "g", MemberID: "a1b", InstanceID: "i", MemberEpoch: -2}); err != nil {
		t.Fatal(err)
	}
	c.Close()
	c2 := NewCoordinator(off, Options{})
	defer c2.Close()
	c2.EnableConsumerProtocol(ConsumerOptions{Topics: topics})
	r2, err := c2.ConsumerHeartbeat(HeartbeatRequest{Group: "g", MemberID: "a2", InstanceID: "i", SubscribedTopics: []string{"t"}})
	if err != nil || !slices.Equal(r2.Assignment, r.Assignment) {
		t.Fatalf("static rejoin after restart: %v %v, want %v", r2.Assignment, err, r.Assignment)
	}
}
