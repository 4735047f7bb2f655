package server

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/braidstream/braid/internal/catalog"
	"github.com/braidstream/braid/internal/engine"
)

// StreamState is the answer of GET /v1/streams/{name}: what the node knows
// of a stream's shards beyond what the Kafka protocol can carry.
type StreamState struct {
	Name      string `json:"name"`
	Compacted bool   `json:"compacted"`
	// Routing is braid.routing: "key" or "partition".
	Routing string       `json:"routing"`
	Shards  []ShardState `json:"shards"`
}

// ShardState is one shard in StreamState.
type ShardState struct {
	Shard         int32   `json:"shard"`
	LogStart      int64   `json:"log_start"`
	HighWatermark int64   `json:"high_watermark"`
	LastStable    int64   `json:"last_stable"`
	SizeBytes     int64   `json:"size_bytes"`
	DirtyRatio    float64 `json:"dirty_ratio"`
	CleanableEnd  int64   `json:"cleanable_end"`
	CleanedTo     int64   `json:"cleaned_to"`
	LastCleaned   string  `json:"last_cleaned,omitempty"` // RFC 3339; empty if never since start-up
	// Lineage (docs/design/resharding.md): the hash-key range the shard
	// owns (absent for a shard added as a Kafka partition), open or
	// closed, the end offset recorded when it closed, parents, children.
	Range     *catalog.HashRange `json:"range,omitempty"`
	State     catalog.ShardState `json:"state"`
	EndOffset *int64             `json:"end_offset,omitempty"`
	Parents   []catalog.ShardID  `json:"parents"`
	Children  []catalog.ShardID  `json:"children"`
}

func serveStreamState(w http.ResponseWriter, r *http.Request, eng *engine.Engine) {
	if eng == nil {
		http.Error(w, "recovering", http.StatusServiceUnavailable)
		return
	}
	name := r.PathValue("name")
	st := eng.Stream(name)
	if st == nil {
		http.Error(w, "unknown stream "+name, http.StatusNotFound)
		return
	}
	out := StreamState{Name: name, Compacted: st.Compact != nil, Shards: []ShardState{}, Routing: "partition"}
	if st.KeyRouting {
		out.Routing = "key"
	}
	now := time.Now()
	for _, sh := range st.Shards {
		start, hw, _ := sh.Offsets()
		_, size, _ := sh.Stats()
		cs := st.Stream.Shards[sh.Key().Shard]
		s := ShardState{Shard: sh.Key().Shard, LogStart: int64(start), HighWatermark: int64(hw),
			LastStable: int64(sh.LastStableOffset()), SizeBytes: size,
			Range: cs.Range, State: cs.State, Parents: cs.Parents, Children: cs.Children}
		if cs.State == catalog.ShardClosed {
			end := cs.EndOffset
			s.EndOffset = &end
		}
		if s.Parents == nil {
			s.Parents = []catalog.ShardID{}
		}
		if s.Children == nil {
			s.Children = []catalog.ShardID{}
		}
		if st.Compact != nil {
			c := sh.CleanState(*st.Compact, now)
			s.DirtyRatio, s.CleanableEnd, s.CleanedTo = c.DirtyRatio(), int64(c.CleanEnd), int64(c.CleanedTo)
			if !c.LastCleaned.IsZero() {
				s.LastCleaned = c.LastCleaned.UTC().Format(time.RFC3339Nano)
			}
		}
		out.Shards = append(out.Shards, s)
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}
