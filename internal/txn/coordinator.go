// Package txn is the transaction coordinator (KIP-98): it owns each
// transactional id's producer id and epoch, the shards and groups of its
// open transaction, and drives commit and abort by writing markers.
//
// Every state change is one WAL frame holding the id's whole record, so
// replay ends in the last state written. A change is answered only once its
// frame is durable. Ending a transaction appends, in log order:
//
//	PrepareCommit|PrepareAbort  →  a marker per shard, offsets per group  →  CompleteCommit|CompleteAbort
//
// and waits for the last frame. After a crash the log holds a prefix of
// that sequence: a transaction found in a Prepare state is completed at
// start-up (markers already written are not written twice), one found
// Ongoing is aborted by its timeout or by its producer's next
// InitProducerId. So a transaction is never half visible. A durable
// Prepare decides the outcome: when a marker write fails, Tick retries the
// completion.
package txn

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/braidstream/braid/internal/wal"
)

// KindTxn is the WAL frame kind of transaction state changes.
const KindTxn wal.Kind = 4

var (
	ErrInvalidTimeout    = errors.New("txn: transaction timeout out of range")
	ErrProducerFenced    = errors.New("txn: producer fenced by a newer epoch")
	ErrInvalidPIDMapping = errors.New("txn: producer id does not belong to this transactional id")
	ErrInvalidState      = errors.New("txn: request not valid in the transaction's state")
	ErrConcurrent        = errors.New("txn: a transaction end is in progress")
	ErrUnknownPartition  = errors.New("txn: unknown topic or partition")
	ErrNotAttempted      = errors.New("txn: not attempted because of an error elsewhere in the request")
)

// State is a transaction's state, with Kafka's names.
type State int8

const (
	Empty State = iota
	Ongoing
	PrepareCommit
	PrepareAbort
	CompleteCommit
	CompleteAbort
	dead // removed (transactional id expired)
)

var stateNames = [...]string{"Empty", "Ongoing", "PrepareCommit", "PrepareAbort", "CompleteCommit", "CompleteAbort", "Dead"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", s)
}

// Partition names a shard as Kafka does.
type Partition struct {
	Topic     string `json:"t"`
	Partition int32  `json:"p"`
}

// Record is a transactional id's state; it is also the WAL frame body.
type Record struct {
	ID        string      `json:"id"`
	PID       int64       `json:"pid"`
	Epoch     int16       `json:"e"`
	LastPID   int64       `json:"lpid"`
	LastEpoch int16       `json:"le"`
	TimeoutMs int32       `json:"to"`
	State     State       `json:"s"`
	Parts     []Partition `json:"parts,omitempty"`
	Groups    []string    `json:"groups,omitempty"`
	StartMs   int64       `json:"start,omitempty"` // when the open transaction began
	UpdateMs  int64       `json:"upd"`
	// NextPID is set while a transaction whose end used up the epochs of
	// PID is being completed: its markers carry PID at the last epoch,
	// and the producer moves to NextPID at epoch 0 once they are written
	// (KIP-890).
	NextPID *int64 `json:"npid,omitempty"`
}

func (r Record) clone() Record {
	r.Parts = append([]Partition(nil), r.Parts...)
	r.Groups = append([]string(nil), r.Groups...)
	return r
}

func (r *Record) hasPart(p Partition) bool {
	i := sort.Search(len(r.Parts), func(i int) bool { return !lessPart(r.Parts[i], p) })
	return i < len(r.Parts) && r.Parts[i] == p
}

func (r *Record) addPart(p Partition) {
	i := sort.Search(len(r.Parts), func(i int) bool { return !lessPart(r.Parts[i], p) })
	if i < len(r.Parts) && r.Parts[i] == p {
		return
	}
	r.Parts = append(r.Parts, Partition{})
	copy(r.Parts[i+1:], r.Parts[i:])
	r.Parts[i] = p
}

