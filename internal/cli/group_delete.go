package cli

import (
	"context"
	"fmt"
	"slices"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
)

type groupDeleteResult struct {
	Group   string `json:"group"`
	Deleted bool   `json:"deleted"`
	Error   string `json:"error,omitempty"`
}

func newGroupDeleteCmd(f *clientFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "delete GROUP...",
		Aliases: []string{"rm"},
		Short:   "Delete consumer groups and their committed offsets",
		Long: `Delete one or more consumer groups. A group's committed offsets are removed,
so a consumer that joins it later starts where its reset policy says
(usually the start or the end of each shard). This cannot be undone.

A group that still has members is refused: stop its consumers first. Each
group is deleted on its own; if any of them fails, the others are still
deleted, every failure is reported and the exit status is non-zero.

With --format json the result of every group is printed as an array of
{"group", "deleted", "error"} objects, failures included.

Examples:
  braid group delete payments
  braid group delete old-etl old-audit --format json`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var names []string
			for _, a := range args {
				if !slices.Contains(names, a) {
					names = append(names, a)
				}
			}
			return f.withAdmin(cmd.Context(), func(ctx context.Context, adm *kadm.Client) error {
				resps, err := adm.DeleteGroups(ctx, names...)
				if err != nil && len(resps) == 0 {
					what := fmt.Sprintf("delete group %q", names[0])
					if len(names) > 1 {
						what = fmt.Sprintf("delete %d groups", len(names))
					}
					return requestError(what, f, err)
				}

				results := make([]groupDeleteResult, 0, len(names))
				var failures []error
				for _, name := range names {
					r := groupDeleteResult{Group: name}
					var ferr error
					resp, ok := resps[name]
					switch {
					case !ok && err != nil:
						ferr = requestError(fmt.Sprintf("delete group %q", name), f, err)
					case !ok:
						ferr = fmt.Errorf("delete group %q: broker response did not mention the group", name)
					case resp.Err != nil:
						ferr = groupError("delete", name, resp.Err, resp.ErrMessage)
					default:
						r.Deleted = true
					}
					if ferr != nil {
						r.Error = ferr.Error()
						failures = append(failures, ferr)
					}
					results = append(results, r)
				}

				out := cmd.OutOrStdout()
				if f.json() {
					if err := writeJSON(out, results); err != nil {
						return err
					}
				} else {
					for _, r := range results {
						if r.Deleted {
							fmt.Fprintf(out, "deleted group %q\n", r.Group)
						}
					}
				}
				switch len(failures) {
				case 0:
					return nil
				case 1:
					return failures[0]
				}
				errOut := cmd.ErrOrStderr()
				for _, e := range failures {
					fmt.Fprintln(errOut, "braid:", e)
				}
				fmt.Fprintf(errOut, "braid: %d of %d groups were not deleted\n", len(failures), len(names))
				return errSilent
			})
		},
	}
	return cmd
}
