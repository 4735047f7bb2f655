package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/braidstream/braid/internal/braidtest"
)

// The CLI tests run the real braid binary, as a user would, against a
// braidtest node: the stream verbs, produce and consume, bench, and serve's
// refusals. Every command runs under a bounded context, so a command that
// hangs fails its test instead of the whole run.

// cliResult is what one braid command did.
type cliResult struct {
	args    []string
	stdout  string
	stderr  string
	code    int
	elapsed time.Duration
}

func (r cliResult) String() string {
	return fmt.Sprintf("braid %s: exit %d after %s\nstdout:\n%s\nstderr:\n%s",
		strings.Join(r.args, " "), r.code, r.elapsed.Round(time.Millisecond), r.stdout, r.stderr)
}

// runCLI runs the braid binary with args, stdin and extra environment
// (NAME=value). $BRAID_BROKERS is removed from the inherited environment so
// only what a test sets counts. It fails t if the command cannot start or
// is still running when ctx ends.
func runCLI(t testing.TB, ctx context.Context, stdin string, env []string, args ...string) cliResult {
	t.Helper()
	cmd := exec.CommandContext(ctx, braidtest.Binary(t), args...)
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "BRAID_BROKERS=") })
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 2 * time.Second
	began := time.Now()
	err := cmd.Run()
	res := cliResult{args: args, stdout: stdout.String(), stderr: stderr.String(), elapsed: time.Since(began)}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("still running when the test's deadline passed (%v); %s", ctx.Err(), res)
	case err == nil:
	case errors.As(err, &ee) && ee.Exited():
		res.code = ee.ExitCode()
	default:
		t.Fatalf("braid %s: %v; %s", strings.Join(args, " "), err, res)
	}
	return res
}

// cliOK runs a broker-facing command against p and fails t unless it
// exits 0 with nothing on stderr.
func cliOK(t testing.TB, ctx context.Context, p *braidtest.Proc, stdin string, args ...string) cliResult {
	t.Helper()
	r := runCLI(t, ctx, stdin, nil, append(args, "--brokers", p.KafkaAddr)...)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("want exit 0 and an empty stderr; %s", r)
	}
	return r
}

// cliFails runs a broker-facing command against p and fails t unless it
// exits non-zero with nothing on stdout and a stderr that contains every
// one of want.
func cliFails(t testing.TB, ctx context.Context, p *braidtest.Proc, stdin string, want []string, args ...string) cliResult {
	t.Helper()
	r := runCLI(t, ctx, stdin, nil, append(args, "--brokers", p.KafkaAddr)...)
	cliCheckFailure(t, r, want)
	return r
}

func cliCheckFailure(t testing.TB, r cliResult, want []string) {
	t.Helper()
	if r.code == 0 {
		t.Fatalf("want a non-zero exit; %s", r)
	}
	if r.stdout != "" {
		t.Errorf("want nothing on stdout after a failure; %s", r)
	}
	for _, w := range want {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("stderr lacks %q; %s", w, r)
		}
	}
}

// cliStream is one element of `stream list --format json`.
type cliStream struct {
	Name     string `json:"name"`
	ID       string `json:"id"`
	Shards   int    `json:"shards"`
	Internal bool   `json:"internal"`
	Error    string `json:"error"`
}

// cliDescription is `stream describe --format json`.
type cliDescription struct {
	Name   string `json:"name"`
	ID     string `json:"id"`
	Shards []struct {
		Shard    int32   `json:"shard"`
		Leader   int32   `json:"leader"`
		Replicas []int32 `json:"replicas"`
		ISR      []int32 `json:"isr"`
		Earliest *int64  `json:"earliest"`
		Latest   *int64  `json:"latest"`
		Error    string  `json:"error"`
	} `json:"shards"`
	Configs []struct {
		Name   string  `json:"name"`
		Value  *string `json:"value"`
		Source string  `json:"source"`
	} `json:"configs"`
	OffsetError string `json:"offset_error"`
	ConfigError string `json:"config_error"`
}

func cliDecodeJSON(t testing.TB, r cliResult, v any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decode JSON output: %v; %s", err, r)
	}
	if dec.More() {
		t.Fatalf("more than one JSON value on stdout; %s", r)
	}
}

func cliListStreams(t testing.TB, ctx context.Context, p *braidtest.Proc) map[string]cliStream {
	t.Helper()
	r := cliOK(t, ctx, p, "", "stream", "list", "--format", "json")
	var list []cliStream
	cliDecodeJSON(t, r, &list)
	out := map[string]cliStream{}
	for _, s := range list {
		if _, dup := out[s.Name]; dup {
			t.Errorf("stream list names %q twice; %s", s.Name, r)
		}
		out[s.Name] = s
	}
	return out
}

func cliDescribe(t testing.TB, ctx context.Context, p *braidtest.Proc, name string) cliDescription {
	t.Helper()
	r := cliOK(t, ctx, p, "", "stream", "describe", name, "--format", "json")
	var d cliDescription
	cliDecodeJSON(t, r, &d)
	return d
}

