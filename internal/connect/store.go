package connect

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/braidstream/braid/internal/vfs"
)

// Store keeps connector definitions and their paused/running intent on
// disk, one file per connector:
//
//	<data-dir>/connectors/defs/<name>.json   {"definition": {...}, "paused": bool, "caught_up": bool}
//	<data-dir>/connectors/data/<name>/       the connector's Env.DataDir
//
// A file is replaced whole (vfs.WriteFileAtomic: written to
// <name>.json.tmp, fsync'd, renamed, the directory fsync'd), so a crash
// leaves the old file or the new.
type Store struct {
	dir string
}

// storedConnector is one file of the store.
type storedConnector struct {
	Definition *Definition `json:"definition"`
	Paused     bool        `json:"paused"`
	// CaughtUp is set once a sink has read to the ends it found on its
	// first run: backfill progress is reported until then.
	CaughtUp bool `json:"caught_up,omitempty"`
}

// LoadedConnector is a file read at start-up; Err is set for one that
// could not be read (it is reported, never dropped).
type LoadedConnector struct {
	Name string
	storedConnector
	Err error
}

// OpenStore creates the store's directories under dataDir.
func OpenStore(dataDir string) (*Store, error) {
	s := &Store{dir: filepath.Join(dataDir, "connectors")}
	for _, d := range []string{s.dir, filepath.Join(s.dir, "defs"), filepath.Join(s.dir, "data")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("connect: store: %w", err)
		}
	}
	return s, nil
}

func (s *Store) file(name string) string { return filepath.Join(s.dir, "defs", name+".json") }

// DataDir is the connector's own directory (Env.DataDir).
func (s *Store) DataDir(name string) string { return filepath.Join(s.dir, "data", name) }

// Load reads every connector file.
func (s *Store) Load() ([]LoadedConnector, error) {
	ents, err := os.ReadDir(filepath.Join(s.dir, "defs"))
	if err != nil {
		return nil, fmt.Errorf("connect: store: %w", err)
	}
	var out []LoadedConnector
	for _, e := range ents {
		n := e.Name()
		if !strings.HasSuffix(n, ".json") {
			if strings.HasSuffix(n, ".tmp") { // a write a crash interrupted
				os.Remove(filepath.Join(s.dir, "defs", n))
			}
			continue
		}
		name := strings.TrimSuffix(n, ".json")
		lc := LoadedConnector{Name: name}
		b, err := os.ReadFile(filepath.Join(s.dir, "defs", n))
		if err == nil {
			err = json.Unmarshal(b, &lc.storedConnector)
		}
		if err == nil && lc.Definition == nil {
			err = errors.New("no definition in the file")
		}
		if err == nil && lc.Definition.Name != name {
			err = fmt.Errorf("the file holds connector %q", lc.Definition.Name)
		}
		if err != nil {
			lc.Err = fmt.Errorf("corrupt connector file %s: %w", filepath.Join(s.dir, "defs", n), err)
		}
		out = append(out, lc)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Save writes one connector's file durably.
func (s *Store) Save(c storedConnector) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	if err := vfs.WriteFileAtomic(vfs.Default, s.file(c.Definition.Name), b); err != nil {
		os.Remove(s.file(c.Definition.Name) + ".tmp")
		return fmt.Errorf("connect: store: save %s: %w", c.Definition.Name, err)
	}
	return nil
}

// Remove deletes a connector's file and its data directory.
func (s *Store) Remove(name string) error {
	if err := os.Remove(s.file(name)); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("connect: store: %w", err)
	}
	if err := vfs.Default.SyncDir(filepath.Join(s.dir, "defs")); err != nil {
		return fmt.Errorf("connect: store: %w", err)
	}
	return os.RemoveAll(s.DataDir(name))
}
