package cli

import (
	"fmt"
	"io"
	"sort"

	"github.com/spf13/cobra"

	"github.com/braidstream/braid/internal/engine"
)

func init() { register(newRepairCmd) }

func newRepairCmd() *cobra.Command {
	var dir, format string
	var apply bool
	cmd := &cobra.Command{
		Use:   "repair",
		Short: "Find damage in a stopped node's write-ahead log; cut the log there on request",
		Long: `Check the write-ahead log of a stopped node for damage that makes
'braid serve' refuse to start, and report exactly what cutting the log at the
damage would lose: the bytes, the WAL files changed, and per shard the offset
ranges of the record batches found after the damage (a lower bound: frames
inside the damaged write unit cannot be read).

Braid cuts a torn tail (the last, unacknowledged write of a crash) by itself
at start-up. Anything else, such as a flipped byte in data that was already
durable, is never cut silently: the node refuses to start and names the file
and position. Without --apply this command changes nothing. With --apply it
first copies every WAL file the cut changes into DIR/repair-<UTC time>/wal/,
then truncates the log at the damage; records after it are gone, and a shard
continues at the first lost offset.

Exit status: 0 when the log is undamaged or was repaired, 2 when damage was
found and not repaired (without --apply).

Examples:
  braid repair --data-dir /var/lib/braid
  braid repair --data-dir /var/lib/braid --apply
  braid repair --data-dir /var/lib/braid --format json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != formatText && format != formatJSON {
				return fmt.Errorf("--format %q: want text or json", format)
			}
			rep, err := engine.Repair(nil, dir, apply)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if format == formatJSON {
				err = writeJSON(out, rep)
			} else {
				err = printRepair(out, rep)
			}
			if err != nil {
				return err
			}
			if rep.Damaged && !rep.Applied {
				return errExit{2}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "data-dir", "braid-data", "the stopped node's data directory")
	f.BoolVar(&apply, "apply", false, "back up the damaged files and cut the log at the damage")
	f.StringVar(&format, "format", formatText, "output format: text or json")
	return cmd
}

func printRepair(w io.Writer, rep engine.RepairReport) error {
	if !rep.Damaged {
		_, err := fmt.Fprintf(w, "%s: the write-ahead log has no damage; nothing to repair\n", rep.Dir)
		return err
	}
	fmt.Fprintf(w, "damage in %s at byte %d (log position %d): %s\n", rep.File, rep.Offset, rep.Position, rep.Reason)
	fmt.Fprintf(w, "not a torn tail: %s\n", rep.Evidence)
	fmt.Fprintf(w, "cutting the log there loses %d bytes of WAL (files %v)\n", rep.LostBytes, rep.LostSegments)
	if len(rep.LostShards) == 0 {
		fmt.Fprintln(w, "no readable record batch lies after the damage")
	}
	for _, r := range rep.LostShards {
		fmt.Fprintf(w, "  stream %s shard %d: offsets %d-%d (%d batches)\n", r.Stream, r.Shard, r.FromOffset, r.ToOffset, r.Batches)
	}
	kinds := make([]string, 0, len(rep.LostFrames))
	for k := range rep.LostFrames {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		fmt.Fprintf(w, "  %d %s\n", rep.LostFrames[k], k)
	}
	if rep.Applied {
		_, err := fmt.Fprintf(w, "repaired: the damaged files were copied to %s, and the log was cut at position %d\n", rep.Backup, rep.Position)
		return err
	}
	_, err := fmt.Fprintln(w, "nothing was changed; run again with --apply to back up the damaged files and cut the log")
	return err
}