// TestCLIStream covers `braid stream create|list|describe|delete` in text
// and JSON, and their refusals.
func TestCLIStream(t *testing.T) {
	t.Parallel()
	p := braidtest.Start(t)

	type stream struct {
		name    string
		shards  int
		configs map[string]string // set with --config
	}
	streams := []stream{
		{name: "cli-one", shards: 1},
		{name: "cli-four", shards: 4, configs: map[string]string{"retention.ms": "3600000"}},
		// A value may hold commas: --config is not split on them.
		{name: "cli-cfg", shards: 2, configs: map[string]string{
			"cleanup.policy": "compact,delete", "max.message.bytes": "65536", "message.timestamp.type": "LogAppendTime",
		}},
		{name: "cli.dots_and-dashes", shards: 3, configs: map[string]string{"compression.type": "zstd"}},
	}

	t.Run("list-empty", func(t *testing.T) {
		ctx := testCtx(t, 20*time.Second)
		if r := cliOK(t, ctx, p, "", "stream", "list", "--format", "json"); r.stdout != "[]\n" {
			t.Errorf("stream list --format json on a new node: %q, want []", r.stdout)
		}
		if r := cliOK(t, ctx, p, "", "stream", "list"); !slices.Equal(strings.Fields(r.stdout), []string{"NAME", "SHARDS"}) {
			t.Errorf("stream list on a new node: %q, want the header only", r.stdout)
		}
	})

	t.Run("create", func(t *testing.T) {
		ctx := testCtx(t, 20*time.Second)
		for _, s := range streams {
			args := []string{"stream", "create", s.name, "--shards", strconv.Itoa(s.shards)}
			for _, k := range slices.Sorted(maps.Keys(s.configs)) {
				args = append(args, "--config", k+"="+s.configs[k])
			}
			r := cliOK(t, ctx, p, "", args...)
			plural := "s"
			if s.shards == 1 {
				plural = ""
			}
			if want := fmt.Sprintf("created stream %q with %d shard%s\n", s.name, s.shards, plural); r.stdout != want {
				t.Errorf("stdout %q, want %q", r.stdout, want)
			}
		}
		// JSON output names the stream, its id and its shard count.
		r := cliOK(t, ctx, p, "", "stream", "create", "cli-json", "--shards", "5", "--format", "json")
		var created struct {
			Name   string `json:"name"`
			ID     string `json:"id"`
			Shards int    `json:"shards"`
		}
		cliDecodeJSON(t, r, &created)
		if created.Name != "cli-json" || created.Shards != 5 || created.ID == "" {
			t.Errorf("create --format json: %+v; %s", created, r)
		}
		streams = append(streams, stream{name: "cli-json", shards: 5})
	})

	t.Run("list", func(t *testing.T) {
		ctx := testCtx(t, 20*time.Second)
		got := cliListStreams(t, ctx, p)
		if len(got) != len(streams) {
			t.Errorf("stream list shows %d streams, want %d: %v", len(got), len(streams), got)
		}
		for _, s := range streams {
			g, ok := got[s.name]
			if !ok {
				t.Errorf("stream list --format json lacks %q", s.name)
				continue
			}
			if g.Shards != s.shards || g.ID == "" || g.Internal || g.Error != "" {
				t.Errorf("stream list --format json: %+v, want %d shards, an id, no error", g, s.shards)
			}
		}

		r := cliOK(t, ctx, p, "", "stream", "list")
		lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
		if len(lines) != len(streams)+1 || !slices.Equal(strings.Fields(lines[0]), []string{"NAME", "SHARDS"}) {
			t.Fatalf("stream list: want a NAME SHARDS header and %d rows; %s", len(streams), r)
		}
		var names []string
		for _, l := range lines[1:] {
			f := strings.Fields(l)
			if len(f) != 2 {
				t.Errorf("stream list row %q: want NAME SHARDS", l)
				continue
			}
			names = append(names, f[0])
			i := slices.IndexFunc(streams, func(s stream) bool { return s.name == f[0] })
			if i < 0 || f[1] != strconv.Itoa(streams[i].shards) {
				t.Errorf("stream list row %q: unknown stream or wrong shard count", l)
			}
		}
		if !slices.IsSorted(names) {
			t.Errorf("stream list rows are not sorted by name: %v", names)
		}
		// The alias and the noun's aliases reach the same verb.
		if r2 := cliOK(t, ctx, p, "", "topic", "ls"); r2.stdout != r.stdout {
			t.Errorf("`topic ls` differs from `stream list`:\n%s\n%s", r2.stdout, r.stdout)
		}
	})

	t.Run("describe", func(t *testing.T) {
		ctx := testCtx(t, 20*time.Second)
		// Give one shard records so the offsets mean something.
		cl := newProducer(t, p)
		produce(t, ctx, cl, cliRecs("cli-four", 2, 7)...)
		produce(t, ctx, cl, cliRecs("cli-four", 3, 2)...)

		for _, s := range streams {
			d := cliDescribe(t, ctx, p, s.name)
			if d.Name != s.name || d.ID == "" || len(d.Shards) != s.shards || d.OffsetError != "" || d.ConfigError != "" {
				t.Errorf("describe %s: name %q id %q, %d shards (want %d), offset error %q, config error %q",
					s.name, d.Name, d.ID, len(d.Shards), s.shards, d.OffsetError, d.ConfigError)
				continue
			}
			for i, sh := range d.Shards {
				var want int64
				if s.name == "cli-four" && i == 2 {
					want = 7
				}
				if s.name == "cli-four" && i == 3 {
					want = 2
				}
				if sh.Shard != int32(i) || sh.Leader < 0 || len(sh.Replicas) != 1 || len(sh.ISR) != 1 || sh.Error != "" ||
					sh.Earliest == nil || *sh.Earliest != 0 || sh.Latest == nil || *sh.Latest != want {
					t.Errorf("describe %s shard %d: %+v (earliest %s latest %s), want earliest 0 latest %d",
						s.name, i, sh, cliOptInt(sh.Earliest), cliOptInt(sh.Latest), want)
				}
			}
			cfgs := map[string]string{}
			for _, c := range d.Configs {
				v := "<null>"
				if c.Value != nil {
					v = *c.Value
				}
				cfgs[c.Name] = v
				want, set := s.configs[c.Name]
				if c.Name == "braid.routing" && !set {
					// braid stream create routes by key unless told otherwise.
					want, set = "key", true
				}
				if set {
					if v != want || c.Source != "DYNAMIC_TOPIC_CONFIG" {
						t.Errorf("describe %s config %s = %q from %s, want %q from DYNAMIC_TOPIC_CONFIG", s.name, c.Name, v, c.Source, want)
					}
				} else if c.Source != "DEFAULT_CONFIG" {
					t.Errorf("describe %s config %s (never set) has source %s, want DEFAULT_CONFIG", s.name, c.Name, c.Source)
				}
			}
			for k := range s.configs {
				if _, ok := cfgs[k]; !ok {
					t.Errorf("describe %s: config %s was set but is not described", s.name, k)
				}
			}
			if cfgs["segment.bytes"] != "1073741824" {
				t.Errorf("describe %s: segment.bytes = %q, want the default 1073741824", s.name, cfgs["segment.bytes"])
			}
		}

		// The text form shows the same facts.
		r := cliOK(t, ctx, p, "", "stream", "describe", "cli-four")
		for _, want := range [][]string{
			{"NAME", "cli-four"},
			{"SHARDS", "4"},
			{"SHARD", "LEADER", "EPOCH", "REPLICAS", "EARLIEST", "LATEST", "SIZE"},
			{"CONFIG", "VALUE", "SOURCE"},
			{"retention.ms", "3600000", "DYNAMIC_TOPIC_CONFIG"},
			{"cleanup.policy", "delete", "DEFAULT_CONFIG"},
		} {
			if !cliHasRow(r.stdout, want) {
				t.Errorf("describe text lacks a row %v; %s", want, r)
			}
		}
		// Shard 2 holds 7 records, so its size is positive.
		if row := cliRowStarting(r.stdout, "2"); len(row) != 7 || !slices.Equal(row[:6], []string{"2", "0", "0", "0", "0", "7"}) || row[6] == "0" || row[6] == "-" {
			t.Errorf("describe text shard 2 row %v, want 2 0 0 0 0 7 and a positive size", row)
		}
	})

	t.Run("refusals", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			args []string
			want []string
		}{
			{"duplicate", []string{"stream", "create", "cli-four", "--shards", "2"}, []string{`stream "cli-four" already exists`}},
			{"duplicate-json", []string{"stream", "create", "cli-one", "--format", "json"}, []string{`stream "cli-one" already exists`}},
			{"config-without-equals", []string{"stream", "create", "cli-bad1", "--config", "retention.ms"}, []string{`--config "retention.ms"`, "key=value"}},
			{"config-empty-key", []string{"stream", "create", "cli-bad2", "--config", "=5"}, []string{`--config "=5"`, "key=value"}},
			{"config-twice", []string{"stream", "create", "cli-bad3", "--config", "retention.ms=1", "--config", "retention.ms=2"}, []string{`"retention.ms"`, "more than once"}},
			{"config-unknown", []string{"stream", "create", "cli-bad4", "--config", "no.such.config=1"}, []string{`"cli-bad4"`, "invalid config", "no.such.config"}},
			{"config-bad-value", []string{"stream", "create", "cli-bad5", "--config", "retention.ms=soon"}, []string{`"cli-bad5"`, "invalid config", "retention.ms"}},
			{"zero-shards", []string{"stream", "create", "cli-bad6", "--shards", "0"}, []string{"--shards", "at least 1"}},
			{"bad-name", []string{"stream", "create", "bad/name"}, []string{`"bad/name"`}},
			{"format-on-list", []string{"stream", "list", "--format", "yaml"}, []string{`"yaml"`, "--format", "text, json"}},
			{"format-on-create", []string{"stream", "create", "cli-bad7", "--format", "xml"}, []string{`"xml"`, "--format", "text, json"}},
			{"describe-missing", []string{"stream", "describe", "cli-missing"}, []string{`stream "cli-missing" does not exist`}},
			{"delete-missing", []string{"stream", "delete", "cli-missing"}, []string{`stream "cli-missing" does not exist`}},
			{"create-no-name", []string{"stream", "create"}, []string{"accepts 1 arg"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				cliFails(t, testCtx(t, 20*time.Second), p, "", tc.want, tc.args...)
			})
		}
	})

	t.Run("refusals-left-nothing", func(t *testing.T) {
		ctx := testCtx(t, 20*time.Second)
		got := cliListStreams(t, ctx, p)
		for name := range got {
			if strings.HasPrefix(name, "cli-bad") || name == "bad/name" {
				t.Errorf("a refused create left stream %q behind", name)
			}
		}
		if s := got["cli-four"]; s.Shards != 4 {
			t.Errorf("a refused duplicate create changed cli-four: %+v", s)
		}
		if d := cliDescribe(t, ctx, p, "cli-four"); *d.Shards[2].Latest != 7 {
			t.Errorf("a refused duplicate create changed cli-four's offsets: shard 2 latest %d", *d.Shards[2].Latest)
		}
	})

	t.Run("delete", func(t *testing.T) {
		ctx := testCtx(t, 20*time.Second)
		r := cliOK(t, ctx, p, "", "stream", "delete", "cli-four")
		if r.stdout != "deleted stream \"cli-four\"\n" {
			t.Errorf("delete stdout %q", r.stdout)
		}
		r = cliOK(t, ctx, p, "", "stream", "delete", "cli-json", "--format", "json")
		var del struct {
			Name    string `json:"name"`
			Deleted bool   `json:"deleted"`
		}
		cliDecodeJSON(t, r, &del)
		if del.Name != "cli-json" || !del.Deleted {
			t.Errorf("delete --format json: %+v", del)
		}
		for _, name := range []string{"cli-four", "cli-json"} {
			cliFails(t, ctx, p, "", []string{fmt.Sprintf("stream %q does not exist", name)}, "stream", "describe", name)
			cliFails(t, ctx, p, "", []string{fmt.Sprintf("stream %q does not exist", name)}, "stream", "describe", name, "--format", "json")
			cliFails(t, ctx, p, "", []string{fmt.Sprintf("stream %q does not exist", name)}, "stream", "delete", name)
		}
		got := cliListStreams(t, ctx, p)
		if _, ok := got["cli-four"]; ok {
			t.Errorf("stream list still shows cli-four after delete")
		}
		if len(got) != len(streams)-2 {
			t.Errorf("stream list shows %d streams after two deletes, want %d: %v", len(got), len(streams)-2, got)
		}
		// The name is free again, and the new stream starts empty.
		cliOK(t, ctx, p, "", "stream", "create", "cli-four", "--shards", "2")
		d := cliDescribe(t, ctx, p, "cli-four")
		if len(d.Shards) != 2 || *d.Shards[0].Latest != 0 || *d.Shards[1].Latest != 0 {
			t.Errorf("re-created cli-four: %+v", d.Shards)
		}
		for _, c := range d.Configs {
			if c.Name == "retention.ms" && c.Source != "DEFAULT_CONFIG" {
				t.Errorf("re-created cli-four inherited retention.ms from its predecessor: %+v", c)
			}
		}
	})
}