// addGroup adds group to r's sorted groups; false if it was there.
func (r *Record) addGroup(group string) bool {
	i := sort.SearchStrings(r.Groups, group)
	if i < len(r.Groups) && r.Groups[i] == group {
		return false
	}
	r.Groups = append(r.Groups, "")
	copy(r.Groups[i+1:], r.Groups[i:])
	r.Groups[i] = group
	return true
}

func lessPart(a, b Partition) bool {
	return a.Topic < b.Topic || a.Topic == b.Topic && a.Partition < b.Partition
}

// Log is what the coordinator needs from the shared write-ahead log.
type Log interface {
	Append(kind wal.Kind, parts ...[]byte) (start, end wal.Position, err error)
	WaitDurable(ctx context.Context, end wal.Position) error
	Durable() wal.Position
}

// Shards is how the coordinator reaches the data.
type Shards interface {
	// Exists reports whether the shard exists.
	Exists(p Partition) bool
	// WriteMarker closes producer pid's open transaction on the shard. It
	// returns ok false, writing nothing, when the producer has no open
	// transaction there or the shard is gone.
	WriteMarker(p Partition, pid int64, epoch int16, commit bool) (end wal.Position, ok bool, err error)
}

// Offsets is how the coordinator makes a transaction's offset commits
// visible (commit) or drops them (abort).
type Offsets interface {
	EndTxn(group string, pid int64, commit bool) (wal.Position, error)
}

// Options configures a Coordinator.
type Options struct {
	NewProducerID func() (int64, error)
	Shards        Shards
	Offsets       Offsets
	// MaxTimeout bounds the timeout a producer may ask for (Kafka's
	// transaction.max.timeout.ms); default 15 minutes.
	MaxTimeout time.Duration
	// IDExpiration forgets a transactional id idle this long (Kafka's
	// transactional.id.expiration.ms); default 7 days.
	IDExpiration time.Duration
	Logger       *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
}

type entry struct {
	// mu serialises operations on one transactional id, including the
	// wait for their frames; produce checks hold it across their append so
	// that no batch of a transaction lands after its markers.
	mu  sync.Mutex
	rec Record // guarded by mu
}

type pendingRec struct {
	end wal.Position
	rec Record
}

// Coordinator is the node's transaction coordinator.
type Coordinator struct {
	opts Options
	log  Log // nil until attached; replay needs none

	mu      sync.Mutex
	entries map[string]*entry
	// durable is the state as of the durable log position, for
	// checkpoints: a checkpoint must never hold a state whose frame a
	// crash could take back (a Complete state without its markers would
	// leave shards' transactions open forever).
	durable map[string]Record
	pending []pendingRec // appended, maybe not durable; in log order
}

// New returns an empty coordinator.
func New(opts Options) *Coordinator {
	if opts.MaxTimeout <= 0 {
		opts.MaxTimeout = 15 * time.Minute
	}
	if opts.IDExpiration <= 0 {
		opts.IDExpiration = 7 * 24 * time.Hour
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Coordinator{opts: opts, entries: map[string]*entry{}, durable: map[string]Record{}}
}

// Attach sets the log that changes are written to.
func (c *Coordinator) Attach(log Log) { c.log = log }

func (c *Coordinator) now() int64 { return c.opts.Now().UnixMilli() }

// get returns the entry for id, creating an empty one if create.
func (c *Coordinator) get(id string, create bool) *entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[id]
	if e == nil && create {
		e = &entry{rec: Record{ID: id, PID: -1, Epoch: -1, LastPID: -1, LastEpoch: -1, State: dead}}
		c.entries[id] = e
	}
	return e
}

// lock returns id's entry with its mu held, creating an empty one if
// create, or nil. An entry Tick has forgotten (an expired id) is never
// returned: whoever waited for it finds the one now in the map, if any.
func (c *Coordinator) lock(id string, create bool) *entry {
	for {
		e := c.get(id, create)
		if e == nil {
			return nil
		}
		e.mu.Lock()
		c.mu.Lock()
		live := c.entries[id] == e
		c.mu.Unlock()
		if live {
			return e
		}
		e.mu.Unlock()
	}
}

