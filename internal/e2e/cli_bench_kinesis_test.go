package e2e

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/braidstream/braid/internal/braidtest"
)

// noAWSEnv keeps AWS credentials in the test's environment from signing
// the bench's requests.
var noAWSEnv = []string{"AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=", "AWS_SESSION_TOKEN=", "AWS_REGION="}

// benchKinesisReport is the part of `bench kinesis --format json` the
// tests check.
type benchKinesisReport struct {
	Stream        string `json:"stream"`
	Shards        int    `json:"shards"`
	CreatedStream bool   `json:"created_stream"`
	DeletedStream bool   `json:"deleted_stream"`
	Settings      struct {
		Signed bool `json:"signed"`
	} `json:"settings"`
	PutRecords *benchPhase `json:"put_records"`
	PutRecord  *struct {
		benchPhase
		MaxLagMs float64 `json:"max_schedule_lag_ms"`
	} `json:"put_record"`
	GetRecords *benchPhase `json:"get_records"`
}

// TestCLIBenchKinesis runs `braid bench kinesis` against a node's Kinesis
// door for about a second per mode and checks that the report's counts are
// what the stream holds: every record written is counted once, and the
// read-back from TRIM_HORIZON finds exactly those on every shard.
func TestCLIBenchKinesis(t *testing.T) {
	t.Parallel()
	p := braidtest.Start(t)
	endpoint := "http://" + p.KinesisAddr
	kc := p.Kinesis()

	t.Run("putrecords", func(t *testing.T) {
		ctx := testCtx(t, 60*time.Second)
		r := runCLI(t, ctx, "", noAWSEnv, "bench", "kinesis", "--endpoint", endpoint, "--stream", "kb-put", "--keep",
			"--shards", "3", "--callers", "2", "--records-per-call", "100", "--record-size", "512",
			"--duration", "1s", "--format", "json")
		if r.code != 0 {
			t.Fatalf("want exit 0; %s", r)
		}
		var rep benchKinesisReport
		cliDecodeJSON(t, r, &rep)
		if rep.PutRecords == nil || rep.GetRecords == nil || rep.PutRecord != nil {
			t.Fatalf("want a putrecords and a getrecords phase only; %s", r)
		}
		n := rep.PutRecords.Records
		if n == 0 || n%100 != 0 {
			t.Fatalf("wrote %d records, want a positive multiple of the 100 per call; %s", n, r)
		}
		checkBenchPhase(t, "putrecords", rep.PutRecords, n, 512)
		checkBenchPhase(t, "getrecords", rep.GetRecords, n, 512)
		if l := rep.PutRecords.Latency; l == nil || l.Count != n/100 {
			t.Errorf("putrecords latency %+v, want one sample per call (%d)", l, n/100)
		}
		if !rep.CreatedStream || rep.DeletedStream || rep.Shards != 3 || rep.Settings.Signed {
			t.Errorf("report %+v, want a created and kept stream of 3 shards, unsigned", rep)
		}
		// What the stream holds, read through the other door.
		var held int64
		for part := range int32(3) {
			held += p.EndOffset(ctx, "kb-put", part, false)
		}
		if held != n {
			t.Fatalf("the stream holds %d records, the report says %d were written", held, n)
		}
	})

	t.Run("putrecord at a rate", func(t *testing.T) {
		ctx := testCtx(t, 60*time.Second)
		r := runCLI(t, ctx, "", noAWSEnv, "bench", "kinesis", "--endpoint", endpoint, "--stream", "kb-rate",
			"--shards", "2", "--callers", "2", "--rate", "200", "--record-size", "100", "--duration", "1s", "--format", "json")
		if r.code != 0 {
			t.Fatalf("want exit 0; %s", r)
		}
		var rep benchKinesisReport
		cliDecodeJSON(t, r, &rep)
		if rep.PutRecord == nil || rep.GetRecords == nil || rep.PutRecords != nil {
			t.Fatalf("want a putrecord and a getrecords phase only; %s", r)
		}
		n := rep.PutRecord.Records
		// 100 per caller are due within the second; a caller that fell
		// behind sends fewer.
		if n < 1 || n > 200 {
			t.Fatalf("wrote %d records at 200/s for 1s, want 1 to 200; %s", n, r)
		}
		checkBenchPhase(t, "putrecord", &rep.PutRecord.benchPhase, n, 100)
		checkBenchPhase(t, "getrecords", rep.GetRecords, n, 100)
		if l := rep.PutRecord.Latency; l == nil || l.Count != n || !(l.P50 > 0) {
			t.Errorf("putrecord latency %+v, want one sample per record (%d)", l, n)
		}
		if !rep.CreatedStream || !rep.DeletedStream {
			t.Errorf("report %+v, want the stream created and deleted", rep)
		}
		if _, err := kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("kb-rate")}); awsErrorCode(err) != "ResourceNotFoundException" {
			t.Fatalf("after the run: %v, want ResourceNotFoundException", err)
		}
	})

	t.Run("text", func(t *testing.T) {
		ctx := testCtx(t, 60*time.Second)
		r := runCLI(t, ctx, "", noAWSEnv, "bench", "kinesis", "--endpoint", endpoint, "--stream", "kb-text",
			"--shards", "1", "--callers", "1", "--records-per-call", "10", "--record-size", "100", "--duration", "300ms")
		if r.code != 0 {
			t.Fatalf("want exit 0; %s", r)
		}
		if !cliHasRow(r.stdout, []string{"PHASE", "RECORDS", "ERRORS", "ELAPSED", "RECORDS/S", "MB/S", "P50", "P90", "P99", "P99.9", "MAX"}) {
			t.Errorf("no table header; %s", r)
		}
	})

	t.Run("bad input changes nothing", func(t *testing.T) {
		ctx := testCtx(t, 30*time.Second)
		for _, args := range [][]string{
			{"--records-per-call", "501"},
			{"--callers", "0"},
			{"--duration", "0s"},
			{"--record-size", "0"},
			{"--shards", "0"},
			{"--rate", "-1"},
		} {
			r := runCLI(t, ctx, "", noAWSEnv, append([]string{"bench", "kinesis", "--endpoint", endpoint, "--stream", "kb-bad"}, args...)...)
			cliCheckFailure(t, r, []string{args[0][2:]})
		}
		if _, err := kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("kb-bad")}); awsErrorCode(err) != "ResourceNotFoundException" {
			t.Fatalf("after refused runs: %v, want no stream", err)
		}
	})
}

