package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/braidstream/braid/internal/braidtest"
	"github.com/braidstream/braid/internal/engine"
)

// serveOnce runs `braid serve` on p's directory and ports expecting it to
// refuse to start; it returns what it printed.
func serveOnce(t *testing.T, p *braidtest.Proc) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, braidtest.Binary(t), append([]string{"serve", "--data-dir", filepath.Join(p.Dir, "data"),
		"--kafka-addr", p.KafkaAddr, "--http-addr", p.HTTPAddr}, p.Args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func snapshotDir(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() && info.Name() != "LOCK" {
			b, _ := os.ReadFile(path)
			files[path] = b
		}
		return nil
	})
	return files
}

// TestCorruptWALRefusesToStartAndRepairs: a flipped byte in an acknowledged
// batch that later acknowledged batches follow must stop the node from
// starting (naming the file and position, changing nothing), `braid repair`
// must report what a cut loses, and `braid repair --apply` must keep a copy
// of the damaged file, cut, and let the node start with the data before the
// damage.
func TestCorruptWALRefusesToStartAndRepairs(t *testing.T) {
	p := braidtest.Start(t)
	ctx := testCtx(t, time.Minute)
	adm := newAdmin(t, p)
	createStream(t, ctx, adm, "fragile", 1, nil)
	cl := newProducer(t, p)
	for i := range 30 { // one acknowledged batch (and so one flush) at a time
		produce(t, ctx, cl, &kgo.Record{Topic: "fragile", Value: []byte(fmt.Sprintf("record-%03d-payload", i))})
	}
	cl.Close()
	p.Kill() // no shutdown checkpoint: the batches are replayed from the WAL

	walDir := filepath.Join(p.Dir, "data", "wal")
	segs, _ := filepath.Glob(filepath.Join(walDir, "*.wal"))
	if len(segs) != 1 {
		t.Fatalf("WAL segments %v, want 1", segs)
	}
	data, err := os.ReadFile(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	at := bytes.Index(data, []byte("record-010-payload"))
	if at < 0 {
		t.Fatal("record 10 not found in the WAL")
	}
	data[at+7] ^= 0x01
	if err := os.WriteFile(segs[0], data, 0o644); err != nil {
		t.Fatal(err)
	}
	before := snapshotDir(t, filepath.Join(p.Dir, "data"))

	out, err := serveOnce(t, p)
	if err == nil {
		t.Fatalf("braid serve started on a damaged WAL:\n%s", out)
	}
	if !strings.Contains(out, filepath.Base(segs[0])) || !strings.Contains(out, "braid repair") || !strings.Contains(out, "corrupt") {
		t.Fatalf("the refusal does not name the file and the remedy:\n%s", out)
	}
	after := snapshotDir(t, filepath.Join(p.Dir, "data"))
	for path, b := range before {
		if !bytes.Equal(after[path], b) {
			t.Fatalf("a refused start changed %s", path)
		}
	}
	if len(after) != len(before) {
		t.Fatalf("a refused start added or removed files: %d before, %d after", len(before), len(after))
	}

	// The report, without changing anything.
	cmd := exec.Command(braidtest.Binary(t), "repair", "--data-dir", filepath.Join(p.Dir, "data"), "--format", "json")
	raw, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
		t.Fatalf("braid repair on damage: %v (want exit status 2)\n%s", err, raw)
	}
	var rep engine.RepairReport
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatalf("repair report: %v\n%s", err, raw)
	}
	if !rep.Damaged || rep.Applied || rep.LostBytes <= 0 || len(rep.LostShards) != 1 {
		t.Fatalf("repair report %+v", rep)
	}
	if r := rep.LostShards[0]; r.Stream != "fragile" || r.Shard != 0 || r.FromOffset != 11 || r.ToOffset != 29 {
		t.Fatalf("lost range %+v, want fragile/0 offsets 11-29 (the batches after the damaged one)", r)
	}
	for path, b := range before {
		if b2, _ := os.ReadFile(path); !bytes.Equal(b2, b) {
			t.Fatalf("repair without --apply changed %s", path)
		}
	}

	out2, err := exec.Command(braidtest.Binary(t), "repair", "--data-dir", filepath.Join(p.Dir, "data"), "--apply").CombinedOutput()
	if err != nil {
		t.Fatalf("braid repair --apply: %v\n%s", err, out2)
	}
	backups, _ := filepath.Glob(filepath.Join(p.Dir, "data", "repair-*", "wal", filepath.Base(segs[0])))
	if len(backups) != 1 {
		t.Fatalf("no backup of the damaged segment:\n%s", out2)
	}
	if b, _ := os.ReadFile(backups[0]); !bytes.Equal(b, data) {
		t.Fatal("the backup is not the damaged segment")
	}

	p.Restart()
	recs := consume(t, ctx, p, "fragile", 0, kgo.NewOffset().AtStart(), 10)
	for i, r := range recs {
		if want := fmt.Sprintf("record-%03d-payload", i); string(r.Value) != want {
			t.Fatalf("record %d = %q after repair, want %q", i, r.Value, want)
		}
	}
	_, end := startEnd(t, ctx, adm, "fragile", 0)
	if end != 10 {
		t.Fatalf("end offset after repair = %d, want 10", end)
	}
	cl = newProducer(t, p)
	produce(t, ctx, cl, &kgo.Record{Topic: "fragile", Value: []byte("after-repair")})
	if got := consume(t, ctx, p, "fragile", 0, kgo.NewOffset().At(10), 1); string(got[0].Value) != "after-repair" {
		t.Fatalf("record after repair = %q", got[0].Value)
	}
}

// TestMissingCatalogRefusesToStart: before, a data directory that lost its
// catalog.json started empty and deleted every shard's data.
func TestMissingCatalogRefusesToStart(t *testing.T) {
	p := braidtest.Start(t)
	ctx := testCtx(t, time.Minute)
	createStream(t, ctx, newAdmin(t, p), "kept", 1, nil)
	cl := newProducer(t, p)
	produce(t, ctx, cl, &kgo.Record{Topic: "kept", Value: []byte("v")})
	cl.Close()
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(p.Dir, "data")
	os.Rename(filepath.Join(data, "catalog.json"), filepath.Join(p.Dir, "catalog.json.saved"))
	before := snapshotDir(t, data)
	out, err := serveOnce(t, p)
	if err == nil || !strings.Contains(out, "no catalog.json") {
		t.Fatalf("braid serve without catalog.json: %v\n%s", err, out)
	}
	after := snapshotDir(t, data)
	if len(after) != len(before) {
		t.Fatalf("a refused start changed the data directory: %d files before, %d after", len(before), len(after))
	}
	os.Rename(filepath.Join(p.Dir, "catalog.json.saved"), filepath.Join(data, "catalog.json"))
	p.Restart()
	if got := consume(t, ctx, p, "kept", 0, kgo.NewOffset().AtStart(), 1); string(got[0].Value) != "v" {
		t.Fatalf("record after restoring the catalog = %q", got[0].Value)
	}
}