// forget drops e, whose id is dead (e.mu held), from the map.
func (c *Coordinator) forget(e *entry) {
	c.mu.Lock()
	if c.entries[e.rec.ID] == e {
		delete(c.entries, e.rec.ID)
	}
	c.mu.Unlock()
}

// write appends rec as e's new state (e.mu held) and returns the frame end.
func (c *Coordinator) write(e *entry, rec Record) (wal.Position, error) {
	rec.UpdateMs = c.now()
	body, err := json.Marshal(rec)
	if err != nil {
		return 0, fmt.Errorf("txn: encode state: %w", err)
	}
	c.mu.Lock()
	_, end, err := c.log.Append(KindTxn, body)
	if err == nil {
		c.pending = append(c.pending, pendingRec{end: end, rec: rec.clone()})
	}
	c.mu.Unlock()
	if err != nil {
		return 0, err
	}
	e.rec = rec
	return end, nil
}

func (c *Coordinator) writeWait(ctx context.Context, e *entry, rec Record) error {
	end, err := c.write(e, rec)
	if err != nil {
		return err
	}
	return c.log.WaitDurable(ctx, end)
}

// Result is what InitProducerID hands out.
type Result struct {
	PID   int64
	Epoch int16
}

// maxEpoch is the last epoch handed out before a producer gets a new id.
const maxEpoch = 32766

// InitProducerID gives transactional id its producer id and a new epoch,
// fencing older producers with the same id; an open transaction of theirs
// is aborted first. pid/epoch are the caller's current ones (KIP-360) or
// -1. A caller naming an epoch that is neither the current one nor, right
// after a bump, the one it replaced (a retry, answered with the current
// epoch) is a zombie: it is fenced and changes nothing, so it cannot abort
// the live producer's transaction.
func (c *Coordinator) InitProducerID(ctx context.Context, id string, timeoutMs int32, pid int64, epoch int16) (Result, error) {
	if timeoutMs <= 0 || time.Duration(timeoutMs)*time.Millisecond > c.opts.MaxTimeout {
		return Result{}, fmt.Errorf("%w: %d ms, allowed 1 to %d", ErrInvalidTimeout, timeoutMs, c.opts.MaxTimeout.Milliseconds())
	}
	e := c.lock(id, true)
	defer e.mu.Unlock()
	if e.rec.State == dead {
		newPID, err := c.opts.NewProducerID()
		if err != nil {
			return Result{}, err
		}
		rec := Record{ID: id, PID: newPID, Epoch: 0, LastPID: -1, LastEpoch: -1, TimeoutMs: timeoutMs, State: Empty}
		if err := c.writeWait(ctx, e, rec); err != nil {
			return Result{}, err
		}
		return Result{PID: rec.PID, Epoch: rec.Epoch}, nil
	}
	if st := e.rec.State; st == PrepareCommit || st == PrepareAbort {
		// Only after a failed completion; finish it now, or have the
		// caller retry (the tick retries too).
		if err := c.complete(ctx, e); err != nil {
			return Result{}, fmt.Errorf("%w: %s is in %s: %v", ErrConcurrent, id, st, err)
		}
	}
	rec := e.rec.clone()
	if pid >= 0 {
		switch {
		case pid == rec.PID && epoch == rec.Epoch:
			// The current producer asks for a bump.
		case pid == rec.LastPID && epoch == rec.LastEpoch && rec.State == Empty:
			// A retry of the bump that already happened.
			return Result{PID: rec.PID, Epoch: rec.Epoch}, nil
		case pid != rec.PID && pid != rec.LastPID:
			return Result{}, fmt.Errorf("%w: %s has producer %d, not %d", ErrInvalidPIDMapping, id, rec.PID, pid)
		default:
			return Result{}, fmt.Errorf("%w: producer %d epoch %d is not the current %d epoch %d of %s",
				ErrProducerFenced, pid, epoch, rec.PID, rec.Epoch, id)
		}
	}
	if rec.State == Ongoing {
		// Fence the old producer: abort its transaction with a bumped
		// epoch, so its late batches and requests are refused.
		var prepared *preparedError
		if err := c.end(ctx, e, false, true); errors.As(err, &prepared) {
			// The abort is decided; the caller retries once it is done.
			return Result{}, fmt.Errorf("%w: %s is in %s: %v", ErrConcurrent, id, e.rec.State, prepared.err)
		} else if err != nil {
			return Result{}, err
		}
		rec = e.rec.clone()
		rec.TimeoutMs = timeoutMs
		rec.State, rec.Parts, rec.Groups, rec.StartMs = Empty, nil, nil, 0
		forgetLast(&rec, pid)
		if err := c.writeWait(ctx, e, rec); err != nil {
			return Result{}, err
		}
		return Result{PID: rec.PID, Epoch: rec.Epoch}, nil
	}
	if err := c.bump(&rec); err != nil {
		return Result{}, err
	}
	rec.TimeoutMs = timeoutMs
	rec.State, rec.Parts, rec.Groups, rec.StartMs = Empty, nil, nil, 0
	forgetLast(&rec, pid)
	if err := c.writeWait(ctx, e, rec); err != nil {
		return Result{}, err
	}
	return Result{PID: rec.PID, Epoch: rec.Epoch}, nil
}

