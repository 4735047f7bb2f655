package cli

import (
	"net/http"
	"strconv"

	"github.com/spf13/cobra"
)

func newConnectorTypesCmd(f *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "types",
		Short: "List the connector types this node can run",
		Long: `List the connector types the node has: the name a definition's "type" gives,
whether it is a sink or a source, whether it can deliver exactly once (a
definition asking for "delivery: exactly-once" on a type that cannot is
refused), and one line about it.

Examples:
  braid connector types
  braid connector types --format json | jq -r '.types[] | select(.exactly_once) | .name'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var list struct {
				Types []struct {
					Name        string `json:"name"`
					Kind        string `json:"kind"`
					ExactlyOnce bool   `json:"exactly_once"`
					Doc         string `json:"doc"`
				} `json:"types"`
			}
			raw, err := f.connectorCall(cmd.Context(), http.MethodGet, "/v1/connector-types", "", nil, &list)
			if err != nil {
				return err
			}
			if f.json() {
				return writeRawJSON(cmd.OutOrStdout(), raw)
			}
			rows := make([][]string, 0, len(list.Types))
			for _, t := range list.Types {
				rows = append(rows, []string{t.Name, dashIfEmpty(t.Kind), strconv.FormatBool(t.ExactlyOnce), dashIfEmpty(t.Doc)})
			}
			return writeTable(cmd.OutOrStdout(), []string{"NAME", "KIND", "EXACTLY-ONCE", "DOC"}, rows)
		},
	}
}
