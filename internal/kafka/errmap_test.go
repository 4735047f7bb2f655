package kafka

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

// unmappedSentinels are the sentinel errors that never reach a Kafka
// response, each with the reason. Everything else must have a code.
var unmappedSentinels = map[string]string{
	"engine.ErrCorruptCheckpoint":  "start-up only: the node refuses to open, no request is served",
	"engine.ErrDataDirInUse":       "start-up only: the data directory lock is taken",
	"engine.ErrNoCatalog":          "start-up only: a data directory with data but no catalog.json",
	"vfs.ErrCrashed":               "tests only: a MemFS after its simulated power loss",
	"vfs.ErrDirectUnsupported":     "internal: the log falls back to page cache writes, no request sees it",
	"bench.ErrInterrupted":         "client side: braid bench stopped by the user",
	"bench.ErrTxnNeedsIdempotence": "client side: braid bench flag validation",
	"bench.ErrReadShort":           "client side: braid bench kinesis found fewer records than it wrote",
	"catalog.ErrInvalidReshard":    "split, merge and scale come through the admin HTTP API, which has no Kafka code",
	"engine.ErrUnconfirmed":        "Kinesis door only: returned by engine.AppendShards, which the Kafka door never calls",
	"catalog.ErrConsumerExists":    "Kinesis stream consumers: only the Kinesis door registers them (kinesis/errmap.go)",
	"catalog.ErrUnknownConsumer":   "Kinesis stream consumers: only the Kinesis door registers them (kinesis/errmap.go)",
	"catalog.ErrTooManyConsumers":  "Kinesis stream consumers: only the Kinesis door registers them (kinesis/errmap.go)",
	"catalog.ErrInvalidConsumer":   "Kinesis stream consumers: only the Kinesis door registers them (kinesis/errmap.go)",
}

// sentinel is a package-level `var ErrX = errors.New(...)` (or
// fmt.Errorf) found in the source.
type sentinel struct {
	name string // pkg.ErrX
	msg  string // the errors.New literal, "" for fmt.Errorf or non-literals
	pos  string
}

// findSentinels parses every non-test Go file under internal/ (but
// internal/connect) and cmd/ and
// returns the exported package-level errors made by errors.New or
// fmt.Errorf.
func findSentinels(t *testing.T) map[string]sentinel {
	t.Helper()
	out := map[string]sentinel{}
	fset := token.NewFileSet()
	for _, root := range []string{"..", filepath.Join("..", "..", "cmd")} {
		err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && d.Name() == "testdata" {
				return filepath.SkipDir
			}
			// Connectors are clients of the node, not part of the
			// door: their errors show in a connector's status and in
			// the admin HTTP API, never in a Kafka response.
			if d.IsDir() && path == filepath.Join("..", "connect") {
				return filepath.SkipDir
			}
			if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
			if err != nil {
				return err
			}
			for _, decl := range f.Decls {
				gd, ok := decl.(*ast.GenDecl)
				if !ok || gd.Tok != token.VAR {
					continue
				}
				for _, spec := range gd.Specs {
					vs := spec.(*ast.ValueSpec)
					for i, id := range vs.Names {
						if !strings.HasPrefix(id.Name, "Err") || !id.IsExported() || i >= len(vs.Values) {
							continue
						}
						call, ok := vs.Values[i].(*ast.CallExpr)
						if !ok {
							continue
						}
						fn, ok := call.Fun.(*ast.SelectorExpr)
						if !ok {
							continue
						}
						pkg, ok := fn.X.(*ast.Ident)
						if !ok || !(pkg.Name == "errors" && fn.Sel.Name == "New" || pkg.Name == "fmt" && fn.Sel.Name == "Errorf") {
							continue
						}
						s := sentinel{name: f.Name.Name + "." + id.Name, pos: fset.Position(id.Pos()).String()}
						if lit, ok := call.Args[0].(*ast.BasicLit); ok && fn.Sel.Name == "New" {
							s.msg, _ = strconv.Unquote(lit.Value)
						}
						if prev, dup := out[s.name]; dup {
							t.Fatalf("sentinel %s declared twice: %s and %s", s.name, prev.pos, s.pos)
						}
						out[s.name] = s
					}
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("scan %s: %v", root, err)
		}
	}
	return out
}

// mappedNames returns, in order, the error each errorMap entry names in
// errmap.go's source (pkg.ErrX).
func mappedNames(t *testing.T) []string {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "errmap.go", nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	ast.Inspect(f, func(n ast.Node) bool {
		vs, ok := n.(*ast.ValueSpec)
		if !ok || len(vs.Names) != 1 || vs.Names[0].Name != "errorMap" {
			return true
		}
		for _, elt := range vs.Values[0].(*ast.CompositeLit).Elts {
			sel := elt.(*ast.CompositeLit).Elts[0].(*ast.SelectorExpr)
			names = append(names, sel.X.(*ast.Ident).Name+"."+sel.Sel.Name)
		}
		return false
	})
	return names
}

// TestEveryDomainErrorIsMapped fails when a package's sentinel error has no
// Kafka code, so a new error cannot silently become UNKNOWN_SERVER_ERROR.
// The sentinels are found in the source, not listed by hand.
func TestEveryDomainErrorIsMapped(t *testing.T) {
	found := findSentinels(t)
	// The scan must see the packages the door serves; a broken walk that
	// finds nothing must not pass.
	for _, pkg := range []string{"catalog", "engine", "group", "shard", "txn", "wal"} {
		n := 0
		for name := range found {
			if strings.HasPrefix(name, pkg+".") {
				n++
			}
		}
		if n == 0 {
			t.Errorf("no sentinel errors found in package %s: the source scan is broken", pkg)
		}
	}

	names := mappedNames(t)
	if len(names) != len(errorMap) {
		t.Fatalf("errmap.go's source names %d errors, errorMap holds %d", len(names), len(errorMap))
	}
	mapped := map[string]error{}
	for i, name := range names {
		// Tie the name in the source to the value: their messages agree.
		if s, ok := found[name]; ok && s.msg != "" && s.msg != errorMap[i].err.Error() {
			t.Errorf("errorMap[%d] is %s, declared %q, but its value says %q", i, name, s.msg, errorMap[i].err.Error())
		}
		mapped[name] = errorMap[i].err
	}

	var all []string
	for name := range found {
		all = append(all, name)
	}
	sort.Strings(all)
	for _, name := range all {
		err, ok := mapped[name]
		if _, allowed := unmappedSentinels[name]; allowed {
			if ok {
				t.Errorf("%s is mapped in errmap.go: take it off unmappedSentinels", name)
			}
			continue
		}
		if !ok {
			t.Errorf("%s (%s) has no Kafka error code: add it to errorMap in errmap.go, or to unmappedSentinels with the reason it never reaches a response", name, found[name].pos)
			continue
		}
		if code := errCode(fmt.Errorf("context: %w", err)); code == kerr.UnknownServerError.Code {
			t.Errorf("%s maps to UNKNOWN_SERVER_ERROR", name)
		}
	}
	for name := range unmappedSentinels {
		if _, ok := found[name]; !ok {
			t.Errorf("unmappedSentinels names %s, which no longer exists", name)
		}
	}
	t.Logf("%d sentinel errors found, %d on the unmapped list", len(found), len(unmappedSentinels))
}
