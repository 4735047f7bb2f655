package cli

import (
	"errors"
	"fmt"

	"github.com/braidstream/braid/internal/bench"
	"github.com/braidstream/braid/internal/vfs"
	"github.com/spf13/cobra"
)

func newBenchDiskCmd() *cobra.Command {
	f := &clientFlags{}
	var dir, size string
	cmd := &cobra.Command{
		Use:   "disk",
		Short: "Measure the device's durable sequential write bandwidth",
		Long: `Measure how fast the filesystem under --dir takes sequential writes that
are each made durable before the next, the way the write-ahead log writes:
a file of --size bytes is preallocated (fallocate), then written from the
start in 1 MiB writes each followed by fdatasync ("fresh"), then the same
file is overwritten the same way ("overwrite", as when the log reuses a
segment). Both are printed in MB/s (1 MB = 10^6 bytes, as "braid bench").
The file is removed afterwards.

Run it on the filesystem that holds braid's --data-dir: a sustained
produce figure is best read as a share of this bandwidth.

Examples:
  braid bench disk --dir /var/lib/braid
  braid bench disk --dir . --size 256MiB --format json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				return errors.New("--dir is required: a directory on the filesystem to measure")
			}
			n, err := bench.ParseByteSize(size)
			if err != nil {
				return fmt.Errorf("--size: %w", err)
			}
			res, err := bench.Disk(cmd.Context(), vfs.Default, dir, n, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if f.json() {
				return writeJSON(w, res)
			}
			fmt.Fprintf(w, "durable sequential writes in %s, %d bytes in 1 MiB writes each followed by fdatasync:\n", res.Dir, res.Bytes)
			return writeTable(w, []string{"PASS", "ELAPSED", "MB/S"}, [][]string{
				{"fresh (preallocated)", fmt.Sprintf("%.2fs", res.FreshSeconds), fmt.Sprintf("%.1f", res.FreshMBPerSec)},
				{"overwrite", fmt.Sprintf("%.2fs", res.OverwriteSeconds), fmt.Sprintf("%.1f", res.OverwriteMBPerSec)},
			})
		},
	}
	f.addFormatFlag(cmd, false)
	cmd.Flags().StringVar(&dir, "dir", "", "directory on the filesystem to measure (required)")
	cmd.Flags().StringVar(&size, "size", "1GiB", "bytes to write per pass, a multiple of 1 MiB (e.g. 256MiB, 1GiB)")
	return cmd
}