// TestCLIBrokersEnv checks that $BRAID_BROKERS sets the default broker list
// and that --brokers overrides it.
func TestCLIBrokersEnv(t *testing.T) {
	t.Parallel()
	p := braidtest.Start(t)
	ctx := testCtx(t, 20*time.Second)
	createStream(t, ctx, newAdmin(t, p), "env-stream", 2, nil)
	dead := braidtest.FreeAddr(t)

	for _, tc := range []struct {
		name string
		env  []string
		args []string
	}{
		{"env", []string{"BRAID_BROKERS=" + p.KafkaAddr}, nil},
		{"env-with-blanks", []string{"BRAID_BROKERS= " + p.KafkaAddr + " , "}, nil},
		{"env-list-with-dead-first", []string{"BRAID_BROKERS=" + dead + "," + p.KafkaAddr}, nil},
		{"flag-overrides-env", []string{"BRAID_BROKERS=" + dead}, []string{"--brokers", p.KafkaAddr}},
		{"flag-trailing-comma", nil, []string{"--brokers", p.KafkaAddr + ","}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t, 20*time.Second)
			args := append([]string{"stream", "list", "--format", "json"}, tc.args...)
			r := runCLI(t, ctx, "", tc.env, args...)
			if r.code != 0 {
				t.Fatalf("want exit 0; %s", r)
			}
			var list []cliStream
			cliDecodeJSON(t, r, &list)
			if len(list) != 1 || list[0].Name != "env-stream" || list[0].Shards != 2 {
				t.Errorf("stream list: %+v, want env-stream with 2 shards", list)
			}

			// produce and consume read the same variable.
			value := "via-" + tc.name
			r = runCLI(t, ctx, "", tc.env, append([]string{"produce", "env-stream", "--partition", "1", "--value", value}, tc.args...)...)
			if r.code != 0 {
				t.Fatalf("produce: want exit 0; %s", r)
			}
			r = runCLI(t, ctx, "", tc.env, append([]string{"consume", "env-stream", "--partition", "1", "--timeout", "500ms"}, tc.args...)...)
			if r.code != 0 || !slices.Contains(strings.Split(r.stdout, "\n"), value) {
				t.Fatalf("consume: want exit 0 and a line %q; %s", value, r)
			}
		})
	}
}

// cliRecord is one line of `consume --format json`.
type cliRecord struct {
	Partition     int32   `json:"partition"`
	Offset        int64   `json:"offset"`
	Timestamp     string  `json:"timestamp"`
	Key           *string `json:"key"`
	KeyEncoding   string  `json:"key_encoding"`
	Value         *string `json:"value"`
	ValueEncoding string  `json:"value_encoding"`
	Headers       []struct {
		Key           string  `json:"key"`
		Value         *string `json:"value"`
		ValueEncoding string  `json:"value_encoding"`
	} `json:"headers"`
}

func (r cliRecord) String() string {
	var hs []string
	for _, h := range r.Headers {
		hs = append(hs, h.Key+"="+cliOptStr(h.Value)+h.ValueEncoding)
	}
	return fmt.Sprintf("%d@%d key=%s%s value=%s%s headers=[%s]", r.Partition, r.Offset,
		cliOptStr(r.Key), r.KeyEncoding, cliOptStr(r.Value), r.ValueEncoding, strings.Join(hs, " "))
}

