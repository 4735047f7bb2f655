package file

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/braidstream/braid/internal/connect"
	"github.com/braidstream/braid/internal/vfs"
)

// SinkType is the file-sink connector type.
var SinkType = connect.Type{
	Name:    "file-sink",
	Doc:     "writes records to files in a directory, one line each, rolled by size and age (at-least-once)",
	NewSink: newSink,
}

// SinkConfig is file-sink's config object.
type SinkConfig struct {
	// Dir is where the files go (created if missing). Required.
	Dir string `json:"dir"`
	// Format is "value" (the default: the record's value) or "json".
	Format string `json:"format"`
	// MaxBytes rolls a file once it holds this many bytes (default 64 MiB).
	MaxBytes int64 `json:"max_bytes"`
	// MaxAge rolls a file this long after its first line (default 1m).
	MaxAge string `json:"max_age"`
}

type sink struct {
	cfg     SinkConfig
	maxAge  time.Duration
	files   map[connect.ShardKey]*openFile
	durable map[connect.ShardKey]int64
	synced  time.Time
}

type openFile struct {
	f       *os.File
	w       *bufio.Writer
	size    int64
	opened  time.Time
	next    int64 // offset after the last record written
	written bool  // written since the last sync
}

func newSink(env connect.Env, raw json.RawMessage) (connect.Sink, error) {
	var cfg SinkConfig
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return nil, fmt.Errorf("file-sink: %w", err)
	}
	if cfg.Dir == "" {
		return nil, errors.New("file-sink: dir is required")
	}
	switch cfg.Format {
	case "":
		cfg.Format = "value"
	case "value", "json":
	default:
		return nil, fmt.Errorf("file-sink: format %q is neither value nor json", cfg.Format)
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = 64 << 20
	}
	if cfg.MaxBytes < 0 {
		return nil, errors.New("file-sink: max_bytes must be positive")
	}
	age := time.Minute
	if cfg.MaxAge != "" {
		var err error
		if age, err = time.ParseDuration(cfg.MaxAge); err != nil || age <= 0 {
			return nil, fmt.Errorf("file-sink: max_age %q is not a positive duration", cfg.MaxAge)
		}
	}
	return &sink{cfg: cfg, maxAge: age, files: map[connect.ShardKey]*openFile{}, durable: map[connect.ShardKey]int64{}}, nil
}

// FileName is the name of the file that starts at offset first.
func FileName(stream string, shard int32, first int64) string {
	return fmt.Sprintf("%s.%d.%020d.log", stream, shard, first)
}

func (s *sink) Open(ctx context.Context, shards []connect.ShardKey) (map[connect.ShardKey]int64, error) {
	if err := os.MkdirAll(s.cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("file-sink: %w", err)
	}
	s.synced = time.Now()
	return nil, nil // at-least-once: the group's offsets say where to start
}

func (s *sink) Put(ctx context.Context, recs []connect.Record) error {
	for i, r := range recs {
		k := connect.ShardKey{Stream: r.Stream, Shard: r.Shard}
		line, err := s.line(r)
		if err != nil {
			return &connect.BadRecordError{Index: i, Err: err}
		}
		of := s.files[k]
		if of == nil {
			if of, err = s.create(k, r.Offset); err != nil {
				return err
			}
			s.files[k] = of
		}
		n, err := of.w.Write(line)
		if err != nil {
			return fmt.Errorf("file-sink: write: %w", err)
		}
		of.size += int64(n)
		of.next = r.Offset + 1
		of.written = true
		if of.size >= s.cfg.MaxBytes {
			if err := s.roll(k); err != nil {
				return err
			}
		}
	}
	now := time.Now()
	for k, of := range s.files {
		if now.Sub(of.opened) >= s.maxAge {
			if err := s.roll(k); err != nil {
				return err
			}
		}
	}
	if now.Sub(s.synced) >= time.Second {
		return s.Flush(ctx)
	}
	return nil
}

func (s *sink) line(r connect.Record) ([]byte, error) {
	if s.cfg.Format == "value" {
		return append(append([]byte{}, r.Value...), '\n'), nil
	}
	type header struct {
		Key   string `json:"key"`
		Value string `json:"value"`
	}
	obj := struct {
		Stream    string          `json:"stream"`
		Shard     int32           `json:"shard"`
		Offset    int64           `json:"offset"`
		Timestamp time.Time       `json:"timestamp"`
		Key       *string         `json:"key"`
		Value     json.RawMessage `json:"value"`
		Headers   []header        `json:"headers,omitempty"`
	}{Stream: r.Stream, Shard: r.Shard, Offset: r.Offset, Timestamp: r.Timestamp}
	if r.Key != nil {
		k := string(r.Key)
		obj.Key = &k
	}
	switch {
	case r.Value == nil:
		obj.Value = json.RawMessage("null")
	case !json.Valid(r.Value):
		return nil, errors.New("file-sink: format json: the value is not JSON")
	default:
		obj.Value = r.Value
	}
	for _, h := range r.Headers {
		obj.Headers = append(obj.Headers, header{h.Key, string(h.Value)})
	}
	b, err := json.Marshal(obj)
	return append(b, '\n'), err
}

func (s *sink) create(k connect.ShardKey, first int64) (*openFile, error) {
	f, err := os.OpenFile(filepath.Join(s.cfg.Dir, FileName(k.Stream, k.Shard, first)), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("file-sink: %w", err)
	}
	if err := vfs.Default.SyncDir(s.cfg.Dir); err != nil {
		f.Close()
		return nil, fmt.Errorf("file-sink: %w", err)
	}
	return &openFile{f: f, w: bufio.NewWriterSize(f, 64<<10), opened: time.Now(), next: first}, nil
}

// sync makes a file's lines durable and moves its shard's durable offset.
func (s *sink) sync(k connect.ShardKey, of *openFile) error {
	if !of.written {
		return nil
	}
	if err := of.w.Flush(); err != nil {
		return fmt.Errorf("file-sink: write: %w", err)
	}
	if err := of.f.Sync(); err != nil {
		return fmt.Errorf("file-sink: fsync: %w", err)
	}
	of.written = false
	s.durable[k] = of.next
	return nil
}

func (s *sink) roll(k connect.ShardKey) error {
	of := s.files[k]
	if err := s.sync(k, of); err != nil {
		return err
	}
	delete(s.files, k)
	return of.f.Close()
}

func (s *sink) Flush(ctx context.Context) error {
	for k, of := range s.files {
		if err := s.sync(k, of); err != nil {
			return err
		}
	}
	s.synced = time.Now()
	return nil
}

func (s *sink) Durable() map[connect.ShardKey]int64 {
	return maps.Clone(s.durable)
}

func (s *sink) Close() error {
	var err error
	for k, of := range s.files {
		err = errors.Join(err, of.f.Close())
		delete(s.files, k)
	}
	return err
}
