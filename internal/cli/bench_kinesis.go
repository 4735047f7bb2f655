package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/braidstream/braid/internal/bench"
	"github.com/spf13/cobra"
)

// newBenchKinesisCmd is "braid bench kinesis". It is a subcommand rather
// than flags on bench because it shares none of bench's Kafka flags
// (brokers, partitions, acks, linger, batches) and talks to any Kinesis
// endpoint, not only Braid.
func newBenchKinesisCmd() *cobra.Command {
	f := &clientFlags{}
	cfg := bench.KinesisConfig{}
	region := os.Getenv("AWS_REGION")
	if region == "" {
		region = "us-east-1"
	}
	cmd := &cobra.Command{
		Use:   "kinesis",
		Short: "Measure PutRecords/GetRecords throughput and PutRecord latency against a Kinesis endpoint",
		Long: `Drive any Kinesis Data Streams endpoint (Braid's Kinesis door, kinesalite,
AWS) with the AWS SDK for Go v2 and report throughput (records/s, MB/s,
where 1 MB = 10^6 bytes of record data; partition keys are not counted)
and latency percentiles.

The run creates --stream with --shards shards if it does not exist (and
waits until it is ACTIVE) and deletes it afterwards unless --keep is
given; an existing stream is used as is and never deleted. Record data is
random and incompressible; partition keys are distinct, so records spread
evenly over the shards.

Write (default): --callers clients each send PutRecords calls of
--records-per-call records back to back for --duration. Latency is per
call. A record the answer marks failed, or every record of a failed call,
counts as an error; the SDK does not retry.

Write at a fixed rate (--rate R): the callers send single-record PutRecord
calls at R records/s in total, each caller on its own schedule and
waiting for each answer; latency is per record (p50, p90, p99, p99.9) and
the report shows how far the callers fell behind schedule (add callers
if they cannot keep up).

Read (on by default): afterwards every shard, open or closed, is read
from TRIM_HORIZON to its end with GetRecords (Limit 10000), by up to
--callers clients at a time. Reading back fewer records than were written
fails the run.

Requests are unsigned unless AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY
are set (AWS_SESSION_TOKEN optional): then every request is SigV4-signed
with them (kinesalite needs a signature but checks none; Braid checks
them when started with --kinesis-credentials).

Progress is printed to stderr once a second; the report goes to stdout.
test/bench/kinesis.sh compares Braid with kinesalite and with Braid's
Kafka door using this command.

Examples:
  braid bench kinesis
  braid bench kinesis --endpoint http://127.0.0.1:4567 --shards 4 --callers 4 --duration 30s
  braid bench kinesis --rate 1000 --callers 16 --duration 30s --read=false
  AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=y braid bench kinesis --endpoint http://127.0.0.1:4568 --format json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.AccessKeyID = os.Getenv("AWS_ACCESS_KEY_ID")
			cfg.SecretAccessKey = os.Getenv("AWS_SECRET_ACCESS_KEY")
			cfg.SessionToken = os.Getenv("AWS_SESSION_TOKEN")
			if (cfg.AccessKeyID == "") != (cfg.SecretAccessKey == "") {
				return errors.New("set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY to sign requests, or neither")
			}
			if err := checkBenchKinesisFlags(cfg); err != nil {
				return err
			}
			cfg.Progress = cmd.ErrOrStderr()
			res, runErr := bench.RunKinesis(cmd.Context(), cfg)
			if res != nil && (res.PutRecords != nil || res.PutRecord != nil) {
				if err := printBenchKinesis(cmd.OutOrStdout(), f, res); err != nil {
					return errors.Join(runErr, err)
				}
			}
			if runErr != nil {
				return fmt.Errorf("bench kinesis: %w", runErr)
			}
			for _, p := range []*bench.Phase{res.PutRecords, res.PutRecord, res.GetRecords} {
				if p != nil && p.Errors > 0 {
					return fmt.Errorf("bench kinesis: %d error%s; first error: %s", p.Errors, plural(p.Errors), p.FirstError)
				}
			}
			return nil
		},
	}
	f.addFormatFlag(cmd, false)
	fl := cmd.Flags()
	fl.StringVar(&cfg.Endpoint, "endpoint", "http://127.0.0.1:4567", "Kinesis endpoint URL")
	fl.StringVar(&cfg.Region, "region", region, "AWS region to sign for ($AWS_REGION sets the default)")
	fl.StringVar(&cfg.Stream, "stream", "braid-bench-kinesis", "stream to benchmark; created if missing")
	fl.IntVar(&cfg.Shards, "shards", 4, "shards to create the stream with (ignored if it exists)")
	fl.IntVar(&cfg.Callers, "callers", 4, "concurrent clients, each with one call in flight")
	fl.IntVar(&cfg.RecordsPerCall, "records-per-call", bench.MaxRecordsPerCall, "records per PutRecords call (1-500)")
	fl.IntVar(&cfg.RecordSize, "record-size", 1024, "bytes of data per record")
	fl.DurationVar(&cfg.Duration, "duration", 10*time.Second, "how long to write")
	fl.Float64Var(&cfg.Rate, "rate", 0, "write single-record PutRecord calls at this many records/s in total and measure their latency (0 = PutRecords as fast as possible)")
	fl.BoolVar(&cfg.Read, "read", true, "afterwards, read every shard from TRIM_HORIZON with GetRecords and measure read throughput")
	fl.BoolVar(&cfg.Keep, "keep", false, "keep the stream if the run created it")
	return cmd
}

// checkBenchKinesisFlags refuses bad flag values by flag name before
// anything is sent (the engine checks the same, in its own words).
func checkBenchKinesisFlags(cfg bench.KinesisConfig) error {
	switch {
	case cfg.Shards < 1:
		return fmt.Errorf("--shards must be at least 1 (got %d)", cfg.Shards)
	case cfg.Callers < 1:
		return fmt.Errorf("--callers must be at least 1 (got %d)", cfg.Callers)
	case cfg.RecordsPerCall < 1 || cfg.RecordsPerCall > bench.MaxRecordsPerCall:
		return fmt.Errorf("--records-per-call must be 1 to %d, Kinesis' PutRecords limit (got %d)", bench.MaxRecordsPerCall, cfg.RecordsPerCall)
	case cfg.RecordSize < 1 || cfg.RecordSize > 1<<20:
		return fmt.Errorf("--record-size must be 1 to 1048576 bytes, Kinesis' record limit (got %d)", cfg.RecordSize)
	case cfg.Duration <= 0:
		return fmt.Errorf("--duration must be positive (got %s)", cfg.Duration)
	case cfg.Rate < 0:
		return fmt.Errorf("--rate must not be negative (got %g)", cfg.Rate)
	}
	return nil
}

func printBenchKinesis(w io.Writer, f *clientFlags, res *bench.KinesisResult) error {
	if f.json() {
		return writeJSON(w, res)
	}
	origin := streamOrigin(res.CreatedStream, res.DeletedStream)
	s := res.Settings
	fmt.Fprintf(w, "endpoint %s, stream %s: %d open shard%s (%s)\n", res.Endpoint, res.Stream, res.Shards, plural(int64(res.Shards)), origin)
	if s.Rate > 0 {
		fmt.Fprintf(w, "PutRecord of %d-byte records at %.0f/s for %s, %d caller%s", s.RecordSize, s.Rate, s.Duration, s.Callers, plural(int64(s.Callers)))
	} else {
		fmt.Fprintf(w, "PutRecords of %d × %d-byte records for %s, %d caller%s", s.RecordsPerCall, s.RecordSize, s.Duration, s.Callers, plural(int64(s.Callers)))
	}
	fmt.Fprintf(w, ", signed=%v\n\n", s.Signed)

	header := []string{"PHASE", "RECORDS", "ERRORS", "ELAPSED", "RECORDS/S", "MB/S", "P50", "P90", "P99", "P99.9", "MAX"}
	var rows [][]string
	for _, ph := range []struct {
		name string
		p    *bench.Phase
	}{{"putrecords", res.PutRecords}, {"putrecord", res.PutRecord}, {"getrecords", res.GetRecords}} {
		if ph.p == nil {
			continue
		}
		row := phaseRow(ph.name, ph.p)[:6]
		if l := ph.p.Latency; l != nil {
			row = append(row, fmtLatency(l.P50), fmtLatency(l.P90), fmtLatency(l.P99), fmtLatency(l.P999), fmtLatency(l.Max))
		} else {
			row = append(row, "-", "-", "-", "-", "-")
		}
		rows = append(rows, row)
	}
	if err := writeTable(w, header, rows); err != nil {
		return err
	}
	if res.PutRecords != nil {
		fmt.Fprintf(w, "\nputrecords latency is per call of %d records\n", s.RecordsPerCall)
	}
	if p := res.PutRecord; p != nil {
		fmt.Fprintf(w, "\ntarget rate %.0f records/s, achieved %.0f; max schedule lag %s\n",
			s.Rate, p.RecordsPerSec, fmtLatency(time.Duration(p.MaxLagMs*1e6)))
	}
	for _, p := range []*bench.Phase{res.PutRecords, res.PutRecord, res.GetRecords} {
		if p != nil && p.FirstError != "" {
			fmt.Fprintf(w, "first error: %s\n", p.FirstError)
			break
		}
	}
	if res.Interrupted {
		fmt.Fprintln(w, "\ninterrupted: results are partial")
	}
	return nil
}