// cliWant is what a consumed record must hold; headers alternate key,
// value.
type cliWant struct {
	partition int32
	offset    int64
	key       *string
	value     string
	headers   []string
}

func (w cliWant) String() string {
	return fmt.Sprintf("%d@%d key=%s value=%q headers=%q", w.partition, w.offset, cliOptStr(w.key), w.value, w.headers)
}

func cliOptStr(s *string) string {
	if s == nil {
		return "<null>"
	}
	return strconv.Quote(*s)
}

func cliOptInt(v *int64) string {
	if v == nil {
		return "<null>"
	}
	return strconv.FormatInt(*v, 10)
}

// cliParseConsumed parses JSON lines, checks every timestamp lies in
// [notBefore-1s, now+1s] and returns the records sorted by partition and
// offset (the order within a partition is checked by the offsets).
func cliParseConsumed(t testing.TB, r cliResult, notBefore time.Time) []cliRecord {
	t.Helper()
	var out []cliRecord
	for i, line := range strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n") {
		if line == "" && r.stdout == "" {
			break
		}
		var rec cliRecord
		dec := json.NewDecoder(strings.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&rec); err != nil {
			t.Fatalf("line %d %q: %v; %s", i+1, line, err, r)
		}
		ts, err := time.Parse(time.RFC3339Nano, rec.Timestamp)
		if err != nil || ts.Before(notBefore.Add(-time.Second)) || ts.After(time.Now().Add(time.Second)) {
			t.Errorf("line %d: timestamp %q (%v) is not a time during the test", i+1, rec.Timestamp, err)
		}
		out = append(out, rec)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Partition != out[j].Partition {
			return out[i].Partition < out[j].Partition
		}
		return out[i].Offset < out[j].Offset
	})
	return out
}

func cliCheckConsumed(t testing.TB, got []cliRecord, want []cliWant) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("consumed %d records, want %d", len(got), len(want))
	}
	bad := 0
	for i := range min(len(got), len(want)) {
		g, w := got[i], want[i]
		ok := g.Partition == w.partition && g.Offset == w.offset && g.KeyEncoding == "" && g.ValueEncoding == "" &&
			(g.Key == nil) == (w.key == nil) && (w.key == nil || *g.Key == *w.key) &&
			g.Value != nil && *g.Value == w.value && g.Headers != nil && 2*len(g.Headers) == len(w.headers)
		for j := 0; ok && j < len(g.Headers); j++ {
			h := g.Headers[j]
			ok = h.Key == w.headers[2*j] && h.Value != nil && *h.Value == w.headers[2*j+1] && h.ValueEncoding == ""
		}
		if !ok {
			t.Errorf("record %d:\n got %s\nwant %s", i, g, w)
			if bad++; bad == 5 {
				t.Fatalf("stopping after %d mismatched records", bad)
			}
		}
	}
}

// idleTimeout is braid consume's --timeout where a test reads until
// nothing more arrives: the clock starts before the client has connected,
// so on a loaded machine 700 ms once ended a read before its first fetch.
const idleTimeout = "3s"

// TestCLIConsumeTimeoutPollsOften checks that braid consume --timeout
// never lets a fetch wait at the broker for longer than part of the
// timeout. kgo may send its first fetch with only some of the shards it
// was given; the others join the next fetch, and with kgo's default wait
// (5 s) a shard holding records once printed nothing before a 3 s
// --timeout ended the consume. On an empty stream, every fetch of a 2 s
// --timeout consume waits its whole max wait: at most 500 ms each, so at
// least three of them; with the default wait there is one.
func TestCLIConsumeTimeoutPollsOften(t *testing.T) {
	t.Parallel()
	p := braidtest.Start(t)
	ctx := testCtx(t, 25*time.Second)
	createStream(t, ctx, newAdmin(t, p), "quiet", 3, nil)
	fetches := func() float64 {
		v, _ := scrapeMetrics(t, ctx, p).value("braid_kafka_request_seconds_count", "api", "Fetch")
		return v
	}
	before := fetches()
	// Without the lineage gate (an empty --admin-addr), whose own fetch
	// wait is shorter still.
	r := cliOK(t, ctx, p, "", "consume", "quiet", "--timeout", "2s", "--admin-addr", "")
	if r.stdout != "" {
		t.Errorf("want no output; %s", r)
	}
	// A fetch is counted when it is answered: wait for the last one.
	deadline := time.Now().Add(2 * time.Second)
	for fetches()-before < 3 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := fetches() - before; n < 3 {
		t.Errorf("a 2 s --timeout consume of an empty stream sent %v fetches, want at least 3 (each waiting at most 500 ms)", n)
	}
}

