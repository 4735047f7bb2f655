package catalog

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// unsyncedStore is FileStore (the decoder under test) without the fsyncs
// of Save, which would bound the fuzzer to a few executions a second.
type unsyncedStore struct{ FileStore }

func (s unsyncedStore) Save(snap *Snapshot) error {
	data, err := json.MarshalIndent(snap, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(s.Path, data, 0o644)
}

// FuzzCatalogLoad opens garbage as catalog.json: Open either fails with an
// error or yields a catalog that lookups and changes work on without a
// panic, and whose saved form opens to the same state.
func FuzzCatalogLoad(f *testing.F) {
	seed := func(s *Snapshot) []byte {
		b, err := json.MarshalIndent(s, "", "  ")
		if err != nil {
			panic(err)
		}
		return b
	}
	orders := &Stream{ID: 1, TopicID: [16]byte{1, 2, 3}, Name: "orders", Configs: Configs{"retention.ms": "1000"},
		Shards: []Shard{{ID: 0, State: ShardOpen}, {ID: 1, State: ShardOpen}}}
	split := &Stream{ID: 2, TopicID: [16]byte{4}, Name: "kin",
		Shards: []Shard{
			{ID: 0, Range: &SplitEvenly(1)[0], State: ShardClosed, Children: []ShardID{1, 2}, EndOffset: 10},
			{ID: 1, Range: &SplitEvenly(2)[0], Parents: []ShardID{0}, State: ShardOpen},
			{ID: 2, Range: &SplitEvenly(2)[1], Parents: []ShardID{0}, State: ShardOpen},
		}}
	internal := &Stream{ID: 3, Name: OffsetsStream, Shards: []Shard{{ID: 0, State: ShardOpen}}, Internal: true}
	f.Add(seed(&Snapshot{ClusterID: "c1", NextStreamID: 4, NextProducerID: 1000, Streams: []*Stream{orders, split, internal}}))
	f.Add(seed(&Snapshot{ClusterID: "c2", NextStreamID: 1}))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "catalog.json")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		store := unsyncedStore{FileStore{Path: path}}
		c, err := Open(store)
		if err != nil {
			return
		}
		for _, s := range c.Streams() {
			c.Stream(s.Name)
			c.StreamByTopicID(s.TopicID)
		}
		c.ClusterID()
		if s := c.Streams(); len(s) > 0 {
			c.AddShards(s[0].Name, len(s[0].Shards)+1, true)
			c.SetConfigs(s[0].Name, map[string]*string{"retention.ms": nil}, false, true)
		}
		c.CreateStream("fuzz-new", 1, nil, true)
		c.EnsureInternal(OffsetsStream, 1)
		again, err := Open(store)
		if err != nil {
			t.Fatalf("reopen a catalog just saved: %v", err)
		}
		// Compared as saved: an empty map and a missing one are the same.
		want, _ := json.Marshal(c.snap)
		got, _ := json.Marshal(again.snap)
		if string(got) != string(want) {
			t.Fatalf("catalog changed through a save:\n%s\n%s", want, got)
		}
	})
}
