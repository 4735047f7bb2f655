package kinesis

import (
	"context"
	"math"
	"time"

	"github.com/braidstream/braid/internal/catalog"
	"github.com/braidstream/braid/internal/engine"
	"github.com/braidstream/braid/internal/shard"
)

// GetShardIterator returns a signed iterator (iterator.go) at a position
// of one shard, valid for 5 minutes: TRIM_HORIZON (the log start), LATEST
// (the last stable offset: the next record readers will see), AT_/AFTER_SEQUENCE_NUMBER
// (a sequence number of that shard), AT_TIMESTAMP (the first record whose
// timestamp, the arrival time for records written through this door, is
// at or after Timestamp; LATEST if none).
func init() { register("GetShardIterator", getShardIterator) }

type getShardIteratorInput struct {
	streamRef
	ShardId                string   `json:"ShardId"`
	ShardIteratorType      string   `json:"ShardIteratorType"`
	StartingSequenceNumber *string  `json:"StartingSequenceNumber"`
	Timestamp              *float64 `json:"Timestamp"`
}

type getShardIteratorOutput struct {
	ShardIterator string `json:"ShardIterator"`
}

func getShardIterator(_ context.Context, s *Server, body []byte) (any, error) {
	var in getShardIteratorInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	switch in.ShardIteratorType {
	case "TRIM_HORIZON", "LATEST", "AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER", "AT_TIMESTAMP":
	default:
		return nil, errorf(errValidation, "1 validation error detected: Value '%s' at 'shardIteratorType' failed to satisfy constraint: Member must satisfy enum value set: [AFTER_SEQUENCE_NUMBER, AT_SEQUENCE_NUMBER, TRIM_HORIZON, LATEST, AT_TIMESTAMP]", in.ShardIteratorType)
	}
	st, err := s.stream(in.streamRef)
	if err != nil {
		return nil, err
	}
	id, sh, err := s.shardOf(st, in.ShardId)
	if err != nil {
		return nil, err
	}
	off, err := s.startOffset("GetShardIterator", st, id, sh, in.ShardIteratorType, in.StartingSequenceNumber, in.Timestamp)
	if err != nil {
		return nil, err
	}
	it := s.encodeIterator(iterator{stream: st.ID, shard: id, offset: off, issued: time.Now()})
	return getShardIteratorOutput{ShardIterator: it}, nil
}

// startOffset is where a reader starts in shard id (sh) of st for a
// position type (GetShardIterator's ShardIteratorType, SubscribeToShard's
// StartingPosition), with its sequence number or timestamp; op names the
// operation in errors.
func (s *Server) startOffset(op string, st *engine.Stream, id catalog.ShardID, sh *shard.Shard, typ string, seq *string, ts *float64) (shard.Offset, error) {
	logStart, hw, _ := sh.Offsets()
	switch typ {
	case "TRIM_HORIZON":
		return logStart, nil
	case "LATEST":
		// The last stable offset, as Kafka's read_committed "latest":
		// records of a transaction still open, at or past it, are not
		// readable yet and must not be skipped if it commits.
		return sh.LastStableOffset(), nil
	case "AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER":
		if seq == nil {
			return 0, errorf(errInvalidArgument, "StartingSequenceNumber must be given for %s", typ)
		}
		seqShard, off, err := ParseSequenceNumber(*seq)
		if err != nil {
			return 0, err
		}
		if seqShard != id {
			return 0, errorf(errInvalidArgument, "Invalid StartingSequenceNumber. It encodes %s, while it was used in a call to a shard with %s", ShardName(seqShard), ShardName(id))
		}
		if off >= hw {
			return 0, errorf(errInvalidArgument, "StartingSequenceNumber %s used in %s on shard %s in stream %s under account %s is invalid because it did not come from this stream.", *seq, op, ShardName(id), st.Name, s.opts.Account)
		}
		if typ == "AFTER_SEQUENCE_NUMBER" {
			off++
		}
		return max(off, logStart), nil // trimmed: read from the trim horizon
	case "AT_TIMESTAMP":
		if ts == nil {
			return 0, errorf(errInvalidArgument, "Timestamp must be given for AT_TIMESTAMP")
		}
		o, _, found, err := sh.OffsetForTime(int64(math.Floor(*ts * 1000)))
		if err != nil {
			return 0, err
		}
		if !found {
			return sh.LastStableOffset(), nil
		}
		return max(o, logStart), nil
	}
	return 0, errorf(errValidation, "1 validation error detected: Value '%s' at 'shardIteratorType' failed to satisfy constraint: Member must satisfy enum value set: [AFTER_SEQUENCE_NUMBER, AT_SEQUENCE_NUMBER, TRIM_HORIZON, LATEST, AT_TIMESTAMP]", typ)
}

// shardOf returns the shard a request names.
func (s *Server) shardOf(st *engine.Stream, name string) (catalog.ShardID, *shard.Shard, error) {
	if name == "" {
		return 0, nil, errorf(errValidation, "1 validation error detected: Value null at 'shardId' failed to satisfy constraint: Member must not be null")
	}
	id, err := ParseShardName(name)
	if err != nil {
		return 0, nil, err
	}
	if int(id) >= len(st.Shards) {
		return 0, nil, errorf(errResourceNotFound, "Shard %s in stream %s under account %s does not exist", ShardName(id), st.Name, s.opts.Account)
	}
	return id, st.Shards[id], nil
}
