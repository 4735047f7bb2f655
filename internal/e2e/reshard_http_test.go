package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/braidstream/braid/internal/braidtest"
)

type reshardReply struct {
	Stream string `json:"stream"`
	Ops    []struct {
		Op       string  `json:"op"`
		Parents  []int32 `json:"parents"`
		Children []int32 `json:"children"`
	} `json:"ops"`
	Closed []int32 `json:"closed"`
	Open   []int32 `json:"open"`
	TookMs float64 `json:"took_ms"`
	Error  string  `json:"error"`
}

type streamState struct {
	Routing string `json:"routing"`
	Shards  []struct {
		Shard     int32 `json:"shard"`
		State     string
		EndOffset *int64          `json:"end_offset"`
		Range     *json2HashRange `json:"range"`
		Parents   []int32         `json:"parents"`
		Children  []int32         `json:"children"`
		HW        int64           `json:"high_watermark"`
	} `json:"shards"`
}

type json2HashRange struct {
	Start string `json:"start"`
	End   string `json:"end"`
}

// TestReshardHTTP drives split, merge and scale through the admin HTTP API
// and checks that bad requests are refused with a clear error and change
// nothing.
func TestReshardHTTP(t *testing.T) {
	p := braidtest.Start(t)
	adm := kadm.NewClient(p.Client())
	defer adm.Close()
	ctx := context.Background()
	routing := "key"
	if _, err := adm.CreateTopic(ctx, 2, -1, map[string]*string{"braid.routing": &routing}, "rs"); err != nil {
		t.Fatal(err)
	}
	post := func(op string, body any, wantStatus int) reshardReply {
		t.Helper()
		var r reshardReply
		status, err := p.PostJSON("/v1/streams/rs/"+op, body, &r)
		if err != nil || status != wantStatus {
			t.Fatalf("%s %v: status %d (%v) %+v, want %d", op, body, status, err, r, wantStatus)
		}
		return r
	}
	r := post("split", map[string]any{"shard": 0}, 200)
	if len(r.Ops) != 1 || r.Ops[0].Op != "split" || len(r.Open) != 3 || len(r.Closed) != 1 {
		t.Fatalf("split reply %+v", r)
	}
	r = post("merge", map[string]any{"shards": []int{3, 1}}, 200)
	if len(r.Open) != 2 {
		t.Fatalf("merge reply %+v", r)
	}
	r = post("scale", map[string]any{"shards": 5}, 200)
	if len(r.Open) != 5 {
		t.Fatalf("scale reply %+v", r)
	}
	var before streamState
	if status, err := p.GetJSON("/v1/streams/rs", &before); err != nil || status != 200 || before.Routing != "key" {
		t.Fatalf("GET: %d %v %+v", status, err, before)
	}
	if s0 := before.Shards[0]; s0.State != "closed" || s0.EndOffset == nil || len(s0.Children) != 2 || s0.Range == nil {
		t.Fatalf("shard 0 after split: %+v", s0)
	}
	bad := []struct {
		op   string
		body any
		want int
		msg  string
	}{
		{"split", map[string]any{"shard": 0}, 400, "closed"},
		{"split", map[string]any{"shard": 4242}, 400, "unknown shard"},
		{"split", map[string]any{"shard": 5, "at": "0"}, 400, "does not split"},
		{"split", map[string]any{"shard": 5, "at": "340282366920938463463374607431768211456"}, 400, "hash key"},
		{"split", map[string]any{}, 400, "needs"},
		{"split", map[string]any{"shard": 2, "extra": 1}, 400, "unknown field"},
		{"merge", map[string]any{"shards": []int{1}}, 400, "two shard ids"},
		{"scale", map[string]any{"shards": 0}, 400, "1 to 1024"},
		{"scale", map[string]any{"shards": 1025}, 400, "1 to 1024"},
	}
	for _, b := range bad {
		r := post(b.op, b.body, b.want)
		if !strings.Contains(r.Error, b.msg) {
			t.Errorf("%s %v: error %q, want it to mention %q", b.op, b.body, r.Error, b.msg)
		}
	}
	var r2 reshardReply
	if status, _ := p.PostJSON("/v1/streams/nope/scale", map[string]any{"shards": 2}, &r2); status != http.StatusNotFound {
		t.Errorf("scale of an unknown stream: %d, want 404", status)
	}
	if status, _ := p.PostJSON("/v1/streams/__consumer_offsets/scale", map[string]any{"shards": 2}, &r2); status != 400 || !strings.Contains(r2.Error, "internal") {
		t.Errorf("scale of the internal stream: %d %q", status, r2.Error)
	}
	var after streamState
	p.GetJSON("/v1/streams/rs", &after)
	if len(after.Shards) != len(before.Shards) {
		t.Fatalf("refused reshards changed the stream: %d shards, was %d", len(after.Shards), len(before.Shards))
	}
}
