package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	envBrokers     = "BRAID_BROKERS"
	defaultBrokers = "127.0.0.1:9092"

	formatText = "text"
	formatJSON = "json"

	// retryTimeout bounds how long kgo keeps retrying one request (including
	// dialing), so an unreachable broker surfaces as "connection refused"
	// instead of a bare context deadline.
	retryTimeout = 10 * time.Second
	// adminTimeout bounds a whole admin command; it is longer than
	// retryTimeout so the retry loop, not the context, ends first and
	// reports the underlying cause.
	adminTimeout = 30 * time.Second
)

// enumFlag is a pflag.Value restricted to a fixed set of words, so a bad
// value is rejected while parsing with a message that lists the choices.
type enumFlag struct {
	value   string
	allowed []string
}

func newEnumFlag(def string, allowed ...string) *enumFlag {
	return &enumFlag{value: def, allowed: allowed}
}

func (e *enumFlag) String() string { return e.value }
func (e *enumFlag) Type() string   { return strings.Join(e.allowed, "|") }

func (e *enumFlag) Set(s string) error {
	if !slices.Contains(e.allowed, s) {
		return fmt.Errorf("must be one of %s", strings.Join(e.allowed, ", "))
	}
	e.value = s
	return nil
}

// clientFlags holds the flags every broker-facing command shares.
type clientFlags struct {
	brokers []string
	format  *enumFlag
	// adminAddr is Braid's HTTP address (--admin-addr), for what the
	// Kafka protocol cannot carry; commands that need it register it.
	adminAddr string
}

// addBrokerFlag registers --brokers on cmd.
func (f *clientFlags) addBrokerFlag(cmd *cobra.Command, persistent bool) {
	def := defaultBrokers
	if env := strings.TrimSpace(os.Getenv(envBrokers)); env != "" {
		def = env
	}
	fs := cmd.Flags()
	if persistent {
		fs = cmd.PersistentFlags()
	}
	fs.StringSliceVar(&f.brokers, "brokers", splitList(def),
		"comma-separated broker addresses (host:port); $"+envBrokers+" sets the default")
}

// addFormatFlag registers --format on cmd.
func (f *clientFlags) addFormatFlag(cmd *cobra.Command, persistent bool) {
	f.format = newEnumFlag(formatText, formatText, formatJSON)
	fs := cmd.Flags()
	if persistent {
		fs = cmd.PersistentFlags()
	}
	fs.Var(f.format, "format", "output format: text or json")
}

// register adds both --brokers and --format.
func (f *clientFlags) register(cmd *cobra.Command, persistent bool) {
	f.addBrokerFlag(cmd, persistent)
	f.addFormatFlag(cmd, persistent)
}

func (f *clientFlags) json() bool { return f.format != nil && f.format.value == formatJSON }

// seeds returns the broker list with blanks removed; StringSlice keeps
// empty elements from inputs like "a,,b" or a trailing comma.
func (f *clientFlags) seeds() ([]string, error) {
	var out []string
	for _, b := range f.brokers {
		out = append(out, splitList(b)...)
	}
	if len(out) == 0 {
		return nil, errors.New("no brokers given: set --brokers or $" + envBrokers)
	}
	return out, nil
}

func (f *clientFlags) brokerList() string { return strings.Join(f.brokers, ",") }

// newClient builds a kgo client for the configured brokers. kgo connects
// lazily, so errors here are configuration errors only.
func (f *clientFlags) newClient(extra ...kgo.Opt) (*kgo.Client, error) {
	seeds, err := f.seeds()
	if err != nil {
		return nil, err
	}
	opts := append([]kgo.Opt{
		kgo.SeedBrokers(seeds...),
		kgo.ClientID("braid-cli"),
		kgo.DialTimeout(5 * time.Second),
		kgo.RequestTimeoutOverhead(10 * time.Second),
		kgo.RetryTimeout(retryTimeout),
	}, extra...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("create kafka client: %w", err)
	}
	return cl, nil
}

// newAdmin builds an admin client; Close it to release the kgo client.
func (f *clientFlags) newAdmin() (*kadm.Client, error) {
	cl, err := f.newClient()
	if err != nil {
		return nil, err
	}
	return kadm.NewClient(cl), nil
}

// adminContext bounds an admin command so a missing broker cannot hang it.
func adminContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, adminTimeout)
}

// withAdmin runs fn with an admin client and a context bounded by the
// admin timeout: the frame of every verb that asks the broker something.
func (f *clientFlags) withAdmin(ctx context.Context, fn func(ctx context.Context, adm *kadm.Client) error) error {
	adm, err := f.newAdmin()
	if err != nil {
		return err
	}
	defer adm.Close()
	ctx, cancel := adminContext(ctx)
	defer cancel()
	return fn(ctx, adm)
}

// print writes v as indented JSON in json mode, or the table otherwise.
func (f *clientFlags) print(w io.Writer, v any, header []string, rows [][]string) error {
	if f.json() {
		return writeJSON(w, v)
	}
	return writeTable(w, header, rows)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write json: %w", err)
	}
	return nil
}

// writeTable prints an aligned table; a nil header prints rows only, which
// suits key/value blocks.
func writeTable(w io.Writer, header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if header != nil {
		fmt.Fprintln(tw, strings.Join(header, "\t"))
	}
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	return nil
}

// splitList splits a comma-separated list, dropping blanks.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func itoa[T ~int | ~int16 | ~int32 | ~int64](v T) string { return strconv.FormatInt(int64(v), 10) }

func plural(n int64) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// acksFlag and compressionFlag are shared by produce; bench keeps its own
// copies because internal/bench must not depend on the CLI.
func newAcksFlag() *enumFlag { return newEnumFlag("all", "all", "1", "0") }

func newCompressionFlag() *enumFlag {
	return newEnumFlag("none", "none", "gzip", "snappy", "lz4", "zstd")
}

func acksOpt(v string) kgo.Acks {
	switch v {
	case "0":
		return kgo.NoAck()
	case "1":
		return kgo.LeaderAck()
	default:
		return kgo.AllISRAcks()
	}
}

func compressionCodec(v string) kgo.CompressionCodec {
	switch v {
	case "gzip":
		return kgo.GzipCompression()
	case "snappy":
		return kgo.SnappyCompression()
	case "lz4":
		return kgo.Lz4Compression()
	case "zstd":
		return kgo.ZstdCompression()
	default:
		return kgo.NoCompression()
	}
}
