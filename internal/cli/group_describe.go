package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

type groupAssignment struct {
	Stream string  `json:"stream"`
	Shards []int32 `json:"shards"`
}

type groupMember struct {
	MemberID   string            `json:"member_id"`
	InstanceID string            `json:"instance_id,omitempty"`
	ClientID   string            `json:"client_id"`
	Host       string            `json:"host"`
	Assigned   []groupAssignment `json:"assigned"`
}

// groupShardOffset is one shard the group consumes or has committed to.
// Committed is null when nothing is committed; Lag is null when it cannot
// be computed (then Error says why).
type groupShardOffset struct {
	Stream    string `json:"stream"`
	Shard     int32  `json:"shard"`
	MemberID  string `json:"member_id,omitempty"`
	Committed *int64 `json:"committed"`
	Start     *int64 `json:"start"`
	End       *int64 `json:"end"`
	Lag       *int64 `json:"lag"`
	Error     string `json:"error,omitempty"`
}

type groupDescription struct {
	Group        string             `json:"group"`
	State        string             `json:"state"`
	ProtocolType string             `json:"protocol_type"`
	Protocol     string             `json:"protocol"`
	Coordinator  int32              `json:"coordinator"`
	Members      []groupMember      `json:"members"`
	Offsets      []groupShardOffset `json:"offsets"`
	TotalLag     int64              `json:"total_lag"`
}

