package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newStreamScaleCmd(f *clientFlags) *cobra.Command {
	var shards int
	cmd := &cobra.Command{
		Use:   "scale NAME --shards N",
		Short: "Change a stream's number of open shards",
		Long: `Scale a stream to N open shards of equal hash-key ranges: the server plans
the splits and merges that get there and applies them as one change, so
readers never see a half-done layout. Closed shards stay readable. N is at
most the stream's braid.shards.max (default 1024).

This talks to Braid's admin HTTP API (--admin-addr), not the Kafka protocol.

Examples:
  braid stream scale orders --shards 8
  braid stream scale orders --shards 2 --format json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if shards < 1 {
				return fmt.Errorf("--shards must be at least 1, got %d", shards)
			}
			return f.reshard(cmd.Context(), cmd.OutOrStdout(), "scale", args[0], map[string]any{"shards": shards})
		},
	}
	cmd.Flags().IntVar(&shards, "shards", 0, "target number of open shards (required)")
	cmd.MarkFlagRequired("shards")
	return cmd
}