// TestCLIProduceConsume feeds `braid produce` lines on stdin with every
// codec and acks value and reads them back with `braid consume`.
func TestCLIProduceConsume(t *testing.T) {
	t.Parallel()
	p := braidtest.Start(t)
	adm := newAdmin(t, p)
	began := time.Now()

	// Each case writes lines to its own stream at a fixed shard; consume
	// must return exactly them.
	type pcase struct {
		name        string
		shards      int32
		partition   int32
		sep         string   // --key-separator ("" = none)
		headers     []string // --header values, k=v
		compression string
		acks        string
		stdin       string
		want        []cliWant
	}
	codecs := []string{"none", "gzip", "snappy", "lz4", "zstd"}
	acks := []string{"all", "1", "0", "1", "all"}
	seps := []string{":", "::", " | ", "\t", "=>"}
	var cases []pcase
	for i, codec := range codecs {
		c := pcase{
			name:        "cli-pc-" + codec + "-acks" + acks[i],
			shards:      3,
			partition:   int32(i % 3),
			sep:         seps[i],
			headers:     []string{"codec=" + codec, "expr=a=b", "empty="},
			compression: codec,
			acks:        acks[i],
		}
		var in strings.Builder
		add := func(line string, key *string, value string) {
			in.WriteString(line + "\n")
			c.want = append(c.want, cliWant{partition: c.partition, offset: int64(len(c.want)), key: key, value: value,
				headers: []string{"codec", codec, "expr", "a=b", "empty", ""}})
		}
		for j := range 60 {
			k := fmt.Sprintf("key-%02d", j%7)
			v := fmt.Sprintf("value %d of %s: %s", j, codec, strings.Repeat("compressible text ", j%5))
			add(k+c.sep+v, ptr(k), v)
		}
		add("only-key"+c.sep, ptr("only-key"), "")                // empty value, not null
		add(c.sep+"no key", ptr(""), "no key")                    // empty key, not null
		add("k"+c.sep+"v"+c.sep+"w", ptr("k"), "v"+c.sep+"w")     // split at the first separator only
		add("ключ"+c.sep+"значение ✓", ptr("ключ"), "значение ✓") // UTF-8 stays text
		add("crlf"+c.sep+"line\r", ptr("crlf"), "line")           // CRLF line ending
		add(strings.Repeat("K", 300)+c.sep+strings.Repeat("V", 70_000), ptr(strings.Repeat("K", 300)), strings.Repeat("V", 70_000))
		c.stdin = in.String()
		cases = append(cases, c)
	}
	// Unkeyed lines: empty lines are empty records, CRLF is dropped, the
	// last line needs no newline.
	plain := pcase{name: "cli-pc-plain", shards: 1, partition: -1, compression: "none", acks: "all",
		stdin: "alpha\r\n\r\nbeta\n\n  spaced  \ngamma"}
	for i, v := range []string{"alpha", "", "beta", "", "  spaced  ", "gamma"} {
		plain.want = append(plain.want, cliWant{partition: 0, offset: int64(i), value: v})
	}
	cases = append(cases, plain)

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t, 25*time.Second)
			createStream(t, ctx, adm, c.name, c.shards, nil)
			args := []string{"produce", c.name, "--compression", c.compression, "--acks", c.acks}
			if c.partition >= 0 {
				args = append(args, "--partition", strconv.Itoa(int(c.partition)))
			}
			if c.sep != "" {
				args = append(args, "--key-separator", c.sep)
			}
			for _, h := range c.headers {
				args = append(args, "--header", h)
			}
			r := cliOK(t, ctx, p, c.stdin, args...)
			if r.stdout != "" {
				t.Errorf("produce printed on stdout without --verbose; %s", r)
			}

			n := len(c.want)
			r = cliOK(t, ctx, p, "", "consume", c.name, "--from", "earliest", "--count", strconv.Itoa(n), "--format", "json")
			cliCheckConsumed(t, cliParseConsumed(t, r, began), c.want)

			// Nothing more than those records was written.
			var total int64
			for part := range c.shards {
				s, e := startEnd(t, ctx, adm, c.name, part)
				if s != 0 {
					t.Errorf("%s/%d: log start %d, want 0", c.name, part, s)
				}
				total += e
			}
			if total != int64(n) {
				t.Errorf("stream %s holds %d records, want %d", c.name, total, n)
			}
			if c.partition < 0 {
				return
			}

			// --from OFFSET with --partition and --count.
			const from = 5
			r = cliOK(t, ctx, p, "", "consume", c.name, "--partition", strconv.Itoa(int(c.partition)),
				"--from", strconv.Itoa(from), "--count", strconv.Itoa(n-from), "--format", "json")
			cliCheckConsumed(t, cliParseConsumed(t, r, began), c.want[from:])

			// --from OFFSET over every shard: the other shards are empty,
			// so their start is clamped to their end.
			r = cliOK(t, ctx, p, "", "consume", c.name, "--from", strconv.Itoa(n-3), "--timeout", idleTimeout, "--format", "json")
			cliCheckConsumed(t, cliParseConsumed(t, r, began), c.want[n-3:])
		})
	}

	// Keyed records without --partition: the same key always lands on the
	// same shard, and each shard keeps the input order.
	t.Run("keyed-spread", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t, 25*time.Second)
		const stream, shards = "cli-pc-spread", 4
		createStream(t, ctx, adm, stream, shards, nil)
		var in strings.Builder
		type kv struct{ k, v string }
		var sent []kv
		for i := range 80 {
			k := fmt.Sprintf("user-%d", i%9)
			v := fmt.Sprintf("event-%03d", i)
			sent = append(sent, kv{k, v})
			in.WriteString(k + "," + v + "\n")
		}
		cliOK(t, ctx, p, in.String(), "produce", stream, "--key-separator", ",", "--compression", "lz4")
		r := cliOK(t, ctx, p, "", "consume", stream, "--count", strconv.Itoa(len(sent)), "--format", "json")
		got := cliParseConsumed(t, r, began)
		if len(got) != len(sent) {
			t.Fatalf("consumed %d records, want %d", len(got), len(sent))
		}
		shardOf := map[string]int32{}
		perShard := map[int32][]string{}
		for _, g := range got {
			if g.Key == nil || g.Value == nil || len(g.Headers) != 0 {
				t.Fatalf("record %s: want a key, a value and no headers", g)
			}
			if s, ok := shardOf[*g.Key]; ok && s != g.Partition {
				t.Errorf("key %s on shards %d and %d", *g.Key, s, g.Partition)
			}
			shardOf[*g.Key] = g.Partition
			if want := int64(len(perShard[g.Partition])); g.Offset != want {
				t.Errorf("record %s: offset %d, want %d (offsets must be dense)", g, g.Offset, want)
			}
			perShard[g.Partition] = append(perShard[g.Partition], *g.Key+","+*g.Value)
		}
		if len(perShard) < 2 {
			t.Errorf("9 keys all landed on one of %d shards: %v", shards, shardOf)
		}
		for part, got := range perShard {
			var want []string
			for _, s := range sent {
				if shardOf[s.k] == part {
					want = append(want, s.k+","+s.v)
				}
			}
			if !slices.Equal(got, want) {
				t.Errorf("shard %d holds %q, want (input order) %q", part, got, want)
			}
		}

		// --from N over every shard starts each shard at N, or at its end
		// when it holds fewer records.
		const from = 9
		r = cliOK(t, ctx, p, "", "consume", stream, "--from", strconv.Itoa(from), "--timeout", idleTimeout, "--format", "json")
		var want []cliWant
		for part := range int32(shards) {
			for off, line := range perShard[part] {
				if off >= from {
					k, v, _ := strings.Cut(line, ",")
					want = append(want, cliWant{partition: part, offset: int64(off), key: ptr(k), value: v})
				}
			}
		}
		cliCheckConsumed(t, cliParseConsumed(t, r, began), want)
	})

	// --value writes one record verbatim and does not read stdin; --key
	// sets its key.
	t.Run("value-flag", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t, 25*time.Second)
		const stream = "cli-pc-value"
		createStream(t, ctx, adm, stream, 2, nil)
		cliOK(t, ctx, p, "ignored\nstdin\n", "produce", stream, "--value", "multi\nline", "--key", "user-42", "--partition", "1",
			"--header", "h=1")
		cliOK(t, ctx, p, "", "produce", stream, "--value", "", "--key", "user-42", "--partition", "1")
		r := cliOK(t, ctx, p, "", "consume", stream, "--timeout", idleTimeout, "--format", "json")
		cliCheckConsumed(t, cliParseConsumed(t, r, began), []cliWant{
			{partition: 1, offset: 0, key: ptr("user-42"), value: "multi\nline", headers: []string{"h", "1"}},
			{partition: 1, offset: 1, key: ptr("user-42"), value: ""},
		})
		// --verbose reports partition@offset on stderr, never on stdout.
		r = runCLI(t, ctx, "a\nb\n", nil, "produce", stream, "--partition", "0", "--verbose", "--brokers", p.KafkaAddr)
		if r.code != 0 || r.stdout != "" || r.stderr != "0@0\n0@1\nproduced 2 of 2 records to \"cli-pc-value\"\n" {
			t.Errorf("produce --verbose: want 0@0, 0@1 and a summary on stderr; %s", r)
		}
	})

	// Text output: the value per line, or key, separator, value.
	t.Run("text-format", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t, 25*time.Second)
		const stream = "cli-pc-text"
		createStream(t, ctx, adm, stream, 1, nil)
		cliOK(t, ctx, p, "a:1\nb:2\nc:3\n", "produce", stream, "--key-separator", ":")
		r := cliOK(t, ctx, p, "", "consume", stream, "--count", "3")
		if r.stdout != "1\n2\n3\n" {
			t.Errorf("consume text: %q, want values per line", r.stdout)
		}
		r = cliOK(t, ctx, p, "", "consume", stream, "--count", "2", "--from", "1", "--key-separator", " => ")
		if r.stdout != "b => 2\nc => 3\n" {
			t.Errorf("consume text with --key-separator: %q", r.stdout)
		}
	})

	// Reads that must find nothing: they exit 0, print nothing, and take
	// about --timeout.
	t.Run("nothing-to-read", func(t *testing.T) {
		ctx := testCtx(t, 25*time.Second)
		createStream(t, ctx, adm, "cli-pc-empty", 3, nil)
		createStream(t, ctx, adm, "cli-pc-quiet", 3, nil)
		produce(t, ctx, newProducer(t, p), cliRecs("cli-pc-quiet", 0, 4)...)
		for _, tc := range []struct {
			name    string
			args    []string
			timeout time.Duration
		}{
			{"empty-stream", []string{"consume", "cli-pc-empty", "--timeout", "1s"}, time.Second},
			{"empty-stream-json", []string{"consume", "cli-pc-empty", "--timeout", "1s", "--format", "json", "--count", "5"}, time.Second},
			{"empty-shard", []string{"consume", "cli-pc-quiet", "--partition", "1", "--timeout", "500ms"}, 500 * time.Millisecond},
			{"from-latest", []string{"consume", "cli-pc-quiet", "--from", "latest", "--timeout", "500ms"}, 500 * time.Millisecond},
			{"from-past-end", []string{"consume", "cli-pc-quiet", "--partition", "0", "--from", "1000000", "--timeout", "500ms"}, 500 * time.Millisecond},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				r := cliOK(t, testCtx(t, 20*time.Second), p, "", tc.args...)
				if r.stdout != "" {
					t.Errorf("want no output; %s", r)
				}
				if r.elapsed < tc.timeout || r.elapsed > tc.timeout+8*time.Second {
					t.Errorf("took %s with --timeout %s", r.elapsed, tc.timeout)
				}
			})
		}
	})

	t.Run("refusals", func(t *testing.T) {
		ctx := testCtx(t, 20*time.Second)
		createStream(t, ctx, adm, "cli-pc-refuse", 3, nil)
		for _, tc := range []struct {
			name  string
			stdin string
			args  []string
			want  []string
		}{
			{"produce-missing-stream", "x\n", []string{"produce", "cli-pc-nope"}, []string{`stream "cli-pc-nope" does not exist`}},
			{"produce-missing-shard", "x\n", []string{"produce", "cli-pc-refuse", "--partition", "7"}, []string{"--partition 7", "3 shards"}},
			{"produce-bad-header", "x\n", []string{"produce", "cli-pc-refuse", "--header", "novalue"}, []string{`--header "novalue"`, "key=value"}},
			{"produce-bad-codec", "x\n", []string{"produce", "cli-pc-refuse", "--compression", "brotli"}, []string{`"brotli"`, "--compression", "none, gzip, snappy, lz4, zstd"}},
			{"produce-bad-acks", "x\n", []string{"produce", "cli-pc-refuse", "--acks", "2"}, []string{`"2"`, "--acks", "all, 1, 0"}},
			{"produce-key-and-separator", "x\n", []string{"produce", "cli-pc-refuse", "--key", "k", "--key-separator", ":"}, []string{"key", "key-separator"}},
			{"produce-separator-missing", "a:1\nno separator\n", []string{"produce", "cli-pc-refuse", "--partition", "2", "--key-separator", ":"}, []string{"line 2", `":"`}},
			{"consume-missing-stream", "", []string{"consume", "cli-pc-nope", "--timeout", "1s"}, []string{`stream "cli-pc-nope" does not exist`}},
			{"consume-missing-shard", "", []string{"consume", "cli-pc-refuse", "--partition", "3", "--timeout", "1s"}, []string{"--partition 3", "3 shards"}},
			{"consume-bad-from", "", []string{"consume", "cli-pc-refuse", "--from", "yesterday"}, []string{`--from "yesterday"`}},
			{"consume-negative-from", "", []string{"consume", "cli-pc-refuse", "--from", "-4"}, []string{`--from "-4"`}},
			{"consume-negative-count", "", []string{"consume", "cli-pc-refuse", "--count", "-1"}, []string{"--count", "-1"}},
			{"consume-bad-format", "", []string{"consume", "cli-pc-refuse", "--format", "csv"}, []string{`"csv"`, "--format"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				r := cliFails(t, testCtx(t, 20*time.Second), p, tc.stdin, tc.want, tc.args...)
				if r.elapsed > 5*time.Second {
					t.Errorf("took %s to refuse", r.elapsed)
				}
			})
		}
	})
}