// forgetLast clears the epoch a bump replaced when the caller did not name
// it (a new producer instance, pid -1): only the producer that asked for
// the bump may retry it, never the one it fenced (as Kafka does, KIP-360).
func forgetLast(rec *Record, pid int64) {
	if pid < 0 {
		rec.LastPID, rec.LastEpoch = -1, -1
	}
}

// bump moves rec, which has no open transaction, to its next epoch, or a
// new producer id once epochs run out.
func (c *Coordinator) bump(rec *Record) error {
	rec.LastPID, rec.LastEpoch = rec.PID, rec.Epoch
	if rec.Epoch >= maxEpoch {
		id, err := c.opts.NewProducerID()
		if err != nil {
			return err
		}
		rec.PID, rec.Epoch = id, 0
		return nil
	}
	rec.Epoch++
	return nil
}

// check validates a request's producer id and epoch against rec.
func check(rec *Record, pid int64, epoch int16) error {
	switch {
	case rec.NextPID != nil && pid == *rec.NextPID && epoch == 0:
		// The producer id the prepared end hands out, before it is
		// completed.
		return fmt.Errorf("%w: %s is in %s", ErrConcurrent, rec.ID, rec.State)
	case rec.State == dead || pid != rec.PID:
		return fmt.Errorf("%w: %s has producer %d, not %d", ErrInvalidPIDMapping, rec.ID, rec.PID, pid)
	case epoch != rec.Epoch:
		return fmt.Errorf("%w: epoch %d, current %d", ErrProducerFenced, epoch, rec.Epoch)
	case rec.State == PrepareCommit || rec.State == PrepareAbort:
		return fmt.Errorf("%w: %s is in %s", ErrConcurrent, rec.ID, rec.State)
	}
	return nil
}

// begin moves rec into Ongoing if it is not.
func (c *Coordinator) begin(rec *Record) {
	if rec.State != Ongoing {
		rec.State, rec.Parts, rec.Groups, rec.StartMs = Ongoing, nil, nil, c.now()
	}
}

// AddPartitions adds shards to id's transaction, starting one if none is
// open. It returns an error per partition (nil for added); if any is
// unknown, none is added.
func (c *Coordinator) AddPartitions(ctx context.Context, id string, pid int64, epoch int16, parts []Partition) (map[Partition]error, error) {
	e := c.lock(id, false)
	if e == nil {
		return nil, fmt.Errorf("%w: unknown transactional id %s", ErrInvalidPIDMapping, id)
	}
	defer e.mu.Unlock()
	rec := e.rec.clone()
	if err := check(&rec, pid, epoch); err != nil {
		return nil, err
	}
	out := make(map[Partition]error, len(parts))
	bad := false
	for _, p := range parts {
		if !c.opts.Shards.Exists(p) {
			out[p] = fmt.Errorf("%w: %s/%d", ErrUnknownPartition, p.Topic, p.Partition)
			bad = true
		}
	}
	if bad {
		for _, p := range parts {
			if out[p] == nil {
				out[p] = ErrNotAttempted
			}
		}
		return out, nil
	}
	changed := rec.State != Ongoing
	c.begin(&rec)
	for _, p := range parts {
		out[p] = nil
		if !rec.hasPart(p) {
			rec.addPart(p)
			changed = true
		}
	}
	if !changed {
		return out, nil
	}
	return out, c.writeWait(ctx, e, rec)
}

