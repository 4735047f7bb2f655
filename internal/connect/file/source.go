package file

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/braidstream/braid/internal/connect"
)

// SourceType is the file-source connector type.
var SourceType = connect.Type{
	Name:        "file-source",
	ExactlyOnce: true,
	Doc:         "tails a file or a glob of files line by line into a stream (exactly-once with the runtime's transactional position)",
	NewSource:   newSource,
}

// SourceConfig is file-source's config object.
type SourceConfig struct {
	// Path is a file or a glob (filepath.Match syntax). Required.
	Path string `json:"path"`
	// MaxBatch bounds the lines of one Poll (default 1000).
	MaxBatch int `json:"max_batch"`
}

// position is file-source's position: per path, the file's inode and the
// byte offset after the last line handed over.
type position struct {
	Files map[string]filePos `json:"files"`
}

type filePos struct {
	Inode  uint64 `json:"inode"`
	Offset int64  `json:"offset"`
}

type source struct {
	cfg SourceConfig
	pos position
}

func newSource(env connect.Env, raw json.RawMessage) (connect.Source, error) {
	var cfg SourceConfig
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return nil, fmt.Errorf("file-source: %w", err)
	}
	if cfg.Path == "" {
		return nil, errors.New("file-source: path is required")
	}
	if _, err := filepath.Match(cfg.Path, ""); err != nil {
		return nil, fmt.Errorf("file-source: path %q is not a valid glob: %w", cfg.Path, err)
	}
	if cfg.MaxBatch == 0 {
		cfg.MaxBatch = 1000
	}
	if cfg.MaxBatch < 0 {
		return nil, errors.New("file-source: max_batch must be positive")
	}
	return &source{cfg: cfg}, nil
}

func (s *source) Open(ctx context.Context, pos []byte) error {
	s.pos = position{Files: map[string]filePos{}}
	if pos == nil {
		return nil
	}
	if err := json.Unmarshal(pos, &s.pos); err != nil {
		return fmt.Errorf("file-source: stored position: %w", err)
	}
	if s.pos.Files == nil {
		s.pos.Files = map[string]filePos{}
	}
	return nil
}

func (s *source) Poll(ctx context.Context) ([]connect.Record, []byte, error) {
	deadline := time.Now().Add(time.Second)
	for {
		recs, err := s.read()
		if err != nil || len(recs) > 0 {
			if err != nil {
				return nil, nil, err
			}
			b, err := json.Marshal(s.pos)
			return recs, b, err
		}
		if time.Now().After(deadline) {
			return nil, nil, nil
		}
		select {
		case <-ctx.Done():
			return nil, nil, nil
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// read takes complete lines from the files, in path order, up to MaxBatch.
func (s *source) read() ([]connect.Record, error) {
	paths, err := filepath.Glob(s.cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("file-source: %w", err)
	}
	sort.Strings(paths)
	var recs []connect.Record
	for _, p := range paths {
		if len(recs) >= s.cfg.MaxBatch {
			break
		}
		more, err := s.readFile(p, s.cfg.MaxBatch-len(recs))
		if err != nil {
			return nil, err
		}
		recs = append(recs, more...)
	}
	return recs, nil
}

func (s *source) readFile(path string, max int) ([]connect.Record, error) {
	f, err := os.Open(path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, nil // gone between the glob and the open
		}
		return nil, fmt.Errorf("file-source: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("file-source: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, nil
	}
	var inode uint64
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		inode = st.Ino
	}
	fp := s.pos.Files[path]
	if fp.Inode != inode || fp.Offset > fi.Size() {
		fp = filePos{Inode: inode} // a new file under the path, or truncated: from its start
	}
	if fp.Offset == fi.Size() {
		s.pos.Files[path] = fp
		return nil, nil
	}
	buf := make([]byte, min(fi.Size()-fp.Offset, 1<<20))
	n, err := f.ReadAt(buf, fp.Offset)
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("file-source: %w", err)
	}
	buf = buf[:n]
	var recs []connect.Record
	now := time.Now()
	for len(recs) < max {
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			break
		}
		line := bytes.TrimSuffix(buf[:i], []byte("\r"))
		recs = append(recs, connect.Record{Value: append([]byte{}, line...), Timestamp: now})
		fp.Offset += int64(i + 1)
		buf = buf[i+1:]
	}
	s.pos.Files[path] = fp
	return recs, nil
}

func (s *source) Committed(ctx context.Context, pos []byte) error { return nil }

func (s *source) Close() error { return nil }
