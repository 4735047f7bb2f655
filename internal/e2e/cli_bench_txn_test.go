package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/braidstream/braid/internal/braidtest"
)

// benchTxnReport adds to benchReport what a transactional run reports.
type benchTxnReport struct {
	benchReport
	Settings struct {
		benchSetting
		TxnInterval string `json:"txn_interval"`
	} `json:"settings"`
	Produce *struct {
		benchPhase
		Transactions *struct {
			Committed int64 `json:"committed"`
			Failed    int64 `json:"failed"`
		} `json:"transactions"`
	} `json:"produce"`
}

// TestCLIBenchTxn runs `braid bench --txn-interval` and checks that every
// record arrives through committed transactions and that the read_committed
// consume phase reads them all and ends.
func TestCLIBenchTxn(t *testing.T) {
	t.Parallel()
	p := braidtest.Start(t)

	t.Run("json", func(t *testing.T) {
		ctx := testCtx(t, 60*time.Second)
		// --rate stretches the run to about 400 ms so that several
		// 50 ms transactions commit, however fast the machine.
		r := runCLI(t, ctx, "", nil, "bench", "--stream", "cli-bench-txn", "--partitions", "2", "--count", "20000",
			"--record-size", "200", "--rate", "50000", "--txn-interval", "50ms", "--keep", "--format", "json",
			"--brokers", p.KafkaAddr)
		if r.code != 0 {
			t.Fatalf("want exit 0; %s", r)
		}
		var rep benchTxnReport
		cliDecodeJSON(t, r, &rep)
		if rep.Settings.TxnInterval != "50ms" || rep.Settings.Acks != "all" || rep.Interrupted {
			t.Errorf("bench report settings: %+v, interrupted %v", rep.Settings, rep.Interrupted)
		}
		if rep.Produce == nil {
			t.Fatalf("bench report has no produce phase; %s", r)
		}
		checkBenchPhase(t, "produce", &rep.Produce.benchPhase, 20000, 200)
		checkBenchPhase(t, "consume", rep.Consume, 20000, 200)
		if tx := rep.Produce.Transactions; tx == nil || tx.Committed <= 1 || tx.Failed != 0 {
			t.Errorf("bench transactions: %+v, want more than one committed and none failed; %s", tx, r)
		}

		// What a read_committed reader sees is every record the run
		// produced plus the warm-up record, itself in a transaction.
		var committed int
		for part := range int32(2) {
			committed += len(p.ReadPartition(ctx, "cli-bench-txn", part, true))
		}
		if committed != 20000+1 {
			t.Errorf("cli-bench-txn holds %d committed records, want 20001 (20000 + 1 warm-up)", committed)
		}
	})

	t.Run("text", func(t *testing.T) {
		ctx := testCtx(t, 60*time.Second)
		r := runCLI(t, ctx, "", nil, "bench", "--stream", "cli-bench-txn-text", "--count", "2000", "--record-size", "100",
			"--txn-interval", "20ms", "--brokers", p.KafkaAddr)
		if r.code != 0 {
			t.Fatalf("want exit 0; %s", r)
		}
		if !strings.Contains(r.stdout, "txn-interval=20ms") || !strings.Contains(r.stdout, "transactions: ") ||
			!strings.Contains(r.stdout, " committed, 0 failed") {
			t.Errorf("bench text lacks the transaction settings or count; %s", r)
		}
		for _, phase := range []string{"produce", "consume"} {
			if f := cliRowStarting(r.stdout, phase); len(f) != 10 || f[1] != "2000" || f[2] != "0" {
				t.Errorf("bench text %s row %q: want 2000 records and 0 errors", phase, f)
			}
		}
	})

	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"not-idempotent", []string{"--idempotent=false"}, []string{"--txn-interval", "--idempotent"}},
		{"acks-1", []string{"--acks", "1"}, []string{"--txn-interval", "--acks all", "1"}},
		{"negative", []string{"--txn-interval", "-1s"}, []string{"--txn-interval", "negative"}},
	} {
		t.Run("refuses-"+tc.name, func(t *testing.T) {
			ctx := testCtx(t, 20*time.Second)
			cliFails(t, ctx, p, "", tc.want, append([]string{"bench", "--txn-interval", "50ms", "--count", "10"}, tc.args...)...)
		})
	}
}
