package catalog

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/braidstream/braid/internal/vfs"
)

// FileStore keeps the catalog as one JSON file, replaced atomically.
type FileStore struct {
	FS   vfs.FS // default vfs.Default
	Path string
}

func (f FileStore) fs() vfs.FS {
	if f.FS == nil {
		return vfs.Default
	}
	return f.FS
}

// Load reads the file; a missing file is an empty catalog.
func (f FileStore) Load() (*Snapshot, error) {
	data, err := vfs.ReadFile(f.fs(), f.Path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("catalog: read %s: %w", f.Path, err)
	}
	var s Snapshot
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("catalog: %s is corrupt: %w", f.Path, err)
	}
	return &s, nil
}

// Save writes the snapshot to a temporary file, fsyncs it, renames it over
// the old one and fsyncs the directory.
func (f FileStore) Save(s *Snapshot) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("catalog: encode: %w", err)
	}
	return vfs.WriteFileAtomic(f.fs(), f.Path, data)
}
