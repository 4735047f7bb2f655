package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sort"
	"time"
)

// A reshard storm (Config.ReshardEvery) splits and merges the stream's
// shards through the node's admin HTTP API while the producers run, so
// that produce latency can be compared with and without it, and times each
// change: from the request to the answer, which comes once the new layout
// is installed (what a client's next metadata request sees).

// ReshardSummary is what a reshard storm did.
type ReshardSummary struct {
	Ops        int            `json:"ops"`
	Errors     int            `json:"errors"`
	FirstError string         `json:"first_error,omitempty"`
	Latency    LatencySummary `json:"latency"`     // request to answer, at the client
	ServerTook LatencySummary `json:"server_took"` // close parents to new layout, at the server
}

type stormShard struct {
	Shard int32  `json:"shard"`
	State string `json:"state"`
	Range *struct {
		Start json.Number `json:"start"`
		End   json.Number `json:"end"`
	} `json:"range"`
}

// storm runs until ctx ends: while the stream has at most base open
// shards it splits a random open one, otherwise it merges a random pair of
// adjacent open shards, so the count stays near base.
func storm(ctx context.Context, cfg Config, base int) *ReshardSummary {
	s := &ReshardSummary{}
	lat, took := NewRecorder(1<<16, 0, 1), NewRecorder(1<<16, 0, 2)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	hc := &http.Client{Timeout: 30 * time.Second}
	url := "http://" + cfg.AdminAddr + "/v1/streams/" + cfg.Stream
	fail := func(err error) {
		s.Errors++
		if s.FirstError == "" {
			s.FirstError = err.Error()
		}
	}
	tick := time.NewTicker(cfg.ReshardEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			s.Latency, s.ServerTook = Summarize(lat), Summarize(took)
			return s
		case <-tick.C:
		}
		var state struct {
			Shards []stormShard `json:"shards"`
		}
		if err := getJSON(ctx, hc, url, &state); err != nil {
			fail(err)
			continue
		}
		var open []stormShard
		for _, sh := range state.Shards {
			if sh.State == "open" && sh.Range != nil {
				open = append(open, sh)
			}
		}
		sort.Slice(open, func(i, j int) bool { return less(open[i].Range.Start, open[j].Range.Start) })
		var op string
		var body any
		switch {
		case len(open) == 0:
			continue
		case len(open) <= base:
			op, body = "split", map[string]any{"shard": open[rng.IntN(len(open))].Shard}
		default:
			i := rng.IntN(len(open) - 1)
			op, body = "merge", map[string]any{"shards": []int32{open[i].Shard, open[i+1].Shard}}
		}
		var reply struct {
			TookMs float64 `json:"took_ms"`
			Error  string  `json:"error"`
		}
		began := time.Now()
		if err := postJSON(ctx, hc, url+"/"+op, body, &reply); err != nil {
			if ctx.Err() == nil {
				fail(err)
			}
			continue
		}
		lat.Record(time.Since(began))
		took.Record(time.Duration(reply.TookMs * float64(time.Millisecond)))
		s.Ops++
	}
}

// less compares two decimal hash keys.
func less(a, b json.Number) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}

func getJSON(ctx context.Context, hc *http.Client, url string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	return doJSON(hc, req, out)
}

func postJSON(ctx context.Context, hc *http.Client, url string, body, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	return doJSON(hc, req, out)
}

func doJSON(hc *http.Client, req *http.Request, out any) error {
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s: %s", req.Method, req.URL.Path, resp.Status, bytes.TrimSpace(data))
	}
	return json.Unmarshal(data, out)
}
