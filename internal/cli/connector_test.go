package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// These tests run `braid connector ...` against an httptest server that
// plays the node's connector API as the contract in docs/connectors.md
// has it: it checks each request the CLI sends and answers with what the
// node would. They test the CLI's own logic; internal/e2e runs the binary
// against a real node.

// apiCall is one request the test expects and the answer it gives.
type apiCall struct {
	method, path string
	// contentType and body are checked when set; body compares as JSON
	// when contentType is application/json, byte for byte otherwise.
	contentType string
	body        string
	status      int
	answer      string
}

// fakeConnectorAPI serves calls in order and fails t on any other request.
func fakeConnectorAPI(t *testing.T, calls []apiCall) string {
	t.Helper()
	next := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if next >= len(calls) {
			t.Errorf("unexpected request %s %s %s", r.Method, r.URL.Path, body)
			http.Error(w, "unexpected", http.StatusTeapot)
			return
		}
		c := calls[next]
		next++
		if r.Method != c.method || r.URL.EscapedPath() != c.path {
			t.Errorf("request %d: got %s %s, want %s %s", next-1, r.Method, r.URL.EscapedPath(), c.method, c.path)
		}
		if c.contentType != "" && r.Header.Get("Content-Type") != c.contentType {
			t.Errorf("request %d: Content-Type %q, want %q", next-1, r.Header.Get("Content-Type"), c.contentType)
		}
		switch {
		case c.body == "" && len(body) != 0 && r.Method != http.MethodPost:
			t.Errorf("request %d: unexpected body %s", next-1, body)
		case c.body != "" && c.contentType == "application/json":
			if !jsonSame(t, body, []byte(c.body)) {
				t.Errorf("request %d: body %s, want %s", next-1, body, c.body)
			}
		case c.body != "" && string(body) != c.body:
			t.Errorf("request %d: body %q, want %q", next-1, body, c.body)
		}
		if c.answer != "" {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(c.status)
		io.WriteString(w, c.answer)
	}))
	t.Cleanup(func() {
		srv.Close()
		if next != len(calls) {
			t.Errorf("%d of %d expected requests were made", next, len(calls))
		}
	})
	return strings.TrimPrefix(srv.URL, "http://")
}

func jsonSame(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Errorf("request body is not JSON: %v: %s", err, a)
		return false
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("test's body is not JSON: %v", err)
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return bytes.Equal(xb, yb)
}

// runConnectorCLI runs braid with args plus --admin-addr addr.
func runConnectorCLI(t *testing.T, addr, stdin string, args ...string) (string, error) {
	t.Helper()
	root := NewRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(io.Discard)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(append(args, "--admin-addr", addr))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := root.ExecuteContext(ctx)
	return out.String(), err
}

const describeRunning = `{"name":"orders-archive","type":"s3-sink","kind":"sink","state":"running","delivery":"exactly-once",
"definition":{"name":"orders-archive","type":"s3-sink","streams":["orders"],"config":{"bucket":"archive"}},
"last_error":{"message":"put object: 503 Slow Down\nretrying","at":"2026-11-30T16:01:02.003Z"},
"records_total":12345,"bytes_total":6543210,"records_per_sec":120.46,"lag":30,
"shards":[{"stream":"orders","shard":0,"position":100,"end":120,"lag":20},{"stream":"orders","shard":1,"position":55,"end":65,"lag":10}],
"backfill":{"done":155,"total":185,"percent":83.78},"dead_lettered_total":2,"skipped_total":0,"restarts":1}`

