package cli

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
)

type shardInfo struct {
	Shard       int32   `json:"shard"`
	Leader      int32   `json:"leader"`
	LeaderEpoch int32   `json:"leader_epoch"`
	Replicas    []int32 `json:"replicas"`
	ISR         []int32 `json:"isr"`
	Earliest    *int64  `json:"earliest"`
	Latest      *int64  `json:"latest"`
	SizeBytes   *int64  `json:"size_bytes"` // bytes kept (DescribeLogDirs), nil if unknown
	// Compaction state, from Braid's HTTP address (--admin-addr); absent
	// for streams that are not compacted or when it cannot be reached.
	DirtyRatio  *float64 `json:"dirty_ratio,omitempty"`
	CleanedTo   *int64   `json:"cleaned_to,omitempty"`
	LastCleaned *string  `json:"last_cleaned,omitempty"`
	// Lineage, from the admin API (docs/design/resharding.md): the
	// hash-key range (absent for a shard added as a Kafka partition),
	// open or closed, the end offset of a closed shard, parents and
	// children. Parents and children are null when the admin API could
	// not be asked.
	Range     *adminRange `json:"range,omitempty"`
	State     string      `json:"state,omitempty"`
	EndOffset *int64      `json:"end_offset,omitempty"`
	Parents   []int32     `json:"parents"`
	Children  []int32     `json:"children"`
	Error     string      `json:"error,omitempty"`
}

type configInfo struct {
	Name      string  `json:"name"`
	Value     *string `json:"value"`
	Source    string  `json:"source"`
	Sensitive bool    `json:"sensitive,omitempty"`
}

type streamDescription struct {
	Name        string       `json:"name"`
	ID          string       `json:"id,omitempty"`
	Internal    bool         `json:"internal,omitempty"`
	Shards      []shardInfo  `json:"shards"`
	Configs     []configInfo `json:"configs"`
	OffsetError string       `json:"offset_error,omitempty"`
	ConfigError string       `json:"config_error,omitempty"`
	// Routing is braid.routing (key or partition), from the admin API.
	Routing    string `json:"routing,omitempty"`
	AdminError string `json:"admin_error,omitempty"`
}

func newStreamDescribeCmd(f *clientFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "describe NAME",
		Short: "Show a stream's shards, offsets and configuration",
		Long: `Describe a stream: for every shard (Kafka partition) its leader broker and
its earliest and latest offsets, followed by the stream's configuration and
where each value comes from (DEFAULT_CONFIG, DYNAMIC_TOPIC_CONFIG, ...).

The latest offset is the offset the next record will get, so a shard holds
latest - earliest records (fewer in a compacted stream, whose offsets have
gaps). For compacted streams (cleanup.policy=compact) it also shows each
shard's dirty ratio (the share of its cleanable bytes not yet compacted),
the offset compacted up to and the time of the last cleaning, read from
Braid's HTTP address (--admin-addr, $BRAID_ADMIN_ADDR).

From the same address it shows each shard's lineage: state (open, or closed
by a split or merge), the end offset of a closed shard, its parents and
children, and its hash-key range; then the lineage tree, roots (shards
without parents) first and children indented under their parents. A merged
child appears under both parents, marked "(also under N)". An empty
--admin-addr skips all of this (for brokers other than braid).

If the broker cannot report offsets or configs, the rest is still printed and
the failure is shown instead.

Examples:
  braid stream describe orders
  braid stream describe orders --format json | jq '.shards[] | .latest - .earliest'
  braid stream describe profiles --admin-addr 10.0.0.5:9644`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return f.withAdmin(cmd.Context(), func(ctx context.Context, adm *kadm.Client) error {
				d, err := describeStream(ctx, f, adm, args[0])
				if err != nil {
					return err
				}
				addAdminState(ctx, f, d)
				if f.json() {
					return writeJSON(cmd.OutOrStdout(), d)
				}
				return printDescription(cmd.OutOrStdout(), d)
			})
		},
	}
	return cmd
}

