package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Errors a producer returns. Each is matched with errors.Is; errors about one
// record come wrapped in a *ProduceError that names the stream and unwraps to
// both the sentinel below and the underlying cause (for example a
// *kerr.Error), so errors.Is(err, kerr.MessageTooLarge) holds as well.
var (
	// ErrClosed: the Producer (or Consumer, Reader, Transformer) was
	// closed; nothing was sent or read.
	ErrClosed = errors.New("client: closed")
	// ErrNilRecord: Produce or ProduceAsync was given a nil *Record;
	// nothing was sent.
	ErrNilRecord = errors.New("client: nil record")
	// ErrNoStream: the record's Stream is empty; nothing was sent.
	ErrNoStream = errors.New("client: record has no stream")
	// ErrRecordTooLarge: the record is larger than the stream's
	// max.message.bytes (the server refused it) or than the producer's
	// batch max bytes (refused before sending). Nothing was written.
	// Wraps kerr.MessageTooLarge or kerr.RecordListTooLarge.
	ErrRecordTooLarge = errors.New("client: record too large")
	// ErrUnknownStream: the stream does not exist (Braid does not create
	// streams on produce unless the server runs with auto-creation on).
	// Wraps kerr.UnknownTopicOrPartition.
	ErrUnknownStream = errors.New("client: unknown stream")
	// ErrDeliveryTimeout: the record was not acknowledged within the
	// delivery timeout (WithDeliveryTimeout), retries included. It is
	// always reported, never dropped. If the record was in flight when
	// time ran out it may still have been written: producing it again
	// may write it twice. Wraps kgo.ErrRecordTimeout.
	ErrDeliveryTimeout = errors.New("client: delivery timeout")
)

// ProduceError is the error for one record that could not be produced. Err
// unwraps to a sentinel above (when one applies) and to the cause. A
// cancelled or expired context gives an Err that matches context.Canceled
// or context.DeadlineExceeded.
type ProduceError struct {
	Stream string
	Err    error
}

func (e *ProduceError) Error() string {
	return fmt.Sprintf("client: produce to stream %q: %v", e.Stream, e.Err)
}

func (e *ProduceError) Unwrap() error { return e.Err }

// produceErr classifies the error kgo reported for a record on stream,
// produced with ctx.
func produceErr(ctx context.Context, stream string, err error) error {
	if err == nil {
		return nil
	}
	var sentinel error
	switch {
	case errors.Is(err, kgo.ErrClientClosed):
		sentinel = ErrClosed
	case errors.Is(err, kgo.ErrRecordTimeout):
		sentinel = ErrDeliveryTimeout
	case errors.Is(err, kerr.MessageTooLarge), errors.Is(err, kerr.RecordListTooLarge):
		sentinel = ErrRecordTooLarge
	case errors.Is(err, kerr.UnknownTopicOrPartition):
		sentinel = ErrUnknownStream
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &ProduceError{Stream: stream, Err: err}
	case ctx.Err() != nil:
		// kgo fails a record whose context is done with the error of
		// its last attempt, which may say nothing about the context.
		err = fmt.Errorf("%w: %w", ctx.Err(), err)
		return &ProduceError{Stream: stream, Err: err}
	case retriable(err):
		// kgo retries these until the delivery timeout (or a retry
		// limit set through WithKgoOptions) runs out, and then fails
		// the records with the last attempt's error rather than
		// kgo.ErrRecordTimeout: reaching the caller, it means time ran
		// out.
		sentinel = ErrDeliveryTimeout
	}
	if sentinel != nil {
		err = fmt.Errorf("%w: %w", sentinel, err)
	}
	return &ProduceError{Stream: stream, Err: err}
}

// retriable reports whether kgo would retry err: a retriable Kafka error or
// a network failure.
func retriable(err error) bool {
	var netErr net.Error
	var sysErr *os.SyscallError
	return kerr.IsRetriable(err) || errors.As(err, &netErr) || errors.As(err, &sysErr) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// Errors of ProduceBatch. A failed batch comes as a *BatchError that
// unwraps to ErrBatchAborted or ErrBatchUnknown and to the cause (for
// example ErrRecordTooLarge, or ctx's error).
var (
	// ErrEmptyBatch: ProduceBatch was given no records.
	ErrEmptyBatch = errors.New("client: empty batch")
	// ErrBatchTooLarge: the batch holds more records than
	// WithMaxBufferedRecords or more bytes than WithMaxBufferedBytes;
	// nothing was sent.
	ErrBatchTooLarge = errors.New("client: batch too large")
	// ErrBatchAborted: the batch failed and its transaction was aborted
	// (or will be, when the server times it out or the producer's next
	// batch fences it): read_committed readers never see any of it.
	ErrBatchAborted = errors.New("client: batch aborted")
	// ErrBatchUnknown: the commit was sent but its answer was lost: the
	// batch is either wholly present or wholly absent, and which is not
	// known.
	ErrBatchUnknown = errors.New("client: batch outcome unknown")
)

// BatchError is the error of a ProduceBatch that wrote nothing (or, with
// ErrBatchUnknown, may have written everything). Index is the record the
// error is about, or -1 when it is about the whole batch.
type BatchError struct {
	Index int
	Err   error
}

func (e *BatchError) Error() string {
	if e.Index < 0 {
		return fmt.Sprintf("client: produce batch: %v", e.Err)
	}
	return fmt.Sprintf("client: produce batch: record %d: %v", e.Index, e.Err)
}

func (e *BatchError) Unwrap() error { return e.Err }

// Errors of the reading side: Consumer, Reader and Transformer. After
// Close they return ErrClosed, like a closed Producer.
var (
	// ErrRunning: Run was called while another Run of the same
	// Consumer or Transformer was active; nothing was read.
	ErrRunning = errors.New("client: already running")
	// ErrNoAdminAddr: NewReader was not given WithReaderAdminAddr, which it
	// needs to learn the stream's lineage.
	ErrNoAdminAddr = errors.New("client: reader needs an admin address (WithReaderAdminAddr)")
)

// HandlerError is what Run returns when the handler returned an error
// (Err). The batch it failed on was not committed and is handed out again.
type HandlerError struct{ Err error }

func (e *HandlerError) Error() string { return "client: handler: " + e.Err.Error() }

func (e *HandlerError) Unwrap() error { return e.Err }

// ConsumeError is an error reading a stream's shard that retrying will not
// fix (for example a group authorization failure). Err unwraps to the
// cause, often a franz-go *kerr.Error.
type ConsumeError struct {
	Stream string
	Shard  int32
	Err    error
}

func (e *ConsumeError) Error() string {
	return fmt.Sprintf("client: consume stream %q shard %d: %v", e.Stream, e.Shard, e.Err)
}

func (e *ConsumeError) Unwrap() error { return e.Err }
