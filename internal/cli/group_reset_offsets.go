package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// shardList is --shard: repeatable, comma-separated shard numbers.
type shardList []int32

func (l *shardList) String() string { return joinInt32s(*l) }
func (l *shardList) Type() string   { return "N" }

func (l *shardList) Set(s string) error {
	for _, p := range strings.Split(s, ",") {
		n, err := strconv.ParseInt(strings.TrimSpace(p), 10, 32)
		if err != nil || n < 0 {
			return fmt.Errorf("%q is not a shard number (0, 1, 2, ...)", p)
		}
		*l = append(*l, int32(n))
	}
	return nil
}

// resetTarget is a parsed --to.
type resetTarget struct {
	kind   string // earliest, latest, timestamp, offset
	millis int64  // for timestamp
	offset int64  // for offset
}

func (t resetTarget) String() string {
	switch t.kind {
	case "timestamp":
		return "timestamp:" + strconv.FormatInt(t.millis, 10)
	case "offset":
		return "offset:" + strconv.FormatInt(t.offset, 10)
	}
	return t.kind
}

const resetToUsage = "earliest, latest, timestamp:<unix-ms or RFC3339> or offset:<n>"

func parseResetTarget(s string) (resetTarget, error) {
	s = strings.TrimSpace(s)
	kind, arg, hasArg := strings.Cut(s, ":")
	switch {
	case s == "":
		return resetTarget{}, fmt.Errorf("--to is required: %s", resetToUsage)
	case (kind == "earliest" || kind == "latest") && !hasArg:
		return resetTarget{kind: kind}, nil
	case kind == "timestamp" && hasArg:
		if ms, err := strconv.ParseInt(arg, 10, 64); err == nil {
			if ms < 0 {
				return resetTarget{}, fmt.Errorf("--to %q: the timestamp must not be negative", s)
			}
			return resetTarget{kind: kind, millis: ms}, nil
		}
		ts, err := time.Parse(time.RFC3339, arg)
		if err != nil {
			return resetTarget{}, fmt.Errorf("--to %q: the timestamp must be Unix milliseconds or RFC3339 (like 2024-05-01T12:00:00Z)", s)
		}
		if ts.UnixMilli() < 0 {
			return resetTarget{}, fmt.Errorf("--to %q: the timestamp must not be before 1970", s)
		}
		return resetTarget{kind: kind, millis: ts.UnixMilli()}, nil
	case kind == "offset" && hasArg:
		n, err := strconv.ParseInt(arg, 10, 64)
		if err != nil || n < 0 {
			return resetTarget{}, fmt.Errorf("--to %q: the offset must be a whole number, 0 or more", s)
		}
		return resetTarget{kind: kind, offset: n}, nil
	}
	return resetTarget{}, fmt.Errorf("--to %q: want %s", s, resetToUsage)
}

// shardReset is the plan for one shard. Old is null when nothing was
// committed; Clamped is set when offset:<n> lay outside the shard and was
// moved to its nearest end.
type shardReset struct {
	Shard   int32  `json:"shard"`
	Old     *int64 `json:"old"`
	New     int64  `json:"new"`
	Clamped bool   `json:"clamped,omitempty"`
}

type resetResult struct {
	Group     string       `json:"group"`
	Stream    string       `json:"stream"`
	To        string       `json:"to"`
	DryRun    bool         `json:"dry_run"`
	Committed bool         `json:"committed"`
	NewGroup  bool         `json:"new_group,omitempty"`
	Shards    []shardReset `json:"shards"`

	target resetTarget
}

