package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/braidstream/braid/internal/catalog"
)

func newStreamSplitCmd(f *clientFlags) *cobra.Command {
	var (
		shard string
		at    string
	)
	cmd := &cobra.Command{
		Use:   "split NAME --shard ID [--at HASHKEY]",
		Short: "Split a shard into two",
		Long: `Split an open shard into two children: the shard is closed (it stays
readable, and stays listed in Kafka Metadata) and two new shards take over
its hash-key range, the first [start, HASHKEY-1], the second [HASHKEY, end].
Without --at the range is cut in the middle. HASHKEY is a decimal number in
the 128-bit hash-key space; braid stream describe shows every shard's range.

Keyed records of a stream with braid.routing=key keep their per-key order
across the split: readers that follow lineage (consumer groups, braid
consume) read the parent to its end before its children.

This talks to Braid's admin HTTP API (--admin-addr), not the Kafka protocol.

Examples:
  braid stream split orders --shard 2
  braid stream split orders --shard 2 --at 85070591730234615865843651857942052864
  braid stream split orders --shard 2 --format json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("shard") {
				return errors.New("--shard is required: the id of the shard to split")
			}
			id, err := parseShardID("--shard", shard)
			if err != nil {
				return err
			}
			body := map[string]any{"shard": id}
			if cmd.Flags().Changed("at") {
				k, err := catalog.ParseHashKey(at)
				if err != nil {
					return fmt.Errorf("--at %q: want a decimal hash key in [0, 2^128)", at)
				}
				body["at"] = k.String()
			}
			return f.reshard(cmd.Context(), cmd.OutOrStdout(), "split", args[0], body)
		},
	}
	cmd.Flags().StringVar(&shard, "shard", "", "id of the open shard to split (required)")
	cmd.Flags().StringVar(&at, "at", "", "hash key where the second child starts, decimal (default: the middle of the range)")
	return cmd
}