// TestCLIBenchKinesisSigned: against a door that checks SigV4, the bench
// signs with AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY and is refused
// without them.
func TestCLIBenchKinesisSigned(t *testing.T) {
	t.Parallel()
	creds := filepath.Join(t.TempDir(), "creds")
	if err := os.WriteFile(creds, []byte("AKIDBENCH bench-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := braidtest.Start(t, "--kinesis-credentials", creds)
	ctx := testCtx(t, 60*time.Second)
	args := []string{"bench", "kinesis", "--endpoint", "http://" + p.KinesisAddr, "--stream", "kb-signed",
		"--shards", "1", "--callers", "1", "--records-per-call", "10", "--duration", "300ms", "--format", "json"}

	r := runCLI(t, ctx, "", noAWSEnv, args...)
	cliCheckFailure(t, r, []string{"MissingAuthenticationTokenException"})

	r = runCLI(t, ctx, "", []string{"AWS_ACCESS_KEY_ID=AKIDBENCH", "AWS_SECRET_ACCESS_KEY=wrong", "AWS_SESSION_TOKEN=", "AWS_REGION=us-east-1"}, args...)
	cliCheckFailure(t, r, []string{"InvalidSignatureException"})

	r = runCLI(t, ctx, "", []string{"AWS_ACCESS_KEY_ID=AKIDBENCH", "AWS_SECRET_ACCESS_KEY=bench-secret", "AWS_SESSION_TOKEN=", "AWS_REGION=us-east-1"}, args...)
	if r.code != 0 {
		t.Fatalf("signed run: want exit 0; %s", r)
	}
	var rep benchKinesisReport
	cliDecodeJSON(t, r, &rep)
	if !rep.Settings.Signed || rep.PutRecords == nil || rep.GetRecords == nil ||
		rep.PutRecords.Records == 0 || rep.GetRecords.Records != rep.PutRecords.Records {
		t.Fatalf("signed run: %+v, want signed, records written and all read back; %s", rep, r)
	}
}