// benchReport is the part of `bench --format json` the tests check.
type benchReport struct {
	Stream        string       `json:"stream"`
	Partitions    int          `json:"partitions"`
	CreatedStream bool         `json:"created_stream"`
	DeletedStream bool         `json:"deleted_stream"`
	Settings      benchSetting `json:"settings"`
	Produce       *benchPhase  `json:"produce"`
	Consume       *benchPhase  `json:"consume"`
	Interrupted   bool         `json:"interrupted"`
}

type benchSetting struct {
	RecordSize int    `json:"record_size"`
	Count      int64  `json:"count"`
	Acks       string `json:"acks"`
}

type benchPhase struct {
	Records       int64   `json:"records"`
	Bytes         int64   `json:"bytes"`
	Errors        int64   `json:"errors"`
	FirstError    string  `json:"first_error"`
	Seconds       float64 `json:"elapsed_seconds"`
	RecordsPerSec float64 `json:"records_per_sec"`
	MBPerSec      float64 `json:"mb_per_sec"`
	Latency       *struct {
		Count int64   `json:"count"`
		P50   float64 `json:"p50_ms"`
		Max   float64 `json:"max_ms"`
	} `json:"latency"`
	Batches *struct {
		Requests int64 `json:"requests"`
		Batches  int64 `json:"batches"`
		Records  int64 `json:"records"`
		Bytes    int64 `json:"bytes"`
	} `json:"batches"`
}

func checkBenchPhase(t testing.TB, name string, ph *benchPhase, records, size int64) {
	t.Helper()
	if ph == nil {
		t.Errorf("bench: no %s phase", name)
		return
	}
	if ph.Records != records || ph.Errors != 0 || ph.FirstError != "" || ph.Bytes != records*size ||
		!(ph.Seconds > 0) || !(ph.RecordsPerSec > 0) || !(ph.MBPerSec > 0) {
		t.Errorf("bench %s phase: %+v, want %d records of %d bytes, no errors, positive throughput", name, ph, records, size)
	}
}