func newGroupResetOffsetsCmd(f *clientFlags) *cobra.Command {
	var (
		stream string
		shards shardList
		to     string
		dryRun bool
	)
	cmd := &cobra.Command{
		Use:   "reset-offsets GROUP --stream STREAM --to TARGET",
		Short: "Move a group's committed offsets on a stream",
		Long: `Set a consumer group's committed offsets on the shards of one stream, so its
consumers resume from there. The new offset of each shard comes from --to:

  earliest               the shard's first record still held (its start offset)
  latest                 the shard's end: only records produced from now on
  timestamp:<time>       the first record with a timestamp at or after <time>,
                         given as Unix milliseconds or RFC3339
                         (2024-05-01T12:00:00Z); the end if there is none
  offset:<n>             offset n; below the start it becomes the start,
                         past the end it becomes the end

Every shard of the stream is reset unless --shard names some. The old and the
new offset of each shard are printed; with --dry-run nothing is committed.

Offsets can only be reset while the group has no members (state Empty, or a
group that does not exist yet), as Kafka's own tool requires: a running
consumer would overwrite them with its next commit. Stop the consumers first.

Examples:
  braid group reset-offsets payments --stream orders --to earliest
  braid group reset-offsets payments --stream orders --to latest --dry-run
  braid group reset-offsets payments --stream orders --shard 0 --shard 3 --to offset:1200
  braid group reset-offsets payments --stream orders --to timestamp:2024-05-01T12:00:00Z
  braid group reset-offsets payments --stream orders --to timestamp:1714564800000 --format json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			group := args[0]
			target, err := parseResetTarget(to)
			if err != nil {
				return err
			}
			if strings.TrimSpace(stream) == "" {
				return errors.New("--stream must name a stream")
			}
			var want []int32
			for _, s := range shards {
				if !slices.Contains(want, s) {
					want = append(want, s)
				}
			}
			slices.Sort(want)

			return f.withAdmin(cmd.Context(), func(ctx context.Context, adm *kadm.Client) error {
				res, err := resetOffsets(ctx, f, adm, group, stream, want, target, dryRun)
				if err != nil {
					return err
				}
				if f.json() {
					return writeJSON(cmd.OutOrStdout(), res)
				}
				return printReset(cmd.OutOrStdout(), res)
			})
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&stream, "stream", "", "the stream whose offsets to reset (required)")
	fs.Var(&shards, "shard", "reset only these shards (repeat or comma-separate; default: every shard)")
	fs.StringVar(&to, "to", "", "new position: "+resetToUsage+" (required)")
	fs.BoolVar(&dryRun, "dry-run", false, "print the new offsets without committing them")
	_ = cmd.MarkFlagRequired("stream")
	_ = cmd.MarkFlagRequired("to")
	return cmd
}

func resetOffsets(ctx context.Context, f *clientFlags, adm *kadm.Client, group, stream string, want []int32, target resetTarget, dryRun bool) (*resetResult, error) {
	g, exists, err := describeGroup(ctx, f, adm, group)
	if err != nil {
		return nil, err
	}
	if !groupInactive(g) {
		why := memberCount(len(g.Members))
		if len(g.Members) == 0 {
			why = "members joining"
		}
		return nil, fmt.Errorf("group %q has %s (state %s): offsets can only be reset while the group is inactive; stop its consumers first", group, why, g.State)
	}

	starts, err := checkListed(f, stream)(adm.ListStartOffsets(ctx, stream))
	if err != nil {
		return nil, err
	}
	ends, err := checkListed(f, stream)(adm.ListEndOffsets(ctx, stream))
	if err != nil {
		return nil, err
	}
	all := make([]int32, 0, len(ends[stream]))
	for p := range ends[stream] {
		all = append(all, p)
	}
	slices.Sort(all)
	if len(want) == 0 {
		want = all
	}
	for _, s := range want {
		if !slices.Contains(all, s) {
			return nil, fmt.Errorf("stream %q has no shard %d (it has %d shard%s, numbered from 0)", stream, s, len(all), plural(int64(len(all))))
		}
	}

	var byTime kadm.ListedOffsets
	if target.kind == "timestamp" {
		byTime, err = checkListed(f, stream)(adm.ListOffsetsAfterMilli(ctx, target.millis, stream))
		if err != nil {
			return nil, err
		}
	}

	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
		if isKerr(err) {
			return nil, groupError("fetch committed offsets of", group, err, "")
		}
		return nil, requestError(fmt.Sprintf("fetch committed offsets of group %q", group), f, err)
	}

	res := &resetResult{Group: group, Stream: stream, To: target.String(), DryRun: dryRun, NewGroup: !exists, Shards: []shardReset{}, target: target}
	commit := make(kadm.Offsets)
	for _, s := range want {
		start, err := shardOffset(starts, stream, s, "start")
		if err != nil {
			return nil, err
		}
		end, err := shardOffset(ends, stream, s, "end")
		if err != nil {
			return nil, err
		}
		r := shardReset{Shard: s}
		switch target.kind {
		case "earliest":
			r.New = start
		case "latest":
			r.New = end
		case "timestamp":
			at, err := shardOffset(byTime, stream, s, "timestamp")
			if err != nil {
				return nil, err
			}
			r.New = min(max(at, start), end)
		case "offset":
			r.New = min(max(target.offset, start), end)
			r.Clamped = r.New != target.offset
		}
		if c, ok := committed.Lookup(stream, s); ok && c.Err == nil && c.At >= 0 {
			r.Old = ptrTo(c.At)
		}
		res.Shards = append(res.Shards, r)
		commit.Add(kadm.Offset{Topic: stream, Partition: s, At: r.New, LeaderEpoch: -1})
	}
	if dryRun {
		return res, nil
	}

	resps, err := adm.CommitOffsets(ctx, group, commit)
	if err != nil {
		if isKerr(err) {
			return nil, groupError("commit offsets to", group, err, "")
		}
		return nil, requestError(fmt.Sprintf("commit offsets to group %q", group), f, err)
	}
	var failed []string
	var first error
	for _, s := range want {
		o, ok := resps.Lookup(stream, s)
		switch {
		case !ok:
			failed = append(failed, fmt.Sprintf("shard %d: missing from the broker's answer", s))
		case o.Err != nil:
			if first == nil {
				first = o.Err
			}
			failed = append(failed, fmt.Sprintf("shard %d: %v", s, o.Err))
		}
	}
	if len(failed) > 0 {
		// Group-level refusals come back on every shard; say them once.
		if first != nil && groupLevelError(first) {
			return nil, groupError("commit offsets to", group, first, "")
		}
		return nil, fmt.Errorf("commit offsets to group %q on stream %q: %d of %d shards failed: %s",
			group, stream, len(failed), len(want), strings.Join(failed, "; "))
	}
	res.Committed = true
	return res, nil
}

// checkListed checks the answer of one ListOffsets flavour for a stream,
// turning a missing stream into "stream X does not exist".
func checkListed(f *clientFlags, stream string) func(kadm.ListedOffsets, error) (kadm.ListedOffsets, error) {
	return func(lo kadm.ListedOffsets, err error) (kadm.ListedOffsets, error) {
		if err != nil {
			return nil, requestError(fmt.Sprintf("list offsets of stream %q", stream), f, err)
		}
		ps := lo[stream]
		if o, ok := ps[-1]; ok && o.Err != nil {
			return nil, streamError("list offsets of", stream, o.Err, "")
		}
		if len(ps) == 0 {
			return nil, streamError("list offsets of", stream, kerr.UnknownTopicOrPartition, "")
		}
		return lo, nil
	}
}

func shardOffset(lo kadm.ListedOffsets, stream string, shard int32, what string) (int64, error) {
	o, ok := lo.Lookup(stream, shard)
	switch {
	case !ok:
		return 0, fmt.Errorf("list %s offsets of stream %q: the broker did not answer for shard %d", what, stream, shard)
	case o.Err != nil:
		return 0, fmt.Errorf("list %s offsets of stream %q shard %d: %v", what, stream, shard, o.Err)
	}
	return o.Offset, nil
}

// groupLevelError reports whether a commit error is about the group as a
// whole rather than one shard.
func groupLevelError(err error) bool {
	for _, ke := range []*kerr.Error{
		kerr.NonEmptyGroup, kerr.GroupIDNotFound, kerr.InvalidGroupID, kerr.GroupAuthorizationFailed,
		kerr.RebalanceInProgress, kerr.UnknownMemberID, kerr.IllegalGeneration,
	} {
		if errors.Is(err, ke) {
			return true
		}
	}
	return false
}

func printReset(w io.Writer, r *resetResult) error {
	rows := make([][]string, 0, len(r.Shards))
	var notes []string
	for _, s := range r.Shards {
		rows = append(rows, []string{r.Stream, itoa(s.Shard), optOffset(s.Old), itoa(s.New)})
		switch {
		case s.Clamped && r.target.offset > s.New:
			notes = append(notes, fmt.Sprintf("shard %d: offset %d is past the shard's end; using its end offset %d", s.Shard, r.target.offset, s.New))
		case s.Clamped:
			notes = append(notes, fmt.Sprintf("shard %d: offset %d is before the shard's start; using its start offset %d", s.Shard, r.target.offset, s.New))
		}
	}
	if err := writeTable(w, []string{"STREAM", "SHARD", "OLD", "NEW"}, rows); err != nil {
		return err
	}
	fmt.Fprintln(w)
	for _, n := range notes {
		fmt.Fprintln(w, n)
	}
	if r.NewGroup {
		verb := "is"
		if r.DryRun {
			verb = "would be"
		}
		fmt.Fprintf(w, "group %q did not exist; it %s created with these offsets\n", r.Group, verb)
	}
	var err error
	if r.DryRun {
		_, err = fmt.Fprintf(w, "dry run: nothing committed; run again without --dry-run to reset group %q\n", r.Group)
	} else {
		_, err = fmt.Fprintf(w, "reset %d offset%s of group %q on stream %q to %s\n", len(r.Shards), plural(int64(len(r.Shards))), r.Group, r.Stream, r.To)
	}
	return err
}
