package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/braidstream/braid/internal/catalog"
	"github.com/braidstream/braid/internal/engine"
)

// The resharding endpoints of the admin HTTP API (docs/design/resharding.md):
//
//	POST /v1/streams/{name}/split  {"shard": 3, "at": "<decimal hash key>"}  (at optional)
//	POST /v1/streams/{name}/merge  {"shards": [3, 4]}
//	POST /v1/streams/{name}/scale  {"shards": 8}
//
// Each answers 200 with a ReshardReply, 400 for a request that does not
// apply to the stream (nothing changed), 404 for an unknown stream, 503
// while the node recovers or cannot write.

// ReshardReply is the answer of a split, merge or scale.
type ReshardReply struct {
	Stream string              `json:"stream"`
	Ops    []catalog.ReshardOp `json:"ops"`
	Closed []catalog.ShardID   `json:"closed"`
	Open   []catalog.ShardID   `json:"open"`
	TookMs float64             `json:"took_ms"`
	Shards []catalog.Shard     `json:"shards"`
}

type splitRequest struct {
	Shard *int32           `json:"shard"`
	At    *catalog.HashKey `json:"at"`
}

type mergeRequest struct {
	Shards []int32 `json:"shards"`
}

type scaleRequest struct {
	Shards *int `json:"shards"`
}

// maxReshardBody bounds a reshard request body.
const maxReshardBody = 64 << 10

func registerReshard(mux *http.ServeMux, eng func() *engine.Engine) {
	handle := func(op string, do func(ctx context.Context, e *engine.Engine, name string, body []byte) (*engine.ReshardResult, error)) {
		mux.HandleFunc("POST /v1/streams/{name}/"+op, func(w http.ResponseWriter, r *http.Request) {
			e := eng()
			if e == nil {
				httpError(w, http.StatusServiceUnavailable, "recovering")
				return
			}
			body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxReshardBody))
			if err != nil {
				httpError(w, http.StatusBadRequest, fmt.Sprintf("read request: %v", err))
				return
			}
			ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
			defer cancel()
			res, err := do(ctx, e, r.PathValue("name"), body)
			if err != nil {
				httpError(w, reshardStatus(err), err.Error())
				return
			}
			reply := ReshardReply{Stream: res.Stream.Name, Ops: res.Ops, Closed: res.Closed, Open: res.Opened,
				TookMs: float64(res.Took.Microseconds()) / 1000, Shards: res.Stream.Shards}
			if reply.Ops == nil {
				reply.Ops = []catalog.ReshardOp{}
			}
			if reply.Closed == nil {
				reply.Closed = []catalog.ShardID{}
			}
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(reply)
		})
	}
	handle("split", func(ctx context.Context, e *engine.Engine, name string, body []byte) (*engine.ReshardResult, error) {
		var req splitRequest
		if err := decodeStrict(body, &req); err != nil {
			return nil, err
		}
		if req.Shard == nil {
			return nil, fmt.Errorf("%w: split needs \"shard\"", errBadRequest)
		}
		return e.SplitShard(ctx, name, catalog.ShardID(*req.Shard), req.At)
	})
	handle("merge", func(ctx context.Context, e *engine.Engine, name string, body []byte) (*engine.ReshardResult, error) {
		var req mergeRequest
		if err := decodeStrict(body, &req); err != nil {
			return nil, err
		}
		if len(req.Shards) != 2 {
			return nil, fmt.Errorf("%w: merge needs \"shards\": two shard ids, got %d", errBadRequest, len(req.Shards))
		}
		return e.MergeShards(ctx, name, catalog.ShardID(req.Shards[0]), catalog.ShardID(req.Shards[1]))
	})
	handle("scale", func(ctx context.Context, e *engine.Engine, name string, body []byte) (*engine.ReshardResult, error) {
		var req scaleRequest
		if err := decodeStrict(body, &req); err != nil {
			return nil, err
		}
		if req.Shards == nil {
			return nil, fmt.Errorf("%w: scale needs \"shards\": the target number of open shards", errBadRequest)
		}
		return e.ScaleStream(ctx, name, *req.Shards)
	})
}

var errBadRequest = errors.New("bad request")

func decodeStrict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: request body is not the expected JSON object: %v", errBadRequest, err)
	}
	if dec.More() {
		return fmt.Errorf("%w: request body holds more than one JSON value", errBadRequest)
	}
	return nil
}

func reshardStatus(err error) int {
	switch {
	case errors.Is(err, catalog.ErrUnknownStream):
		return http.StatusNotFound
	case errors.Is(err, errBadRequest), errors.Is(err, catalog.ErrInvalidReshard), errors.Is(err, catalog.ErrShardClosed),
		errors.Is(err, catalog.ErrUnknownShard), errors.Is(err, catalog.ErrInvalidShards), errors.Is(err, catalog.ErrInternalStream):
		return http.StatusBadRequest
	}
	return http.StatusServiceUnavailable
}

// httpError answers {"error": msg} with status.
func httpError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