// VerifyPartitions reports, per shard, whether it is in id's open
// transaction (KIP-890's verification): nil if it is.
func (c *Coordinator) VerifyPartitions(id string, pid int64, epoch int16, parts []Partition) (map[Partition]error, error) {
	e := c.lock(id, false)
	if e == nil {
		return nil, fmt.Errorf("%w: unknown transactional id %s", ErrInvalidPIDMapping, id)
	}
	defer e.mu.Unlock()
	if err := check(&e.rec, pid, epoch); err != nil {
		return nil, err
	}
	out := make(map[Partition]error, len(parts))
	for _, p := range parts {
		if e.rec.State != Ongoing || !e.rec.hasPart(p) {
			out[p] = fmt.Errorf("%w: %s/%d is not in the transaction", ErrInvalidState, p.Topic, p.Partition)
		} else {
			out[p] = nil
		}
	}
	return out, nil
}

// AddGroup adds a consumer group's offsets to id's transaction.
func (c *Coordinator) AddGroup(ctx context.Context, id string, pid int64, epoch int16, group string) error {
	e := c.lock(id, false)
	if e == nil {
		return fmt.Errorf("%w: unknown transactional id %s", ErrInvalidPIDMapping, id)
	}
	defer e.mu.Unlock()
	rec := e.rec.clone()
	if err := check(&rec, pid, epoch); err != nil {
		return err
	}
	c.begin(&rec)
	if !rec.addGroup(group) {
		return nil // already in the open transaction
	}
	return c.writeWait(ctx, e, rec)
}

// CommitOffsets runs commit, which stores a transactional offset commit,
// if the producer is current and the group is in its open transaction; no
// transaction end interleaves, so the offsets always belong to the
// transaction that ends next. With implicit (KIP-890 part 2, TxnOffsetCommit
// v5+) a group not yet in the transaction is added, starting one if need
// be.
func (c *Coordinator) CommitOffsets(id string, pid int64, epoch int16, group string, implicit bool, commit func() error) error {
	e := c.lock(id, false)
	if e == nil {
		return fmt.Errorf("%w: unknown transactional id %s", ErrInvalidPIDMapping, id)
	}
	defer e.mu.Unlock()
	if err := check(&e.rec, pid, epoch); err != nil {
		return err
	}
	if e.rec.State == Ongoing {
		for _, g := range e.rec.Groups {
			if g == group {
				return commit()
			}
		}
	}
	if !implicit {
		return fmt.Errorf("%w: group %s was not added to the transaction of %s", ErrInvalidState, group, id)
	}
	// The added group is recorded before the commit is stored; the end of
	// the transaction comes after both in the log.
	rec := e.rec.clone()
	c.begin(&rec)
	rec.addGroup(group)
	if _, err := c.write(e, rec); err != nil {
		return err
	}
	return commit()
}

// Produce runs fn, which appends a transactional producer's batches, while
// no transaction end can interleave: the producer must be current and each
// shard (checked by fn through the given func) in its open transaction.
// With implicit (KIP-890 part 2, Produce v12+) a shard not yet in the
// transaction is added, starting one if need be; the record of that is
// appended to the log before the batch, so it is durable when the batch is.
// fn passes add for a shard the server routed records to (not one the
// producer addressed): it is added as under implicit, but only to a
// transaction the producer already has open (it addressed a shard in it).
func (c *Coordinator) Produce(id string, implicit bool, fn func(inTxn func(p Partition, pid int64, epoch int16, add bool) error)) {
	e := c.lock(id, false)
	if e == nil {
		fn(func(Partition, int64, int16, bool) error {
			return fmt.Errorf("%w: unknown transactional id %s", ErrInvalidPIDMapping, id)
		})
		return
	}
	defer e.mu.Unlock()
	fn(func(p Partition, pid int64, epoch int16, add bool) error {
		if err := check(&e.rec, pid, epoch); err != nil {
			return err
		}
		if e.rec.State == Ongoing && e.rec.hasPart(p) {
			return nil
		}
		if !implicit && !add {
			return fmt.Errorf("%w: %s/%d was not added to the transaction of %s", ErrInvalidState, p.Topic, p.Partition, id)
		}
		rec := e.rec.clone()
		c.begin(&rec)
		rec.addPart(p)
		_, err := c.write(e, rec)
		return err
	})
}