// TestCLIBench runs `braid bench` in JSON and text and checks what it
// reports and what it leaves behind.
func TestCLIBench(t *testing.T) {
	t.Parallel()
	p := braidtest.Start(t)

	t.Run("json", func(t *testing.T) {
		ctx := testCtx(t, 25*time.Second)
		r := runCLI(t, ctx, "", nil, "bench", "--partitions", "2", "--count", "20000", "--record-size", "200", "--format", "json",
			"--brokers", p.KafkaAddr)
		if r.code != 0 {
			t.Fatalf("want exit 0; %s", r)
		}
		var rep benchReport
		cliDecodeJSON(t, r, &rep)
		if rep.Stream != "braid-bench" || rep.Partitions != 2 || !rep.CreatedStream || !rep.DeletedStream || rep.Interrupted ||
			rep.Settings.RecordSize != 200 || rep.Settings.Count != 20000 || rep.Settings.Acks != "all" {
			t.Errorf("bench report: %+v", rep)
		}
		checkBenchPhase(t, "produce", rep.Produce, 20000, 200)
		checkBenchPhase(t, "consume", rep.Consume, 20000, 200)
		if l := rep.Produce.Latency; l == nil || l.Count != 20000 || !(l.P50 > 0) || l.Max < l.P50 {
			t.Errorf("bench produce latency: %+v", l)
		}
		// The batches the run sent hold its records, not the warm-up's;
		// every request holds at least one, every record at least its value.
		if b := rep.Produce.Batches; b == nil || b.Records != 20000 || b.Requests < 1 || b.Batches < max(b.Requests, 2) ||
			b.Batches > b.Records || b.Bytes < 20000*200 {
			t.Errorf("bench produce batches: %+v, want 20000 records in at least 2 batches, of at least 200 bytes each", b)
		}
		if _, ok := cliListStreams(t, ctx, p)["braid-bench"]; ok {
			t.Errorf("bench left its temporary stream braid-bench behind")
		}
	})

	t.Run("text", func(t *testing.T) {
		ctx := testCtx(t, 25*time.Second)
		r := runCLI(t, ctx, "", nil, "bench", "--stream", "cli-bench-text", "--partitions", "2", "--count", "20000",
			"--record-size", "200", "--brokers", p.KafkaAddr)
		if r.code != 0 {
			t.Fatalf("want exit 0; %s", r)
		}
		if !strings.Contains(r.stdout, "stream cli-bench-text: 2 partitions (created for this run and deleted)") {
			t.Errorf("bench text lacks the stream line; %s", r)
		}
		if !cliHasRow(r.stdout, []string{"PHASE", "RECORDS", "ERRORS", "ELAPSED", "RECORDS/S", "MB/S", "P50", "P99", "P99.9", "MAX"}) {
			t.Errorf("bench text lacks the table header; %s", r)
		}
		for _, phase := range []string{"produce", "consume"} {
			f := cliRowStarting(r.stdout, phase)
			if len(f) != 10 || f[1] != "20000" || f[2] != "0" {
				t.Errorf("bench text %s row %q: want 20000 records and 0 errors", phase, f)
				continue
			}
			rps, err1 := strconv.ParseFloat(f[4], 64)
			mbps, err2 := strconv.ParseFloat(f[5], 64)
			if err1 != nil || err2 != nil || !(rps > 0) || !(mbps > 0) {
				t.Errorf("bench text %s row %q: want positive records/s and MB/s", phase, f)
			}
		}
		if !regexp.MustCompile(`(?m)^batches: [1-9][0-9]* produce requests of [0-9.]+ batches on average, [0-9.]+ records \([0-9.]+ KB\) per batch$`).MatchString(r.stdout) {
			t.Errorf("bench text lacks the batches line; %s", r)
		}
		if _, ok := cliListStreams(t, ctx, p)["cli-bench-text"]; ok {
			t.Errorf("bench left its temporary stream cli-bench-text behind")
		}
	})

	t.Run("keep", func(t *testing.T) {
		ctx := testCtx(t, 25*time.Second)
		run := func(args ...string) benchReport {
			t.Helper()
			r := runCLI(t, ctx, "", nil, append([]string{"bench", "--stream", "cli-bench-kept", "--partitions", "3", "--count", "1000",
				"--record-size", "100", "--format", "json", "--brokers", p.KafkaAddr}, args...)...)
			if r.code != 0 {
				t.Fatalf("want exit 0; %s", r)
			}
			var rep benchReport
			cliDecodeJSON(t, r, &rep)
			checkBenchPhase(t, "produce", rep.Produce, 1000, 100)
			checkBenchPhase(t, "consume", rep.Consume, 1000, 100)
			return rep
		}
		if rep := run("--keep"); !rep.CreatedStream || rep.DeletedStream || rep.Partitions != 3 {
			t.Errorf("bench --keep: created %v deleted %v partitions %d", rep.CreatedStream, rep.DeletedStream, rep.Partitions)
		}
		s, ok := cliListStreams(t, ctx, p)["cli-bench-kept"]
		if !ok || s.Shards != 3 {
			t.Fatalf("bench --keep: stream cli-bench-kept found %v, %+v; want 3 shards", ok, s)
		}
		// A second run uses the existing stream and, not having created
		// it, must not delete it even without --keep.
		if rep := run(); rep.CreatedStream || rep.DeletedStream || rep.Partitions != 3 {
			t.Errorf("bench on an existing stream: created %v deleted %v partitions %d", rep.CreatedStream, rep.DeletedStream, rep.Partitions)
		}
		// Each run also writes one untimed warm-up record per producer
		// (internal/bench newProducers), which its consume phase skips.
		d := cliDescribe(t, ctx, p, "cli-bench-kept")
		var total int64
		for _, sh := range d.Shards {
			total += *sh.Latest - *sh.Earliest
		}
		if total != 2*(1000+1) {
			t.Errorf("cli-bench-kept holds %d records after two runs of 1000 (+1 warm-up record each), want 2002", total)
		}
	})
}

