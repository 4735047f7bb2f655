package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

func newConnectorDescribeCmd(f *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "describe NAME",
		Short: "Show a connector's state, progress, per-shard lag and definition",
		Long: `Describe one connector: its type and kind (sink or source), state, delivery
guarantee, the records and bytes it has moved, its recent rate, its last error,
how many records its error policy dead-lettered or skipped, how often it
restarted, and its definition.

For a sink, a table shows every shard it reads: the position (the offset of
the next record it will deliver), the shard's end offset and the lag between
them. On a sink's first run, BACKFILL shows how much of what the streams held
when it started it has delivered, until it has caught up.

Examples:
  braid connector describe orders-archive
  braid connector describe orders-archive --format json | jq '.shards[] | select(.lag > 1000)'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			raw, d, err := f.describeConnector(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if f.json() {
				return writeRawJSON(cmd.OutOrStdout(), raw)
			}
			return printConnectorDescription(cmd.OutOrStdout(), d)
		},
	}
}

func printConnectorDescription(w io.Writer, d *connectorDescription) error {
	typ := dashIfEmpty(d.Type)
	if d.Kind != "" {
		typ += " (" + d.Kind + ")"
	}
	rows := [][]string{
		{"NAME", d.Name},
		{"TYPE", typ},
		{"STATE", dashIfEmpty(d.State)},
		{"DELIVERY", dashIfEmpty(d.Delivery)},
		{"RECORDS", jsonText(d.RecordsTotal) + " (" + bytesText(d.BytesTotal) + ")"},
		{"RATE", rateText(d.RecordsPerSec)},
	}
	if d.Kind != "source" {
		rows = append(rows, []string{"LAG", jsonText(d.Lag)})
	}
	if b := d.Backfill; b != nil {
		rows = append(rows, []string{"BACKFILL", fmt.Sprintf("%s of %s records (%s%%)", jsonText(b.Done), jsonText(b.Total), percentText(b.Percent))})
	}
	rows = append(rows,
		[]string{"DEAD-LETTERED", jsonText(d.DeadLetteredTotal)},
		[]string{"SKIPPED", jsonText(d.SkippedTotal)},
		[]string{"RESTARTS", jsonText(d.Restarts)},
	)
	lastErr := "-"
	if e := d.LastError; e != nil && strings.TrimSpace(e.Message) != "" {
		lastErr = errorText(e, 0)
		if e.At != "" {
			lastErr += " (at " + e.At + ")"
		}
	}
	rows = append(rows, []string{"LAST-ERROR", lastErr})
	if err := writeTable(w, nil, rows); err != nil {
		return err
	}

	if len(d.Shards) > 0 {
		shards := make([][]string, 0, len(d.Shards))
		for _, s := range d.Shards {
			shards = append(shards, []string{s.Stream, jsonText(s.Shard), jsonText(s.Position), jsonText(s.End), jsonText(s.Lag)})
		}
		fmt.Fprintln(w)
		if err := writeTable(w, []string{"STREAM", "SHARD", "POSITION", "END", "LAG"}, shards); err != nil {
			return err
		}
	}

	if t := bytes.TrimSpace(d.Definition); len(t) > 0 && string(t) != "null" {
		var buf bytes.Buffer
		if err := json.Indent(&buf, t, "  ", "  "); err == nil {
			fmt.Fprintln(w)
			fmt.Fprintln(w, "DEFINITION")
			_, err := fmt.Fprintf(w, "  %s\n", buf.Bytes())
			return err
		}
	}
	return nil
}

// percentText shows a percentage with one decimal.
func percentText(raw json.RawMessage) string {
	var p float64
	if json.Unmarshal(raw, &p) != nil {
		return jsonText(raw)
	}
	return fmt.Sprintf("%.1f", p)
}
