package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/braidstream/braid/internal/braidtest"
)

const kcatPath = "/usr/bin/kcat"

// needKcat skips a test that needs kcat where kcat is missing, except in CI
// (CI set, as CI services and .ci/run do): there a skipped interoperability
// test would read as a pass, so a missing kcat fails the test.
func needKcat(t *testing.T) {
	t.Helper()
	_, err := os.Stat(kcatPath)
	if err == nil {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("kcat not available in CI (.ci/run installs it): %v", err)
	}
	t.Skipf("kcat not available (apt-get install kcat): %v", err)
}

// kcat runs kcat against p with stdin and returns its stdout; it fails t if
// kcat exits non-zero or writes an error.
func kcat(t testing.TB, ctx context.Context, p *braidtest.Proc, stdin string, args ...string) string {
	t.Helper()
	all := append([]string{"-b", p.KafkaAddr, "-m", "10"}, args...)
	cmd := exec.CommandContext(ctx, kcatPath, all...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil || strings.Contains(stderr.String(), "ERROR") || strings.Contains(stderr.String(), "%3|") {
		t.Fatalf("kcat %s: %v\nstderr:\n%s\nstdout:\n%s", strings.Join(all, " "), err, stderr.String(), stdout.String())
	}
	return stdout.String()
}

// kcatFormat prints partition, offset, key length, key, value length, value
// and headers; lengths are -1 for null.
const kcatFormat = `%p|%o|%K|%k|%S|%s|%h\n`

// TestKcat checks interoperability with librdkafka through kcat.
func TestKcat(t *testing.T) {
	needKcat(t)
	const node = 5
	p := braidtest.Start(t, "--node-id", fmt.Sprint(node))
	adm := newAdmin(t, p)

	t.Run("list", func(t *testing.T) {
		ctx := testCtx(t, 20*time.Second)
		// Created with replication factor 3: librdkafka must see the one
		// real replica.
		if resp, err := adm.CreateTopic(ctx, 3, 3, nil, "kc-list"); err != nil || resp.Err != nil {
			t.Fatalf("create kc-list with replication factor 3: %v / %v", err, resp.Err)
		}
		out := kcat(t, ctx, p, "", "-L", "-t", "kc-list")
		want := []string{
			fmt.Sprintf("  broker %d at %s (controller)", node, p.KafkaAddr),
			`  topic "kc-list" with 3 partitions:`,
		}
		for i := range 3 {
			want = append(want, fmt.Sprintf("    partition %d, leader %d, replicas: %d, isrs: %d", i, node, node, node))
		}
		lines := strings.Split(out, "\n")
		for _, w := range want {
			if !slices.Contains(lines, w) {
				t.Errorf("kcat -L output lacks line %q:\n%s", w, out)
			}
		}
		if n := strings.Count(out, "    partition "); n != 3 {
			t.Errorf("kcat -L lists %d partitions, want 3:\n%s", n, out)
		}

		var md struct {
			ControllerID int32 `json:"controllerid"`
			Brokers      []struct {
				ID   int32  `json:"id"`
				Name string `json:"name"`
			} `json:"brokers"`
			Topics []struct {
				Topic      string `json:"topic"`
				Err        string `json:"error"`
				Partitions []struct {
					Partition int32 `json:"partition"`
					Leader    int32 `json:"leader"`
					Replicas  []struct {
						ID int32 `json:"id"`
					} `json:"replicas"`
					ISRs []struct {
						ID int32 `json:"id"`
					} `json:"isrs"`
				} `json:"partitions"`
			} `json:"topics"`
		}
		js := kcat(t, ctx, p, "", "-L", "-J")
		if err := json.Unmarshal([]byte(js), &md); err != nil {
			t.Fatalf("kcat -L -J: %v\n%s", err, js)
		}
		if md.ControllerID != node || len(md.Brokers) != 1 || md.Brokers[0].ID != node || md.Brokers[0].Name != p.KafkaAddr {
			t.Errorf("kcat -L -J brokers: controller %d, brokers %+v; want node %d at %s", md.ControllerID, md.Brokers, node, p.KafkaAddr)
		}
		found := false
		for _, tp := range md.Topics {
			if tp.Topic != "kc-list" {
				continue
			}
			found = true
			if tp.Err != "" || len(tp.Partitions) != 3 {
				t.Fatalf("kc-list: error %q, %d partitions", tp.Err, len(tp.Partitions))
			}
			for i, part := range tp.Partitions {
				if part.Partition != int32(i) || part.Leader != node || len(part.Replicas) != 1 || part.Replicas[0].ID != node ||
					len(part.ISRs) != 1 || part.ISRs[0].ID != node {
					t.Errorf("kc-list partition %d: %+v", i, part)
				}
			}
		}
		if !found {
			t.Errorf("kcat -L -J does not list kc-list:\n%s", js)
		}
	})

	kcatCodecs := []struct {
		name string
		z    []string
		attr uint8
	}{
		{"none", nil, 0},
		{"gzip", []string{"-z", "gzip"}, 1},
		{"snappy", []string{"-z", "snappy"}, 2},
		{"lz4", []string{"-z", "lz4"}, 3},
		{"zstd", []string{"-z", "zstd"}, 4},
	}
	for _, c := range kcatCodecs {
		t.Run("produce/codec="+c.name, func(t *testing.T) {
			ctx := testCtx(t, 30*time.Second)
			topic := "kc-produce-" + c.name
			createStream(t, ctx, adm, topic, 2, nil)
			type kv struct{ key, value string }
			var in []kv
			for i := range 10 {
				in = append(in, kv{fmt.Sprintf("key-%d", i), fmt.Sprintf("value %d %s", i, strings.Repeat("compressible ", 20+i))})
			}
			in = append(in, kv{"key-empty-value", ""}, kv{"", "value with empty key"}, kv{"k", "value: with the separator: twice"})
			var stdin strings.Builder
			for _, r := range in {
				stdin.WriteString(r.key + ":" + r.value + "\n")
			}
			before := time.Now()
			// One batch for all lines (a long linger; kcat flushes at the
			// end of its input): librdkafka sends a batch uncompressed when
			// compressing does not make it smaller, and a batch of only the
			// three short last lines, cut off by the default 5 ms linger on
			// a loaded machine, was sent so in CI.
			args := append([]string{"-P", "-t", topic, "-p", "1", "-K", ":", "-H", "h1=v1", "-H", "h2=", "-H", "h1=again",
				"-X", "linger.ms=1000"}, c.z...)
			kcat(t, ctx, p, stdin.String(), args...)
			after := time.Now()

			// kcat reads back exactly what kcat wrote.
			out := kcat(t, ctx, p, "", "-C", "-t", topic, "-p", "1", "-o", "beginning", "-e", "-q", "-f", kcatFormat)
			var want strings.Builder
			for i, r := range in {
				fmt.Fprintf(&want, "1|%d|%d|%s|%d|%s|h1=v1,h2=,h1=again\n", i, len(r.key), r.key, len(r.value), r.value)
			}
			if out != want.String() {
				t.Errorf("kcat -C output:\n%s\nwant:\n%s", out, want.String())
			}

			// So does franz-go, to the byte.
			got := consume(t, ctx, p, topic, 1, kgo.NewOffset().AtStart(), len(in))
			var wrongAt []string // offset:codec of each record in a batch of another codec
			for i, r := range got {
				w := &kgo.Record{Topic: topic, Partition: 1, Offset: int64(i), Key: []byte(in[i].key), Value: []byte(in[i].value),
					Headers: []kgo.RecordHeader{{Key: "h1", Value: []byte("v1")}, {Key: "h2", Value: []byte{}}, {Key: "h1", Value: []byte("again")}}}
				checkRecord(t, i, r, w, false)
				if r.Attrs.CompressionType() != c.attr {
					wrongAt = append(wrongAt, fmt.Sprintf("%d:codec %d", r.Offset, r.Attrs.CompressionType()))
				}
				if ts := r.Timestamp; ts.Before(before.Add(-time.Second)) || ts.After(after.Add(time.Second)) {
					t.Errorf("record %d: timestamp %v not within [%v, %v]", i, ts, before, after)
				}
			}
			// The values compress well, so librdkafka compresses them with
			// the codec asked for unless it believes the broker cannot take
			// it: librdkafka 2.0 compresses with gzip, snappy and lz4 only if
			// ApiVersions advertises Produce v0 (Kafka 4 advertises v0 for
			// that reason, KAFKA-18659), and lz4 only if it advertises
			// FindCoordinator. Otherwise it silently sends them uncompressed.
			if len(wrongAt) > 0 {
				t.Errorf("kcat -z %s: %d of %d records were stored in batches of another codec than %d (librdkafka fell back to no compression): %s",
					c.name, len(wrongAt), len(got), c.attr, strings.Join(wrongAt, ", "))
			}
			if _, end := startEnd(t, ctx, adm, topic, 0); end != 0 {
				t.Errorf("partition 0 end offset %d, want 0 (kcat wrote to partition 1 only)", end)
			}
		})
	}

	t.Run("null-values", func(t *testing.T) {
		ctx := testCtx(t, 20*time.Second)
		topic := "kc-null"
		createStream(t, ctx, adm, topic, 1, nil)
		// -Z sends an empty value as null.
		kcat(t, ctx, p, "tomb:\nlive:x\n", "-P", "-Z", "-t", topic, "-p", "0", "-K", ":")
		got := consume(t, ctx, p, topic, 0, kgo.NewOffset().AtStart(), 2)
		checkRecord(t, 0, got[0], &kgo.Record{Topic: topic, Offset: 0, Key: []byte("tomb"), Value: nil}, false)
		checkRecord(t, 1, got[1], &kgo.Record{Topic: topic, Offset: 1, Key: []byte("live"), Value: []byte("x")}, false)
	})

	for _, c := range codecs {
		t.Run("kgo-to-kcat/codec="+c.name, func(t *testing.T) {
			ctx := testCtx(t, 20*time.Second)
			topic := "kc-from-kgo-" + c.name
			createStream(t, ctx, adm, topic, 3, nil)
			base := time.UnixMilli(1_600_000_000_000)
			recs := []*kgo.Record{
				{Key: []byte("a"), Value: []byte("first"), Headers: []kgo.RecordHeader{{Key: "x", Value: []byte("1")}, {Key: "y", Value: []byte("two")}}},
				{Key: nil, Value: []byte("no key")},
				{Key: []byte("gone"), Value: nil},
				{Key: []byte("empty"), Value: []byte{}},
				{Key: []byte("big"), Value: bytes.Repeat([]byte("z"), 200<<10)},
				{Key: []byte("last"), Value: []byte("end"), Headers: []kgo.RecordHeader{{Key: "h", Value: []byte{}}}},
			}
			for i, r := range recs {
				r.Topic, r.Partition, r.Timestamp = topic, 2, base.Add(time.Duration(i)*time.Second)
			}
			produce(t, ctx, newProducer(t, p, kgo.ProducerBatchCompression(c.codec)), recs...)
			out := kcat(t, ctx, p, "", "-C", "-Z", "-t", topic, "-p", "2", "-o", "beginning", "-e", "-q", "-f", `%p|%o|%K|%k|%S|%s|%h|%T\n`)
			// -Z prints an empty value as NULL too; its length (0) shows it
			// is not null.
			want := fmt.Sprintf("2|0|1|a|5|first|x=1,y=two|%d\n", base.UnixMilli()) +
				fmt.Sprintf("2|1|-1|NULL|6|no key||%d\n", base.UnixMilli()+1000) +
				fmt.Sprintf("2|2|4|gone|-1|NULL||%d\n", base.UnixMilli()+2000) +
				fmt.Sprintf("2|3|5|empty|0|NULL||%d\n", base.UnixMilli()+3000) +
				fmt.Sprintf("2|4|3|big|%d|%s||%d\n", 200<<10, strings.Repeat("z", 200<<10), base.UnixMilli()+4000) +
				fmt.Sprintf("2|5|4|last|3|end|h=|%d\n", base.UnixMilli()+5000)
			if out != want {
				if len(out) > 2000 {
					out = out[:2000] + "..."
				}
				t.Errorf("kcat -C output of kgo records:\n%s\nwant (big value elided) the records %s", out, "a, <nil>, gone, empty, big, last")
			}
			if c.name != "gzip" {
				return
			}
			// From an offset in the middle; the other partitions are empty.
			if out := kcat(t, ctx, p, "", "-C", "-t", topic, "-p", "2", "-o", "4", "-e", "-q", "-f", `%o %k\n`); out != "4 big\n5 last\n" {
				t.Errorf("kcat -C -o 4: %q", out)
			}
			for _, part := range []string{"0", "1"} {
				if out := kcat(t, ctx, p, "", "-C", "-t", topic, "-p", part, "-o", "beginning", "-e", "-q", "-f", `%o\n`); out != "" {
					t.Errorf("partition %s should be empty, kcat printed %q", part, out)
				}
			}
		})
	}
}
