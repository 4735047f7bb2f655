package powerloss

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/braidstream/braid/internal/shard"
)

// rec is one record as the workload writes it: values are unique in a run,
// so a value names the write it came from.
type rec struct{ key, val string }

const (
	attrTransactional = 0x10
	attrControl       = 0x20
)

// buildBatch encodes an uncompressed RecordBatch v2; pid < 0 makes a plain
// batch, txn marks it transactional.
func buildBatch(recs []rec, pid int64, epoch int16, seq int32, txn bool) []byte {
	now := time.Now().UnixMilli()
	var body []byte
	for i, r := range recs {
		kr := kmsg.NewRecord()
		kr.OffsetDelta = int32(i)
		if r.key != "" {
			kr.Key = []byte(r.key)
		}
		kr.Value = []byte(r.val)
		enc := kr.AppendTo(nil)[1:] // drop the length varint of 0 (one byte)
		body = binary.AppendVarint(body, int64(len(enc)))
		body = append(body, enc...)
	}
	rb := kmsg.NewRecordBatch()
	rb.Magic = 2
	rb.LastOffsetDelta, rb.NumRecords = int32(len(recs)-1), int32(len(recs))
	rb.FirstTimestamp, rb.MaxTimestamp = now, now
	rb.ProducerID, rb.ProducerEpoch, rb.FirstSequence = -1, -1, -1
	if pid >= 0 {
		rb.ProducerID, rb.ProducerEpoch, rb.FirstSequence = pid, epoch, seq
	}
	if txn {
		rb.Attributes |= attrTransactional
	}
	rb.Records = body
	rb.Length = int32(len(rb.AppendTo(nil)) - 12)
	raw := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
	return raw
}

// readBatch is a batch as a reader got it.
type readBatch struct {
	h    shard.Header
	recs []readRec
}

type readRec struct {
	off      int64
	key, val string
}

func (b readBatch) last() int64 { return b.h.BaseOffset + int64(b.h.LastOffsetDelta) }

// decodeBatches splits fetched bytes into batches and records, checking
// every batch's CRC and framing.
func decodeBatches(data []byte) ([]readBatch, error) {
	var out []readBatch
	for len(data) > 0 {
		if len(data) < 12 {
			return nil, fmt.Errorf("%d trailing bytes", len(data))
		}
		n := 12 + int(binary.BigEndian.Uint32(data[8:]))
		if n > len(data) {
			return nil, fmt.Errorf("batch of %d bytes in %d", n, len(data))
		}
		b := data[:n]
		data = data[n:]
		// Not shard.Validate: compacted batches keep their last offset
		// delta with fewer records.
		h, err := shard.ParseHeader(b)
		if err != nil {
			return nil, fmt.Errorf("read back a bad batch: %w", err)
		}
		if n < 61 || crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)) != binary.BigEndian.Uint32(b[17:]) {
			return nil, fmt.Errorf("read back a batch at %d with a bad CRC", h.BaseOffset)
		}
		var rb kmsg.RecordBatch
		if err := rb.ReadFrom(b); err != nil {
			return nil, err
		}
		rbatch := readBatch{h: h}
		recs := rb.Records
		for range rb.NumRecords {
			l, k := binary.Varint(recs)
			if k <= 0 || k+int(l) > len(recs) {
				return nil, fmt.Errorf("bad record framing in batch at %d", h.BaseOffset)
			}
			var r kmsg.Record
			if err := r.ReadFrom(recs[:k+int(l)]); err != nil {
				return nil, err
			}
			recs = recs[k+int(l):]
			rbatch.recs = append(rbatch.recs, readRec{off: h.BaseOffset + int64(r.OffsetDelta), key: string(r.Key), val: string(r.Value)})
		}
		out = append(out, rbatch)
	}
	return out, nil
}
