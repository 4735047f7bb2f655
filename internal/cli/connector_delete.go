package cli

import (
	"fmt"
	"net/http"

	"github.com/spf13/cobra"
)

func newConnectorDeleteCmd(f *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "delete NAME",
		Aliases: []string{"rm"},
		Short:   "Stop a connector and remove it",
		Long: `Delete a connector: stop it and remove its definition and its state on the
node. What it already delivered stays in the target, and the records it read
stay in their streams.

Examples:
  braid connector delete orders-archive`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := f.connectorCall(cmd.Context(), http.MethodDelete, connectorPath(args[0], ""), "", nil, nil); err != nil {
				return err
			}
			if f.json() {
				return writeJSON(cmd.OutOrStdout(), struct {
					Name    string `json:"name"`
					Deleted bool   `json:"deleted"`
				}{args[0], true})
			}
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "connector %q deleted\n", args[0])
			return err
		},
	}
}
