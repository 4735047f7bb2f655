package shard

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// RecordBatch v2 header layout (big-endian), as Kafka defines it.
const (
	offBaseOffset      = 0
	offLength          = 8
	offLeaderEpoch     = 12
	offMagic           = 16
	offCRC             = 17
	offAttributes      = 21
	offLastOffsetDelta = 23
	offFirstTimestamp  = 27
	offMaxTimestamp    = 35
	offProducerID      = 43
	offProducerEpoch   = 51
	offFirstSequence   = 53
	offNumRecords      = 57
	BatchHeaderLen     = 61

	attrCompression   = 0x07
	attrTimestampType = 0x08
	attrTransactional = 0x10
	attrControl       = 0x20
)

var (
	// ErrCorruptBatch marks a batch that fails its structural or CRC checks.
	ErrCorruptBatch = errors.New("shard: corrupt record batch")
	// ErrUnsupportedCompression marks an unknown compression codec.
	ErrUnsupportedCompression = errors.New("shard: unsupported compression codec")
	// ErrUnsupportedMagic marks a message format other than v2.
	ErrUnsupportedMagic = errors.New("shard: unsupported record batch version")
	// ErrTransactional marks a transactional or control batch, which only a
	// transaction coordinator may write.
	ErrTransactional = errors.New("shard: transactional batches need a transaction coordinator")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Header is the decoded fixed part of a RecordBatch.
type Header struct {
	BaseOffset      int64
	Length          int32
	Attributes      int16
	LastOffsetDelta int32
	FirstTimestamp  int64
	MaxTimestamp    int64
	ProducerID      int64
	ProducerEpoch   int16
	FirstSequence   int32
	NumRecords      int32
}

// Codec returns the compression codec (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd).
func (h Header) Codec() int8 { return int8(h.Attributes & attrCompression) }

// Transactional reports the transactional flag.
func (h Header) Transactional() bool { return h.Attributes&attrTransactional != 0 }

// Control reports the control flag.
func (h Header) Control() bool { return h.Attributes&attrControl != 0 }

// ParseHeader decodes b's header, checking only that it is long enough.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < BatchHeaderLen {
		return Header{}, fmt.Errorf("%w: %d bytes, shorter than a header", ErrCorruptBatch, len(b))
	}
	be := binary.BigEndian
	return Header{
		BaseOffset:      int64(be.Uint64(b[offBaseOffset:])),
		Length:          int32(be.Uint32(b[offLength:])),
		Attributes:      int16(be.Uint16(b[offAttributes:])),
		LastOffsetDelta: int32(be.Uint32(b[offLastOffsetDelta:])),
		FirstTimestamp:  int64(be.Uint64(b[offFirstTimestamp:])),
		MaxTimestamp:    int64(be.Uint64(b[offMaxTimestamp:])),
		ProducerID:      int64(be.Uint64(b[offProducerID:])),
		ProducerEpoch:   int16(be.Uint16(b[offProducerEpoch:])),
		FirstSequence:   int32(be.Uint32(b[offFirstSequence:])),
		NumRecords:      int32(be.Uint32(b[offNumRecords:])),
	}, nil
}

// SplitBatches cuts a produce request's records field into batches, checking
// each one as Validate does.
func SplitBatches(records []byte) ([][]byte, error) {
	var out [][]byte
	for len(records) > 0 {
		if len(records) < BatchHeaderLen {
			return nil, fmt.Errorf("%w: %d trailing bytes", ErrCorruptBatch, len(records))
		}
		n := int64(int32(binary.BigEndian.Uint32(records[offLength:]))) + 12
		if n < BatchHeaderLen || n > int64(len(records)) {
			return nil, fmt.Errorf("%w: batch length %d with %d bytes left", ErrCorruptBatch, n-12, len(records))
		}
		out = append(out, records[:n:n])
		records = records[n:]
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no record batch", ErrCorruptBatch)
	}
	return out, nil
}

// Validate checks a batch a producer sent: format v2, length, CRC, record
// count, codec, and for uncompressed batches that the records fill the batch
// exactly. It returns the decoded header.
func Validate(b []byte) (Header, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return h, err
	}
	if magic := int8(b[offMagic]); magic != 2 {
		return h, fmt.Errorf("%w: magic %d", ErrUnsupportedMagic, magic)
	}
	if int(h.Length)+12 != len(b) {
		return h, fmt.Errorf("%w: length field %d for %d bytes", ErrCorruptBatch, h.Length, len(b))
	}
	if crc := crc32.Checksum(b[offAttributes:], castagnoli); crc != binary.BigEndian.Uint32(b[offCRC:]) {
		return h, fmt.Errorf("%w: CRC mismatch", ErrCorruptBatch)
	}
	if h.NumRecords <= 0 || h.LastOffsetDelta != h.NumRecords-1 {
		return h, fmt.Errorf("%w: %d records with last offset delta %d", ErrCorruptBatch, h.NumRecords, h.LastOffsetDelta)
	}
	if c := h.Codec(); c > 4 {
		return h, fmt.Errorf("%w: %d", ErrUnsupportedCompression, c)
	}
	if h.Codec() == 0 {
		if err := walkRecords(b[BatchHeaderLen:], h.NumRecords, nil); err != nil {
			return h, err
		}
	}
	return h, nil
}

// walkRecords checks that raw holds exactly n well-framed records, calling fn
// (if set) with each record's offset delta and timestamp delta.
func walkRecords(raw []byte, n int32, fn func(offsetDelta int64, tsDelta int64)) error {
	for i := int32(0); i < n; i++ {
		size, k := binary.Varint(raw)
		if k <= 0 || size < 3 || size > int64(len(raw)-k) {
			return fmt.Errorf("%w: record %d has bad length", ErrCorruptBatch, i)
		}
		rec := raw[k : k+int(size)]
		raw = raw[k+int(size):]
		if fn != nil {
			rec = rec[1:] // attributes
			ts, k1 := binary.Varint(rec)
			if k1 <= 0 {
				return fmt.Errorf("%w: record %d timestamp", ErrCorruptBatch, i)
			}
			od, k2 := binary.Varint(rec[k1:])
			if k2 <= 0 {
				return fmt.Errorf("%w: record %d offset delta", ErrCorruptBatch, i)
			}
			fn(od, ts)
		}
	}
	if len(raw) != 0 {
		return fmt.Errorf("%w: %d bytes after the last record", ErrCorruptBatch, len(raw))
	}
	return nil
}

// stamp sets the fields a broker owns: the base offset and leader epoch
// (outside the CRC), and for LogAppendTime streams the timestamp type and
// max timestamp (inside it, so the CRC is recomputed).
func stamp(b []byte, base int64, logAppendTime int64) {
	binary.BigEndian.PutUint64(b[offBaseOffset:], uint64(base))
	binary.BigEndian.PutUint32(b[offLeaderEpoch:], 0)
	if logAppendTime >= 0 {
		attrs := binary.BigEndian.Uint16(b[offAttributes:]) | attrTimestampType
		binary.BigEndian.PutUint16(b[offAttributes:], attrs)
		binary.BigEndian.PutUint64(b[offMaxTimestamp:], uint64(logAppendTime))
		binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], castagnoli))
	}
}
