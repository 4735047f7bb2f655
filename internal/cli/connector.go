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

	"github.com/spf13/cobra"
)

func init() { register(newConnectorCmd) }

func newConnectorCmd() *cobra.Command {
	f := &clientFlags{}
	cmd := &cobra.Command{
		Use:     "connector",
		Aliases: []string{"connectors"},
		Short:   "Create, list, describe, pause, resume, restart and delete connectors",
		Long: `Manage the connectors a braid node runs. A connector is a sink, which moves
the records of streams into another system (object storage, PostgreSQL, HTTP,
files), or a source, which brings records from another system into a stream.
It runs inside braid serve; you describe it in a small YAML or JSON document
(a definition) and create it with these commands.

These commands talk to the node's admin HTTP API (--admin-addr), not to the
Kafka listener. Errors are the node's own messages, with a non-zero exit.

Examples:
  braid connector types
  braid connector create -f orders-archive.yaml
  braid connector list
  braid connector describe orders-archive
  braid connector pause orders-archive
  braid connector offsets reset orders-archive --to earliest
  braid connector resume orders-archive
  braid connector delete orders-archive`,
	}
	f.addFormatFlag(cmd, true)
	f.addAdminFlag(cmd, true, "Braid's HTTP address (host:port), where the connector API is served")
	cmd.AddCommand(
		newConnectorCreateCmd(f),
		newConnectorListCmd(f),
		newConnectorDescribeCmd(f),
		newConnectorPauseCmd(f),
		newConnectorResumeCmd(f),
		newConnectorRestartCmd(f),
		newConnectorDeleteCmd(f),
		newConnectorOffsetsCmd(f),
		newConnectorTypesCmd(f),
	)
	return cmd
}

// connectorDescription is the API's describe object: the fields the text
// output shows. Numbers that may be missing or null are raw, so a field
// the node leaves out shows as "-" instead of failing the command.
type connectorDescription struct {
	Name              string             `json:"name"`
	Type              string             `json:"type"`
	Kind              string             `json:"kind"`
	State             string             `json:"state"`
	Delivery          string             `json:"delivery"`
	Definition        json.RawMessage    `json:"definition"`
	LastError         *connectorError    `json:"last_error"`
	RecordsTotal      json.RawMessage    `json:"records_total"`
	BytesTotal        json.RawMessage    `json:"bytes_total"`
	RecordsPerSec     json.RawMessage    `json:"records_per_sec"`
	Lag               json.RawMessage    `json:"lag"`
	Shards            []connectorShard   `json:"shards"`
	Backfill          *connectorBackfill `json:"backfill"`
	DeadLetteredTotal json.RawMessage    `json:"dead_lettered_total"`
	SkippedTotal      json.RawMessage    `json:"skipped_total"`
	Restarts          json.RawMessage    `json:"restarts"`
}

type connectorError struct {
	Message string `json:"message"`
	At      string `json:"at"`
}

type connectorShard struct {
	Stream   string          `json:"stream"`
	Shard    json.RawMessage `json:"shard"`
	Position json.RawMessage `json:"position"`
	End      json.RawMessage `json:"end"`
	Lag      json.RawMessage `json:"lag"`
}

type connectorBackfill struct {
	Done    json.RawMessage `json:"done"`
	Total   json.RawMessage `json:"total"`
	Percent json.RawMessage `json:"percent"`
}

// connectorPath is the API path of one connector, plus suffix.
func connectorPath(name, suffix string) string {
	return "/v1/connectors/" + url.PathEscape(name) + suffix
}

// connectorCall asks the connector API under the admin timeout. The answer
// is returned as raw JSON (the json format prints it as the node wrote it)
// and decoded into out when out is not nil.
func (f *clientFlags) connectorCall(ctx context.Context, method, path, contentType string, body []byte, out any) (json.RawMessage, error) {
	ctx, cancel := adminContext(ctx)
	defer cancel()
	var raw json.RawMessage
	if err := f.adminDo(ctx, method, path, contentType, body, &raw); err != nil {
		var st *errAdminStatus
		if errors.As(err, &st) && st.status == http.StatusNotFound && !strings.HasPrefix(path, "/v1/connectors/") {
			// A node without the connector API answers 404 on the
			// collection itself, in plain text.
			return nil, fmt.Errorf("the node at %s has no connector API (%s)", f.adminAddr, st.msg)
		}
		return nil, err
	}
	if out != nil {
		if len(raw) == 0 {
			return nil, fmt.Errorf("admin API at %s: empty answer", f.adminAddr)
		}
		if err := json.Unmarshal(raw, out); err != nil {
			return nil, fmt.Errorf("admin API at %s: answer is not the expected JSON: %w", f.adminAddr, err)
		}
	}
	return raw, nil
}

// describeConnector asks GET /v1/connectors/{name}.
func (f *clientFlags) describeConnector(ctx context.Context, name string) (json.RawMessage, *connectorDescription, error) {
	var d connectorDescription
	raw, err := f.connectorCall(ctx, http.MethodGet, connectorPath(name, ""), "", nil, &d)
	if err != nil {
		return nil, nil, err
	}
	return raw, &d, nil
}

// writeRawJSON prints an answer of the API indented, as the node wrote it.
func writeRawJSON(w io.Writer, raw json.RawMessage) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return fmt.Errorf("write json: %w", err)
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}

// jsonText shows a raw JSON scalar for a table cell: numbers as written,
// strings unquoted, null or missing as "-".
func jsonText(raw json.RawMessage) string {
	t := strings.TrimSpace(string(raw))
	if t == "" || t == "null" {
		return "-"
	}
	if t[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return dashIfEmpty(s)
		}
	}
	return t
}

// rateText shows records per second with one decimal.
func rateText(raw json.RawMessage) string {
	v, err := strconv.ParseFloat(strings.TrimSpace(string(raw)), 64)
	if err != nil {
		return jsonText(raw)
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + "/s"
}

// bytesText shows a byte count in binary units.
func bytesText(raw json.RawMessage) string {
	n, err := strconv.ParseFloat(strings.TrimSpace(string(raw)), 64)
	if err != nil {
		return jsonText(raw)
	}
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for n >= 1024 && i < len(units)-1 {
		n /= 1024
		i++
	}
	if i == 0 {
		return strconv.FormatFloat(n, 'f', 0, 64) + " B"
	}
	return strconv.FormatFloat(n, 'f', 1, 64) + " " + units[i]
}

// errorText is a last error on one line, cut to max runes.
func errorText(e *connectorError, max int) string {
	if e == nil || strings.TrimSpace(e.Message) == "" {
		return "-"
	}
	msg := strings.Join(strings.Fields(e.Message), " ")
	if r := []rune(msg); max > 0 && len(r) > max {
		msg = string(r[:max-1]) + "…"
	}
	return msg
}

// connectorStateCmd builds pause, resume and restart: one POST that
// answers the describe object.
func connectorStateCmd(f *clientFlags, verb, done, short, long string) *cobra.Command {
	return &cobra.Command{
		Use:   verb + " NAME",
		Short: short,
		Long:  long,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var d connectorDescription
			raw, err := f.connectorCall(cmd.Context(), http.MethodPost, connectorPath(args[0], "/"+verb), "", nil, &d)
			if err != nil {
				return err
			}
			if f.json() {
				return writeRawJSON(cmd.OutOrStdout(), raw)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "connector %q %s (state %s)\n", args[0], done, dashIfEmpty(d.State))
			return err
		},
	}
}
