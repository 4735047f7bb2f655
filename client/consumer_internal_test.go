package client

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestLastOfEachShard(t *testing.T) {
	r := func(topic string, p int32, off int64) *kgo.Record {
		return &kgo.Record{Topic: topic, Partition: p, Offset: off}
	}
	recs := []*kgo.Record{r("a", 0, 5), r("a", 0, 6), r("a", 1, 2), r("b", 1, 9), r("b", 1, 10), r("a", 0, 7)}
	got := lastOfEachShard(recs)
	want := []*kgo.Record{recs[1], recs[2], recs[4], recs[5]}
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("lasts[%d] = %s/%d@%d, want %s/%d@%d", i, got[i].Topic, got[i].Partition, got[i].Offset,
				want[i].Topic, want[i].Partition, want[i].Offset)
		}
	}
	if got := lastOfEachShard(nil); len(got) != 0 {
		t.Errorf("no records: %d lasts", len(got))
	}
}
