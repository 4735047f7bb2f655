package kinesis

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"regexp"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/braidstream/braid/internal/catalog"
	"github.com/braidstream/braid/internal/engine"
	"github.com/braidstream/braid/internal/shard"
)

// What PutRecord and PutRecords share: checking a record, routing it by
// hash key and writing a call's records as one log frame; and what
// GetRecords needs to turn stored batches back into Kinesis records. The
// mapping is in docs/design/kinesis.md.

const (
	// maxDataBytes is the largest Data blob of one record (before base64).
	maxDataBytes = 1 << 20
	maxKeyLen    = 256
)

var hashKeyPattern = regexp.MustCompile(`^(0|[1-9]\d{0,38})$`)

// putEntry is one checked record to write.
type putEntry struct {
	key  []byte // the partition key
	data []byte
	hash catalog.HashKey
}

// checkRecord checks one record as Kinesis does and computes its hash
// key: MD5 of the partition key, or the ExplicitHashKey. field prefixes
// the field names in messages ("records.3.member." in PutRecords).
func checkRecord(field string, data []byte, key string, explicit *string) (putEntry, error) {
	switch {
	case len(key) < 1:
		return putEntry{}, errorf(errValidation, "1 validation error detected: Value '%s' at '%spartitionKey' failed to satisfy constraint: Member must have length greater than or equal to 1", key, field)
	case len(key) > maxKeyLen:
		return putEntry{}, errorf(errValidation, "1 validation error detected: Value '%s' at '%spartitionKey' failed to satisfy constraint: Member must have length less than or equal to %d", key, field, maxKeyLen)
	case len(data) > maxDataBytes:
		return putEntry{}, errorf(errValidation, "1 validation error detected: Value at '%sdata' failed to satisfy constraint: Member must have length less than or equal to %d", field, maxDataBytes)
	}
	e := putEntry{key: []byte(key), data: data}
	if data == nil {
		e.data = []byte{}
	}
	if explicit == nil {
		e.hash = engine.HashKeyOf(e.key)
		return e, nil
	}
	if !hashKeyPattern.MatchString(*explicit) {
		return putEntry{}, errorf(errValidation, "1 validation error detected: Value '%s' at '%sexplicitHashKey' failed to satisfy constraint: Member must satisfy regular expression pattern: 0|([1-9]\\d{0,38})", *explicit, field)
	}
	h, err := catalog.ParseHashKey(*explicit)
	if err != nil {
		return putEntry{}, errorf(errInvalidArgument, "Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. Specified value was %s", *explicit)
	}
	e.hash = h
	return e, nil
}

// written is where one record went.
type written struct {
	shard  catalog.ShardID
	offset shard.Offset
}

