package kinesis

import (
	"context"
	"encoding/binary"
	"time"

	"github.com/braidstream/braid/internal/catalog"
	"github.com/braidstream/braid/internal/engine"
	"github.com/braidstream/braid/internal/shard"
)

// GetRecords reads up to Limit records (1-10000, default 10000; at most
// 10 MiB) from a shard iterator's position, read committed: transaction
// markers and records of aborted transactions are skipped, and reading
// stops at the first record of a transaction still open. Each answer
// carries a fresh NextShardIterator, except at the end of a closed shard,
// which answers with ChildShards instead.
func init() { register("GetRecords", getRecords) }

const (
	maxGetRecords      = 10000
	maxGetRecordsBytes = 10 << 20
	readChunk          = 1 << 20
)

type getRecordsInput struct {
	ShardIterator string `json:"ShardIterator"`
	Limit         *int   `json:"Limit"`
	StreamARN     string `json:"StreamARN"`
}

type record struct {
	Data                        []byte  `json:"Data"`
	PartitionKey                string  `json:"PartitionKey"`
	SequenceNumber              string  `json:"SequenceNumber"`
	ApproximateArrivalTimestamp float64 `json:"ApproximateArrivalTimestamp"`
	EncryptionType              string  `json:"EncryptionType"`
}

type childShard struct {
	ShardId      string       `json:"ShardId"`
	ParentShards []string     `json:"ParentShards"`
	HashKeyRange hashKeyRange `json:"HashKeyRange"`
}

type getRecordsOutput struct {
	Records            []record     `json:"Records"`
	NextShardIterator  *string      `json:"NextShardIterator,omitempty"`
	MillisBehindLatest int64        `json:"MillisBehindLatest"`
	ChildShards        []childShard `json:"ChildShards,omitempty"`
}

func getRecords(_ context.Context, s *Server, body []byte) (any, error) {
	var in getRecordsInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	limit, err := pageSize("limit", in.Limit, maxGetRecords, maxGetRecords)
	if err != nil {
		return nil, err
	}
	if in.ShardIterator == "" {
		return nil, errorf(errValidation, "1 validation error detected: Value null at 'shardIterator' failed to satisfy constraint: Member must not be null")
	}
	now := time.Now()
	it, err := s.decodeIterator(in.ShardIterator, now)
	if err != nil {
		return nil, err
	}
	st := s.streamByID(it.stream)
	if st == nil || int(it.shard) >= len(st.Shards) {
		return nil, errorf(errResourceNotFound, "the stream or shard of this iterator no longer exists")
	}
	if in.StreamARN != "" && in.StreamARN != s.arn(st.Name) {
		return nil, errorf(errInvalidArgument, "StreamARN %s is not the stream of this shard iterator", in.StreamARN)
	}
	sh := st.Shards[it.shard]
	tk := shardKey{st.ID, it.shard}
	if st.KinesisThrottle && !s.throttle.admitRead(tk) {
		return nil, s.throttled(st.Name, it.shard)
	}
	recs, next, err := readCommitted(sh, it.offset, limit, maxGetRecordsBytes)
	if err != nil {
		return nil, err
	}
	if st.KinesisThrottle {
		s.throttle.chargeRead(tk, recordBytes(recs))
	}
	out := getRecordsOutput{Records: make([]record, 0, len(recs))}
	for _, r := range recs {
		out.Records = append(out.Records, record{
			Data: r.value, PartitionKey: string(r.key), SequenceNumber: SequenceNumber(it.shard, r.offset),
			ApproximateArrivalTimestamp: float64(r.ts) / 1000, EncryptionType: "NONE",
		})
	}
	_, hw, _ := sh.Offsets()
	lso := sh.LastStableOffset()
	if next < lso && len(recs) > 0 {
		out.MillisBehindLatest = max(0, now.UnixMilli()-recs[len(recs)-1].ts)
	}
	cs := st.Stream.Shards[it.shard]
	if cs.State == catalog.ShardClosed && next >= max(shard.Offset(cs.EndOffset), hw) {
		out.ChildShards = childShards(st, cs)
		return out, nil
	}
	nit := s.encodeIterator(iterator{stream: it.stream, shard: it.shard, offset: next, issued: now})
	out.NextShardIterator = &nit
	return out, nil
}

// readCommitted returns up to limit records (and at most maxBytes of keys
// and values, at least one record) from offset from, as a read_committed
// Kafka reader sees them, and the offset to go on from.
func readCommitted(sh *shard.Shard, from shard.Offset, limit, maxBytes int) ([]batchRecord, shard.Offset, error) {
	logStart, _, _ := sh.Offsets()
	next := max(from, logStart) // trimmed away: go on at the trim horizon
	var out []batchRecord
	size := 0
	for {
		data, aborted, _, err := sh.ReadCommitted(next, readChunk, true)
		if err != nil {
			return nil, from, err
		}
		if len(data) == 0 {
			return out, next, nil
		}
		for len(data) > 0 {
			n := 12 + int(binary.BigEndian.Uint32(data[8:]))
			b := data[:n]
			data = data[n:]
			h, err := shard.ParseHeader(b)
			if err != nil {
				return nil, from, err
			}
			last := shard.Offset(h.BaseOffset) + shard.Offset(h.LastOffsetDelta)
			if h.Control() || (h.Transactional() && abortedBatch(aborted, h)) {
				next = max(next, last+1)
				continue
			}
			_, recs, err := decodeBatch(b)
			if err != nil {
				return nil, from, err
			}
			for _, r := range recs {
				if r.offset < next {
					continue
				}
				if len(out) == limit || (len(out) > 0 && size+len(r.key)+len(r.value) > maxBytes) {
					return out, next, nil
				}
				out = append(out, r)
				size += len(r.key) + len(r.value)
				next = r.offset + 1
			}
			// Compaction leaves offset gaps at a batch's end.
			next = max(next, last+1)
		}
	}
}

func abortedBatch(aborted []shard.AbortedTxn, h shard.Header) bool {
	for _, a := range aborted {
		if a.ProducerID == h.ProducerID && shard.Offset(h.BaseOffset) >= a.First && shard.Offset(h.BaseOffset) <= a.Last {
			return true
		}
	}
	return false
}

// childShards lists the shards a closed shard's range went to.
func childShards(st *engine.Stream, cs catalog.Shard) []childShard {
	out := []childShard{}
	for _, c := range cs.Children {
		ch := st.Stream.Shards[c]
		var parents []string
		for _, p := range ch.Parents {
			parents = append(parents, ShardName(p))
		}
		r := hashKeyRange{}
		if ch.Range != nil {
			r = hashKeyRange{StartingHashKey: ch.Range.Start.String(), EndingHashKey: ch.Range.End.String()}
		}
		out = append(out, childShard{ShardId: ShardName(c), ParentShards: parents, HashKeyRange: r})
	}
	return out
}

// streamByID finds a stream by id: an iterator names the stream by id, so
// that one made for a deleted stream never reads a new stream of the same
// name.
func (s *Server) streamByID(id catalog.StreamID) *engine.Stream {
	for _, st := range s.eng.Streams() {
		if st.ID == id && !st.Internal {
			return st
		}
	}
	return nil
}

// recordBytes is the data and partition keys of recs, what Kinesis'
// read limits count.
func recordBytes(recs []batchRecord) int {
	n := 0
	for _, r := range recs {
		n += len(r.key) + len(r.value)
	}
	return n
}
