package cli

import (
	"encoding/json"
	"net/http"

	"github.com/spf13/cobra"
)

// lastErrorWidth is how much of a last error the list shows.
const lastErrorWidth = 60

func newConnectorListCmd(f *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List connectors with their state, lag and rate",
		Long: `List the node's connectors: name, type, state (starting, running, paused,
retrying or failed), lag (records the sink has yet to deliver, summed over
its shards; "-" for sources), rate (records per second, recently) and the
start of the last error.

Examples:
  braid connector list
  braid connector list --format json | jq -r '.connectors[] | select(.state == "failed") | .name'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var list struct {
				Connectors []connectorDescription `json:"connectors"`
			}
			raw, err := f.connectorCall(cmd.Context(), http.MethodGet, "/v1/connectors", "", nil, &list)
			if err != nil {
				return err
			}
			if f.json() {
				return writeRawJSON(cmd.OutOrStdout(), raw)
			}
			rows := make([][]string, 0, len(list.Connectors))
			for _, c := range list.Connectors {
				lag := json.RawMessage(nil)
				if c.Kind != "source" {
					lag = c.Lag
				}
				rows = append(rows, []string{c.Name, dashIfEmpty(c.Type), dashIfEmpty(c.State), jsonText(lag), rateText(c.RecordsPerSec), errorText(c.LastError, lastErrorWidth)})
			}
			return writeTable(cmd.OutOrStdout(), []string{"NAME", "TYPE", "STATE", "LAG", "RATE", "LAST-ERROR"}, rows)
		},
	}
}
