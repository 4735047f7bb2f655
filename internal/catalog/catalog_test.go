package catalog

import (
	"errors"
	"path/filepath"
	"testing"
)

func TestSplitEvenlyCoversKeySpace(t *testing.T) {
	for _, n := range []int{1, 2, 3, 7, 1000} {
		rs := SplitEvenly(n)
		if len(rs) != n || rs[0].Start != (HashKey{}) || rs[n-1].End != MaxHashKey {
			t.Fatalf("n=%d: ends %v..%v", n, rs[0].Start, rs[n-1].End)
		}
		for i := 1; i < n; i++ {
			if add(rs[i-1].End, HashKey{0, 1}) != rs[i].Start {
				t.Fatalf("n=%d: gap or overlap between %d and %d", n, i-1, i)
			}
		}
	}
	if got := SplitEvenly(2)[1].Start.String(); got != "170141183460469231731687303715884105728" {
		t.Fatalf("midpoint = %s", got)
	}
	k, err := ParseHashKey(MaxHashKey.String())
	if err != nil || k != MaxHashKey {
		t.Fatalf("round trip of max key: %v %v", k, err)
	}
	if _, err := ParseHashKey("340282366920938463463374607431768211456"); err == nil {
		t.Fatal("2^128 accepted")
	}
}

func TestCatalogPersists(t *testing.T) {
	store := FileStore{Path: filepath.Join(t.TempDir(), "catalog.json")}
	c, err := Open(store)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateStream("orders", 3, Configs{"retention.ms": "1000"}, false); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		stream  string
		shards  int
		configs Configs
		want    error
	}{
		{"duplicate", "orders", 1, nil, ErrStreamExists},
		{"bad name", "a/b", 1, nil, ErrInvalidName},
		{"zero shards", "x", 0, nil, ErrInvalidShards},
		{"unknown config", "x", 1, Configs{"nope": "1"}, ErrInvalidConfig},
		{"bad value", "x", 1, Configs{"retention.ms": "soon"}, ErrInvalidConfig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := c.CreateStream(tc.stream, tc.shards, tc.configs, false); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := c.AddShards("orders", 5, false); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateStream("gone", 1, nil, false); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteStream("gone"); err != nil {
		t.Fatal(err)
	}
	c2, err := Open(store)
	if err != nil {
		t.Fatal(err)
	}
	s, err := c2.Stream("orders")
	if err != nil || len(s.Shards) != 5 || s.Configs["retention.ms"] != "1000" || s.Shards[4].Range != nil {
		t.Fatalf("reloaded %+v, %v", s, err)
	}
	if c2.ClusterID() != c.ClusterID() {
		t.Fatal("cluster id changed on reload")
	}
	// A recreated stream gets a new id, so old log data cannot leak into it.
	g, _ := c2.CreateStream("gone", 1, nil, false)
	if g.ID <= s.ID+1 {
		t.Fatalf("stream id %d reused", g.ID)
	}
}
