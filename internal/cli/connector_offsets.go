package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/spf13/cobra"
)

// connectorOffset is one shard's position in the offsets API: the offset
// of the next record the connector delivers there.
type connectorOffset struct {
	Stream string `json:"stream"`
	Shard  int32  `json:"shard"`
	Offset int64  `json:"offset"`
}

// connectorOffsets is GET /v1/connectors/{name}/offsets. Position is a
// source's opaque position (base64), null for sinks.
type connectorOffsets struct {
	Offsets  []connectorOffset `json:"offsets"`
	Position *string           `json:"position"`
}

func newConnectorOffsetsCmd(f *clientFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "offsets NAME",
		Short: "Show a connector's offsets, or reset them (offsets reset)",
		Long: `Show where a connector is. For a sink, every shard it reads with the offset
of the next record it will deliver there (its consumer group's committed
offset, or the progress an exactly-once sink keeps in its target). For a
source, its position in the outside system, as the source stored it in Braid
(opaque bytes, shown in base64).

"braid connector offsets reset" moves a paused sink's offsets.

Examples:
  braid connector offsets orders-archive
  braid connector offsets orders-archive --format json | jq '.offsets[] | select(.stream == "orders")'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var o connectorOffsets
			raw, err := f.connectorCall(cmd.Context(), http.MethodGet, connectorPath(args[0], "/offsets"), "", nil, &o)
			if err != nil {
				return err
			}
			if f.json() {
				return writeRawJSON(cmd.OutOrStdout(), raw)
			}
			return printConnectorOffsets(cmd.OutOrStdout(), &o)
		},
	}
	cmd.AddCommand(newConnectorOffsetsResetCmd(f))
	return cmd
}

func printConnectorOffsets(w io.Writer, o *connectorOffsets) error {
	if o.Position != nil {
		if _, err := fmt.Fprintf(w, "POSITION  %s\n", dashIfEmpty(*o.Position)); err != nil {
			return err
		}
		if len(o.Offsets) == 0 {
			return nil
		}
		fmt.Fprintln(w)
	}
	if len(o.Offsets) == 0 {
		_, err := fmt.Fprintln(w, "no offsets yet")
		return err
	}
	rows := make([][]string, 0, len(o.Offsets))
	for _, s := range o.Offsets {
		rows = append(rows, []string{s.Stream, itoa(s.Shard), itoa(s.Offset)})
	}
	return writeTable(w, []string{"STREAM", "SHARD", "OFFSET"}, rows)
}

// offsetsAnswer prints what offsets reset answered: the offsets, when the
// node sent them.
func offsetsAnswer(w io.Writer, raw json.RawMessage) error {
	var o connectorOffsets
	if json.Unmarshal(raw, &o) != nil || (o.Offsets == nil && o.Position == nil) {
		return nil
	}
	return printConnectorOffsets(w, &o)
}
