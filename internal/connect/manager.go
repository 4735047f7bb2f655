package connect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"
)

// Sentinel errors of the manager; the admin API maps them to HTTP codes.
var (
	ErrNotFound = errors.New("connect: no such connector")
	ErrExists   = errors.New("connect: a connector with that name exists")
	ErrState    = errors.New("connect: the connector is not in a state that allows this")
)

// Chain is a parsed transforms list (internal/connect/transform builds it).
type Chain interface {
	// Apply changes r in place; keep false drops it; an error makes r a
	// bad record (the connector's error policy applies).
	Apply(r *Record) (keep bool, err error)
}

// Options configure a Manager.
type Options struct {
	// DataDir is the node's data directory; the store is DataDir/connectors.
	DataDir string
	// KafkaAddr is the node's own Kafka listener, as a client dials it.
	KafkaAddr string
	Types     Registry
	Logger    *slog.Logger
	// ParseTransforms parses a definition's transforms. Nil: a definition
	// with transforms is refused.
	ParseTransforms func(raw []json.RawMessage) (Chain, error)
}

// Manager runs the node's connectors: one goroutine each. A failing
// connector never stops another.
//
// Locks: Manager.mu guards the map; connector.opMu serializes one
// connector's life-cycle changes (held while its worker stops);
// connector.mu guards its status and is a leaf. Order: opMu → Manager.mu →
// connector.mu; storeMu is a leaf taken only around a file write.
type Manager struct {
	opts    Options
	store   *Store
	log     *slog.Logger
	ctx     context.Context
	cancel  context.CancelFunc
	mu      sync.Mutex
	conns   map[string]*connector
	storeMu sync.Mutex
	closed  bool
}

// NewManager opens the store and starts every connector not paused. A
// corrupt connector file is logged and shown as a failed connector.
func NewManager(opts Options) (*Manager, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	st, err := OpenStore(opts.DataDir)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &Manager{opts: opts, store: st, log: opts.Logger.With("component", "connect"), ctx: ctx, cancel: cancel, conns: map[string]*connector{}}
	loaded, err := st.Load()
	if err != nil {
		cancel()
		return nil, err
	}
	for _, lc := range loaded {
		c := m.newConnector(lc.Name, lc.Definition)
		c.paused, c.caughtUp = lc.Paused, lc.CaughtUp
		m.conns[lc.Name] = c
		if lc.Err != nil {
			m.log.Error("connector file is corrupt; the connector is shown as failed", "connector", lc.Name, "err", lc.Err)
			c.def = nil
			c.setFailed(lc.Err)
			continue
		}
		if err := m.check(c.def); err != nil {
			m.log.Error("connector cannot start", "connector", lc.Name, "err", err)
			c.setFailed(err)
			continue
		}
		if c.paused {
			c.setState(StatePaused)
			continue
		}
		c.start()
	}
	return m, nil
}

// Close stops every connector: each flushes and commits what is durable.
func (m *Manager) Close() {
	m.mu.Lock()
	m.closed = true
	conns := make([]*connector, 0, len(m.conns))
	for _, c := range m.conns {
		conns = append(conns, c)
	}
	m.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.opMu.Lock()
			defer c.opMu.Unlock()
			c.stopWorker()
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	// A connector stuck in its target (a call that ignores its context)
	// must not hold the node's shutdown: what it had not committed is
	// read again after the restart.
	select {
	case <-done:
	case <-time.After(CloseTimeout):
		m.log.Warn("connectors did not stop in time; shutting down without them", "after", CloseTimeout)
	}
	m.cancel()
}

// CloseTimeout bounds how long Close waits for the connectors to stop.
const CloseTimeout = 20 * time.Second

func (m *Manager) newConnector(name string, def *Definition) *connector {
	return &connector{m: m, name: name, def: def, state: StateStarting, shards: map[ShardKey]*shardStatus{}, errs: map[string]int64{}}
}

// check builds the connector once and closes it: the type refuses a bad
// config here, and transforms are parsed.
func (m *Manager) check(d *Definition) error {
	// The definition's own parts first, then the type's config.
	if _, err := m.chain(d); err != nil {
		return err
	}
	sink, src, err := d.Build(m.opts.Types, Env{Name: d.Name, Delivery: d.Delivery, DataDir: m.store.DataDir(d.Name), Logger: m.log})
	if err != nil {
		return err
	}
	if sink != nil {
		sink.Close()
	}
	if src != nil {
		src.Close()
	}
	return nil
}

func (m *Manager) chain(d *Definition) (Chain, error) {
	if len(d.Transforms) == 0 {
		return nil, nil
	}
	if m.opts.ParseTransforms == nil {
		return nil, defErr("transforms", "transforms are not available on this node")
	}
	ch, err := m.opts.ParseTransforms(d.Transforms)
	if err != nil {
		return nil, &DefinitionError{Field: "transforms", Err: err}
	}
	return ch, nil
}

// Types lists the connector types the node knows.
func (m *Manager) Types() []Type {
	var out []Type
	for _, n := range m.opts.Types.Names() {
		out = append(out, m.opts.Types[n])
	}
	return out
}

