package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
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
	Error       string   `json:"error,omitempty"`
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
}

func newStreamDescribeCmd(f *clientFlags) *cobra.Command {
	var adminAddr string
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
				addCleanState(ctx, adminAddr, d)
				if f.json() {
					return writeJSON(cmd.OutOrStdout(), d)
				}
				return printDescription(cmd.OutOrStdout(), d)
			})
		},
	}
	def := defaultAdminAddr
	if env := strings.TrimSpace(os.Getenv(envAdminAddr)); env != "" {
		def = env
	}
	cmd.Flags().StringVar(&adminAddr, "admin-addr", def,
		"Braid's HTTP address (host:port), for the compaction state; empty skips it; $"+envAdminAddr+" sets the default")
	return cmd
}

const (
	envAdminAddr     = "BRAID_ADMIN_ADDR"
	defaultAdminAddr = "127.0.0.1:9644"
)

// addCleanState fills in the compaction state of a compacted stream from
// GET /v1/streams/{name}; like sizes it is best effort.
func addCleanState(ctx context.Context, addr string, d *streamDescription) {
	if addr == "" {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/v1/streams/"+url.PathEscape(d.Name), nil)
	if err != nil {
		return
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	var st struct {
		Compacted bool `json:"compacted"`
		Shards    []struct {
			Shard       int32   `json:"shard"`
			DirtyRatio  float64 `json:"dirty_ratio"`
			CleanedTo   int64   `json:"cleaned_to"`
			LastCleaned string  `json:"last_cleaned"`
		} `json:"shards"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&st) != nil || !st.Compacted {
		return
	}
	for _, s := range st.Shards {
		for i := range d.Shards {
			if d.Shards[i].Shard == s.Shard {
				d.Shards[i].DirtyRatio, d.Shards[i].CleanedTo, d.Shards[i].LastCleaned = &s.DirtyRatio, &s.CleanedTo, &s.LastCleaned
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
	showErr, showClean := false, false
	for _, s := range d.Shards {
		showErr = showErr || s.Error != ""
		showClean = showClean || s.DirtyRatio != nil
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
