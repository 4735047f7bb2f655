package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
)

func newStreamDeleteCmd(f *clientFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "delete NAME",
		Aliases: []string{"rm"},
		Short:   "Delete a stream and all of its records",
		Long: `Delete a stream. Every record in every shard is removed; this cannot be
undone.

Examples:
  braid stream delete orders
  braid stream delete orders --brokers broker-1:9092,broker-2:9092
  braid stream delete orders --format json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			return f.withAdmin(cmd.Context(), func(ctx context.Context, adm *kadm.Client) error {
				resps, err := adm.DeleteTopics(ctx, name)
				if err != nil {
					return requestError(fmt.Sprintf("delete stream %q", name), f, err)
				}
				resp, err := resps.On(name, nil)
				if err != nil {
					return fmt.Errorf("delete stream %q: broker response did not mention the stream", name)
				}
				if resp.Err != nil {
					return streamError("delete", name, resp.Err, resp.ErrMessage)
				}
				if f.json() {
					return writeJSON(cmd.OutOrStdout(), struct {
						Name    string `json:"name"`
						Deleted bool   `json:"deleted"`
					}{name, true})
				}
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "deleted stream %q\n", name)
				return err
			})
		},
	}
	return cmd
}
