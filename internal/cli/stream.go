package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kerr"
)

func init() { register(newStreamCmd) }

func newStreamCmd() *cobra.Command {
	f := &clientFlags{}
	cmd := &cobra.Command{
		Use:     "stream",
		Aliases: []string{"streams", "topic"},
		Short:   "Create, list, describe, alter, delete and reshard streams",
		Long: `Manage streams. A stream is an ordered, durable log split into shards; Kafka
clients see a stream as a topic and its shards as partitions.

Most of these commands speak the Kafka protocol, so they work against any
Kafka-compatible broker, not only braid. split, merge and scale, and the
lineage columns of describe, use Braid's admin HTTP API (--admin-addr).

Examples:
  braid stream create orders --shards 6
  braid stream list
  braid stream describe orders --format json
  braid stream alter orders --config retention.ms=3600000
  braid stream delete orders
  braid stream split orders --shard 2
  braid stream merge orders --shards 6,7
  braid stream scale orders --shards 8`,
	}
	f.register(cmd, true)
	f.addAdminFlag(cmd, true, "Braid's HTTP address (host:port), for split, merge, scale and describe's lineage; empty skips it in describe")
	cmd.AddCommand(
		newStreamCreateCmd(f),
		newStreamListCmd(f),
		newStreamDescribeCmd(f),
		newStreamAlterCmd(f),
		newStreamDeleteCmd(f),
		newStreamSplitCmd(f),
		newStreamMergeCmd(f),
		newStreamScaleCmd(f),
	)
	return cmd
}

// brokerError carries a message written for people while keeping the
// broker's error reachable through errors.Is / errors.As.
type brokerError struct {
	msg string
	err error
}

func (e *brokerError) Error() string { return e.msg }
func (e *brokerError) Unwrap() error { return e.err }

// streamError rewrites a per-stream broker error (a kerr code plus an
// optional message from the broker) into a sentence about the stream.
func streamError(op, name string, err error, detail string) error {
	var msg string
	switch {
	case errors.Is(err, kerr.TopicAlreadyExists):
		msg = fmt.Sprintf("stream %q already exists", name)
	case errors.Is(err, kerr.UnknownTopicOrPartition), errors.Is(err, kerr.UnknownTopicID):
		msg = fmt.Sprintf("stream %q does not exist", name)
	case errors.Is(err, kerr.InvalidTopicException):
		msg = fmt.Sprintf("invalid stream name %q", name)
	case errors.Is(err, kerr.InvalidPartitions):
		msg = fmt.Sprintf("%s stream %q: invalid shard count", op, name)
	case errors.Is(err, kerr.InvalidReplicationFactor):
		msg = fmt.Sprintf("%s stream %q: invalid replication factor", op, name)
	case errors.Is(err, kerr.InvalidConfig):
		msg = fmt.Sprintf("%s stream %q: invalid config", op, name)
	case errors.Is(err, kerr.TopicAuthorizationFailed):
		msg = fmt.Sprintf("%s stream %q: not authorized", op, name)
	default:
		var ke *kerr.Error
		if errors.As(err, &ke) {
			msg = fmt.Sprintf("%s stream %q: broker returned %s (%s)", op, name, ke.Message, ke.Description)
		} else {
			msg = fmt.Sprintf("%s stream %q: %v", op, name, err)
		}
	}
	if detail != "" {
		msg += ": " + detail
	}
	return &brokerError{msg: msg, err: err}
}

// requestError wraps a failure to talk to the cluster at all, naming the
// brokers because "connection refused" alone does not say where.
func requestError(op string, f *clientFlags, err error) error {
	return fmt.Errorf("%s (brokers %s): %w", op, f.brokerList(), err)
}