// addAdminState fills in what only Braid's admin API knows, from GET
// /v1/streams/{name}: each shard's lineage (hash range, state, end offset,
// parents, children) and, for a compacted stream, its compaction state.
// Like sizes it is best effort: a failure is noted, the rest still shown.
func addAdminState(ctx context.Context, f *clientFlags, d *streamDescription) {
	if f.adminAddr == "" {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := f.streamState(ctx, d.Name)
	if isDialError(err) {
		return // nothing listens there: a broker other than braid
	}
	if err != nil {
		d.AdminError = err.Error()
		return
	}
	d.Routing = st.Routing
	compacted := st.Compacted
	for _, s := range st.Shards {
		for i := range d.Shards {
			sh := &d.Shards[i]
			if sh.Shard != s.Shard {
				continue
			}
			sh.Range, sh.State, sh.EndOffset = s.Range, s.State, s.EndOffset
			sh.Parents, sh.Children = nonNil(s.Parents), nonNil(s.Children)
			if compacted {
				sh.DirtyRatio, sh.CleanedTo, sh.LastCleaned = &s.DirtyRatio, &s.CleanedTo, &s.LastCleaned
			}
		}
	}
}

func describeStream(ctx context.Context, f *clientFlags, adm *kadm.Client, name string) (*streamDescription, error) {
	md, err := adm.Metadata(ctx, name)
	if err != nil {
		return nil, requestError(fmt.Sprintf("describe stream %q", name), f, err)
	}
	td, ok := md.Topics[name]
	if !ok {
		return nil, fmt.Errorf("describe stream %q: broker response did not mention the stream", name)
	}
	if td.Err != nil {
		return nil, streamError("describe", name, td.Err, "")
	}
	d := &streamDescription{Name: name, Internal: td.IsInternal, Shards: []shardInfo{}, Configs: []configInfo{}}
	if td.ID != (kadm.TopicID{}) {
		d.ID = td.ID.String()
	}

	// Offsets and configs are best effort: a broker that lacks one of these
	// APIs should still let the user see the shard layout.
	start, startErr := adm.ListStartOffsets(ctx, name)
	end, endErr := adm.ListEndOffsets(ctx, name)
	if startErr != nil {
		d.OffsetError = fmt.Sprintf("list earliest offsets: %v", startErr)
	} else if endErr != nil {
		d.OffsetError = fmt.Sprintf("list latest offsets: %v", endErr)
	}

	// Sizes are best effort: a broker without DescribeLogDirs leaves them out.
	sizes := map[int32]int64{}
	set := kadm.TopicsSet{}
	for _, p := range td.Partitions.Sorted() {
		set.Add(name, p.Partition)
	}
	if dirs, err := adm.DescribeAllLogDirs(ctx, set); err == nil {
		dirs.Each(func(d kadm.DescribedLogDir) {
			d.Topics.Each(func(p kadm.DescribedLogDirPartition) {
				if p.Topic == name {
					sizes[p.Partition] += p.Size
				}
			})
		})
	}
	for _, p := range td.Partitions.Sorted() {
		s := shardInfo{
			Shard:       p.Partition,
			Leader:      p.Leader,
			LeaderEpoch: p.LeaderEpoch,
			Replicas:    nonNil(p.Replicas),
			ISR:         nonNil(p.ISR),
		}
		var errs []string
		if p.Err != nil {
			errs = append(errs, p.Err.Error())
		}
		// ShardErrors leave partial results, so each lookup is checked on
		// its own rather than trusting the aggregate error.
		if o, ok := start.Lookup(name, p.Partition); ok {
			if o.Err != nil {
				errs = append(errs, "earliest: "+o.Err.Error())
			} else {
				s.Earliest = &o.Offset
			}
		}
		if o, ok := end.Lookup(name, p.Partition); ok {
			if o.Err != nil {
				errs = append(errs, "latest: "+o.Err.Error())
			} else {
				s.Latest = &o.Offset
			}
		}
		if size, ok := sizes[p.Partition]; ok {
			s.SizeBytes = &size
		}
		s.Error = strings.Join(errs, "; ")
		d.Shards = append(d.Shards, s)
	}

	rcs, err := adm.DescribeTopicConfigs(ctx, name)
	rc, onErr := rcs.On(name, nil)
	switch {
	case onErr != nil && err != nil:
		d.ConfigError = err.Error()
	case onErr != nil:
		d.ConfigError = "broker response did not mention the stream"
	case rc.Err != nil:
		d.ConfigError = rc.Err.Error()
		if rc.ErrMessage != "" {
			d.ConfigError += ": " + rc.ErrMessage
		}
	default:
		for _, c := range rc.Configs {
			d.Configs = append(d.Configs, configInfo{
				Name:      c.Key,
				Value:     c.Value,
				Source:    c.Source.String(),
				Sensitive: c.Sensitive,
			})
		}
		sort.Slice(d.Configs, func(i, j int) bool { return d.Configs[i].Name < d.Configs[j].Name })
	}
	return d, nil
}

func printDescription(w io.Writer, d *streamDescription) error {
	summary := [][]string{{"NAME", d.Name}}
	if d.ID != "" {
		summary = append(summary, []string{"ID", d.ID})
	}
	if d.Internal {
		summary = append(summary, []string{"INTERNAL", "true"})
	}
	summary = append(summary, []string{"SHARDS", itoa(len(d.Shards))})
	if err := writeTable(w, nil, summary); err != nil {
		return err
	}

	header := []string{"SHARD", "LEADER", "EPOCH", "REPLICAS", "EARLIEST", "LATEST", "SIZE"}
	showErr, showClean, showLineage := false, false, false
	for _, s := range d.Shards {
		showErr = showErr || s.Error != ""
		showClean = showClean || s.DirtyRatio != nil
		showLineage = showLineage || s.State != ""
	}
	if showClean {
		header = append(header, "DIRTY", "CLEANED TO", "LAST CLEANED")
	}
	if showErr {
		header = append(header, "ERROR")
	}
	var rows [][]string
	for _, s := range d.Shards {
		row := []string{itoa(s.Shard), itoa(s.Leader), itoa(s.LeaderEpoch), joinInt32s(s.Replicas), optOffset(s.Earliest), optOffset(s.Latest), optOffset(s.SizeBytes)}
		if showClean {
			dirty, last := "-", "never"
			if s.DirtyRatio != nil {
				dirty = strconv.FormatFloat(*s.DirtyRatio, 'f', 2, 64)
			}
			if s.LastCleaned != nil && *s.LastCleaned != "" {
				last = *s.LastCleaned
			}
			row = append(row, dirty, optOffset(s.CleanedTo), last)
		}
		if showErr {
			row = append(row, s.Error)
		}
		rows = append(rows, row)
	}
	fmt.Fprintln(w)
	if err := writeTable(w, header, rows); err != nil {
		return err
	}
	if d.OffsetError != "" {
		fmt.Fprintf(w, "offsets unavailable: %s\n", d.OffsetError)
	}
	if d.AdminError != "" {
		fmt.Fprintf(w, "lineage unavailable: %s\n", d.AdminError)
	}
	if showLineage {
		fmt.Fprintln(w)
		if err := printLineage(w, d); err != nil {
			return err
		}
	}

	fmt.Fprintln(w)
	if d.ConfigError != "" {
		_, err := fmt.Fprintf(w, "configs unavailable: %s\n", d.ConfigError)
		return err
	}
	rows = rows[:0]
	for _, c := range d.Configs {
		v := "-"
		switch {
		case c.Sensitive:
			v = "(sensitive)"
		case c.Value != nil:
			v = *c.Value
		}
		rows = append(rows, []string{c.Name, v, c.Source})
	}
	return writeTable(w, []string{"CONFIG", "VALUE", "SOURCE"}, rows)
}

// printLineage prints every shard's lineage and then the lineage tree:
// roots are shards without parents, children are indented under their
// parents. A merged child has two parents; its subtree is printed under
// the first and the line under each parent names the other.
func printLineage(w io.Writer, d *streamDescription) error {
	byID := map[int32]*shardInfo{}
	for i := range d.Shards {
		byID[d.Shards[i].Shard] = &d.Shards[i]
	}
	var rows [][]string
	for _, s := range d.Shards {
		r := "-"
		if s.Range != nil {
			r = s.Range.Start + " - " + s.Range.End
		}
		rows = append(rows, []string{itoa(s.Shard), orDash(s.State), optOffset(s.EndOffset),
			orDash(joinInt32s(s.Parents)), orDash(joinInt32s(s.Children)), r})
	}
	if err := writeTable(w, []string{"SHARD", "STATE", "END", "PARENTS", "CHILDREN", "HASH RANGE"}, rows); err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString("\nLINEAGE\n")
	expanded := map[int32]bool{}
	var walk func(id, parent int32, depth int)
	walk = func(id, parent int32, depth int) {
		s := byID[id]
		b.WriteString(strings.Repeat("  ", depth))
		b.WriteString(itoa(id))
		if s == nil {
			b.WriteString(" (not in metadata)\n")
			return
		}
		b.WriteString(" " + s.State)
		if s.EndOffset != nil {
			b.WriteString(", end " + itoa(*s.EndOffset))
		}
		var others []int32
		for _, p := range s.Parents {
			if p != parent {
				others = append(others, p)
			}
		}
		if len(others) > 0 {
			b.WriteString(" (also under " + joinIDs(others) + ")")
		}
		if expanded[id] {
			if len(s.Children) > 0 {
				b.WriteString(" (children shown above)")
			}
			b.WriteByte('\n')
			return
		}
		expanded[id] = true
		b.WriteByte('\n')
		for _, c := range s.Children {
			walk(c, id, depth+1)
		}
	}
	for _, s := range d.Shards {
		if len(s.Parents) == 0 {
			walk(s.Shard, -1, 0)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func optOffset(o *int64) string {
	if o == nil {
		return "-"
	}
	return itoa(*o)
}

func joinInt32s(vs []int32) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = itoa(v)
	}
	return strings.Join(parts, ",")
}

// nonNil makes JSON show [] rather than null for an empty replica list.
func nonNil(vs []int32) []int32 {
	if vs == nil {
		return []int32{}
	}
	return vs
}
