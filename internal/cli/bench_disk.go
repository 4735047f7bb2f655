package cli

import (
	"errors"
	"fmt"
	"time"

	"github.com/braidstream/braid/internal/bench"
	"github.com/braidstream/braid/internal/vfs"
	"github.com/spf13/cobra"
)

func newBenchDiskCmd() *cobra.Command {
	f := &clientFlags{}
	var dir, size, latencyRate, latencyWrite, latencyRecord string
	var latencyFor time.Duration
	cmd := &cobra.Command{
		Use:   "disk",
		Short: "Measure the device's durable sequential write bandwidth",
		Long: `Measure how fast the filesystem under --dir takes sequential writes that
are each made durable before the next, the way the write-ahead log writes:
a file of --size bytes is preallocated (fallocate), then written from the
start in 1 MiB writes each followed by fdatasync ("fresh"), then the same
file is overwritten the same way ("overwrite", as when the log reuses a
segment). Last, the file is dropped from the page cache (fadvise) and read
back in 1 MiB reads: the device's sequential read bandwidth, the bound of a
catch-up read from disk (on tmpfs, which keeps its pages, this measures
memory). All three are printed in MB/s (1 MB = 10^6 bytes, as "braid
bench"). The file is removed afterwards.

With --latency-rate, it then times writes of --latency-write bytes, each
followed by fdatasync, sent at that rate for --latency-duration: first
over a file written beforehand (as the log writes into a spare segment),
then into a freshly preallocated one (a fresh segment). Each sample is
one write+fdatasync, the least a group commit of that size can take. A
third pass, over a file written beforehand, plays a group-committing log:
records of --latency-record bytes arrive on schedule at that rate, whatever
the device does, each write+fdatasync takes all that have arrived, and
each record counts from its arrival to the end of its write. A stall of
the device so counts for every record that waited behind it, as it does
in a producer's latency: produce latency at the same rate is best read
against this pass.

Run it on the filesystem that holds braid's --data-dir: a sustained
produce figure is best read as a share of this bandwidth.

Examples:
  braid bench disk --dir /var/lib/braid
  braid bench disk --dir . --size 256MiB --format json
  braid bench disk --dir . --latency-rate 100MB --latency-duration 30s`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				return errors.New("--dir is required: a directory on the filesystem to measure")
			}
			n, err := bench.ParseByteSize(size)
			if err != nil {
				return fmt.Errorf("--size: %w", err)
			}
			var rate, write, record int64
			if latencyRate != "" {
				if rate, err = bench.ParseByteSize(latencyRate); err != nil || rate <= 0 {
					return fmt.Errorf("--latency-rate %q: want bytes per second, such as 100MB", latencyRate)
				}
				if write, err = bench.ParseByteSize(latencyWrite); err != nil || write < 4096 || write > 64<<20 {
					return fmt.Errorf("--latency-write %q: want 4KiB to 64MiB", latencyWrite)
				}
				if record, err = bench.ParseByteSize(latencyRecord); err != nil || record < 1 || record > 8<<20 {
					return fmt.Errorf("--latency-record %q: want 1B to 8MiB", latencyRecord)
				}
				if latencyFor <= 0 {
					return fmt.Errorf("--latency-duration %s: must be positive", latencyFor)
				}
			}
			res, err := bench.Disk(cmd.Context(), vfs.Default, dir, n, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			out := struct {
				*bench.DiskResult
				Latency *bench.DiskLatencyResult `json:"latency,omitempty"`
			}{DiskResult: res}
			if rate > 0 {
				if out.Latency, err = bench.DiskLatency(cmd.Context(), vfs.Default, dir, float64(rate), int(write), int(record), latencyFor, cmd.ErrOrStderr()); err != nil {
					return err
				}
			}
			w := cmd.OutOrStdout()
			if f.json() {
				return writeJSON(w, out)
			}
			fmt.Fprintf(w, "durable sequential writes in %s, %d bytes in 1 MiB writes each followed by fdatasync:\n", res.Dir, res.Bytes)
			if err := writeTable(w, []string{"PASS", "ELAPSED", "MB/S"}, [][]string{
				{"fresh (preallocated)", fmt.Sprintf("%.2fs", res.FreshSeconds), fmt.Sprintf("%.1f", res.FreshMBPerSec)},
				{"overwrite", fmt.Sprintf("%.2fs", res.OverwriteSeconds), fmt.Sprintf("%.1f", res.OverwriteMBPerSec)},
				{"read back, page cache dropped", fmt.Sprintf("%.2fs", res.ColdReadSeconds), fmt.Sprintf("%.1f", res.ColdReadMBPerSec)},
			}); err != nil || out.Latency == nil {
				return err
			}
			l := out.Latency
			fmt.Fprintf(w, "\nwrite+fdatasync latency, %d-byte writes at %.1f MB/s for %s:\n", l.WriteBytes, l.BytesPerSec/1e6, latencyFor)
			row := func(name string, s bench.LatencySummary) []string {
				ms := func(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/1e6) }
				return []string{name, ms(s.P50), ms(s.P99), ms(s.P999), ms(s.Max)}
			}
			if err := writeTable(w, []string{"INTO", "P50", "P99", "P99.9", "MAX"}, [][]string{
				row("pre-written file", l.Prewritten), row("preallocated file", l.Preallocated),
			}); err != nil {
				return err
			}
			fmt.Fprintf(w, "\n%d-byte records arriving at %.1f MB/s for %s, committed in groups into a pre-written file (arrival to durable):\n", l.RecordBytes, l.BytesPerSec/1e6, latencyFor)
			return writeTable(w, []string{"PASS", "P50", "P99", "P99.9", "MAX"}, [][]string{row("group commit", l.GroupCommit)})
		},
	}
	f.addFormatFlag(cmd, false)
	cmd.Flags().StringVar(&dir, "dir", "", "directory on the filesystem to measure (required)")
	cmd.Flags().StringVar(&size, "size", "1GiB", "bytes to write per pass, a multiple of 1 MiB (e.g. 256MiB, 1GiB)")
	cmd.Flags().StringVar(&latencyRate, "latency-rate", "", "also time write+fdatasync at this many bytes per second (e.g. 100MB); needs that rate x --latency-duration of free space")
	cmd.Flags().StringVar(&latencyWrite, "latency-write", "512KiB", "bytes per write of the latency passes")
	cmd.Flags().StringVar(&latencyRecord, "latency-record", "1KiB", "bytes per record of the group-commit latency pass")
	cmd.Flags().DurationVar(&latencyFor, "latency-duration", 30*time.Second, "length of each latency pass")
	return cmd
}
