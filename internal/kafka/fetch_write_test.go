package kafka

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// randomFetch is a fetch answer as Braid builds them, with random contents:
// topics, partitions with and without records (nil, empty, a few bytes,
// large), errors, offsets and aborted transactions.
func randomFetch(r *rand.Rand, version int16) *kmsg.FetchResponse {
	v := kmsg.NewPtrFetchResponse()
	v.Version = version
	v.ThrottleMillis = r.Int32N(100)
	v.ErrorCode = int16(r.IntN(3))
	v.SessionID = r.Int32()
	for range r.IntN(4) {
		t := kmsg.NewFetchResponseTopic()
		t.Topic = string(bytes.Repeat([]byte{'a' + byte(r.IntN(26))}, r.IntN(300)))
		for i := range t.TopicID {
			t.TopicID[i] = byte(r.Uint32())
		}
		for range r.IntN(5) {
			p := kmsg.NewFetchResponseTopicPartition()
			p.Partition, p.ErrorCode = r.Int32N(1000), int16(r.IntN(2))
			p.HighWatermark, p.LastStableOffset, p.LogStartOffset = r.Int64(), r.Int64(), r.Int64()
			if r.IntN(2) == 0 {
				p.AbortedTransactions = []kmsg.FetchResponseTopicPartitionAbortedTransaction{}
				for range r.IntN(3) {
					p.AbortedTransactions = append(p.AbortedTransactions, kmsg.FetchResponseTopicPartitionAbortedTransaction{ProducerID: r.Int64(), FirstOffset: r.Int64()})
				}
			}
			p.PreferredReadReplica = r.Int32N(3) - 1
			switch r.IntN(4) {
			case 0:
				p.RecordBatches = nil
			case 1:
				p.RecordBatches = []byte{}
			case 2:
				p.RecordBatches = make([]byte, r.IntN(200))
			default:
				p.RecordBatches = make([]byte, spliceFetchMin+r.IntN(4096))
			}
			for i := range p.RecordBatches {
				p.RecordBatches[i] = byte(r.Uint32())
			}
			t.Partitions = append(t.Partitions, p)
		}
		v.Topics = append(v.Topics, t)
	}
	return v
}

// frameHead is what writeLoop puts before a response: the size, reserved,
// the correlation id, and an empty tag section in flexible versions.
func frameHead(corr int32, flexible bool) []byte {
	b := binary.BigEndian.AppendUint32([]byte{0, 0, 0, 0}, uint32(corr))
	if flexible {
		b = append(b, 0)
	}
	return b
}

// TestSpliceFetchMatchesKmsg: the spliced pieces of every fetch answer, put
// together, are the bytes kmsg encodes for it, in every version served.
func TestSpliceFetchMatchesKmsg(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for version := int16(4); version <= 16; version++ {
		for range 40 {
			v := randomFetch(r, version)
			want := v.AppendTo(frameHead(7, v.IsFlexible()))
			binary.BigEndian.PutUint32(want, uint32(len(want)-4))
			bufs, ok := spliceFetch(frameHead(7, v.IsFlexible()), v)
			if !ok {
				t.Fatalf("v%d: a plain answer was not spliced", version)
			}
			var got []byte
			for _, b := range bufs {
				got = append(got, b...)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("v%d: spliced answer differs from kmsg's encoding (%d vs %d bytes)", version, len(got), len(want))
			}
			// The answer decodes as what was sent.
			back := kmsg.NewPtrFetchResponse()
			back.Version = version
			if err := back.ReadFrom(got[4+4+boolInt(v.IsFlexible()):]); err != nil {
				t.Fatalf("v%d: decode spliced answer: %v", version, err)
			}
		}
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestSpliceFetchLeavesTaggedAnswers: an answer carrying a tagged field is
// left to kmsg, as are versions the splicer does not write.
func TestSpliceFetchLeavesTaggedAnswers(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, tweak := range []func(*kmsg.FetchResponse){
		func(v *kmsg.FetchResponse) { v.Brokers = []kmsg.FetchResponseBroker{{NodeID: 1, Host: "h", Port: 1}} },
		func(v *kmsg.FetchResponse) { v.Topics[0].Partitions[0].DivergingEpoch.Epoch = 3 },
		func(v *kmsg.FetchResponse) { v.Topics[0].Partitions[0].CurrentLeader.LeaderID = 1 },
		func(v *kmsg.FetchResponse) { v.Topics[0].Partitions[0].SnapshotID.EndOffset = 9 },
		func(v *kmsg.FetchResponse) { v.Topics[0].Partitions[0].UnknownTags.Set(9, []byte{1}) },
		func(v *kmsg.FetchResponse) { v.Version = 3 },
	} {
		v := randomFetch(r, 16)
		v.Topics = append(v.Topics, kmsg.NewFetchResponseTopic())
		v.Topics[0].Partitions = append(v.Topics[0].Partitions, kmsg.NewFetchResponseTopicPartition())
		if _, ok := spliceFetch(frameHead(1, true), v); !ok {
			t.Fatal("a plain answer was not spliced")
		}
		tweak(v)
		if _, ok := spliceFetch(frameHead(1, true), v); ok {
			t.Fatal("an answer with a tagged field (or an old version) was spliced")
		}
	}
}
