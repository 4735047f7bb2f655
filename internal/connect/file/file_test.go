package file

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/braidstream/braid/internal/connect"
)

func TestSinkRollsAndReportsOnlyWhatIsSynced(t *testing.T) {
	dir := t.TempDir()
	s, err := newSink(connect.Env{}, json.RawMessage(`{"dir":"`+dir+`","max_bytes":12}`))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	k := connect.ShardKey{Stream: "s.x", Shard: 3}
	if _, err := s.Open(ctx, []connect.ShardKey{k}); err != nil {
		t.Fatal(err)
	}
	rec := func(off int64, v string) connect.Record {
		return connect.Record{Stream: k.Stream, Shard: k.Shard, Offset: off, Value: []byte(v)}
	}
	// "aaaaa\n" is 6 bytes: the file rolls after the second record.
	if err := s.Put(ctx, []connect.Record{rec(7, "aaaaa"), rec(8, "bbbbb"), rec(9, "c")}); err != nil {
		t.Fatal(err)
	}
	if got := s.Durable()[k]; got != 9 {
		t.Fatalf("durable %d after a roll at offset 9, want 9", got)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := s.Durable()[k]; got != 10 {
		t.Fatalf("durable %d after Flush, want 10", got)
	}
	for name, want := range map[string]string{FileName("s.x", 3, 7): "aaaaa\nbbbbb\n", FileName("s.x", 3, 9): "c\n"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || string(b) != want {
			t.Fatalf("%s: %q %v, want %q", name, b, err, want)
		}
	}
	s.Close()
}

func TestSinkJSONRefusesNonJSONValues(t *testing.T) {
	dir := t.TempDir()
	s, err := newSink(connect.Env{}, json.RawMessage(`{"dir":"`+dir+`","format":"json"}`))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s.Open(ctx, nil)
	recs := []connect.Record{
		{Stream: "s", Offset: 0, Key: []byte("k"), Value: []byte(`{"a":1}`), Timestamp: time.Unix(0, 0).UTC()},
		{Stream: "s", Offset: 1, Value: []byte(`nope`)},
	}
	err = s.Put(ctx, recs)
	var bre *connect.BadRecordError
	if !errors.As(err, &bre) || bre.Index != 1 {
		t.Fatalf("Put: %v, want record 1 refused", err)
	}
	s.Flush(ctx)
	b, _ := os.ReadFile(filepath.Join(dir, FileName("s", 0, 0)))
	if want := `{"stream":"s","shard":0,"offset":0,"timestamp":"1970-01-01T00:00:00Z","key":"k","value":{"a":1}}` + "\n"; string(b) != want {
		t.Fatalf("wrote %q, want %q", b, want)
	}
}

func TestSinkConfigRefusals(t *testing.T) {
	for _, cfg := range []string{`{}`, `{"dir":"/x","format":"xml"}`, `{"dir":"/x","max_age":"soon"}`, `{"dir":"/x","max_bytes":-1}`, `{"dir":"/x","extra":1}`} {
		if _, err := newSink(connect.Env{}, json.RawMessage(cfg)); err == nil {
			t.Errorf("%s accepted", cfg)
		}
	}
	for _, cfg := range []string{`{}`, `{"path":"[","max_batch":1}`, `{"path":"/x","max_batch":-1}`} {
		if _, err := newSource(connect.Env{}, json.RawMessage(cfg)); err == nil {
			t.Errorf("source %s accepted", cfg)
		}
	}
}

func TestSourceLinesPositionAndReplacedFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.log")
	os.WriteFile(path, []byte("one\ntwo\npart"), 0o644)
	src, err := newSource(connect.Env{}, json.RawMessage(`{"path":"`+filepath.Join(dir, "*.log")+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	src.Open(ctx, nil)
	values := func(recs []connect.Record) string {
		var v []string
		for _, r := range recs {
			v = append(v, string(r.Value))
		}
		return strings.Join(v, ",")
	}
	recs, pos, err := src.Poll(ctx)
	if err != nil || values(recs) != "one,two" {
		t.Fatalf("poll: %q %v, want one,two (a line without its newline waits)", values(recs), err)
	}
	// A new source from the stored position goes on after it.
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("ial\nthree\n")
	f.Close()
	src2, _ := newSource(connect.Env{}, json.RawMessage(`{"path":"`+filepath.Join(dir, "*.log")+`"}`))
	if err := src2.Open(ctx, pos); err != nil {
		t.Fatal(err)
	}
	recs, _, _ = src2.Poll(ctx)
	if values(recs) != "partial,three" {
		t.Fatalf("after the position: %q, want partial,three", values(recs))
	}
	// A file replaced under the same path (a new inode: both exist when
	// the rename swaps them) is read from its start, though it is longer
	// than the old one's position.
	os.WriteFile(path+".tmp", []byte("a fresh file, longer\nsecond\n"), 0o644)
	os.Rename(path+".tmp", path)
	recs, _, _ = src2.Poll(ctx)
	if values(recs) != "a fresh file, longer,second" {
		t.Fatalf("replaced file: %q, want it from its start", values(recs))
	}
}
