package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newStreamMergeCmd(f *clientFlags) *cobra.Command {
	var shards string
	cmd := &cobra.Command{
		Use:   "merge NAME --shards A,B",
		Short: "Merge two adjacent shards into one",
		Long: `Merge two open shards whose hash-key ranges are adjacent: both are closed
(they stay readable) and one new shard takes over their joined range, with
both as parents. Readers that follow lineage read both parents to their end
before the child.

This talks to Braid's admin HTTP API (--admin-addr), not the Kafka protocol.

Examples:
  braid stream merge orders --shards 5,6
  braid stream merge orders --shards 5,6 --format json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			parts := splitList(shards)
			if len(parts) != 2 {
				return fmt.Errorf("--shards %q: want two shard ids, A,B", shards)
			}
			a, err := parseShardID("--shards", parts[0])
			if err != nil {
				return err
			}
			b, err := parseShardID("--shards", parts[1])
			if err != nil {
				return err
			}
			if a == b {
				return fmt.Errorf("--shards %q: a shard cannot merge with itself", shards)
			}
			return f.reshard(cmd.Context(), cmd.OutOrStdout(), "merge", args[0], map[string]any{"shards": []int32{a, b}})
		},
	}
	cmd.Flags().StringVar(&shards, "shards", "", "the two open, adjacent shards to merge, A,B (required)")
	cmd.MarkFlagRequired("shards")
	return cmd
}
