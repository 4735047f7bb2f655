package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/braidstream/braid/internal/catalog"
)

// useBrokerDefault asks the broker to pick the replication factor
// (CreateTopics v4+), since braid decides durability server-side.
const useBrokerDefault = -1

func newStreamCreateCmd(f *clientFlags) *cobra.Command {
	var (
		shards  int32
		configs []string
	)
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a stream",
		Long: `Create a stream with the given number of shards (Kafka partitions).

Per-stream settings are passed as --config key=value and use Kafka topic
config names (retention.ms, cleanup.policy, ...). The replication factor is
left to the broker.

Streams created here route records by key (braid.routing=key): the server
puts every keyed record in the open shard that owns the MD5 of its key, so
a key's records stay in order across split, merge and scale. Pass
--config braid.routing=partition to keep Kafka's rule (a record lands in the
partition the producer chose), which is what Kafka's CreateTopics gives.
Against a Kafka broker that does not know braid.routing the stream is
created without it.

Examples:
  braid stream create orders
  braid stream create orders --shards 12
  braid stream create clicks --shards 4 --config retention.ms=86400000 --config segment.bytes=134217728
  braid stream create orders --format json
  braid stream create legacy --shards 3 --config braid.routing=partition`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if shards < 1 {
				return fmt.Errorf("--shards must be at least 1, got %d", shards)
			}
			cfg, err := parseConfigs(configs)
			if err != nil {
				return err
			}
			defaultRouting := false
			if _, set := cfg[catalog.RoutingConfig]; !set {
				if cfg == nil {
					cfg = map[string]*string{}
				}
				cfg[catalog.RoutingConfig] = kadm.StringPtr("key")
				defaultRouting = true
			}
			return f.withAdmin(cmd.Context(), func(ctx context.Context, adm *kadm.Client) error {
				create := func() (kadm.CreateTopicResponse, error) {
					resps, err := adm.CreateTopics(ctx, shards, useBrokerDefault, cfg, name)
					if err != nil {
						return kadm.CreateTopicResponse{}, requestError(fmt.Sprintf("create stream %q", name), f, err)
					}
					resp, err := resps.On(name, nil)
					if err != nil {
						return resp, fmt.Errorf("create stream %q: broker response did not mention the stream", name)
					}
					return resp, nil
				}
				resp, err := create()
				if err == nil && defaultRouting && unknownRoutingConfig(resp.Err, resp.ErrMessage) {
					// Not braid: a refused create changed nothing, so ask
					// again without braid's own config.
					delete(cfg, catalog.RoutingConfig)
					resp, err = create()
				}
				if err != nil {
					return err
				}
				if resp.Err != nil {
					return streamError("create", name, resp.Err, resp.ErrMessage)
				}
				// Old brokers leave NumPartitions at -1 in the response.
				if resp.NumPartitions > 0 {
					shards = resp.NumPartitions
				}
				out := struct {
					Name   string `json:"name"`
					ID     string `json:"id,omitempty"`
					Shards int32  `json:"shards"`
				}{Name: name, Shards: shards}
				if resp.ID != (kadm.TopicID{}) {
					out.ID = resp.ID.String()
				}
				if f.json() {
					return writeJSON(cmd.OutOrStdout(), out)
				}
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "created stream %q with %d shard%s\n", name, shards, plural(int64(shards)))
				return err
			})
		},
	}
	cmd.Flags().Int32Var(&shards, "shards", 1, "number of shards (Kafka partitions)")
	cmd.Flags().StringArrayVar(&configs, "config", nil, "stream config as key=value (repeatable)")
	return cmd
}

// unknownRoutingConfig reports whether a CreateTopics refusal is a broker
// that does not know braid.routing (Kafka answers INVALID_CONFIG, "Unknown
// topic config name: braid.routing").
func unknownRoutingConfig(err error, msg string) bool {
	return errors.Is(err, kerr.InvalidConfig) && strings.Contains(msg, catalog.RoutingConfig)
}

// parseConfigs turns repeated key=value flags into the map kadm expects.
// StringArray (not StringSlice) is used for the flag because values such as
// a list of hosts may legitimately contain commas.
func parseConfigs(kvs []string) (map[string]*string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	out := make(map[string]*string, len(kvs))
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("--config %q: want key=value", kv)
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("--config %q given more than once", k)
		}
		out[k] = kadm.StringPtr(v)
	}
	return out, nil
}