// EndTxn commits or aborts id's open transaction and returns the producer
// id and epoch to use next. Retrying a finished end succeeds.
//
// With bump (KIP-890 part 2, EndTxn v5+) every end moves the producer to a
// new epoch, written into the markers, so a late batch of the ended
// transaction is fenced; an abort with nothing open bumps too, and a retry
// from the epoch just replaced is answered with the current one (also after
// a timeout aborted the transaction, for an abort).
func (c *Coordinator) EndTxn(ctx context.Context, id string, pid int64, epoch int16, commit, bump bool) (Result, error) {
	e := c.lock(id, false)
	if e == nil {
		return Result{}, fmt.Errorf("%w: unknown transactional id %s", ErrInvalidPIDMapping, id)
	}
	defer e.mu.Unlock()
	rec := &e.rec
	current := func() (Result, error) { return Result{PID: rec.PID, Epoch: rec.Epoch}, nil }
	// Kafka's answers under transaction.version 2, by state and whether
	// the request comes from the replaced epoch (a retry): a retried
	// commit after a timeout abort is fenced (it did not take effect), a
	// retried abort of a commit is refused.
	fromLast := pid == rec.LastPID && epoch == rec.LastEpoch
	if bump && fromLast {
		switch {
		case rec.State == CompleteCommit && commit, rec.State == CompleteAbort && !commit:
			return current()
		case rec.State == CompleteCommit && !commit:
			return Result{}, fmt.Errorf("%w: cannot abort, the transaction of %s committed", ErrInvalidState, id)
		case rec.State == PrepareCommit || rec.State == PrepareAbort:
			// Its end is still being completed (a marker write failed).
			return Result{}, fmt.Errorf("%w: %s is in %s", ErrConcurrent, id, rec.State)
		}
	}
	if err := check(rec, pid, epoch); err != nil {
		if bump && fromLast {
			// From the epoch an end replaced, also when that end moved
			// the producer to a new id.
			return Result{}, fmt.Errorf("%w: epoch %d of producer %d was replaced by epoch %d of %d",
				ErrProducerFenced, epoch, pid, rec.Epoch, rec.PID)
		}
		return Result{}, err
	}
	switch st := rec.State; {
	case st == Ongoing, bump && !commit:
		var prepared *preparedError
		if err := c.end(ctx, e, commit, bump); errors.As(err, &prepared) {
			// Decided: answering an error would have the producer redo
			// work whose commit is going to be visible. Its next
			// requests get CONCURRENT_TRANSACTIONS until the tick
			// completes it, as from Kafka, which answers EndTxn once
			// Prepare is written.
			c.opts.Logger.Warn("txn: transaction prepared but not completed; the coordinator retries it",
				"transactional_id", id, "state", rec.State, "err", prepared.err)
			if rec.NextPID != nil {
				return Result{PID: *rec.NextPID, Epoch: 0}, nil
			}
			return current()
		} else if err != nil {
			return Result{}, err
		}
		return current()
	case bump && commit:
		return Result{}, fmt.Errorf("%w: no transaction of %s to commit", ErrInvalidState, id)
	case st == CompleteCommit && commit, st == CompleteAbort && !commit, st == Empty && !commit:
		return current() // a retry, or aborting nothing
	default:
		return Result{}, fmt.Errorf("%w: cannot %s a transaction in %s", ErrInvalidState, map[bool]string{true: "commit", false: "abort"}[commit], st)
	}
}

