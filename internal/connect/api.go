package connect

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"
)

// ErrDisabled is the admin API's answer on a node started with
// --connectors=false.
var ErrDisabled = errors.New("connectors are disabled on this node")

// RegisterAPI serves the admin HTTP API /v1/connectors on mux. get returns
// the running manager, or nil while the node is starting; disabled
// answers every call with 503.
func RegisterAPI(mux *http.ServeMux, disabled bool, get func() *Manager) {
	h := func(f func(m *Manager, w http.ResponseWriter, r *http.Request)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if disabled {
				writeError(w, http.StatusServiceUnavailable, ErrDisabled)
				return
			}
			m := get()
			if m == nil {
				writeError(w, http.StatusServiceUnavailable, errors.New("the node is starting"))
				return
			}
			f(m, w, r)
		}
	}
	mux.HandleFunc("GET /v1/connector-types", h(func(m *Manager, w http.ResponseWriter, r *http.Request) {
		type typ struct {
			Name        string `json:"name"`
			Kind        string `json:"kind"`
			ExactlyOnce bool   `json:"exactly_once"`
			Doc         string `json:"doc"`
		}
		out := []typ{}
		for _, t := range m.Types() {
			out = append(out, typ{t.Name, t.Kind(), t.ExactlyOnce, t.Doc})
		}
		writeJSON(w, http.StatusOK, map[string]any{"types": out})
	}))
	mux.HandleFunc("GET /v1/connectors", h(func(m *Manager, w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"connectors": m.List()})
	}))
	mux.HandleFunc("POST /v1/connectors", h(func(m *Manager, w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		d, err := m.Create(body)
		reply(w, http.StatusCreated, d, err)
	}))
	mux.HandleFunc("GET /v1/connectors/{name}", h(func(m *Manager, w http.ResponseWriter, r *http.Request) {
		d, err := m.Get(r.PathValue("name"))
		reply(w, http.StatusOK, d, err)
	}))
	for verb, f := range map[string]func(*Manager, string) (Describe, error){
		"pause": (*Manager).Pause, "resume": (*Manager).Resume, "restart": (*Manager).Restart,
	} {
		mux.HandleFunc("POST /v1/connectors/{name}/"+verb, h(func(m *Manager, w http.ResponseWriter, r *http.Request) {
			d, err := f(m, r.PathValue("name"))
			reply(w, http.StatusOK, d, err)
		}))
	}
	mux.HandleFunc("DELETE /v1/connectors/{name}", h(func(m *Manager, w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
		defer cancel()
		if err := m.Delete(ctx, r.PathValue("name")); err != nil {
			reply(w, 0, nil, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	mux.HandleFunc("GET /v1/connectors/{name}/offsets", h(func(m *Manager, w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
		defer cancel()
		o, err := m.Offsets(ctx, r.PathValue("name"))
		reply(w, http.StatusOK, o, err)
	}))
	mux.HandleFunc("POST /v1/connectors/{name}/offsets/reset", h(func(m *Manager, w http.ResponseWriter, r *http.Request) {
		var req OffsetReset
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			writeError(w, http.StatusBadRequest, errors.New("offsets reset: body must be {\"to\": \"earliest\"|\"latest\"} or {\"offsets\": [...]}: "+err.Error()))
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
		defer cancel()
		if err := m.ResetOffsets(ctx, r.PathValue("name"), req); err != nil {
			reply(w, 0, nil, err)
			return
		}
		o, err := m.Offsets(ctx, r.PathValue("name"))
		reply(w, http.StatusOK, o, err)
	}))
}

func reply(w http.ResponseWriter, code int, v any, err error) {
	if err != nil {
		var de *DefinitionError
		switch {
		case errors.As(err, &de):
			code = http.StatusBadRequest
		case errors.Is(err, ErrNotFound):
			code = http.StatusNotFound
		case errors.Is(err, ErrExists), errors.Is(err, ErrState):
			code = http.StatusConflict
		default:
			code = http.StatusInternalServerError
		}
		writeError(w, code, err)
		return
	}
	writeJSON(w, code, v)
}

func writeError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, map[string]string{"error": err.Error()})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}
