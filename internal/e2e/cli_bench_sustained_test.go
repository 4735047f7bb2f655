package e2e

import (
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/braidstream/braid/internal/bench"
	"github.com/braidstream/braid/internal/braidtest"
)

// benchNodeReport is the part of `bench --format json` that says what the
// node did during the run.
type benchNodeReport struct {
	Produce *benchPhase `json:"produce"`
	Consume *benchPhase `json:"consume"`
	Node    *struct {
		Moves        int64    `json:"moves"`
		MovedBytes   int64    `json:"moved_bytes"`
		Checkpoints  int64    `json:"checkpoints"`
		PeakRSSBytes int64    `json:"peak_rss_bytes"`
		CPUSeconds   *float64 `json:"cpu_seconds"`
	} `json:"node"`
	ClientCPUSeconds float64 `json:"client_cpu_seconds"`
	Note             string  `json:"note"`
	Burst            bool    `json:"burst"`
}

// TestCLIBenchBackgroundWork: with the node's HTTP address, bench reports
// the moves and checkpoints that happened while it produced and the node's
// peak RSS; a run that saw none says its figures are a burst, and so does
// a short run without the address.
func TestCLIBenchBackgroundWork(t *testing.T) {
	t.Parallel()

	t.Run("moves and checkpoints", func(t *testing.T) {
		t.Parallel()
		// 1 MiB log segments close every MiB; a compacted stream's closed
		// log is moved for its cleaner at the mover's next tick (1 s;
		// other streams stay in the log), and checkpoints come every
		// second. Every key is new, so the cleaner removes nothing.
		p := braidtest.Start(t, "--wal-segment-bytes", "1048576", "--move-interval", "100ms", "--checkpoint-interval", "1s")
		ctx := testCtx(t, 60*time.Second)
		r := runCLI(t, ctx, "", nil, "bench", "--stream", "bg-busy", "--keep", "--duration", "3s", "--rate", "2000",
			"--keys", "1000000", "--stream-config", "cleanup.policy=compact",
			"--consume=false", "--format", "json", "--brokers", p.KafkaAddr, "--admin-addr", p.HTTPAddr)
		if r.code != 0 {
			t.Fatalf("want exit 0; %s", r)
		}
		var rep benchNodeReport
		cliDecodeJSON(t, r, &rep)
		if n := rep.Node; n == nil || n.Moves < 1 || n.MovedBytes < 1<<20 || n.Checkpoints < 1 || n.PeakRSSBytes < 1<<20 {
			t.Fatalf("node report %+v: want at least one move of a 1 MiB segment, a checkpoint and a peak RSS; %s", n, r)
		}
		if rep.Note != "" || rep.Burst {
			t.Errorf("note %q, burst %v: want none after moves and checkpoints", rep.Note, rep.Burst)
		}
		// Both sides' CPU during the produce phase: some, and no more
		// than the machine's cores could give in that time.
		most := rep.Produce.Seconds*float64(runtime.NumCPU()) + 0.5
		if c := rep.Node.CPUSeconds; c == nil || *c <= 0 || *c > most {
			t.Errorf("node CPU %v s during a %.1f s produce phase, want within (0, %.1f]", c, rep.Produce.Seconds, most)
		}
		if c := rep.ClientCPUSeconds; c <= 0 || c > most {
			t.Errorf("client CPU %.2f s during a %.1f s produce phase, want within (0, %.1f]", c, rep.Produce.Seconds, most)
		}

		// Catch-up: a second run reads the kept stream from its start,
		// most of it out of shard segment files by now.
		// (A compacted stream takes keyed records only; one repeated key
		// is far below the cleaner's dirty ratio.)
		r = runCLI(t, ctx, "", nil, "bench", "--stream", "bg-busy", "--count", "1", "--keys", "1000000", "--consume-from-start",
			"--format", "json", "--brokers", p.KafkaAddr)
		if r.code != 0 {
			t.Fatalf("want exit 0; %s", r)
		}
		var catchup benchNodeReport
		cliDecodeJSON(t, r, &catchup)
		d := cliDescribe(t, ctx, p, "bg-busy")
		total := *d.Shards[0].Latest - *d.Shards[0].Earliest
		if catchup.Consume == nil || catchup.Consume.Records != total || total < rep.Produce.Records+1 {
			t.Fatalf("consume from start read %+v, want all %d records of the stream (%d produced before)", catchup.Consume, total, rep.Produce.Records)
		}
		if catchup.Node != nil || catchup.Note != bench.NoteShortRun || !catchup.Burst {
			t.Errorf("run without --admin-addr: node %+v, note %q, burst %v; want no node report and the short-run note", catchup.Node, catchup.Note, catchup.Burst)
		}
	})

	t.Run("none", func(t *testing.T) {
		t.Parallel()
		// Defaults: checkpoints every 30 s, moves after 1 GiB of closed
		// log or 2 minutes; a second of produce sees neither.
		p := braidtest.Start(t)
		ctx := testCtx(t, 30*time.Second)
		r := runCLI(t, ctx, "", nil, "bench", "--stream", "bg-none", "--count", "2000", "--record-size", "100",
			"--brokers", p.KafkaAddr, "--admin-addr", p.HTTPAddr)
		if r.code != 0 {
			t.Fatalf("want exit 0; %s", r)
		}
		if !strings.Contains(r.stdout, "node during produce: 0 moves (0.0 MB moved), 0 checkpoints; peak RSS over the run ") {
			t.Errorf("text report lacks the node line; %s", r)
		}
		if !strings.Contains(r.stdout, "\nnote: "+bench.NoteNoBackground+"\n") {
			t.Errorf("text report lacks the no-background note; %s", r)
		}
		if !regexp.MustCompile(`\nCPU during produce: node [0-9.]+ s \([0-9.]+ s per GB\), this client [0-9.]+ s \([0-9.]+ s per GB\); together [0-9]+% of this machine's [0-9]+ cores\n`).MatchString(r.stdout) {
			t.Errorf("text report lacks the CPU line with the node's share; %s", r)
		}

		r = runCLI(t, ctx, "", nil, "bench", "--stream", "bg-none", "--count", "2000", "--record-size", "100",
			"--brokers", p.KafkaAddr)
		if r.code != 0 {
			t.Fatalf("want exit 0; %s", r)
		}
		if !strings.Contains(r.stdout, "\nnote: "+bench.NoteShortRun+"\n") || strings.Contains(r.stdout, "node during produce") {
			t.Errorf("text report without --admin-addr: want the short-run note and no node line; %s", r)
		}
		if !strings.Contains(r.stdout, "\nCPU during produce: this client ") || strings.Contains(r.stdout, "together") {
			t.Errorf("text report without --admin-addr: want the client's CPU alone, not added to the node's; %s", r)
		}

		// A wrong address fails at once and creates nothing.
		r = runCLI(t, ctx, "", nil, "bench", "--stream", "bg-bad-addr", "--count", "10",
			"--brokers", p.KafkaAddr, "--admin-addr", braidtest.FreeAddr(t))
		if r.code == 0 || !strings.Contains(r.stderr, "scrape node metrics") {
			t.Fatalf("bench with a wrong --admin-addr: want a failure naming the scrape; %s", r)
		}
		if _, ok := cliListStreams(t, ctx, p)["bg-bad-addr"]; ok {
			t.Errorf("bench with a wrong --admin-addr created its stream")
		}
	})
}