// end writes Prepare, the markers and offsets, and Complete, then waits for
// them (e.mu held). fence bumps the epoch first (timeouts, fencing, every
// end under transaction.version 2). The markers must close the transaction
// the shards hold, which is under the current producer id: when the bump
// uses up its epochs, they carry that id at the last epoch (one past
// maxEpoch, never handed out) and the producer moves to a new id only once
// they are written (KIP-890).
func (c *Coordinator) end(ctx context.Context, e *entry, commit, fence bool) error {
	rec := e.rec.clone()
	if fence {
		if rec.Epoch >= maxEpoch {
			id, err := c.opts.NewProducerID()
			if err != nil {
				return err
			}
			rec.NextPID = &id
		}
		rec.LastPID, rec.LastEpoch = rec.PID, rec.Epoch
		rec.Epoch++
	}
	rec.State = PrepareAbort
	if commit {
		rec.State = PrepareCommit
	}
	prepare, err := c.write(e, rec)
	if err != nil {
		return err
	}
	if err := c.complete(ctx, e); err != nil {
		if c.log.WaitDurable(ctx, prepare) == nil {
			return &preparedError{err}
		}
		return err
	}
	return nil
}

// preparedError is an end whose completion failed after its Prepare record
// became durable: the outcome is decided, and the tick or start-up
// completes it.
type preparedError struct{ err error }

func (e *preparedError) Error() string { return "txn: prepared, not completed: " + e.err.Error() }
func (e *preparedError) Unwrap() error { return e.err }

// complete finishes a transaction in a Prepare state (e.mu held).
func (c *Coordinator) complete(ctx context.Context, e *entry) error {
	rec := e.rec.clone()
	commit := rec.State == PrepareCommit
	for _, p := range rec.Parts {
		if _, _, err := c.opts.Shards.WriteMarker(p, rec.PID, rec.Epoch, commit); err != nil {
			return fmt.Errorf("txn: write marker to %s/%d: %w", p.Topic, p.Partition, err)
		}
	}
	for _, g := range rec.Groups {
		if _, err := c.opts.Offsets.EndTxn(g, rec.PID, commit); err != nil {
			return fmt.Errorf("txn: end offsets of group %s: %w", g, err)
		}
	}
	rec.State = CompleteAbort
	if commit {
		rec.State = CompleteCommit
	}
	rec.Parts, rec.Groups, rec.StartMs = nil, nil, 0
	if rec.NextPID != nil {
		rec.PID, rec.Epoch, rec.NextPID = *rec.NextPID, 0, nil
	}
	return c.writeWait(ctx, e, rec)
}

// Recover completes every transaction a crash left in a Prepare state; run
// once after replay, before serving.
func (c *Coordinator) Recover(ctx context.Context) error {
	for _, e := range c.all() {
		e.mu.Lock()
		var err error
		if st := e.rec.State; st == PrepareCommit || st == PrepareAbort {
			c.opts.Logger.Info("txn: completing transaction found prepared at start-up", "transactional_id", e.rec.ID, "state", st)
			err = c.complete(ctx, e)
		}
		e.mu.Unlock()
		if err != nil {
			return err
		}
	}
	return nil
}

func (c *Coordinator) all() []*entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*entry, 0, len(c.entries))
	for _, e := range c.entries {
		out = append(out, e)
	}
	return out
}