// TestCLIServe checks that `braid serve` refuses a bad configuration at once
// with a message naming the setting, and that a second node cannot share a
// data directory.
func TestCLIServe(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { busy.Close() })

	for _, tc := range []struct {
		name string
		args []string
		want []string // all must appear in stderr
	}{
		{"kafka-addr-nonsense", []string{"--kafka-addr", "nonsense"}, []string{"kafka addr", `"nonsense"`}},
		{"kafka-addr-bad-port", []string{"--kafka-addr", "127.0.0.1:99999"}, []string{"kafka addr", `"127.0.0.1:99999"`, "port"}},
		{"kafka-addr-empty", []string{"--kafka-addr", ""}, []string{"kafka addr", "must be set"}},
		{"kafka-addr-busy", []string{"--kafka-addr", busy.Addr().String()}, []string{"kafka", busy.Addr().String()}},
		{"http-addr-bad", []string{"--http-addr", "localhost"}, []string{"http addr", `"localhost"`}},
		{"http-addr-busy", []string{"--http-addr", busy.Addr().String()}, []string{"http", busy.Addr().String()}},
		{"advertised-addr-bad", []string{"--advertised-kafka-addr", "broker1"}, []string{"advertised kafka addr", `"broker1"`}},
		{"default-partitions-zero", []string{"--default-partitions", "0"}, []string{"default partitions", "0"}},
		{"default-partitions-huge", []string{"--default-partitions", "100000000"}, []string{"default partitions", "100000000"}},
		{"default-partitions-word", []string{"--default-partitions", "many"}, []string{"--default-partitions", `"many"`}},
		{"stream-default-unknown", []string{"--stream-default", "nope=1"}, []string{"stream default", `"nope"`}},
		{"stream-default-bad-value", []string{"--stream-default", "retention.ms=forever"}, []string{"stream default", "retention.ms", `"forever"`}},
		{"stream-default-no-equals", []string{"--stream-default", "retention.ms"}, []string{"--stream-default", `"retention.ms"`}},
		{"log-level", []string{"--log-level", "loud"}, []string{"log level", `"loud"`}},
		{"node-id", []string{"--node-id", "-1"}, []string{"node id", "-1"}},
		{"checkpoint-interval", []string{"--checkpoint-interval", "10ms"}, []string{"checkpoint interval", "10ms"}},
		{"wal-segment-bytes", []string{"--wal-segment-bytes", "4096"}, []string{"wal segment bytes", "4096"}},
		{"max-request-bytes", []string{"--max-request-bytes", "10"}, []string{"max request bytes", "10"}},
		{"cache-bytes", []string{"--cache-bytes", "-1"}, []string{"cache bytes", "-1"}},
		{"wal-page-cache-bytes", []string{"--wal-page-cache-bytes", "-1"}, []string{"wal page cache bytes", "-1"}},
		{"queued-max-request-bytes", []string{"--queued-max-request-bytes", "1000"}, []string{"queued max request bytes", "1000"}},
		{"queued-below-max-request", []string{"--max-request-bytes", "2097152", "--queued-max-request-bytes", "1048576"}, []string{"queued max request bytes", "1048576", "2097152"}},
		{"memory-limit-negative", []string{"--memory-limit", "-2"}, []string{"memory limit", "-2"}},
		{"memory-limit-below-cache", []string{"--cache-bytes", "268435456", "--memory-limit", "300000000"}, []string{"memory limit", "300000000"}},
		{"request-timeout", []string{"--request-timeout", "1ms"}, []string{"request timeout", "1ms"}},
		{"connections-max-idle", []string{"--connections-max-idle", "0s"}, []string{"connections max idle", "0s"}},
		{"max-connections", []string{"--max-connections", "-1"}, []string{"max connections", "-1"}},
		{"max-connections-per-ip", []string{"--max-connections-per-ip", "-5"}, []string{"max connections per ip", "-5"}},
		{"fetch-max-bytes", []string{"--fetch-max-bytes", "100"}, []string{"fetch max bytes", "100"}},
		{"move-interval", []string{"--move-interval", "1ms"}, []string{"move interval", "1ms"}},
		{"cleaner-interval", []string{"--cleaner-interval", "1ms"}, []string{"cleaner interval", "1ms"}},
		{"cleaner-bytes-per-sec", []string{"--cleaner-bytes-per-sec", "1000"}, []string{"cleaner bytes per sec", "1000"}},
		{"producer-id-expiration", []string{"--producer-id-expiration", "10ms"}, []string{"producer id expiration", "10ms"}},
		{"transactional-id-expiration", []string{"--transactional-id-expiration", "0s"}, []string{"transactional id expiration", "0s"}},
		{"transaction-max-timeout", []string{"--transaction-max-timeout", "-1s"}, []string{"transaction max timeout", "-1s"}},
		{"data-dir-empty", []string{"--data-dir", ""}, []string{"data dir", "must be set"}},
		{"unknown-flag", []string{"--retention", "1d"}, []string{"unknown flag", "--retention"}},
		{"positional-arg", []string{"extra"}, []string{`"extra"`}},
		// Every problem is reported at once.
		{"several", []string{"--log-level", "loud", "--default-partitions", "0", "--kafka-addr", "nonsense"},
			[]string{"log level", "default partitions", "kafka addr"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t, 15*time.Second)
			dir := filepath.Join(t.TempDir(), "data")
			args := append([]string{"serve", "--data-dir", dir, "--kafka-addr", braidtest.FreeAddr(t),
				"--http-addr", braidtest.FreeAddr(t)}, tc.args...)
			r := runCLI(t, ctx, "", nil, args...)
			cliCheckFailure(t, r, nil)
			low := strings.ToLower(strings.ReplaceAll(r.stderr, "-", " "))
			for _, w := range tc.want {
				if !strings.Contains(r.stderr, w) && !strings.Contains(low, strings.ReplaceAll(w, "-", " ")) {
					t.Errorf("stderr does not name %q; %s", w, r)
				}
			}
			if r.elapsed > 5*time.Second {
				t.Errorf("took %s to refuse a bad configuration", r.elapsed)
			}
		})
	}

	t.Run("data-dir-in-use", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t, 25*time.Second)
		p := braidtest.Start(t)
		createStream(t, ctx, newAdmin(t, p), "cli-locked", 2, nil)
		produce(t, ctx, newProducer(t, p), cliRecs("cli-locked", 1, 3)...)

		dir := filepath.Join(p.Dir, "data")
		r := runCLI(t, ctx, "", nil, "serve", "--data-dir", dir,
			"--kafka-addr", braidtest.FreeAddr(t), "--http-addr", braidtest.FreeAddr(t))
		cliCheckFailure(t, r, []string{"in use", dir})
		if r.elapsed > 5*time.Second {
			t.Errorf("took %s to refuse a directory in use", r.elapsed)
		}

		// The first node did not notice.
		if code, body := cliHTTPGet(t, ctx, "http://"+p.HTTPAddr+"/healthz"); code != 200 {
			t.Errorf("first node /healthz: %d %q after the second failed", code, body)
		}
		got := consume(t, ctx, p, "cli-locked", 1, kgo.NewOffset().AtStart(), 3)
		if len(got) != 3 {
			t.Errorf("first node serves %d records, want 3", len(got))
		}

		// Once it stops, the directory is free again.
		if err := p.Stop(); err != nil {
			t.Fatalf("stop first node: %v", err)
		}
		p.Restart()
		cliOK(t, ctx, p, "", "stream", "describe", "cli-locked")
	})
}

// cliHasRow reports whether some line of out has exactly the fields want.
func cliHasRow(out string, want []string) bool {
	for _, l := range strings.Split(out, "\n") {
		if slices.Equal(strings.Fields(l), want) {
			return true
		}
	}
	return false
}

// cliRowStarting returns the fields of the first line whose first field is
// first.
func cliRowStarting(out, first string) []string {
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[0] == first {
			return f
		}
	}
	return nil
}

// cliRecs returns n records for one shard of topic, values "v0", "v1", ...
func cliRecs(topic string, part int32, n int) []*kgo.Record {
	out := make([]*kgo.Record, n)
	for i := range out {
		out[i] = &kgo.Record{Topic: topic, Partition: part, Value: []byte(fmt.Sprintf("v%d", i))}
	}
	return out
}

// cliHTTPGet returns the status and body of a GET, failing t if the request
// cannot be made.
func cliHTTPGet(t testing.TB, ctx context.Context, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", url, err)
	}
	return resp.StatusCode, string(body)
}
