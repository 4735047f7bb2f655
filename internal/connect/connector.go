package connect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Record is one record as a sink receives it or a source hands it over.
type Record struct {
	// Stream is the record's stream. A source may leave it empty: the
	// record goes to the definition's stream.
	Stream string
	Shard  int32
	// Offset is the record's offset in its shard; sinks get it, sources
	// leave it zero (Braid assigns it).
	Offset    int64
	Timestamp time.Time
	Key       []byte
	Value     []byte
	Headers   []Header
}

// Header is one record header.
type Header struct {
	Key   string
	Value []byte
}

// ShardKey names one shard of one stream.
type ShardKey struct {
	Stream string
	Shard  int32
}

func (k ShardKey) String() string { return fmt.Sprintf("%s/%d", k.Stream, k.Shard) }

// Sink moves records out of Braid into a target. The runtime owns a sink:
// it calls one method at a time, never concurrently.
//
// Progress: the runtime commits, as the group's offsets, what Durable
// reports, so a sink may buffer (an object-store sink rolls an object by
// size) without losing records on a crash: what was not durable is read
// again. An exactly-once sink keeps its own progress in the target,
// atomically with the data (a database transaction, deterministic object
// names), and reports it from Open; the runtime starts there.
//
// Errors: Put returns a *BadRecordError for a record the target refuses
// for good (the runtime then applies the connector's error policy and
// goes on with the records after it). Any other error is taken as a fault
// of the target: the runtime closes the sink, waits with backoff, opens a
// new one and reads again from the last durable position.
type Sink interface {
	// Open connects to the target for the given shards. An exactly-once
	// sink returns the next offset to deliver for each shard it has
	// progress for; the runtime starts the other shards at the group's
	// committed offsets (or at the stream's start).
	Open(ctx context.Context, shards []ShardKey) (map[ShardKey]int64, error)
	// Put hands over records, in offset order within each shard. The
	// runtime also calls it with no records at least once a second, so a
	// sink can roll by time.
	Put(ctx context.Context, recs []Record) error
	// Flush makes everything put so far durable in the target; the
	// runtime calls it before it gives shards up and before it stops.
	Flush(ctx context.Context) error
	// Durable reports, for each shard, the offset after the last record
	// that is durable in the target.
	Durable() map[ShardKey]int64
	// Close releases the target. Records not yet durable are dropped;
	// they will be read again.
	Close() error
}

// Source brings records from an outside system into one Braid stream.
//
// Position is opaque to the runtime: the source says where it is after a
// batch, the runtime stores that position in Braid together with the
// batch (in one transaction for exactly-once, right after it for
// at-least-once) and hands it back to Open after a restart.
type Source interface {
	// Open starts reading after pos, the last position stored; nil on a
	// first start.
	Open(ctx context.Context, pos []byte) error
	// Poll waits for records, up to about a second, and returns them with
	// the position after them. No records and a nil error is fine.
	Poll(ctx context.Context) (recs []Record, pos []byte, err error)
	// Committed says that the records and the position up to pos are
	// durable in Braid: a replication source confirms its slot, an
	// ingest endpoint acknowledges its callers.
	Committed(ctx context.Context, pos []byte) error
	// Close releases the outside system.
	Close() error
}

// BadRecordError is a sink's refusal of one record for good: a value that
// is not valid JSON, a row the table's schema rejects.
type BadRecordError struct {
	// Index is the refused record's index in the slice given to Put; the
	// records before it were taken.
	Index int
	Err   error
}

func (e *BadRecordError) Error() string {
	return fmt.Sprintf("record %d refused: %v", e.Index, e.Err)
}

func (e *BadRecordError) Unwrap() error { return e.Err }

// Delivery is a connector's delivery guarantee.
type Delivery string

const (
	AtLeastOnce Delivery = "at-least-once"
	ExactlyOnce Delivery = "exactly-once"
)

// Type describes one kind of connector (s3-sink, postgres-sink, ...).
// Exactly one of NewSink and NewSource is set.
type Type struct {
	Name string
	// ExactlyOnce says the connector can deliver exactly once; a
	// definition asking for it on a type that cannot is refused.
	ExactlyOnce bool
	// Doc is one line for `braid connector types`.
	Doc string
	// NewSink and NewSource build a connector from its "config" object
	// (JSON, after YAML was converted). They check the config and return
	// a clear error for a bad one; they do not reach the target yet.
	NewSink   func(env Env, config json.RawMessage) (Sink, error)
	NewSource func(env Env, config json.RawMessage) (Source, error)
}

// Env is what a connector is given besides its own config.
type Env struct {
	// Name is the connector's name.
	Name string
	// Delivery is the guarantee the definition asks for.
	Delivery Delivery
	// DataDir is a directory of the connector's own on the node (for a
	// file source's spool, say); it survives restarts and is removed
	// with the connector.
	DataDir string
	Logger  *slog.Logger
}

// ErrUnknownType is returned for a definition whose type no connector has.
var ErrUnknownType = errors.New("connect: unknown connector type")
