package kafka

import (
	"net"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// spliceFetchMin is the record bytes from which a fetch answer is written
// as spliced pieces rather than encoded into one buffer.
const spliceFetchMin = 64 << 10

// spliceFetch encodes a fetch answer as the pieces of one frame without
// copying its record bytes: what kmsg's AppendTo would write, cut around
// each partition's RecordBatches, which are sent from where they lie. A
// 50 MB answer otherwise costs a second 50 MB buffer (grown by doubling,
// so up to twice that in garbage) and a copy per answer.
//
// head is the frame's start (the 4 size bytes, reserved, then the response
// header), as writeLoop builds it; the returned buffers start with it and
// their total size is written into its first 4 bytes. ok is false when the
// answer carries anything this encoder does not write (a tagged field, an
// unsupported version): the caller then uses kmsg's AppendTo, and
// TestSpliceFetchMatchesKmsg checks the two agree byte for byte.
func spliceFetch(head []byte, v *kmsg.FetchResponse) (bufs net.Buffers, ok bool) {
	if v.Version < 4 || v.Version > 16 || !plainFetch(v) {
		return nil, false
	}
	flexible := v.Version >= 12
	arrayLen := func(dst []byte, n int) []byte {
		if flexible {
			return kbin.AppendCompactArrayLen(dst, n)
		}
		return kbin.AppendArrayLen(dst, n)
	}
	// Cut points: b[cuts[i-1]:cuts[i]] is followed by data[i].
	var cuts []int
	var data [][]byte
	b := kbin.AppendInt32(head, v.ThrottleMillis)
	if v.Version >= 7 {
		b = kbin.AppendInt16(b, v.ErrorCode)
		b = kbin.AppendInt32(b, v.SessionID)
	}
	b = arrayLen(b, len(v.Topics))
	for i := range v.Topics {
		t := &v.Topics[i]
		switch {
		case v.Version >= 13:
			b = kbin.AppendUuid(b, t.TopicID)
		case flexible:
			b = kbin.AppendCompactString(b, t.Topic)
		default:
			b = kbin.AppendString(b, t.Topic)
		}
		b = arrayLen(b, len(t.Partitions))
		for j := range t.Partitions {
			p := &t.Partitions[j]
			b = kbin.AppendInt32(b, p.Partition)
			b = kbin.AppendInt16(b, p.ErrorCode)
			b = kbin.AppendInt64(b, p.HighWatermark)
			b = kbin.AppendInt64(b, p.LastStableOffset)
			if v.Version >= 5 {
				b = kbin.AppendInt64(b, p.LogStartOffset)
			}
			if flexible {
				b = kbin.AppendCompactNullableArrayLen(b, len(p.AbortedTransactions), p.AbortedTransactions == nil)
			} else {
				b = kbin.AppendNullableArrayLen(b, len(p.AbortedTransactions), p.AbortedTransactions == nil)
			}
			for _, a := range p.AbortedTransactions {
				b = kbin.AppendInt64(b, a.ProducerID)
				b = kbin.AppendInt64(b, a.FirstOffset)
				if flexible {
					b = append(b, 0) // no tagged fields
				}
			}
			if v.Version >= 11 {
				b = kbin.AppendInt32(b, p.PreferredReadReplica)
			}
			// The records' length, then the records themselves where
			// they lie.
			switch {
			case p.RecordBatches == nil && flexible:
				b = append(b, 0)
			case p.RecordBatches == nil:
				b = kbin.AppendInt32(b, -1)
			case flexible:
				b = kbin.AppendUvarint(b, 1+uint32(len(p.RecordBatches)))
			default:
				b = kbin.AppendInt32(b, int32(len(p.RecordBatches)))
			}
			if len(p.RecordBatches) > 0 {
				cuts = append(cuts, len(b))
				data = append(data, p.RecordBatches)
			}
			if flexible {
				b = append(b, 0) // no tagged fields
			}
		}
		if flexible {
			b = append(b, 0)
		}
	}
	if flexible {
		b = append(b, 0)
	}
	size := len(b) - 4
	from := 0
	bufs = make(net.Buffers, 0, 2*len(data)+1)
	for i, d := range data {
		bufs = append(bufs, b[from:cuts[i]], d)
		size += len(d)
		from = cuts[i]
	}
	bufs = append(bufs, b[from:])
	kbin.AppendInt32(b[:0], int32(size))
	return bufs, true
}

// plainFetch reports whether v carries nothing spliceFetch leaves out:
// tagged fields (diverging epochs, leaders, snapshots, node endpoints,
// unknown tags), which Braid's fetch does not set.
func plainFetch(v *kmsg.FetchResponse) bool {
	if len(v.Brokers) > 0 || v.UnknownTags.Len() > 0 {
		return false
	}
	for i := range v.Topics {
		t := &v.Topics[i]
		if t.UnknownTags.Len() > 0 {
			return false
		}
		for j := range t.Partitions {
			p := &t.Partitions[j]
			if p.UnknownTags.Len() > 0 ||
				p.DivergingEpoch.Epoch != -1 || p.DivergingEpoch.EndOffset != -1 || p.DivergingEpoch.UnknownTags.Len() > 0 ||
				p.CurrentLeader.LeaderID != -1 || p.CurrentLeader.LeaderEpoch != -1 || p.CurrentLeader.UnknownTags.Len() > 0 ||
				p.SnapshotID.EndOffset != -1 || p.SnapshotID.Epoch != -1 || p.SnapshotID.UnknownTags.Len() > 0 {
				return false
			}
			for k := range p.AbortedTransactions {
				if p.AbortedTransactions[k].UnknownTags.Len() > 0 {
					return false
				}
			}
		}
	}
	return true
}

// fetchRecordBytes is the record bytes v carries.
func fetchRecordBytes(v *kmsg.FetchResponse) int {
	n := 0
	for i := range v.Topics {
		for j := range v.Topics[i].Partitions {
			n += len(v.Topics[i].Partitions[j].RecordBatches)
		}
	}
	return n
}

// spliceLarge splices resp when it is a fetch answer holding enough record
// bytes to be worth it (see spliceFetch).
func spliceLarge(head []byte, resp kmsg.Response) (net.Buffers, bool) {
	f, ok := resp.(*kmsg.FetchResponse)
	if !ok || fetchRecordBytes(f) < spliceFetchMin {
		return nil, false
	}
	return spliceFetch(head, f)
}