// Create checks a definition document, saves it and starts the connector.
func (m *Manager) Create(doc []byte) (Describe, error) {
	d, err := ParseDefinition(doc, m.opts.Types)
	if err != nil {
		return Describe{}, err
	}
	if err := m.check(d); err != nil {
		return Describe{}, err
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return Describe{}, fmt.Errorf("%w: the node is stopping", ErrState)
	}
	if _, ok := m.conns[d.Name]; ok {
		m.mu.Unlock()
		return Describe{}, fmt.Errorf("%w: %s", ErrExists, d.Name)
	}
	c := m.newConnector(d.Name, d)
	// opMu under Manager.mu breaks the lock order only in appearance: c
	// is not in the map yet, so nobody else can hold or wait for it.
	c.opMu.Lock()
	m.conns[d.Name] = c
	m.mu.Unlock()
	defer c.opMu.Unlock()
	if err := m.save(c); err != nil {
		m.mu.Lock()
		delete(m.conns, d.Name)
		m.mu.Unlock()
		return Describe{}, err
	}
	m.log.Info("connector created", "connector", d.Name, "type", d.Type)
	c.start()
	return c.describe(), nil
}

func (m *Manager) save(c *connector) error {
	c.mu.Lock()
	sc := storedConnector{Definition: c.def, Paused: c.paused, CaughtUp: c.caughtUp}
	c.mu.Unlock()
	if sc.Definition == nil {
		return fmt.Errorf("%w: its file is corrupt; delete it and create it again", ErrState)
	}
	m.storeMu.Lock()
	defer m.storeMu.Unlock()
	return m.store.Save(sc)
}

func (m *Manager) get(name string) (*connector, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.conns[name]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	return c, nil
}

// List describes every connector, by name.
func (m *Manager) List() []Describe {
	m.mu.Lock()
	conns := make([]*connector, 0, len(m.conns))
	for _, c := range m.conns {
		conns = append(conns, c)
	}
	m.mu.Unlock()
	sort.Slice(conns, func(i, j int) bool { return conns[i].name < conns[j].name })
	out := make([]Describe, 0, len(conns))
	for _, c := range conns {
		out = append(out, c.describe())
	}
	return out
}

// Get describes one connector.
func (m *Manager) Get(name string) (Describe, error) {
	c, err := m.get(name)
	if err != nil {
		return Describe{}, err
	}
	return c.describe(), nil
}

// Pause stops the connector (flush, commit) and keeps it stopped across
// restarts.
func (m *Manager) Pause(name string) (Describe, error) {
	return m.change(name, func(c *connector) error {
		c.stopWorker()
		c.mu.Lock()
		c.paused = true
		c.mu.Unlock()
		if err := m.save(c); err != nil {
			return err
		}
		c.setState(StatePaused)
		return nil
	})
}

// Resume starts a paused connector.
func (m *Manager) Resume(name string) (Describe, error) {
	return m.change(name, func(c *connector) error {
		c.mu.Lock()
		paused := c.paused
		c.paused = false
		c.mu.Unlock()
		if !paused {
			return nil
		}
		if err := m.save(c); err != nil {
			c.mu.Lock()
			c.paused = true
			c.mu.Unlock()
			return err
		}
		c.start()
		return nil
	})
}

// Restart stops and starts the connector (a failed one too); the retry
// backoff starts again at one second. A paused connector stays paused.
func (m *Manager) Restart(name string) (Describe, error) {
	return m.change(name, func(c *connector) error {
		c.mu.Lock()
		paused := c.paused
		c.mu.Unlock()
		if paused {
			return fmt.Errorf("%w: %s is paused; resume it", ErrState, name)
		}
		c.stopWorker()
		if err := m.check(c.def); err != nil {
			c.setFailed(err)
			return nil
		}
		c.mu.Lock()
		c.restarts++
		c.mu.Unlock()
		c.start()
		return nil
	})
}

func (m *Manager) change(name string, f func(c *connector) error) (Describe, error) {
	c, err := m.get(name)
	if err != nil {
		return Describe{}, err
	}
	c.opMu.Lock()
	defer c.opMu.Unlock()
	if c.deleted {
		return Describe{}, fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	if c.def == nil {
		return Describe{}, fmt.Errorf("%w: %s: its file is corrupt; delete it and create it again", ErrState, name)
	}
	if err := f(c); err != nil {
		return Describe{}, err
	}
	return c.describe(), nil
}

// Delete stops the connector and removes its definition, its data
// directory and its progress (a sink's group offsets, a source's
// position), so a connector created again under the name starts afresh.
func (m *Manager) Delete(ctx context.Context, name string) error {
	c, err := m.get(name)
	if err != nil {
		return err
	}
	c.opMu.Lock()
	defer c.opMu.Unlock()
	if c.deleted {
		return fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	c.stopWorker()
	if c.def != nil {
		if err := m.forgetProgress(ctx, c.def); err != nil {
			m.log.Warn("connector progress not removed", "connector", name, "err", err)
		}
	}
	m.storeMu.Lock()
	err = m.store.Remove(name)
	m.storeMu.Unlock()
	if err != nil {
		return err
	}
	c.deleted = true
	m.mu.Lock()
	delete(m.conns, name)
	m.mu.Unlock()
	m.log.Info("connector deleted", "connector", name)
	return nil
}

// markCaughtUp saves that a sink's first run read to the ends it found.
func (m *Manager) markCaughtUp(c *connector) {
	c.opMu.Lock()
	defer c.opMu.Unlock()
	if c.deleted {
		return
	}
	if err := m.save(c); err != nil {
		m.log.Warn("connector: saving backfill state", "connector", c.name, "err", err)
	}
}

// backoff is the wait before retry n (0-based): 1s doubling, at most max.
func backoff(n int, max time.Duration) time.Duration {
	d := time.Second
	for i := 0; i < n && d < max; i++ {
		d *= 2
	}
	return min(d, max)
}
