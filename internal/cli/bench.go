package cli

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/braidstream/braid/internal/bench"
	"github.com/spf13/cobra"
)

func init() { register(newBenchCmd) }

func newBenchCmd() *cobra.Command {
	f := &clientFlags{}
	cfg := bench.Config{}
	acks := newAcksFlag()
	compression := newCompressionFlag()
	var streamConfigs []string
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure produce and consume throughput and latency against a broker",
		Long: `Drive a broker over the Kafka protocol and report throughput (records/s,
MB/s, where 1 MB = 10^6 bytes of record values) and latency percentiles.

The run creates --stream with --partitions shards if it does not exist and
deletes it afterwards unless --keep is given; an existing stream is used as
is and never deleted. Record values are random and incompressible, so
--compression measures codec cost, not savings.

Produce: --producers clients write --count records (or for --duration)
either as fast as possible or, with --rate, at a fixed total rate. A
record's latency is the time from its Produce call to the broker's
acknowledgement, so time spent waiting for space in a full client buffer
counts. Use --rate to measure latency at a given load; the report then also
shows how far the producers fell behind schedule.

Consume (on by default): afterwards a fresh client reads back exactly what
was produced, as fast as it can; only throughput is reported, because
latency measured after the fact is meaningless.

End-to-end (--e2e-latency): a consumer runs alongside the producers and
records, per record, the time from its Produce call to its arrival at the
consumer. The send time travels in the first 8 bytes of the value.

Transactions (--txn-interval): each producer gets its own transactional id
and commits whenever the interval has passed since its transaction began
(checked at each record), flushing first, and once more at the end; an
idempotent producer with --acks all is required. A record counts as
produced only once its transaction committed; the records of a transaction
whose commit fails count as errors. Produce latency is still Produce call
to acknowledgement; consumers read committed, so --e2e-latency includes
the wait for the commit.

Resharding (--reshard-every): while the producers run, a split or merge
is made this often through the node's admin HTTP API, keeping the open
shard count near --partitions; the reshard row gives the time from request
to answer (the new layout is installed when the answer comes). Compare the
produce latency with a run without it.

Burst and sustained: a run of a few seconds fits in the write-ahead log
and the page cache and never pays for the background work a node does
under a sustained load: moving log data into shard segment files and
writing checkpoints. Its figures are burst figures. For sustained ones,
run for minutes with --duration (120s or more) and give --admin-addr (or
set $BRAID_ADMIN_ADDR; the default address alone is not used): the run then
reads the node's /metrics before and after producing, reports the
moves and checkpoints that happened meanwhile and the node's peak resident
memory (sampled once a second), and prints "note: the run was too short to
include background work ..." if there were none. Without --admin-addr, a
produce phase shorter than 60s is labelled a burst figure. Use
"braid bench disk" for the device's durable write bandwidth to compare
with, and test/bench/sustained.sh for the whole sustained table.

CPU: the run prints the CPU time this client used while producing and,
with --admin-addr, the node's, each also per GB produced. Where both run
on one machine, they share its cores: a client that takes half the CPU
bounds the figure as much as the node does. With --admin-addr on the
loopback the line also says what share of this machine's cores the two
kept busy together.

Batches: the run counts the produce requests the client wrote and the
record batches the broker acknowledged (franz-go's hooks), and prints
batches per request and records and bytes per batch. A node's cost
follows batches as well as bytes: with many partitions a request holds
a few records per partition, however large the client's buffer.

Catch-up reads (--consume-from-start): the consume phase reads the stream
from its first offset, so a run against a stream an earlier --keep run
filled measures reads of older data (e.g. --count 1 to add one record).

Progress is printed to stderr once a second; the report goes to stdout.
For the Kinesis API, see "braid bench kinesis --help".

Examples:
  braid bench
  braid bench --count 5000000 --record-size 100 --partitions 8 --producers 4
  braid bench --duration 60s --rate 50000 --e2e-latency --consume=false
  braid bench --duration 120s --admin-addr 127.0.0.1:9644 --consume=false
  braid bench disk --dir /var/lib/braid --size 1GiB
  braid bench --acks 1 --linger 0 --compression zstd --format json > result.json
  braid bench --txn-interval 100ms --partitions 4
  braid bench --keys 10000 --consume=false --stream-config cleanup.policy=compact
  braid bench --brokers broker-1:9092 --stream perf --keep
  braid bench --partitions 16 --keys 100000 --stream-config braid.routing=key
  braid bench --partitions 4 --keys 10000 --stream-config braid.routing=key \
      --duration 30s --rate 20000 --consume=false --reshard-every 200ms`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			seeds, err := f.seeds()
			if err != nil {
				return err
			}
			cfg.Brokers = seeds
			cfg.AdminAddr = f.adminAddr
			// Metrics are read only from a node named on purpose: the
			// default address is a local node's, maybe not the one the
			// brokers point at.
			if cmd.Flags().Changed("admin-addr") || strings.TrimSpace(os.Getenv(envAdminAddr)) != "" {
				cfg.MetricsAddr = f.adminAddr
			}
			if cfg.StreamConfigs, err = parseConfigs(streamConfigs); err != nil {
				return err
			}
			if cfg.Keys < 0 {
				return fmt.Errorf("--keys must not be negative (got %d)", cfg.Keys)
			}
			cfg.Acks = acks.value
			cfg.Compression = compression.value
			// --duration alone means "for this long": the default count
			// would otherwise cut a long run short.
			if cfg.Duration > 0 && !cmd.Flags().Changed("count") {
				cfg.Count = 0
			}
			cfg.Progress = cmd.ErrOrStderr()
			if cfg.TxnInterval < 0 {
				return fmt.Errorf("--txn-interval must not be negative (got %s)", cfg.TxnInterval)
			}
			if cfg.TxnInterval > 0 && cfg.Acks != "all" {
				return fmt.Errorf("--txn-interval needs --acks all (got %s): transactions are built on the idempotent producer", cfg.Acks)
			}
			if cfg.TxnInterval > 0 && !cfg.Idempotent {
				return errors.New("--txn-interval needs --idempotent: transactions are built on the idempotent producer")
			}
			if cfg.Idempotent && cfg.Acks != "all" {
				if cmd.Flags().Changed("idempotent") {
					return fmt.Errorf("--idempotent needs --acks all (got %s)", cfg.Acks)
				}
				cfg.Idempotent = false // as kgo: acks 0 or 1 cannot be idempotent
			}
			if cfg.Idempotent && cfg.MaxInflight > 0 {
				return fmt.Errorf("--max-inflight needs --idempotent=false: an idempotent producer keeps up to 5 requests in flight")
			}

			res, runErr := bench.Run(cmd.Context(), cfg)
			// Without a produce phase there is nothing worth a report; the
			// error alone says what went wrong.
			if res != nil && res.Produce != nil {
				if err := printBench(cmd.OutOrStdout(), f, res); err != nil {
					return errors.Join(runErr, err)
				}
			}
			if runErr != nil {
				return fmt.Errorf("bench: %w", runErr)
			}
			if p := res.Produce; p != nil && p.Errors > 0 {
				return fmt.Errorf("bench: %d record%s failed to produce; first error: %s", p.Errors, plural(p.Errors), p.FirstError)
			}
			return nil
		},
	}
	cmd.AddCommand(newBenchKinesisCmd())
	f.register(cmd, false)
	f.addAdminFlag(cmd, false, "braid's admin HTTP address, for --reshard-every; when given, /metrics is read too (background work, peak RSS, the node's CPU)")
	fl := cmd.Flags()
	fl.StringVar(&cfg.Stream, "stream", "braid-bench", "stream to benchmark; created if missing")
	fl.IntVar(&cfg.Partitions, "partitions", 1, "shards to create the stream with (ignored if it exists)")
	fl.IntVar(&cfg.Keys, "keys", 0, "key records k0..k<N-1> in turn (0 = no keys; a compacted stream needs keys)")
	fl.StringArrayVar(&streamConfigs, "stream-config", nil, "config for the stream if the run creates it, name=value (repeatable)")
	fl.IntVar(&cfg.RecordSize, "record-size", 1024, "bytes per record value")
	fl.Int64Var(&cfg.Count, "count", 1_000_000, "records to produce")
	fl.DurationVar(&cfg.Duration, "duration", 0, "produce for this long instead of --count records (with both, whichever ends first)")
	fl.Float64Var(&cfg.Rate, "rate", 0, "total records/s across producers (0 = as fast as possible)")
	fl.IntVar(&cfg.Producers, "producers", 1, "number of producer clients")
	fl.Var(acks, "acks", "acknowledgements to wait for: all, 1 or 0")
	fl.DurationVar(&cfg.Linger, "linger", 5*time.Millisecond, "how long a partition's batch waits for more records")
	fl.Var(compression, "compression", "batch compression codec")
	fl.Int32Var(&cfg.BatchMaxBytes, "batch-max-bytes", 1<<20, "maximum bytes per record batch")
	fl.IntVar(&cfg.MaxBufferedRecords, "max-buffered-records", 0, "records a producer may buffer before Produce blocks (0 = a few batches per partition)")
	fl.IntVar(&cfg.MaxInflight, "max-inflight", 0, "produce requests in flight per broker and producer, with --idempotent=false (0 = client default: 1)")
	fl.BoolVar(&cfg.Idempotent, "idempotent", true, "use franz-go's default idempotent producer (needs --acks all; up to 5 requests in flight)")
	fl.DurationVar(&cfg.ReshardEvery, "reshard-every", 0, "split or merge a shard this often while producing, through the admin HTTP API at --admin-addr (0 = off; needs --consume=false)")
	fl.DurationVar(&cfg.TxnInterval, "txn-interval", 0, "produce in transactions, committing each once this long has passed since it began (0 = no transactions; needs --idempotent)")
	fl.BoolVar(&cfg.Consume, "consume", true, "afterwards, consume everything produced and measure consume throughput")
	fl.BoolVar(&cfg.ConsumeFromStart, "consume-from-start", false, "the consume phase reads the stream from its first offset, not from where this run began producing (catch-up reads)")
	fl.BoolVar(&cfg.E2ELatency, "e2e-latency", false, "consume while producing and measure end-to-end latency")
	fl.Int32Var(&cfg.FetchMaxBytes, "fetch-max-bytes", 64<<20, "maximum bytes per fetch response")
	fl.Int32Var(&cfg.FetchMaxPartitionBytes, "fetch-max-partition-bytes", 8<<20, "maximum bytes per partition in a fetch response")
	fl.BoolVar(&cfg.Keep, "keep", false, "keep the stream if the run created it")
	cmd.AddCommand(newBenchDiskCmd())
	return cmd
}

