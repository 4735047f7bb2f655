package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The reshard verbs (split, merge, scale) share this: they POST to the admin
// API, print one line per operation the server made and the time it took,
// or the server's reply as is with --format json.

// reshardReply is the server's answer (server.ReshardReply).
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
}

// reshardTimeout bounds one reshard request; the server bounds its own work
// at 30 s, so this leaves room for its answer.
const reshardTimeout = 40 * time.Second

func (f *clientFlags) reshard(ctx context.Context, w io.Writer, verb, name string, body any) error {
	ctx, cancel := context.WithTimeout(ctx, reshardTimeout)
	defer cancel()
	var raw json.RawMessage
	err := f.adminCall(ctx, http.MethodPost, "/v1/streams/"+url.PathEscape(name)+"/"+verb, body, &raw)
	if err != nil {
		var st *errAdminStatus
		if errors.As(err, &st) && st.status == http.StatusNotFound {
			return fmt.Errorf("%s stream %q: stream does not exist (%s)", verb, name, st.msg)
		}
		return fmt.Errorf("%s stream %q: %w", verb, name, err)
	}
	if f.json() {
		var buf bytes.Buffer
		if err := json.Indent(&buf, raw, "", "  "); err != nil {
			return fmt.Errorf("%s stream %q: answer is not JSON: %w", verb, name, err)
		}
		buf.WriteByte('\n')
		_, err := w.Write(buf.Bytes())
		return err
	}
	var r reshardReply
	if err := json.Unmarshal(raw, &r); err != nil {
		return fmt.Errorf("%s stream %q: answer is not the expected JSON: %w", verb, name, err)
	}
	var b strings.Builder
	for _, op := range r.Ops {
		switch op.Op {
		case "merge":
			fmt.Fprintf(&b, "merged shards %s -> %s\n", joinIDs(op.Parents), joinIDs(op.Children))
		default:
			fmt.Fprintf(&b, "%s shard %s -> %s\n", op.Op, joinIDs(op.Parents), joinIDs(op.Children))
		}
	}
	if len(r.Ops) == 0 {
		fmt.Fprintf(&b, "stream %q: nothing to change, %d open shard%s (%s)\n", r.Stream, len(r.Open), plural(int64(len(r.Open))), joinIDs(r.Open))
		_, err = io.WriteString(w, b.String())
		return err
	}
	fmt.Fprintf(&b, "stream %q: %d open shard%s (%s), took %s\n", r.Stream, len(r.Open), plural(int64(len(r.Open))),
		joinIDs(r.Open), time.Duration(r.TookMs*float64(time.Millisecond)).Round(10*time.Microsecond))
	_, err = io.WriteString(w, b.String())
	return err
}

func joinIDs(ids []int32) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = itoa(id)
	}
	return strings.Join(parts, ", ")
}

// parseShardID checks a shard id given on the command line.
func parseShardID(flag, s string) (int32, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 32)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s %q: want a shard id (a non-negative integer)", flag, s)
	}
	return int32(n), nil
}
