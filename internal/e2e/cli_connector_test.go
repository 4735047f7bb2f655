package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/braidstream/braid/internal/braidtest"
)

// connectorTypeKinds are the connector types a node ships, with their kinds
// (the names are contracts of issue 14).
var connectorTypeKinds = map[string]string{
	"file-sink":     "sink",
	"file-source":   "source",
	"s3-sink":       "sink",
	"postgres-sink": "sink",
	"postgres-cdc":  "source",
	"http-sink":     "sink",
	"http-source":   "source",
}

// TestCLIConnector runs `braid connector types` and refused creates with
// the real binary against a real node.
func TestCLIConnector(t *testing.T) {
	t.Parallel()
	p := braidtest.Start(t)
	ctx := testCtx(t, 60*time.Second)
	checkCLIConnector(t, ctx, p.HTTPAddr)
}

func checkCLIConnector(t *testing.T, ctx context.Context, adminAddr string) {
	connector := func(stdin string, args ...string) cliResult {
		return runCLI(t, ctx, stdin, nil, append(append([]string{"connector"}, args...), "--admin-addr", adminAddr)...)
	}

	t.Run("types", func(t *testing.T) {
		r := connector("", "types", "--format", "json")
		if r.code != 0 || r.stderr != "" {
			t.Fatalf("want exit 0 and an empty stderr; %s", r)
		}
		var got struct {
			Types []struct {
				Name        string `json:"name"`
				Kind        string `json:"kind"`
				ExactlyOnce bool   `json:"exactly_once"`
				Doc         string `json:"doc"`
			} `json:"types"`
		}
		cliDecodeJSON(t, r, &got)
		kinds := map[string]string{}
		for _, ty := range got.Types {
			kinds[ty.Name] = ty.Kind
			if strings.TrimSpace(ty.Doc) == "" {
				t.Errorf("type %q has no doc line", ty.Name)
			}
		}
		for name, kind := range connectorTypeKinds {
			if kinds[name] != kind {
				t.Errorf("type %q: kind %q, want %q; %s", name, kinds[name], kind, r)
			}
		}

		text := connector("", "types")
		if text.code != 0 || text.stderr != "" {
			t.Fatalf("want exit 0 and an empty stderr; %s", text)
		}
		lines := strings.Split(strings.TrimSpace(text.stdout), "\n")
		if len(lines) != len(got.Types)+1 || strings.Join(strings.Fields(lines[0]), " ") != "NAME KIND EXACTLY-ONCE DOC" {
			t.Fatalf("want a header and one line per type (%d); %s", len(got.Types), text)
		}
		for i, ty := range got.Types {
			f := strings.Fields(lines[i+1])
			if len(f) < 3 || f[0] != ty.Name || f[1] != ty.Kind || f[2] != map[bool]string{true: "true", false: "false"}[ty.ExactlyOnce] {
				t.Errorf("line %q does not show %+v", lines[i+1], ty)
			}
		}
	})

	t.Run("create refuses a bad definition", func(t *testing.T) {
		for _, tc := range []struct {
			name, def string
			want      []string // in stderr
		}{
			{"unknown type", "name: cli-bad-type\ntype: no-such-type\nstreams: [orders]\n", []string{"no-such-type"}},
			{"bad transform", "name: cli-bad-transform\ntype: file-sink\nstreams: [orders]\ntransforms:\n  - {script: 'x > 1'}\nconfig: {}\n",
				[]string{"transform 0", `unknown transform "script"`}},
			{"bad name", `{"name": "no spaces allowed", "type": "file-sink", "streams": ["orders"]}`, []string{"name"}},
			{"not a document", "{{{", nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := connector(tc.def, "create", "-f", "-")
				cliCheckFailure(t, r, append([]string{"braid: "}, tc.want...))
				if strings.Contains(strings.TrimSpace(r.stderr), "\n") {
					t.Errorf("want a one-line message; %s", r)
				}
			})
		}
		r := connector("", "list", "--format", "json")
		if r.code != 0 {
			t.Fatalf("list: %s", r)
		}
		var list struct {
			Connectors []struct {
				Name string `json:"name"`
			} `json:"connectors"`
		}
		cliDecodeJSON(t, r, &list)
		for _, c := range list.Connectors {
			if strings.HasPrefix(c.Name, "cli-bad") {
				t.Errorf("a refused definition was created: %s", r)
			}
		}
	})
}