// writeRecords writes entries to the stream named name, each to the open
// shard owning its hash key, as ONE log frame (all or nothing, even
// across a crash), in the given order within each shard, and returns
// once the frame is fsync'd.
func (s *Server) writeRecords(ctx context.Context, name string, entries []putEntry) ([]written, error) {
	type place struct{ part, delta int }
	var places []place
	now := time.Now().UnixMilli()
	build := func(st *engine.Stream) ([]engine.ShardBatch, error) {
		places = make([]place, len(entries))
		var out []engine.ShardBatch
		var recs [][]putEntry
		open := map[int32]int{} // shard -> its last (open) part
		sizes := map[int]int{}
		auto := distributesAuto(st)
		for i, e := range entries {
			h := e.hash
			if auto {
				h = randomHashKey()
			}
			d := st.Owner(h)
			if d < 0 {
				return nil, errorf(errInvalidArgument, "stream %s has no open shard with a hash key range (its shards were added as Kafka partitions)", name)
			}
			p, ok := open[d]
			size := len(e.key) + len(e.data) + 32
			// A shard's records go in batches of at most max.message.bytes
			// (a Kafka reader's limit), all in the one frame.
			if !ok || (sizes[p]+size > st.MaxMessageBytes && len(recs[p]) > 0) {
				p = len(out)
				open[d] = p
				out = append(out, engine.ShardBatch{Shard: d})
				recs = append(recs, nil)
			}
			places[i] = place{p, len(recs[p])}
			recs[p] = append(recs[p], e)
			sizes[p] += size
		}
		if st.KinesisThrottle {
			loads := make([]shardLoad, len(out))
			for p := range out {
				loads[p] = shardLoad{shard: catalog.ShardID(out[p].Shard), records: len(recs[p])}
				for _, e := range recs[p] {
					loads[p].bytes += len(e.key) + len(e.data)
				}
			}
			// Checked before anything is encoded or appended: a refused
			// call writes nothing and takes nothing from the buckets.
			if id, ok := s.throttle.admitWrite(st.ID, loads); !ok {
				return nil, s.throttled(name, id)
			}
		}
		for p := range out {
			out[p].Batch = encodeBatch(recs[p], now)
		}
		return out, nil
	}
	st := s.eng.Stream(name)
	appendTime := int64(-1)
	if st != nil && st.LogAppendTime {
		appendTime = now
	}
	batches, bases, err := s.eng.AppendShards(ctx, name, appendTime, build)
	if err != nil {
		return nil, err
	}
	out := make([]written, len(entries))
	for i, pl := range places {
		out[i] = written{catalog.ShardID(batches[pl.part].Shard), bases[pl.part] + shard.Offset(pl.delta)}
	}
	return out, nil
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// encodeBatch encodes records as one uncompressed Kafka RecordBatch v2:
// key = partition key, value = data, timestamp = ts (the arrival time),
// no producer id.
func encodeBatch(recs []putEntry, ts int64) []byte {
	var body []byte
	for i, e := range recs {
		r := kmsg.Record{OffsetDelta: int32(i), Key: e.key, Value: e.data}
		// Length is the size of what follows it: encode once without it.
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		body = r.AppendTo(body)
	}
	b := kmsg.RecordBatch{
		Magic: 2, LastOffsetDelta: int32(len(recs) - 1),
		FirstTimestamp: ts, MaxTimestamp: ts,
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1,
		NumRecords: int32(len(recs)), Records: body,
	}
	out := b.AppendTo(make([]byte, 0, shard.BatchHeaderLen+len(body)))
	// Length counts from after itself (offset 12); the CRC covers
	// everything from the attributes (offset 21) on.
	binary.BigEndian.PutUint32(out[8:], uint32(len(out)-12))
	binary.BigEndian.PutUint32(out[17:], crc32.Checksum(out[21:], castagnoli))
	return out
}

var decompressor = kgo.DefaultDecompressor()

// batchRecord is one record of a stored batch.
type batchRecord struct {
	offset shard.Offset
	ts     int64
	key    []byte // nil for a null Kafka key
	value  []byte
}

// decodeBatch returns the records of one stored batch and its size.
func decodeBatch(b []byte) (kmsg.RecordBatch, []batchRecord, error) {
	var rb kmsg.RecordBatch
	if err := rb.ReadFrom(b); err != nil {
		return rb, nil, fmt.Errorf("kinesis: stored batch: %w", err)
	}
	raw := rb.Records
	if codec := rb.Attributes & 0x07; codec != 0 {
		var err error
		if raw, err = decompressor.Decompress(raw, kgo.CompressionCodecType(codec)); err != nil {
			return rb, nil, fmt.Errorf("kinesis: stored batch: decompress: %w", err)
		}
	}
	logAppend := rb.Attributes&0x08 != 0
	out := make([]batchRecord, 0, rb.NumRecords)
	for range rb.NumRecords {
		n, k := binary.Varint(raw)
		if k <= 0 || n < 0 || int64(len(raw)-k) < n {
			return rb, nil, fmt.Errorf("kinesis: stored batch at offset %d: bad record length", rb.FirstOffset)
		}
		var r kmsg.Record
		if err := r.ReadFrom(raw[:k+int(n)]); err != nil {
			return rb, nil, fmt.Errorf("kinesis: stored batch at offset %d: %w", rb.FirstOffset, err)
		}
		raw = raw[k+int(n):]
		ts := rb.FirstTimestamp + r.TimestampDelta64
		if logAppend {
			ts = rb.MaxTimestamp
		}
		out = append(out, batchRecord{offset: shard.Offset(rb.FirstOffset) + shard.Offset(r.OffsetDelta), ts: ts, key: r.Key, value: r.Value})
	}
	return rb, out, nil
}

// randomHashKey is a hash key drawn evenly from the whole 128-bit space
// (the AUTO record distribution strategy).
func randomHashKey() catalog.HashKey {
	return catalog.HashKey{Hi: rand.Uint64(), Lo: rand.Uint64()}
}
