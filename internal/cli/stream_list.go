package cli

import (
	"context"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
)

func newStreamListCmd(f *clientFlags) *cobra.Command {
	var internal bool
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List streams",
		Long: `List the streams on the cluster with their shard counts.

Internal streams (such as Kafka's __consumer_offsets) are hidden unless
--internal is given.

Examples:
  braid stream list
  braid stream list --internal
  braid stream list --format json
  BRAID_BROKERS=10.0.0.5:9092 braid stream list`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.withAdmin(cmd.Context(), func(ctx context.Context, adm *kadm.Client) error {
				var topics kadm.TopicDetails
				var err error
				if internal {
					topics, err = adm.ListTopicsWithInternal(ctx)
				} else {
					topics, err = adm.ListTopics(ctx)
				}
				if err != nil {
					return requestError("list streams", f, err)
				}

				type streamInfo struct {
					Name     string `json:"name"`
					ID       string `json:"id,omitempty"`
					Shards   int    `json:"shards"`
					Internal bool   `json:"internal,omitempty"`
					Error    string `json:"error,omitempty"`
				}
				out := []streamInfo{}
				anyErr := false
				for _, t := range topics.Sorted() {
					s := streamInfo{Name: t.Topic, Shards: len(t.Partitions), Internal: t.IsInternal}
					if t.ID != (kadm.TopicID{}) {
						s.ID = t.ID.String()
					}
					if t.Err != nil {
						s.Error = t.Err.Error()
						anyErr = true
					}
					out = append(out, s)
				}
				header := []string{"NAME", "SHARDS"}
				if anyErr {
					header = append(header, "ERROR")
				}
				rows := make([][]string, 0, len(out))
				for _, s := range out {
					row := []string{s.Name, itoa(s.Shards)}
					if anyErr {
						row = append(row, s.Error)
					}
					rows = append(rows, row)
				}
				return f.print(cmd.OutOrStdout(), out, header, rows)
			})
		},
	}
	cmd.Flags().BoolVar(&internal, "internal", false, "include internal streams")
	return cmd
}