func printBench(w io.Writer, f *clientFlags, res *bench.Result) error {
	if f.json() {
		return writeJSON(w, res)
	}
	origin := streamOrigin(res.CreatedStream, res.DeletedStream)
	fmt.Fprintf(w, "stream %s: %d partition%s (%s)\n", res.Stream, res.Partitions, plural(int64(res.Partitions)), origin)
	fmt.Fprintln(w, describeSettings(res.Settings))
	fmt.Fprintln(w)

	header := []string{"PHASE", "RECORDS", "ERRORS", "ELAPSED", "RECORDS/S", "MB/S", "P50", "P99", "P99.9", "MAX"}
	var rows [][]string
	if p := res.Produce; p != nil {
		rows = append(rows, phaseRow("produce", p))
	}
	if p := res.Consume; p != nil {
		rows = append(rows, phaseRow("consume", p))
	}
	if l := res.E2ELatency; l != nil {
		rows = append(rows, append([]string{"e2e", itoa(l.Count), "-", "-", "-", "-"}, latencyCells(l)...))
	}
	if r := res.Reshard; r != nil {
		rows = append(rows, append([]string{"reshard", itoa(int64(r.Ops)), itoa(int64(r.Errors)), "-", "-", "-"}, latencyCells(&r.Latency)...))
	}
	if err := writeTable(w, header, rows); err != nil {
		return err
	}
	if p := res.Produce; p != nil && p.Transactions != nil {
		fmt.Fprintf(w, "\ntransactions: %d committed, %d failed (txn-interval %s)\n",
			p.Transactions.Committed, p.Transactions.Failed, res.Settings.TxnInterval)
	}
	if p := res.Produce; p != nil && res.Settings.Rate > 0 {
		fmt.Fprintf(w, "\ntarget rate %.0f records/s, achieved %.0f; max schedule lag %s\n",
			res.Settings.Rate, p.RecordsPerSec, fmtLatency(time.Duration(p.MaxLagMs*1e6)))
	}
	if p := res.Produce; p != nil && p.Batches != nil && p.Batches.Batches > 0 {
		// The node's cost follows batches as well as bytes.
		b := p.Batches
		fmt.Fprintf(w, "\nbatches: %d produce requests of %.1f batches on average, %.1f records (%.1f KB) per batch\n",
			b.Requests, b.BatchesPerRequest(), b.RecordsPerBatch(), float64(b.Bytes)/float64(b.Batches)/1e3)
	}
	if r := res.Reshard; r != nil {
		fmt.Fprintf(w, "\nreshard storm: %d splits and merges, %d failed; server-side p50 %s, p99 %s, max %s\n",
			r.Ops, r.Errors, fmtLatency(r.ServerTook.P50), fmtLatency(r.ServerTook.P99), fmtLatency(r.ServerTook.Max))
		if r.FirstError != "" {
			fmt.Fprintf(w, "first reshard error: %s\n", r.FirstError)
		}
	}
	if n := res.Node; n != nil {
		fmt.Fprintf(w, "\nnode during produce: %d move%s (%.1f MB moved), %d checkpoint%s",
			n.Moves, plural(n.Moves), float64(n.MovedBytes)/1e6, n.Checkpoints, plural(n.Checkpoints))
		if n.PeakRSSBytes > 0 {
			fmt.Fprintf(w, "; peak RSS over the run %.1f MB", float64(n.PeakRSSBytes)/1e6)
		}
		fmt.Fprintln(w)
	}
	if p := res.Produce; p != nil && p.Bytes > 0 && res.ClientCPUSeconds > 0 {
		// Client and node often share a machine: which side a figure was
		// bound by shows in their CPU per GB.
		gb := float64(p.Bytes) / 1e9
		var nodeCPU *float64
		if res.Node != nil {
			nodeCPU = res.Node.CPUSeconds
		}
		fmt.Fprintf(w, "CPU during produce: ")
		if nodeCPU != nil {
			fmt.Fprintf(w, "node %.1f s (%.2f s per GB), ", *nodeCPU, *nodeCPU/gb)
		}
		fmt.Fprintf(w, "this client %.1f s (%.2f s per GB)", res.ClientCPUSeconds, res.ClientCPUSeconds/gb)
		if nodeCPU != nil && p.Seconds > 0 && loopbackAddr(f.adminAddr) {
			// The node answers on this machine's loopback: the two
			// shared its cores.
			busy := (*nodeCPU + res.ClientCPUSeconds) / (p.Seconds * float64(runtime.NumCPU()))
			fmt.Fprintf(w, "; together %.0f%% of this machine's %d cores", 100*busy, runtime.NumCPU())
		}
		fmt.Fprintln(w)
	}
	if res.Note != "" {
		fmt.Fprintf(w, "\nnote: %s\n", res.Note)
	}
	if res.Interrupted {
		fmt.Fprintln(w, "\ninterrupted: results are partial")
	}
	return nil
}