// TestCLIBenchDisk runs `braid bench disk` on a small file.
func TestCLIBenchDisk(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t, 30*time.Second)
	dir := t.TempDir()
	r := runCLI(t, ctx, "", nil, "bench", "disk", "--dir", dir, "--size", "4MiB", "--format", "json")
	if r.code != 0 {
		t.Fatalf("want exit 0; %s", r)
	}
	var res bench.DiskResult
	cliDecodeJSON(t, r, &res)
	if res.Bytes != 4<<20 || !(res.FreshMBPerSec > 0) || !(res.OverwriteMBPerSec > 0) {
		t.Errorf("bench disk: %+v, want 4 MiB and positive MB/s for both passes", res)
	}
	r = runCLI(t, ctx, "", nil, "bench", "disk", "--dir", dir, "--size", "4MiB")
	if r.code != 0 || !cliHasRow(r.stdout, []string{"PASS", "ELAPSED", "MB/S"}) || len(cliRowStarting(r.stdout, "overwrite")) != 3 {
		t.Errorf("bench disk text: want a table with fresh and overwrite rows; %s", r)
	}
	for _, bad := range [][]string{{"--size", "1MiB"}, {"--dir", dir, "--size", "lots"}, {"--dir", dir + "/missing"}} {
		r := runCLI(t, ctx, "", nil, append([]string{"bench", "disk"}, bad...)...)
		if r.code == 0 || r.stderr == "" {
			t.Errorf("bench disk %q: want a failure with a message; %s", bad, r)
		}
	}
}
