package kinesis

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/braidstream/braid/internal/engine"
)

// PutRecords writes 1-500 records (at most 5 MiB of data and partition
// keys) and answers once they are fsync'd. All the records a call writes
// go to the log as one frame, in request order within each shard, so a
// crash keeps all of them or none.
//
// An invalid record (too big, a bad key or hash key) fails the whole call
// with AWS's ValidationException or InvalidArgumentException naming the
// member, before anything is written, as AWS's request validation does.
// A valid call is then always all-or-nothing: atomic mode (stream config
// braid.put.records.atomic=true, or the header X-Braid-Atomic: true) is
// what Braid does for every call, and a write that fails fails every
// record (FailedRecordCount equals the record count).
func init() { register("PutRecords", putRecords) }

const (
	maxPutRecords    = 500
	maxPutRecordsLen = 5 << 20
	// AtomicHeader asks for an atomic PutRecords call.
	AtomicHeader = "X-Braid-Atomic"
)

type putRecordsRequestEntry struct {
	Data            []byte  `json:"Data"`
	PartitionKey    string  `json:"PartitionKey"`
	ExplicitHashKey *string `json:"ExplicitHashKey"`
}

type putRecordsInput struct {
	streamRef
	Records []putRecordsRequestEntry `json:"Records"`
}

type putRecordsResultEntry struct {
	ShardId        string `json:"ShardId,omitempty"`
	SequenceNumber string `json:"SequenceNumber,omitempty"`
	ErrorCode      string `json:"ErrorCode,omitempty"`
	ErrorMessage   string `json:"ErrorMessage,omitempty"`
}

type putRecordsOutput struct {
	FailedRecordCount int                     `json:"FailedRecordCount"`
	Records           []putRecordsResultEntry `json:"Records"`
	EncryptionType    string                  `json:"EncryptionType"`
}

func putRecords(ctx context.Context, s *Server, body []byte) (any, error) {
	var in putRecordsInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	st, err := s.stream(in.streamRef)
	if err != nil {
		return nil, err
	}
	switch n := len(in.Records); {
	case n < 1:
		return nil, errorf(errValidation, "1 validation error detected: Value '[]' at 'records' failed to satisfy constraint: Member must have length greater than or equal to 1")
	case n > maxPutRecords:
		return nil, errorf(errValidation, "1 validation error detected: Value at 'records' failed to satisfy constraint: Member must have length less than or equal to %d", maxPutRecords)
	}
	total := 0
	for _, r := range in.Records {
		total += len(r.Data) + len(r.PartitionKey)
	}
	if total > maxPutRecordsLen {
		return nil, errorf(errInvalidArgument, "Records size exceeds 5 MB limit: %d bytes of data and partition keys", total)
	}
	// Every call is written as one log frame, so every call is
	// all-or-nothing and in request order whether or not atomic mode is
	// asked for (braid.put.records.atomic or the X-Braid-Atomic header):
	// the config and the header are accepted, and a bad header value is
	// refused, so that a client relying on them gets what it asked for.
	if h := requestHeader(ctx, AtomicHeader); h != "" && !strings.EqualFold(h, "true") && !strings.EqualFold(h, "false") {
		return nil, errorf(errInvalidArgument, "header %s is %q; use true or false", AtomicHeader, h)
	}

	out := putRecordsOutput{Records: make([]putRecordsResultEntry, len(in.Records)), EncryptionType: "NONE"}
	fail := func(i int, err error) {
		typ, status, msg := mapError(err)
		if status >= 500 {
			// The only server-side per-record code Kinesis clients know.
			typ, msg = errInternalFailure, "Internal Service Failure: "+msg
		}
		out.Records[i] = putRecordsResultEntry{ErrorCode: typ, ErrorMessage: msg}
		out.FailedRecordCount++
	}
	// An invalid record fails the whole call before anything is written,
	// as AWS's request validation does (ValidationException naming the
	// member); per-record errors are for records a valid call could not
	// store.
	var entries []putEntry
	var index []int // entries[j] is record index[j]
	for i, r := range in.Records {
		e, err := checkRecord(fmt.Sprintf("records.%d.member.", i+1), r.Data, r.PartitionKey, r.ExplicitHashKey)
		if err != nil {
			return nil, err
		}
		entries = append(entries, e)
		index = append(index, i)
	}
	if len(entries) == 0 {
		return out, nil
	}
	w, err := s.writeRecords(ctx, st.Name, entries)
	if err != nil {
		// Nothing of the frame was written: every record it held failed.
		typ, _, _ := mapError(err)
		if typ == errResourceNotFound {
			return nil, err
		}
		if errors.Is(err, engine.ErrUnconfirmed) {
			// Appended but not known durable: the records may yet be
			// stored (all of them), so they must not be reported as
			// failed; the whole call fails like a timeout would.
			return nil, err
		}
		if typ == errThroughput {
			// Throttled (braid.kinesis.throttle): the whole call was
			// refused before anything was written, so every record
			// failed with the only per-record code AWS has for it.
			_, _, msg := mapError(err)
			for _, i := range index {
				out.Records[i] = putRecordsResultEntry{ErrorCode: errThroughput, ErrorMessage: throttledCall(msg)}
			}
			out.FailedRecordCount = len(index)
			return out, nil
		}
		for _, i := range index {
			fail(i, err)
		}
		return out, nil
	}
	for j, i := range index {
		out.Records[i] = putRecordsResultEntry{ShardId: ShardName(w[j].shard), SequenceNumber: SequenceNumber(w[j].shard, w[j].offset)}
	}
	return out, nil
}