func describeSettings(s bench.Settings) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d-byte records", s.RecordSize)
	switch {
	case s.Count > 0 && s.Duration != "":
		fmt.Fprintf(&b, ", up to %d or for %s", s.Count, s.Duration)
	case s.Duration != "":
		fmt.Fprintf(&b, " for %s", s.Duration)
	default:
		fmt.Fprintf(&b, ", %d of them", s.Count)
	}
	if s.Rate > 0 {
		fmt.Fprintf(&b, " at %.0f/s", s.Rate)
	}
	fmt.Fprintf(&b, ", %d producer%s, acks=%s, linger=%s, compression=%s, batch-max-bytes=%d, max-buffered-records=%d",
		s.Producers, plural(int64(s.Producers)), s.Acks, s.Linger, s.Compression, s.BatchMaxBytes, s.MaxBufferedRecords)
	if s.MaxInflight > 0 {
		fmt.Fprintf(&b, ", max-inflight=%d", s.MaxInflight)
	}
	fmt.Fprintf(&b, ", idempotent=%v", s.Idempotent)
	if s.TxnInterval != "" {
		fmt.Fprintf(&b, ", txn-interval=%s", s.TxnInterval)
	}
	return b.String()
}

func phaseRow(name string, p *bench.Phase) []string {
	row := []string{
		name,
		itoa(p.Records),
		itoa(p.Errors),
		p.Elapsed.Round(time.Millisecond).String(),
		fmt.Sprintf("%.0f", p.RecordsPerSec),
		fmt.Sprintf("%.1f", p.MBPerSec),
	}
	if p.Latency == nil {
		return append(row, "-", "-", "-", "-")
	}
	return append(row, latencyCells(p.Latency)...)
}

func latencyCells(l *bench.LatencySummary) []string {
	return []string{fmtLatency(l.P50), fmtLatency(l.P99), fmtLatency(l.P999), fmtLatency(l.Max)}
}

// fmtLatency prints three significant digits, which is as much as a
// latency measurement can honestly claim.
func fmtLatency(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%.0fµs", float64(d)/1e3)
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/1e6)
	case d < 100*time.Millisecond:
		return fmt.Sprintf("%.1fms", float64(d)/1e6)
	case d < 10*time.Second:
		return fmt.Sprintf("%.0fms", float64(d)/1e6)
	default:
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
}

// streamOrigin says where a bench run's stream came from and what became
// of it.
func streamOrigin(created, deleted bool) string {
	switch {
	case deleted:
		return "created for this run and deleted"
	case created:
		return "created for this run and kept"
	}
	return "existing stream"
}

// loopbackAddr reports whether addr (host:port) names this machine's
// loopback interface.
func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