func newGroupDescribeCmd(f *clientFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "describe GROUP",
		Short: "Show a group's members, committed offsets and lag",
		Long: `Describe a consumer group: its state, the assignment protocol its members
agreed on, every member (member id, static instance id, client id, host and
the shards of each stream assigned to it), and, for every shard of each
stream the group consumes (is assigned or has committed offsets on), the
committed offset, the shard's end offset and the lag between them.

The end offset is the offset the next record will get, so the lag is
end - committed. Where nothing is committed yet the committed offset shows as
"-" and the lag counts every record still in the shard (end - start), since
a new consumer would start there. TOTAL-LAG sums the lag of every shard.

Examples:
  braid group describe payments
  braid group describe payments --format json | jq '.total_lag'
  braid group describe payments --format json | jq '.offsets[] | select(.lag > 1000)'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return f.withAdmin(cmd.Context(), func(ctx context.Context, adm *kadm.Client) error {
				d, err := describeGroupLag(ctx, f, adm, args[0])
				if err != nil {
					return err
				}
				if f.json() {
					return writeJSON(cmd.OutOrStdout(), d)
				}
				return printGroupDescription(cmd.OutOrStdout(), d)
			})
		},
	}
	return cmd
}

func describeGroupLag(ctx context.Context, f *clientFlags, adm *kadm.Client, name string) (*groupDescription, error) {
	// Lag describes the group, fetches its commits and lists the start and
	// end offsets of every assigned or committed shard.
	lags, err := adm.Lag(ctx, name)
	if err != nil {
		return nil, requestError(fmt.Sprintf("describe group %q", name), f, err)
	}
	l, ok := lags[name]
	if !ok {
		return nil, fmt.Errorf("describe group %q: broker response did not mention the group", name)
	}
	switch {
	case l.DescribeErr != nil && !isKerr(l.DescribeErr):
		return nil, requestError(fmt.Sprintf("describe group %q", name), f, l.DescribeErr)
	case l.DescribeErr != nil:
		return nil, groupError("describe", name, l.DescribeErr, "")
	case l.FetchErr != nil && !isKerr(l.FetchErr):
		return nil, requestError(fmt.Sprintf("fetch committed offsets of group %q", name), f, l.FetchErr)
	case l.FetchErr != nil:
		return nil, groupError("fetch committed offsets of", name, l.FetchErr, "")
	}
	if l.State == "Dead" && len(l.Members) == 0 && lagRows(l.Lag) == 0 {
		return nil, groupError("describe", name, kerr.GroupIDNotFound, "")
	}

	d := &groupDescription{
		Group:        name,
		State:        l.State,
		ProtocolType: l.ProtocolType,
		Protocol:     l.Protocol,
		Coordinator:  l.Coordinator.NodeID,
		Members:      []groupMember{},
		Offsets:      []groupShardOffset{},
	}
	for _, m := range l.Members {
		gm := groupMember{MemberID: m.MemberID, ClientID: m.ClientID, Host: m.ClientHost, Assigned: []groupAssignment{}}
		if m.InstanceID != nil {
			gm.InstanceID = *m.InstanceID
		}
		if ca, ok := m.Assigned.AsConsumer(); ok {
			for _, t := range ca.Topics {
				shards := append([]int32{}, t.Partitions...)
				sort.Slice(shards, func(i, j int) bool { return shards[i] < shards[j] })
				gm.Assigned = append(gm.Assigned, groupAssignment{Stream: t.Topic, Shards: shards})
			}
			sort.Slice(gm.Assigned, func(i, j int) bool { return gm.Assigned[i].Stream < gm.Assigned[j].Stream })
		}
		d.Members = append(d.Members, gm)
	}
	for _, ml := range l.Lag.Sorted() {
		o := groupShardOffset{Stream: ml.Topic, Shard: ml.Partition}
		if ml.Member != nil {
			o.MemberID = ml.Member.MemberID
		}
		if ml.Commit.At >= 0 {
			o.Committed = ptrTo(ml.Commit.At)
		}
		if ml.Start.Err == nil {
			o.Start = ptrTo(ml.Start.Offset)
		}
		if ml.End.Err == nil {
			o.End = ptrTo(ml.End.Offset)
		}
		if ml.Err != nil {
			o.Error = shardErrorText(ml.Err)
		} else if ml.Lag >= 0 {
			o.Lag = ptrTo(ml.Lag)
			d.TotalLag += ml.Lag
		}
		d.Offsets = append(d.Offsets, o)
	}
	return d, nil
}

func printGroupDescription(w io.Writer, d *groupDescription) error {
	summary := [][]string{
		{"GROUP", d.Group},
		{"STATE", dashIfEmpty(d.State)},
		{"PROTOCOL-TYPE", dashIfEmpty(d.ProtocolType)},
		{"PROTOCOL", dashIfEmpty(d.Protocol)},
		{"COORDINATOR", itoa(d.Coordinator)},
		{"MEMBERS", itoa(len(d.Members))},
		{"TOTAL-LAG", itoa(d.TotalLag)},
	}
	if err := writeTable(w, nil, summary); err != nil {
		return err
	}

	if len(d.Members) > 0 {
		rows := make([][]string, 0, len(d.Members))
		for _, m := range d.Members {
			rows = append(rows, []string{m.MemberID, dashIfEmpty(m.InstanceID), dashIfEmpty(m.ClientID), dashIfEmpty(m.Host), formatAssigned(m.Assigned)})
		}
		fmt.Fprintln(w)
		if err := writeTable(w, []string{"MEMBER-ID", "INSTANCE-ID", "CLIENT-ID", "HOST", "ASSIGNED"}, rows); err != nil {
			return err
		}
	}

	if len(d.Offsets) == 0 {
		fmt.Fprintln(w)
		_, err := fmt.Fprintln(w, "no committed offsets and no assigned shards")
		return err
	}
	header := []string{"STREAM", "SHARD", "COMMITTED", "END", "LAG", "MEMBER-ID"}
	showErr := false
	for _, o := range d.Offsets {
		showErr = showErr || o.Error != ""
	}
	if showErr {
		header = append(header, "ERROR")
	}
	rows := make([][]string, 0, len(d.Offsets))
	for _, o := range d.Offsets {
		row := []string{o.Stream, itoa(o.Shard), optOffset(o.Committed), optOffset(o.End), optOffset(o.Lag), dashIfEmpty(o.MemberID)}
		if showErr {
			row = append(row, o.Error)
		}
		rows = append(rows, row)
	}
	fmt.Fprintln(w)
	return writeTable(w, header, rows)
}

// formatAssigned prints an assignment as "orders:0,1;payments:2", or "-".
func formatAssigned(as []groupAssignment) string {
	if len(as) == 0 {
		return "-"
	}
	parts := make([]string, len(as))
	for i, a := range as {
		parts[i] = a.Stream + ":" + joinInt32s(a.Shards)
	}
	return strings.Join(parts, ";")
}

// lagRows counts the shards in a group's lag.
func lagRows(l kadm.GroupLag) int {
	n := 0
	for _, ps := range l {
		n += len(ps)
	}
	return n
}

// shardErrorText names the common per-shard failures plainly.
func shardErrorText(err error) string {
	if errors.Is(err, kerr.UnknownTopicOrPartition) {
		return "stream or shard does not exist"
	}
	return err.Error()
}

func isKerr(err error) bool {
	var ke *kerr.Error
	return errors.As(err, &ke)
}

func ptrTo[T any](v T) *T { return &v }