func TestConnectorCLI(t *testing.T) {
	const yamlDef = "name: orders-archive\ntype: s3-sink\nstreams: [orders]\nconfig:\n  bucket: archive\n"
	const jsonDef = `{"name":"orders-archive","type":"s3-sink","streams":["orders"]}`
	dir := t.TempDir()
	yamlFile := filepath.Join(dir, "def.yaml")
	jsonFile := filepath.Join(dir, "def.json")
	emptyFile := filepath.Join(dir, "empty.yaml")
	for name, body := range map[string]string{yamlFile: yamlDef, jsonFile: "\n  " + jsonDef, emptyFile: " \n"} {
		if err := os.WriteFile(name, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	for _, tc := range []struct {
		name  string
		args  []string
		stdin string
		calls []apiCall
		// want is the whole stdout; wantIn are pieces of it.
		want   string
		wantIn []string
		err    string // the whole error message, "" for success
	}{
		{
			name:  "create from a YAML file",
			args:  []string{"connector", "create", "-f", yamlFile},
			calls: []apiCall{{method: "POST", path: "/v1/connectors", contentType: "application/yaml", body: yamlDef, status: 201, answer: describeRunning}},
			want:  "connector \"orders-archive\" created (s3-sink, state running)\n",
		},
		{
			name:  "create from JSON on stdin",
			args:  []string{"connector", "create", "-f", "-", "--format", "json"},
			stdin: jsonDef,
			calls: []apiCall{{method: "POST", path: "/v1/connectors", contentType: "application/json", body: jsonDef, status: 201, answer: `{"name":"orders-archive","state":"starting"}`}},
			want:  "{\n  \"name\": \"orders-archive\",\n  \"state\": \"starting\"\n}\n",
		},
		{
			name:  "create from a JSON file",
			args:  []string{"connector", "create", "--file", jsonFile},
			calls: []apiCall{{method: "POST", path: "/v1/connectors", contentType: "application/json", body: "\n  " + jsonDef, status: 201, answer: describeRunning}},
			want:  "connector \"orders-archive\" created (s3-sink, state running)\n",
		},
		{
			name:  "create from YAML flow style",
			args:  []string{"connector", "create", "-f", "-"},
			stdin: "{name: a, type: file-sink, streams: [s]}",
			calls: []apiCall{{method: "POST", path: "/v1/connectors", contentType: "application/yaml", body: "{name: a, type: file-sink, streams: [s]}", status: 201, answer: `{"name":"a","type":"file-sink","state":"starting"}`}},
			want:  "connector \"a\" created (file-sink, state starting)\n",
		},
		{
			name:  "create refused by the node",
			args:  []string{"connector", "create", "-f", yamlFile},
			calls: []apiCall{{method: "POST", path: "/v1/connectors", status: 400, answer: `{"error":"transforms: transform 0: unknown transform \"script\""}`}},
			err:   `transforms: transform 0: unknown transform "script"`,
		},
		{
			name:  "create: the name is taken",
			args:  []string{"connector", "create", "-f", yamlFile},
			calls: []apiCall{{method: "POST", path: "/v1/connectors", status: 409, answer: `{"error":"connector \"orders-archive\" exists"}`}},
			err:   `connector "orders-archive" exists`,
		},
		{name: "create: an empty file asks nothing", args: []string{"connector", "create", "-f", emptyFile}, err: "definition in " + emptyFile + " is empty"},
		{name: "create: empty stdin", args: []string{"connector", "create", "-f", "-"}, err: "definition in standard input is empty"},
		{name: "create: a missing file", args: []string{"connector", "create", "-f", filepath.Join(dir, "nope.yaml")}, err: "read definition: open " + filepath.Join(dir, "nope.yaml") + ": no such file or directory"},
		{name: "create: no -f", args: []string{"connector", "create"}, err: `required flag(s) "file" not set`},
		{
			name: "list as a table",
			args: []string{"connector", "list"},
			calls: []apiCall{{method: "GET", path: "/v1/connectors", status: 200, answer: `{"connectors":[` + describeRunning + `,
				{"name":"pg-in","type":"postgres-cdc","kind":"source","state":"failed","records_per_sec":0,"lag":0,"last_error":{"message":"replication slot \"braid\" is gone","at":"x"}}]}`}},
			want: "NAME            TYPE          STATE    LAG  RATE     LAST-ERROR\n" +
				"orders-archive  s3-sink       running  30   120.5/s  put object: 503 Slow Down retrying\n" +
				"pg-in           postgres-cdc  failed   -    0.0/s    replication slot \"braid\" is gone\n",
		},
		{
			name:   "list cuts a long error",
			args:   []string{"connector", "list"},
			calls:  []apiCall{{method: "GET", path: "/v1/connectors", status: 200, answer: `{"connectors":[{"name":"a","type":"http-sink","kind":"sink","state":"retrying","lag":1,"records_per_sec":2,"last_error":{"message":"` + strings.Repeat("x", 100) + `"}}]}`}},
			wantIn: []string{"retrying  1    2.0/s  " + strings.Repeat("x", 59) + "…\n"},
		},
		{
			name:  "list as JSON is the node's answer",
			args:  []string{"connector", "list", "--format", "json"},
			calls: []apiCall{{method: "GET", path: "/v1/connectors", status: 200, answer: `{"connectors":[]}`}},
			want:  "{\n  \"connectors\": []\n}\n",
		},
		{
			name:  "describe",
			args:  []string{"connector", "describe", "orders-archive"},
			calls: []apiCall{{method: "GET", path: "/v1/connectors/orders-archive", status: 200, answer: describeRunning}},
			want: `NAME           orders-archive
TYPE           s3-sink (sink)
STATE          running
DELIVERY       exactly-once
RECORDS        12345 (6.2 MiB)
RATE           120.5/s
LAG            30
BACKFILL       155 of 185 records (83.8%)
DEAD-LETTERED  2
SKIPPED        0
RESTARTS       1
LAST-ERROR     put object: 503 Slow Down retrying (at 2026-11-30T16:01:02.003Z)

STREAM  SHARD  POSITION  END  LAG
orders  0      100       120  20
orders  1      55        65   10

DEFINITION
  {
    "name": "orders-archive",
    "type": "s3-sink",
    "streams": [
      "orders"
    ],
    "config": {
      "bucket": "archive"
    }
  }
`,
		},
		{
			name:  "describe a source caught up",
			args:  []string{"connector", "describe", "pg-in"},
			calls: []apiCall{{method: "GET", path: "/v1/connectors/pg-in", status: 200, answer: `{"name":"pg-in","type":"postgres-cdc","kind":"source","state":"paused","delivery":"at-least-once","last_error":null,"records_total":5,"bytes_total":100,"records_per_sec":0,"shards":[],"backfill":null,"dead_lettered_total":0,"skipped_total":0,"restarts":0}`}},
			want:  "NAME           pg-in\nTYPE           postgres-cdc (source)\nSTATE          paused\nDELIVERY       at-least-once\nRECORDS        5 (100 B)\nRATE           0.0/s\nDEAD-LETTERED  0\nSKIPPED        0\nRESTARTS       0\nLAST-ERROR     -\n",
		},
		{
			name:  "describe shows what the node does not know as -",
			args:  []string{"connector", "describe", "s"},
			calls: []apiCall{{method: "GET", path: "/v1/connectors/s", status: 200, answer: `{"name":"s","type":"http-sink","kind":"sink","state":"starting","lag":null,"records_total":0,"bytes_total":0,"records_per_sec":null,"shards":[{"stream":"a","shard":0,"position":null,"end":null,"lag":null}]}`}},
			want:  "NAME           s\nTYPE           http-sink (sink)\nSTATE          starting\nDELIVERY       -\nRECORDS        0 (0 B)\nRATE           -\nLAG            -\nDEAD-LETTERED  -\nSKIPPED        -\nRESTARTS       -\nLAST-ERROR     -\n\nSTREAM  SHARD  POSITION  END  LAG\na       0      -         -    -\n",
		},
		{
			name:  "describe escapes the name",
			args:  []string{"connector", "describe", "a/b"},
			calls: []apiCall{{method: "GET", path: "/v1/connectors/a%2Fb", status: 404, answer: `{"error":"connector \"a/b\" does not exist"}`}},
			err:   `connector "a/b" does not exist`,
		},
		{
			name:  "pause",
			args:  []string{"connector", "pause", "orders-archive"},
			calls: []apiCall{{method: "POST", path: "/v1/connectors/orders-archive/pause", status: 200, answer: `{"name":"orders-archive","state":"paused"}`}},
			want:  "connector \"orders-archive\" paused (state paused)\n",
		},
		{
			name:  "resume",
			args:  []string{"connector", "resume", "orders-archive", "--format", "json"},
			calls: []apiCall{{method: "POST", path: "/v1/connectors/orders-archive/resume", status: 200, answer: `{"name":"orders-archive","state":"running"}`}},
			want:  "{\n  \"name\": \"orders-archive\",\n  \"state\": \"running\"\n}\n",
		},
		{
			name:  "restart",
			args:  []string{"connector", "restart", "orders-archive"},
			calls: []apiCall{{method: "POST", path: "/v1/connectors/orders-archive/restart", status: 200, answer: `{"name":"orders-archive","state":"starting"}`}},
			want:  "connector \"orders-archive\" restarted (state starting)\n",
		},
		{
			name:  "pause an unknown connector",
			args:  []string{"connector", "pause", "nope"},
			calls: []apiCall{{method: "POST", path: "/v1/connectors/nope/pause", status: 404, answer: `{"error":"no connector \"nope\""}`}},
			err:   `no connector "nope"`,
		},
		{
			name:  "delete",
			args:  []string{"connector", "delete", "orders-archive"},
			calls: []apiCall{{method: "DELETE", path: "/v1/connectors/orders-archive", status: 204}},
			want:  "connector \"orders-archive\" deleted\n",
		},
		{
			name:  "delete as JSON",
			args:  []string{"connector", "delete", "orders-archive", "--format", "json"},
			calls: []apiCall{{method: "DELETE", path: "/v1/connectors/orders-archive", status: 204}},
			want:  "{\n  \"name\": \"orders-archive\",\n  \"deleted\": true\n}\n",
		},
		{
			name:  "offsets of a sink",
			args:  []string{"connector", "offsets", "orders-archive"},
			calls: []apiCall{{method: "GET", path: "/v1/connectors/orders-archive/offsets", status: 200, answer: `{"offsets":[{"stream":"orders","shard":0,"offset":100},{"stream":"orders","shard":1,"offset":55}],"position":null}`}},
			want:  "STREAM  SHARD  OFFSET\norders  0      100\norders  1      55\n",
		},
		{
			name:  "offsets of a source",
			args:  []string{"connector", "offsets", "pg-in"},
			calls: []apiCall{{method: "GET", path: "/v1/connectors/pg-in/offsets", status: 200, answer: `{"offsets":[],"position":"AAAAAAFvK0g="}`}},
			want:  "POSITION  AAAAAAFvK0g=\n",
		},
		{
			name:  "offsets reset to earliest",
			args:  []string{"connector", "offsets", "reset", "orders-archive", "--to", "earliest"},
			calls: []apiCall{{method: "POST", path: "/v1/connectors/orders-archive/offsets/reset", contentType: "application/json", body: `{"to":"earliest"}`, status: 200, answer: `{"offsets":[{"stream":"orders","shard":0,"offset":0}],"position":null}`}},
			want:  "offsets of connector \"orders-archive\" reset to earliest\nSTREAM  SHARD  OFFSET\norders  0      0\n",
		},
		{
			name: "offsets reset to given offsets",
			args: []string{"connector", "offsets", "reset", "orders-archive", "--offsets", "orders/0=1200, orders/1=980,a.b-c_d/12=0"},
			calls: []apiCall{{method: "POST", path: "/v1/connectors/orders-archive/offsets/reset", contentType: "application/json",
				body: `{"offsets":[{"stream":"orders","shard":0,"offset":1200},{"stream":"orders","shard":1,"offset":980},{"stream":"a.b-c_d","shard":12,"offset":0}]}`, status: 200, answer: `{}`}},
			want: "offsets of connector \"orders-archive\" reset to the given offsets\n",
		},
		{
			name:  "offsets reset of a running connector",
			args:  []string{"connector", "offsets", "reset", "orders-archive", "--to", "latest"},
			calls: []apiCall{{method: "POST", path: "/v1/connectors/orders-archive/offsets/reset", body: `{"to":"latest"}`, contentType: "application/json", status: 409, answer: `{"error":"connector \"orders-archive\" is running; pause it first"}`}},
			err:   `connector "orders-archive" is running; pause it first`,
		},
		{name: "offsets reset needs a target", args: []string{"connector", "offsets", "reset", "x"}, err: "say where to: --to earliest, --to latest or --offsets STREAM/SHARD=OFFSET,..."},
		{name: "offsets reset: both", args: []string{"connector", "offsets", "reset", "x", "--to", "latest", "--offsets", "a/0=1"}, err: "give either --to or --offsets, not both"},
		{name: "offsets reset: bad --to", args: []string{"connector", "offsets", "reset", "x", "--to", "start"}, err: `invalid argument "start" for "--to" flag: must be one of earliest, latest`},
		{name: "offsets reset: no shard", args: []string{"connector", "offsets", "reset", "x", "--offsets", "orders=5"}, err: `--offsets "orders=5": no / between stream and shard; want STREAM/SHARD=OFFSET, like orders/0=1200`},
		{name: "offsets reset: no offset", args: []string{"connector", "offsets", "reset", "x", "--offsets", "orders/1"}, err: `--offsets "orders/1": no =; want STREAM/SHARD=OFFSET, like orders/0=1200`},
		{name: "offsets reset: bad shard", args: []string{"connector", "offsets", "reset", "x", "--offsets", "orders/-1=5"}, err: `--offsets "orders/-1=5": shard "-1" is not a shard number; want STREAM/SHARD=OFFSET, like orders/0=1200`},
		{name: "offsets reset: bad offset", args: []string{"connector", "offsets", "reset", "x", "--offsets", "orders/1=ten"}, err: `--offsets "orders/1=ten": offset "ten" is not an offset (a number from 0); want STREAM/SHARD=OFFSET, like orders/0=1200`},
		{name: "offsets reset: no stream", args: []string{"connector", "offsets", "reset", "x", "--offsets", "/1=5"}, err: `--offsets "/1=5": no stream; want STREAM/SHARD=OFFSET, like orders/0=1200`},
		{name: "offsets reset: twice", args: []string{"connector", "offsets", "reset", "x", "--offsets", "a/1=5,a/1=6"}, err: "--offsets names a/1 twice"},
		{
			name:  "types",
			args:  []string{"connector", "types"},
			calls: []apiCall{{method: "GET", path: "/v1/connector-types", status: 200, answer: `{"types":[{"name":"file-sink","kind":"sink","exactly_once":false,"doc":"appends records to files"},{"name":"s3-sink","kind":"sink","exactly_once":true,"doc":"writes objects to S3"}]}`}},
			want:  "NAME       KIND  EXACTLY-ONCE  DOC\nfile-sink  sink  false         appends records to files\ns3-sink    sink  true          writes objects to S3\n",
		},
		{
			name:  "connectors disabled on the node",
			args:  []string{"connector", "types"},
			calls: []apiCall{{method: "GET", path: "/v1/connector-types", status: 503, answer: `{"error":"connectors are disabled on this node (serve --connectors=false)"}`}},
			err:   "connectors are disabled on this node (serve --connectors=false)",
		},
		{
			name:  "a node without the connector API",
			args:  []string{"connector", "list"},
			calls: []apiCall{{method: "GET", path: "/v1/connectors", status: 404, answer: "404 page not found\n"}},
			err:   "the node at ADDR has no connector API (404 page not found)",
		},
		{
			name:  "an answer that is not JSON",
			args:  []string{"connector", "describe", "x"},
			calls: []apiCall{{method: "GET", path: "/v1/connectors/x", status: 200, answer: "<html>"}},
			err:   "admin API at ADDR: answer is not the expected JSON: invalid character '<' looking for beginning of value",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := fakeConnectorAPI(t, tc.calls)
			out, err := runConnectorCLI(t, addr, tc.stdin, tc.args...)
			wantErr := strings.ReplaceAll(tc.err, "ADDR", addr)
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("error: %v; stdout %q", err, out)
			case tc.err != "" && (err == nil || err.Error() != wantErr):
				t.Fatalf("error %v, want %q; stdout %q", err, wantErr, out)
			case tc.err != "" && out != "":
				t.Errorf("stdout after an error: %q", out)
			case tc.want != "" && out != tc.want:
				t.Errorf("stdout\n%s\nwant\n%s", out, tc.want)
			}
			for _, w := range tc.wantIn {
				if !strings.Contains(out, w) {
					t.Errorf("stdout lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

// Main exits non-zero and prints the API's message when the node refuses.
func TestConnectorCLIExitCode(t *testing.T) {
	addr := fakeConnectorAPI(t, []apiCall{{method: "DELETE", path: "/v1/connectors/x", status: 404, answer: `{"error":"no connector \"x\""}`}})
	if code := Main([]string{"connector", "delete", "x", "--admin-addr", addr}); code == 0 {
		t.Fatalf("exit code 0 for a refused delete")
	}
}
