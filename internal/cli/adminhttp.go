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
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/braidstream/braid/internal/server"
)

// Braid's admin HTTP API (the serve --http-addr listener) answers what the
// Kafka protocol cannot carry: shard lineage and resharding.

const envAdminAddr = "BRAID_ADMIN_ADDR"

// defaultAdminAddr is where `braid serve` listens for HTTP by default.
var defaultAdminAddr = server.Defaults().HTTPAddr

// addAdminFlag registers --admin-addr on cmd; usage says what the command
// needs the address for.
func (f *clientFlags) addAdminFlag(cmd *cobra.Command, persistent bool, usage string) {
	def := defaultAdminAddr
	if env := strings.TrimSpace(os.Getenv(envAdminAddr)); env != "" {
		def = env
	}
	fs := cmd.Flags()
	if persistent {
		fs = cmd.PersistentFlags()
	}
	fs.StringVar(&f.adminAddr, "admin-addr", def, usage+"; $"+envAdminAddr+" sets the default")
}

// adminStream is GET /v1/streams/{name}: the fields the CLI uses.
type adminStream struct {
	Name      string       `json:"name"`
	Compacted bool         `json:"compacted"`
	Routing   string       `json:"routing"`
	Shards    []adminShard `json:"shards"`
}

type adminShard struct {
	Shard         int32       `json:"shard"`
	LogStart      int64       `json:"log_start"`
	HighWatermark int64       `json:"high_watermark"`
	Range         *adminRange `json:"range,omitempty"`
	State         string      `json:"state"`
	EndOffset     *int64      `json:"end_offset,omitempty"`
	Parents       []int32     `json:"parents"`
	Children      []int32     `json:"children"`
	// Compaction state, meaningful for compacted streams only.
	DirtyRatio  float64 `json:"dirty_ratio"`
	CleanedTo   int64   `json:"cleaned_to"`
	LastCleaned string  `json:"last_cleaned"`
}

// adminRange is a shard's inclusive hash-key range, decimal as Kinesis shows it.
type adminRange struct {
	Start string `json:"start"`
	End   string `json:"end"`
}

// errAdminStatus is an answer other than 200 from the admin API; Error is
// the server's own message.
type errAdminStatus struct {
	status int
	msg    string
}

func (e *errAdminStatus) Error() string { return e.msg }

// adminCall sends one request to the admin API with body as JSON and
// decodes a 2xx answer into out. Other answers become an *errAdminStatus
// carrying the server's message ({"error": ...} or plain text).
func (f *clientFlags) adminCall(ctx context.Context, method, path string, body, out any) error {
	var raw []byte
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		raw = b
	}
	return f.adminDo(ctx, method, path, "application/json", raw, out)
}

// adminDo is adminCall with the body as bytes of the given content type
// (nil for none). A 2xx answer is decoded into out unless out is nil or
// the answer is empty (204).
func (f *clientFlags) adminDo(ctx context.Context, method, path, contentType string, body []byte, out any) error {
	if f.adminAddr == "" {
		return errors.New("no admin address: set --admin-addr or $" + envAdminAddr + " to braid's HTTP address")
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+f.adminAddr+path, rd)
	if err != nil {
		return fmt.Errorf("admin address %q: %w", f.adminAddr, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("admin API at %s: %w", f.adminAddr, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("admin API at %s: read answer: %w", f.adminAddr, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var e struct {
			Error string `json:"error"`
		}
		msg := strings.TrimSpace(string(raw))
		if json.Unmarshal(raw, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		if msg == "" {
			msg = resp.Status
		}
		return &errAdminStatus{status: resp.StatusCode, msg: msg}
	}
	if out == nil || len(bytes.TrimSpace(raw)) == 0 {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("admin API at %s: answer is not the expected JSON: %w", f.adminAddr, err)
	}
	return nil
}

// streamState asks GET /v1/streams/{name}.
func (f *clientFlags) streamState(ctx context.Context, name string) (*adminStream, error) {
	var st adminStream
	if err := f.adminCall(ctx, http.MethodGet, "/v1/streams/"+url.PathEscape(name), nil, &st); err != nil {
		return nil, err
	}
	return &st, nil
}
