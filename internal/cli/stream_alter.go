package cli

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
)

func newStreamAlterCmd(f *clientFlags) *cobra.Command {
	var set, unset []string
	cmd := &cobra.Command{
		Use:   "alter NAME",
		Short: "Change a stream's configs",
		Long: `Change a stream's configs in place (Kafka's IncrementalAlterConfigs):
--config key=value sets a config, --delete-config key returns it to the
broker default. Configs not named are left as they are. The change applies
at once: retention and the cleaner use the new values on their next pass.

Examples:
  braid stream alter orders --config retention.ms=3600000
  braid stream alter profiles --config cleanup.policy=compact --config delete.retention.ms=60000
  braid stream alter orders --delete-config retention.ms`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			cfg, err := parseConfigs(set)
			if err != nil {
				return err
			}
			var alters []kadm.AlterConfig
			for k, v := range cfg {
				alters = append(alters, kadm.AlterConfig{Op: kadm.SetConfig, Name: k, Value: v})
			}
			for _, k := range unset {
				if _, both := cfg[k]; both {
					return fmt.Errorf("config %q is both set and deleted", k)
				}
				alters = append(alters, kadm.AlterConfig{Op: kadm.DeleteConfig, Name: k})
			}
			if len(alters) == 0 {
				return errors.New("nothing to change: give --config key=value or --delete-config key")
			}
			sort.Slice(alters, func(i, j int) bool { return alters[i].Name < alters[j].Name })
			return f.withAdmin(cmd.Context(), func(ctx context.Context, adm *kadm.Client) error {
				resps, err := adm.AlterTopicConfigs(ctx, alters, name)
				if err != nil {
					return requestError(fmt.Sprintf("alter stream %q", name), f, err)
				}
				resp, err := resps.On(name, nil)
				if err != nil {
					return fmt.Errorf("alter stream %q: broker response did not mention the stream", name)
				}
				if resp.Err != nil {
					return streamError("alter", name, resp.Err, resp.ErrMessage)
				}
				if f.json() {
					changed := map[string]*string{}
					for _, a := range alters {
						changed[a.Name] = a.Value
					}
					return writeJSON(cmd.OutOrStdout(), struct {
						Name    string             `json:"name"`
						Changed map[string]*string `json:"changed"`
					}{name, changed})
				}
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "altered stream %q: %d config%s changed\n", name, len(alters), plural(int64(len(alters))))
				return err
			})
		},
	}
	cmd.Flags().StringArrayVar(&set, "config", nil, "config to set, key=value (repeatable)")
	cmd.Flags().StringArrayVar(&unset, "delete-config", nil, "config to return to the default (repeatable)")
	return cmd
}
