package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

func init() { register(newGroupCmd) }

func newGroupCmd() *cobra.Command {
	f := &clientFlags{}
	cmd := &cobra.Command{
		Use:     "group",
		Aliases: []string{"groups", "consumer-group"},
		Short:   "List, describe and delete consumer groups, and reset their offsets",
		Long: `Manage consumer groups. A consumer group is a set of clients that share the
shards of one or more streams; the group remembers, per shard, the offset of
the next record to read (its committed offset). A group's lag on a shard is
how many records it has yet to read there: the shard's end offset minus the
committed offset.

These commands speak the Kafka protocol (classic consumer groups), so they
work against any Kafka-compatible broker, not only braid.

Examples:
  braid group list
  braid group describe payments
  braid group reset-offsets payments --stream orders --to earliest --dry-run
  braid group delete payments`,
	}
	f.register(cmd, true)
	cmd.AddCommand(
		newGroupListCmd(f),
		newGroupDescribeCmd(f),
		newGroupDeleteCmd(f),
		newGroupResetOffsetsCmd(f),
	)
	return cmd
}

// groupError rewrites a per-group broker error (a kerr code plus an
// optional message from the broker) into a sentence about the group.
func groupError(op, name string, err error, detail string) error {
	var msg string
	switch {
	case errors.Is(err, kerr.GroupIDNotFound):
		msg = fmt.Sprintf("group %q does not exist", name)
	case errors.Is(err, kerr.NonEmptyGroup):
		msg = fmt.Sprintf("group %q still has members; stop its consumers first", name)
	case errors.Is(err, kerr.InvalidGroupID):
		msg = fmt.Sprintf("invalid group name %q", name)
	case errors.Is(err, kerr.GroupAuthorizationFailed):
		msg = fmt.Sprintf("%s group %q: not authorized", op, name)
	case errors.Is(err, kerr.RebalanceInProgress), errors.Is(err, kerr.UnknownMemberID), errors.Is(err, kerr.IllegalGeneration):
		msg = fmt.Sprintf("%s group %q: the group has active members (broker returned %v)", op, name, err)
	default:
		var ke *kerr.Error
		if errors.As(err, &ke) {
			msg = fmt.Sprintf("%s group %q: broker returned %s (%s)", op, name, ke.Message, ke.Description)
		} else {
			msg = fmt.Sprintf("%s group %q: %v", op, name, err)
		}
	}
	if detail != "" {
		msg += ": " + detail
	}
	return &brokerError{msg: msg, err: err}
}

// describeGroup describes one group. A group the broker does not know is
// reported either as GROUP_ID_NOT_FOUND (newer Kafka) or as state Dead with
// no members (older Kafka, braid); exists is false in both cases, and the
// caller decides whether that is an error.
func describeGroup(ctx context.Context, f *clientFlags, adm *kadm.Client, name string) (g kadm.DescribedGroup, exists bool, err error) {
	ds, err := adm.DescribeGroups(ctx, name)
	if err != nil {
		return g, false, requestError(fmt.Sprintf("describe group %q", name), f, err)
	}
	g, ok := ds[name]
	if !ok {
		return g, false, fmt.Errorf("describe group %q: broker response did not mention the group", name)
	}
	switch {
	case errors.Is(g.Err, kerr.GroupIDNotFound):
		return g, false, nil
	case g.Err != nil:
		return g, false, groupError("describe", name, g.Err, g.ErrMessage)
	}
	return g, !(g.State == "Dead" && len(g.Members) == 0), nil
}

// groupInactive reports whether a group may have its offsets changed by an
// admin: Kafka accepts such commits only for a group without members.
func groupInactive(g kadm.DescribedGroup) bool {
	return len(g.Members) == 0 && (g.State == "Empty" || g.State == "Dead" || g.State == "")
}

// memberCount is "1 active member" / "3 active members".
func memberCount(n int) string {
	return fmt.Sprintf("%d active member%s", n, plural(int64(n)))
}

// dashIfEmpty shows "-" for an empty cell so text columns stay aligned.
func dashIfEmpty(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}