// Tick aborts transactions open longer than their timeout (bumping the
// epoch, so the producer is fenced as Kafka does), completes transactions
// left in a Prepare state by a failed marker or offset write, and forgets
// transactional ids idle longer than the expiration. It returns how many
// transactions it aborted.
func (c *Coordinator) Tick(ctx context.Context) (aborted int) {
	now := c.now()
	for _, e := range c.all() {
		if !e.mu.TryLock() {
			continue // busy: not hung
		}
		rec := e.rec
		switch {
		case rec.State == Ongoing && now-rec.StartMs > int64(rec.TimeoutMs):
			c.opts.Logger.Info("txn: aborting transaction past its timeout", "transactional_id", rec.ID,
				"producer_id", rec.PID, "epoch", rec.Epoch, "timeout_ms", rec.TimeoutMs)
			if err := c.end(ctx, e, false, true); err != nil {
				c.opts.Logger.Error("txn: abort timed-out transaction", "transactional_id", rec.ID, "err", err)
			} else {
				aborted++
			}
		case rec.State == PrepareCommit || rec.State == PrepareAbort:
			// Until its markers are written the transaction holds the
			// last stable offset of its shards back: retry every tick.
			if err := c.complete(ctx, e); err != nil {
				c.opts.Logger.Warn("txn: completing prepared transaction failed, will retry", "transactional_id", rec.ID,
					"state", rec.State, "err", err)
			} else {
				c.opts.Logger.Info("txn: completed prepared transaction", "transactional_id", rec.ID, "state", rec.State)
			}
		case rec.State == dead:
			c.forget(e) // created by an InitProducerId that failed
		case (rec.State == Empty || rec.State == CompleteCommit || rec.State == CompleteAbort) &&
			now-rec.UpdateMs > c.opts.IDExpiration.Milliseconds():
			gone := rec.clone()
			gone.State = dead
			if err := c.writeWait(ctx, e, gone); err != nil {
				c.opts.Logger.Error("txn: expire transactional id", "transactional_id", rec.ID, "err", err)
			} else {
				c.forget(e)
			}
		}
		e.mu.Unlock()
	}
	return aborted
}

// Describe returns the records of the given ids (missing ones absent).
func (c *Coordinator) Describe(ids []string) map[string]Record {
	out := make(map[string]Record, len(ids))
	for _, id := range ids {
		if e := c.get(id, false); e != nil {
			e.mu.Lock()
			if e.rec.State != dead {
				out[id] = e.rec.clone()
			}
			e.mu.Unlock()
		}
	}
	return out
}

// List returns every transactional id's record, sorted by id.
func (c *Coordinator) List() []Record {
	var out []Record
	for _, e := range c.all() {
		e.mu.Lock()
		if e.rec.State != dead {
			out = append(out, e.rec.clone())
		}
		e.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Replay applies a frame found during recovery (durable by definition).
func (c *Coordinator) Replay(body []byte) error {
	var rec Record
	if err := json.Unmarshal(body, &rec); err != nil {
		return fmt.Errorf("txn: decode state frame: %w", err)
	}
	if rec.State < Empty || rec.State > dead {
		return fmt.Errorf("txn: decode state frame: state %d of %q out of range", rec.State, rec.ID)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.applyLocked(rec)
	return nil
}

func (c *Coordinator) applyLocked(rec Record) {
	if rec.State == dead {
		delete(c.entries, rec.ID)
		delete(c.durable, rec.ID)
		return
	}
	e := c.entries[rec.ID]
	if e == nil {
		e = &entry{}
		c.entries[rec.ID] = e
	}
	e.rec = rec
	c.durable[rec.ID] = rec
}

// Snapshot encodes the durable state, for the engine's checkpoint.
func (c *Coordinator) Snapshot() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.log != nil {
		durable := c.log.Durable()
		i := 0
		for ; i < len(c.pending) && c.pending[i].end <= durable; i++ {
			r := c.pending[i].rec
			if r.State == dead {
				delete(c.durable, r.ID)
			} else {
				c.durable[r.ID] = r
			}
		}
		c.pending = c.pending[i:]
	}
	all := make([]Record, 0, len(c.durable))
	for _, r := range c.durable {
		all = append(all, r)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].ID < all[j].ID })
	b, _ := json.Marshal(all)
	return b
}

// Restore loads a Snapshot into an empty coordinator.
func (c *Coordinator) Restore(b []byte) error {
	var all []Record
	if err := json.Unmarshal(b, &all); err != nil {
		return fmt.Errorf("txn: decode snapshot: %w", err)
	}
	for _, r := range all {
		if r.State < Empty || r.State >= dead {
			return fmt.Errorf("txn: decode snapshot: state %d of %q out of range", r.State, r.ID)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range all {
		c.applyLocked(r)
	}
	return nil
}
