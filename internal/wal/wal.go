package wal

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/braidstream/braid/internal/vfs"
)

// Position is a byte offset in the node's whole log.
type Position int64

func (p Position) String() string { return strconv.FormatInt(int64(p), 10) }

// Kind tags what a frame's body holds; the log itself does not interpret it.
type Kind uint8

const (
	headerLen = HeaderLen

	// HeaderLen is the size of a frame header: len u32 + crc u32 + kind u8.
	HeaderLen = 9

	// slowFlush is the group-commit time past which the log warns.
	slowFlush = 50 * time.Millisecond

	// MaxFrame bounds one frame's len field, so that a corrupt length can
	// never make recovery allocate gigabytes.
	MaxFrame = 256 << 20
)

var (
	// ErrClosed is returned by calls on a closed log.
	ErrClosed = errors.New("wal: closed")
	// ErrFailed wraps the I/O error that stopped the log; once set, nothing
	// more is acknowledged, because the kernel may have dropped dirty pages.
	ErrFailed = errors.New("wal: failed")
	// ErrCorrupt marks data that does not pass its checks.
	ErrCorrupt = errors.New("wal: corrupt")
	// ErrTooLarge is returned for a frame over MaxFrame.
	ErrTooLarge = errors.New("wal: frame too large")
	// ErrNoSpace wraps the error of a write that found the filesystem out
	// of space. Nothing of that write was acknowledged, so unlike ErrFailed
	// it is not final: appends are refused and waiters answered with it
	// until a retry of the write succeeds (see docs/design/disk-full.md).
	ErrNoSpace = errors.New("wal: out of disk space")
)

// State is the log's health, as Health reports it.
type State int

const (
	// StateOK: appends are taken.
	StateOK State = iota
	// StateFull: a write ran out of space; appends are refused and the
	// write is retried every Options.RetryEvery until it succeeds.
	StateFull
	// StateFailed: an I/O error that cannot be retried (a failed fsync);
	// nothing more is taken until a restart.
	StateFailed
)

func (s State) String() string {
	switch s {
	case StateOK:
		return "ok"
	case StateFull:
		return "full"
	case StateFailed:
		return "failed"
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// kindUnit marks the first frame of every write unit (one write of the
// buffer). Its body is the log position up to which the log was durable
// when the unit was handed to the kernel (unitBodyLen bytes; logs written
// before the log's writes and fsyncs overlapped have units without a body,
// whose own position is that bound). It is never replayed. Recovery finds
// units by it: a bad frame at a position a later unit says was durable is
// damage, not a torn tail.
const kindUnit Kind = 0xFF

// unitBodyLen is the size of a unit marker's body; unitLen of the whole
// marker.
const (
	unitBodyLen = 8
	unitLen     = headerLen + unitBodyLen
)

// unitPlaceholder is the body a marker is appended with; the writer fills
// it in (sealUnit).
var unitPlaceholder = make([]byte, unitBodyLen)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// frameCRC is the CRC-32C of a frame's position (8 bytes, little-endian),
// kind and body. Seeding it with the position means a frame is only valid
// where it was written, so reused (recycled) segment files and misplaced
// data are recognised as the end of the log, never replayed.
func frameCRC(pos Position, kind byte, body []byte) uint32 {
	var p [9]byte
	return frameCRCWith(&p, pos, kind, body)
}

// frameCRCWith is frameCRC with scratch for the position and kind: the
// checksum's code takes them through a function value, so a local array
// is a heap allocation per frame.
func frameCRCWith(scratch *[9]byte, pos Position, kind byte, body []byte) uint32 {
	binary.LittleEndian.PutUint64(scratch[:8], uint64(pos))
	scratch[8] = kind
	return crc32.Update(crc32.Checksum(scratch[:], castagnoli), castagnoli, body)
}

const (
	// spareSuffix names reclaimed segment files kept for reuse;
	// trashSuffix those waiting to be unlinked.
	spareSuffix = ".spare"
	trashSuffix = ".trash"
	// maxSpares bounds the reclaimed files kept for reuse: enough that the
	// mover's reclaim of about a gigabyte at a time all becomes spares.
	maxSpares = 16
	// trashStep is how much of a trash file is freed per reclaim call.
	trashStep = 16 << 20
)

// Options configures a log. Zero fields take the defaults noted.
type Options struct {
	Dir          string
	SegmentBytes int64 // roll a segment at this size; default 128 MiB
	MaxPending   int   // bytes buffered before Append blocks; default 64 MiB
	Logger       *slog.Logger
	FS           vfs.FS // default vfs.Default
	// OnFlush, if set, is called after each fdatasync of the log with the
	// bytes it made durable and how long it took (for metrics).
	OnFlush func(bytes int, took time.Duration)
	// RetryEvery is how often a write that ran out of space is tried
	// again; default 1s.
	RetryEvery time.Duration
	// Prewrite keeps a spare segment of written, durable zeros ready, so
	// that the log overwrites written blocks (see prewrite.go).
	Prewrite bool
	// DirectIO writes the active segment (and spares being pre-written)
	// with O_DIRECT where the filesystem allows it (see blocks.go).
	DirectIO bool
	// PageCacheBytes, if positive, is how much of the most recent log is
	// left in the page cache; older durable data is dropped from it
	// (see dropbehind.go). Zero leaves the page cache to the kernel.
	PageCacheBytes int64
	// OnDrop, if set, is called with the bytes of log each drop-behind
	// asked the kernel to drop from the page cache (for metrics).
	OnDrop func(bytes int64)
}

func (o *Options) setDefaults() {
	if o.SegmentBytes <= 0 {
		o.SegmentBytes = 128 << 20
	}
	if o.MaxPending <= 0 {
		o.MaxPending = 64 << 20
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.FS == nil {
		o.FS = vfs.Default
	}
	if o.RetryEvery <= 0 {
		o.RetryEvery = time.Second
	}
}

type segment struct {
	start  Position
	f      vfs.File // every read, size change and sync
	direct vfs.File // the active segment's O_DIRECT writes; nil if none (blocks.go)
}

// WAL is an open write-ahead log.
type WAL struct {
	opts Options

	segMu  sync.RWMutex // guards segs and spares; readers hold it across a pread
	segs   []*segment   // ascending by start; the last is active
	spares []string     // paths of reclaimed segment files kept for reuse
	trash  []string     // reclaimed files beyond the spares, freed 16 MiB per RemoveBefore

	mu       sync.Mutex
	space    *sync.Cond // signalled when the writer takes the buffer
	buf      []byte     // frames appended but not yet written
	spare    []byte
	tail     Position // position just past buf
	closed   bool
	crcHead  [9]byte       // appendLocked's scratch for frameCRCWith
	notify   chan struct{} // closed and replaced whenever written/durable move
	flushReq chan struct{} // wakes the writer
	syncReq  chan struct{} // wakes the syncer
	wrote    chan struct{} // closed when the writer returns
	done     chan struct{} // closed when the writer and the syncer have returned

	written atomic.Int64
	durable atomic.Int64
	last    atomic.Pointer[writeMark] // the writer's latest write, for the syncer
	failed  atomic.Pointer[error]
	full    atomic.Pointer[error] // set while a write waits for space (StateFull)

	// Pre-writing (prewrite.go): never started when off.
	prewrite    worker
	unfinished  []string     // .prewrite files found by Open, removed by Start
	activeSince time.Time    // when the active segment was created (flusher only)
	lastFill    atomic.Int64 // how long the last segment took to fill, ns

	// Drop-behind (dropbehind.go): never started when off.
	drop worker

	// Block writes (blocks.go), flusher only.
	directOff     atomic.Bool // direct I/O unavailable or refused: page cache writes
	readDirectOff atomic.Bool // direct reads refused: ReadDirect reads through the page cache
	stage         []byte      // aligned buffer each write goes through
	head          []byte      // the last partial block written, kept for the next write
	headSeg       *segment    // where head lies: its segment and offset there
	headOff       int64
	headLen       int
}

// Replay is called by Open for every valid frame from the starting position
// on, in log order. body is only valid during the call.
type Replay func(pos Position, kind Kind, body []byte) error

// Open opens (or creates) the log in opts.Dir, replays every frame at or
// after from, cuts off a torn or corrupt tail, and starts the flusher.
func Open(opts Options, from Position, replay Replay) (*WAL, error) {
	opts.setDefaults()
	if err := vfs.MkdirAllDurable(opts.FS, opts.Dir); err != nil {
		return nil, fmt.Errorf("wal: create dir: %w", err)
	}
	w := &WAL{opts: opts, notify: make(chan struct{}), flushReq: make(chan struct{}, 1),
		syncReq: make(chan struct{}, 1), wrote: make(chan struct{}), done: make(chan struct{})}
	w.space = sync.NewCond(&w.mu)
	if err := w.loadSegments(); err != nil {
		return nil, err
	}
	end, err := w.recover(from, replay)
	if err != nil {
		w.closeFiles()
		return nil, err
	}
	w.tail = end
	w.written.Store(int64(end))
	w.durable.Store(int64(end))
	go w.writer()
	go w.syncer()
	return w, nil
}

// SegmentName is the file name of the segment starting at start.
func SegmentName(start Position) string { return fmt.Sprintf("%020d.wal", int64(start)) }

func (w *WAL) loadSegments() error {
	names, err := w.opts.FS.List(w.opts.Dir)
	if err != nil {
		return fmt.Errorf("wal: list dir: %w", err)
	}
	for _, name := range names {
		if strings.HasSuffix(name, prewriteSuffix) {
			// A spare whose writing a crash cut short: removed once
			// recovery has succeeded (a refused start changes nothing).
			w.unfinished = append(w.unfinished, filepath.Join(w.opts.Dir, name))
			continue
		}
		if strings.HasSuffix(name, spareSuffix) {
			w.spares = append(w.spares, filepath.Join(w.opts.Dir, name))
			continue
		}
		if strings.HasSuffix(name, trashSuffix) {
			w.trash = append(w.trash, filepath.Join(w.opts.Dir, name))
			continue
		}
		if !strings.HasSuffix(name, ".wal") {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSuffix(name, ".wal"), 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("wal: unexpected file %q in %s", name, w.opts.Dir)
		}
		f, err := w.opts.FS.OpenFile(filepath.Join(w.opts.Dir, name), os.O_RDWR, 0)
		if err != nil {
			return fmt.Errorf("wal: open segment: %w", err)
		}
		w.segs = append(w.segs, &segment{start: Position(n), f: f})
	}
	sort.Slice(w.segs, func(i, j int) bool { return w.segs[i].start < w.segs[j].start })
	return nil
}

func (w *WAL) createSegment(start Position) error {
	path := filepath.Join(w.opts.Dir, SegmentName(start))
	w.segMu.Lock()
	var spare string
	if n := len(w.spares); n > 0 {
		spare, w.spares = w.spares[n-1], w.spares[:n-1]
	}
	w.segMu.Unlock()
	if spare != "" {
		// Reuse a reclaimed file: its blocks stay allocated, so neither
		// freeing nor allocating them lands on the commit path. Its old
		// frames cannot pass the position-seeded CRC at their new place.
		if err := w.opts.FS.Rename(spare, path); err != nil {
			w.opts.Logger.Warn("wal: could not reuse a spare segment", "err", err)
			w.opts.FS.Remove(spare)
		}
	}
	f, err := w.opts.FS.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("wal: create segment: %w", err)
	}
	w.preallocate(f, 0)
	if err := w.syncDir(); err != nil {
		f.Close()
		return err
	}
	w.segMu.Lock()
	w.segs = append(w.segs, &segment{start: start, f: f})
	w.segMu.Unlock()
	if !w.activeSince.IsZero() {
		w.lastFill.Store(int64(time.Since(w.activeSince)))
	}
	w.activeSince = time.Now()
	w.prewrite.kick()
	return nil
}

// preallocate reserves the rest of a segment's space up front. Measured on
// this project's machines (docs/design/wal-preallocation.md): 1 MiB
// write+fdatasync reaches ~1.36 GB/s into a preallocated file against ~0.38
// GB/s into a growing one, because the fsync no longer has to allocate
// blocks and journal the growth. Where the filesystem cannot, the log just
// grows.
func (w *WAL) preallocate(f vfs.File, from int64) {
	if n := w.opts.SegmentBytes - from; n > 0 {
		if err := f.Preallocate(from, n); err != nil {
			w.opts.Logger.Debug("wal: preallocation unavailable", "err", err)
		}
	}
}

func (w *WAL) syncDir() error {
	if err := w.opts.FS.SyncDir(w.opts.Dir); err != nil {
		return fmt.Errorf("wal: sync dir: %w", err)
	}
	return nil
}

// Append adds one frame whose body is the concatenation of parts and returns
// where the frame starts and the position just past it. The frame is neither
// written nor durable yet: wait with WaitWritten or WaitDurable.
func (w *WAL) Append(kind Kind, parts ...[]byte) (start, end Position, err error) {
	return w.append(kind, parts, 0, 0)
}

// AppendSummed is Append of a frame whose body is head followed by body,
// where the caller holds sum, the CRC-32C of body[from:] (a record batch
// carries its own, verified on the way in): the frame's checksum is derived
// from it (crcJoin) instead of read from those bytes again. A wrong sum
// makes a frame recovery refuses, so only a checksum verified against the
// bytes may be passed.
func (w *WAL) AppendSummed(kind Kind, head, body []byte, from int, sum uint32) (start, end Position, err error) {
	if from < 0 || from > len(body) {
		return 0, 0, fmt.Errorf("wal: summed part starts at %d of a %d-byte body", from, len(body))
	}
	return w.append(kind, [][]byte{head, body}, len(body)-from, sum)
}

// append frames parts; the CRC-32C of their last known bytes is sum.
func (w *WAL) append(kind Kind, parts [][]byte, known int, sum uint32) (start, end Position, err error) {
	n := 1
	for _, p := range parts {
		n += len(p)
	}
	if n > MaxFrame {
		return 0, 0, fmt.Errorf("%w: %d bytes", ErrTooLarge, n)
	}
	if kind == kindUnit {
		return 0, 0, fmt.Errorf("wal: frame kind %d is reserved", kind)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for len(w.buf) >= w.opts.MaxPending && !w.closed && w.failed.Load() == nil && w.full.Load() == nil {
		w.space.Wait()
	}
	if w.closed {
		return 0, 0, ErrClosed
	}
	if e := w.failed.Load(); e != nil {
		return 0, 0, *e
	}
	// Refused before a frame or position exists: the caller (a shard,
	// under its lock) has changed nothing yet.
	if e := w.full.Load(); e != nil {
		return 0, 0, *e
	}
	if len(w.buf) == 0 {
		if cap(w.buf) == 0 {
			w.buf = make([]byte, 0, min(bufStart, w.opts.MaxPending))
		}
		// The writer writes the buffer as one unit: it starts with a
		// marker, so that recovery can tell a torn last write from
		// damage to data that was already durable (see recover).
		w.appendUnitLocked()
	}
	start = w.appendLocked(kind, parts, known, sum)
	select {
	case w.flushReq <- struct{}{}:
	default:
	}
	return start, w.tail, nil
}

// bufStart is the capacity each of the two pending buffers starts with.
// Grown by appending from nothing, a buffer went through every power of two
// up to the size a busy second needs, each step a fresh allocation the
// previous one was copied into: 130 MB allocated in the first 5 s of a
// 1,000-partition produce to end with 35 MB in use, and on a machine that
// hands freed memory back to its host, every fresh page costs a fault
// (18% of the node's CPU in that burst). Pages of the capacity are touched
// only as they are written, so a quiet log keeps its resident size small.
const bufStart = 16 << 20

// appendUnitLocked starts a write unit in the empty buffer (mu held).
func (w *WAL) appendUnitLocked() {
	w.appendLocked(kindUnit, [][]byte{unitPlaceholder}, 0, 0)
}

// sealUnit fills in the marker that starts buf, a unit to be written at
// log position at: the log is durable up to durable, and the checksum. A
// buffer led by a marker without a body (tests of the older format) is
// left as it is.
func sealUnit(buf []byte, at, durable Position) {
	if len(buf) < unitLen || Kind(buf[8]) != kindUnit || binary.LittleEndian.Uint32(buf) != 1+unitBodyLen {
		return
	}
	body := buf[headerLen:unitLen]
	binary.LittleEndian.PutUint64(body, uint64(durable))
	binary.LittleEndian.PutUint32(buf[4:8], frameCRC(at, byte(kindUnit), body))
}

// appendLocked frames kind and parts into the buffer at the tail (mu held).
// The last known bytes of the body have the CRC-32C sum.
func (w *WAL) appendLocked(kind Kind, parts [][]byte, known int, sum uint32) (start Position) {
	n := 1
	for _, p := range parts {
		n += len(p)
	}
	at := len(w.buf)
	w.buf = binary.LittleEndian.AppendUint32(w.buf, uint32(n))
	w.buf = append(w.buf, 0, 0, 0, 0, byte(kind))
	for _, p := range parts {
		w.buf = append(w.buf, p...)
	}
	start = w.tail
	body := w.buf[at+9:]
	crc := frameCRCWith(&w.crcHead, start, w.buf[at+8], body[:len(body)-known])
	if known > 0 {
		crc = crcJoin(crc, sum, known)
	}
	binary.LittleEndian.PutUint32(w.buf[at+4:], crc)
	w.tail += Position(len(w.buf) - at)
	return start
}

// Health returns the log's state and, unless it is StateOK, the error
// behind it.
func (w *WAL) Health() (State, error) {
	if e := w.failed.Load(); e != nil {
		return StateFailed, *e
	}
	if e := w.full.Load(); e != nil {
		return StateFull, *e
	}
	return StateOK, nil
}

// Durable returns the position up to which the log is fsync'd.
func (w *WAL) Durable() Position { return Position(w.durable.Load()) }

// Written returns the position up to which the log is handed to the kernel.
func (w *WAL) Written() Position { return Position(w.written.Load()) }

// Changed returns a channel closed the next time Written or Durable moves.
func (w *WAL) Changed() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.notify
}

// WaitDurable blocks until everything before end is fsync'd.
func (w *WAL) WaitDurable(ctx context.Context, end Position) error {
	return w.wait(ctx, end, &w.durable)
}

// WaitWritten blocks until everything before end is written to the kernel.
func (w *WAL) WaitWritten(ctx context.Context, end Position) error {
	return w.wait(ctx, end, &w.written)
}

func (w *WAL) wait(ctx context.Context, end Position, mark *atomic.Int64) error {
	for {
		ch := w.Changed()
		if Position(mark.Load()) >= end {
			return nil
		}
		if e := w.failed.Load(); e != nil {
			return *e
		}
		// Out of space: answer now rather than at the caller's timeout.
		// The frame stays pending and may still become durable once
		// space returns, like a produce that timed out.
		if e := w.full.Load(); e != nil {
			return *e
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-w.done:
			if Position(mark.Load()) >= end {
				return nil
			}
			if e := w.failed.Load(); e != nil {
				return *e
			}
			return ErrClosed
		}
	}
}

// The log's writes and its fsyncs overlap: the writer hands each buffer
// of appended frames to the kernel as soon as it can, while the syncer
// fdatasyncs what is written and publishes the durable position. A group
// commit waits for its fsync alone, not for its write too (the write was
// done while the previous fsync ran), and the copy into the page cache,
// which costs as much as the fsync on this project's machines, leaves
// the commit path. Recovery relies on each unit marker saying how far the
// log was durable when its unit was written (sealUnit), not on units being
// written one fsync apart.

// writeMark is one write of the writer: the log is written up to end, the
// last of it into seg.
type writeMark struct {
	seg *segment
	end Position
}

// writer writes the buffer of appended frames, one unit per write, while
// at most MaxPending bytes are written and not yet durable.
func (w *WAL) writer() {
	defer close(w.wrote)
	// A write that ran out of space, kept to be written again at the same
	// place: nothing of it was acknowledged, and shards index its frames
	// at their positions already. While it is kept the log is full.
	var stuck []byte
	var stuckEnd Position
	var retry <-chan time.Time
	for {
		select {
		case <-w.flushReq:
		case <-retry:
		}
		if w.failed.Load() != nil {
			return
		}
		if stuck != nil {
			// It goes first and alone: it is one write unit, and frames
			// appended meanwhile follow it in the log, in a unit of
			// their own.
			w.mu.Lock()
			closed := w.closed
			w.mu.Unlock()
			err := w.write(stuck, stuckEnd)
			if errors.Is(err, ErrNoSpace) && !closed {
				retry = time.After(w.opts.RetryEvery)
				continue
			}
			if err != nil {
				w.stop(err)
				return
			}
			stuck, retry = nil, nil
			w.mu.Lock()
			w.full.Store(nil)
			w.publishLocked()
			w.mu.Unlock()
			w.opts.Logger.Warn("wal: space is back; the pending write succeeded and appends are taken again", "durable", stuckEnd)
		}
		if !w.waitSyncRoom() {
			return
		}
		w.mu.Lock()
		buf, closed := w.buf, w.closed
		w.buf, w.spare = w.spare[:0], nil
		end := w.tail
		w.space.Broadcast()
		w.mu.Unlock()
		if len(buf) > 0 {
			err := w.write(buf, end)
			if errors.Is(err, ErrNoSpace) && !closed {
				stuck, stuckEnd = buf, end
				w.setFull(err, len(buf))
				retry = time.After(w.opts.RetryEvery)
				continue
			}
			if err != nil {
				w.stop(err)
				return
			}
		}
		w.mu.Lock()
		if cap(buf) <= 4*w.opts.MaxPending {
			w.spare = buf[:0]
		}
		w.mu.Unlock()
		if closed {
			return
		}
	}
}

// waitSyncRoom waits while MaxPending bytes or more are written and not
// yet durable, so that a slow disk holds appends back (Append waits for
// room in the buffer) instead of piling up dirty pages. It reports false
// if the log failed meanwhile.
func (w *WAL) waitSyncRoom() bool {
	for {
		ch := w.Changed()
		if w.failed.Load() != nil {
			return false
		}
		if w.written.Load()-w.durable.Load() < int64(w.opts.MaxPending) {
			return true
		}
		<-ch
	}
}

// syncer makes what the writer wrote durable, one fdatasync at a time, and
// publishes it. It returns once the writer has and everything written is
// durable, or the log failed.
func (w *WAL) syncer() {
	defer close(w.done)
	defer func() { <-w.wrote }()
	for {
		last := false
		select {
		case <-w.syncReq:
		case <-w.wrote:
			last = true
		}
		if w.failed.Load() != nil {
			return
		}
		if err := w.syncWritten(); err != nil {
			w.stop(err)
			return
		}
		if last {
			return
		}
	}
}

// syncWritten fdatasyncs the segment of the writer's latest write and
// publishes its end as durable. A rolled segment was synced whole before
// the next one was created, so one file's fsync covers everything written.
func (w *WAL) syncWritten() error {
	m := w.last.Load()
	if m == nil || int64(m.end) <= w.durable.Load() {
		return nil
	}
	began := time.Now()
	if err := m.seg.f.Datasync(); err != nil {
		return fmt.Errorf("fdatasync: %w", err)
	}
	took := time.Since(began)
	prev := w.durable.Swap(int64(m.end))
	w.mu.Lock()
	w.publishLocked()
	w.mu.Unlock()
	w.drop.kick()
	if took >= slowFlush {
		w.opts.Logger.Warn("wal: slow group commit", "bytes", int64(m.end)-prev, "fdatasync", took)
	}
	if w.opts.OnFlush != nil {
		w.opts.OnFlush(int(int64(m.end)-prev), took)
	}
	return nil
}

// setFull refuses appends and answers waiters with err until the write
// that ran out of space is written.
func (w *WAL) setFull(err error, pending int) {
	w.mu.Lock()
	w.full.Store(&err)
	w.space.Broadcast()
	w.publishLocked()
	w.mu.Unlock()
	w.opts.Logger.Error("wal: out of disk space; refusing appends and retrying the write",
		"err", err, "pending_bytes", pending, "retry_every", w.opts.RetryEvery)
}

// stop fails the log for good: nothing more is written or acknowledged.
func (w *WAL) stop(err error) {
	err = fmt.Errorf("%w: %w", ErrFailed, err)
	w.failed.Store(&err)
	w.opts.Logger.Error("wal: flush failed; refusing further writes", "err", err)
	w.mu.Lock()
	w.space.Broadcast()
	w.publishLocked()
	w.mu.Unlock()
	select { // wake the writer, so that it returns
	case w.flushReq <- struct{}{}:
	default:
	}
}

// write writes buf, one unit ending at end, after rolling the active
// segment if it is full, and hands it to the syncer.
func (w *WAL) write(buf []byte, end Position) error {
	began := time.Now()
	seg := w.active()
	if size := int64(end) - int64(len(buf)) - int64(seg.start); size >= w.opts.SegmentBytes {
		// A closed segment ends exactly at its last frame; only the active
		// one carries preallocated space.
		seg.closeDirect()
		if err := seg.f.Truncate(size); err != nil {
			return fmt.Errorf("truncate segment before roll: %w", err)
		}
		if err := seg.f.Sync(); err != nil {
			return fmt.Errorf("sync segment before roll: %w", err)
		}
		if err := w.createSegment(end - Position(len(buf))); err != nil {
			return err
		}
		seg = w.active()
	}
	rolled := time.Since(began)
	at := int64(end) - int64(len(buf)) - int64(seg.start)
	sealUnit(buf, end-Position(len(buf)), Position(w.durable.Load()))
	var err error
	if w.opts.DirectIO {
		err = w.writeBlocks(seg, buf, at)
	} else {
		_, err = seg.f.WriteAt(buf, at)
	}
	if err != nil {
		// Nothing of buf is acknowledged yet, so a write that ran out of
		// space (a short write reports why too) can be tried again at the
		// same place. Any other error, and any fsync error, is final.
		if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
			return fmt.Errorf("%w: %w", ErrNoSpace, err)
		}
		return fmt.Errorf("write: %w", err)
	}
	w.last.Store(&writeMark{seg: seg, end: end})
	w.written.Store(int64(end))
	w.mu.Lock()
	w.publishLocked()
	w.mu.Unlock()
	select {
	case w.syncReq <- struct{}{}:
	default:
	}
	if took := time.Since(began); took >= slowFlush {
		w.opts.Logger.Warn("wal: slow log write", "bytes", len(buf), "took", took, "roll", rolled)
	}
	return nil
}

func (w *WAL) publishLocked() {
	close(w.notify)
	w.notify = make(chan struct{})
}

func (w *WAL) active() *segment {
	w.segMu.RLock()
	defer w.segMu.RUnlock()
	return w.segs[len(w.segs)-1]
}

// RemoveBefore deletes every segment that lies wholly before pos. The active
// segment is never removed.
func (w *WAL) RemoveBefore(pos Position) (removed int, err error) {
	w.segMu.Lock()
	var gone []*segment
	for len(w.segs) > 1 && w.segs[1].start <= pos {
		gone = append(gone, w.segs[0])
		w.segs = w.segs[1:]
	}
	w.segMu.Unlock()
	// Rename outside the lock. Freeing a large file stalls the journal,
	// and so every fdatasync, for ~20 ms on this project's disks: reclaimed
	// files become spares for reuse, and the ones beyond are unlinked one
	// per call (callers call about once a second), never in a burst.
	for _, seg := range gone {
		seg.close()
		w.segMu.Lock()
		spare := len(w.spares) < maxSpares
		w.segMu.Unlock()
		suffix := trashSuffix
		if spare {
			suffix = spareSuffix
		}
		name := strings.TrimSuffix(seg.f.Name(), ".wal") + suffix
		if err := w.opts.FS.Rename(seg.f.Name(), name); err != nil {
			return removed, fmt.Errorf("wal: reclaim segment: %w", err)
		}
		w.segMu.Lock()
		if spare {
			w.spares = append(w.spares, name)
		} else {
			w.trash = append(w.trash, name)
		}
		w.segMu.Unlock()
		removed++
	}
	return removed, w.shrinkTrash()
}

// shrinkTrash frees at most trashStep bytes of the oldest trash file,
// removing it once it is small. Freeing a whole 128 MiB file at once stalled
// fdatasync for 200 ms under load on this project's disks.
func (w *WAL) shrinkTrash() error {
	w.segMu.Lock()
	defer w.segMu.Unlock()
	if len(w.trash) == 0 {
		return nil
	}
	path := w.trash[0]
	st, err := w.opts.FS.Stat(path)
	if err == nil && st.Size > trashStep {
		if err := truncateFile(w.opts.FS, path, st.Size-trashStep); err != nil {
			return fmt.Errorf("wal: shrink reclaimed segment: %w", err)
		}
		return nil
	}
	w.trash = w.trash[1:]
	if err := w.opts.FS.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("wal: remove reclaimed segment: %w", err)
	}
	return nil
}

// ActiveStart returns the start of the segment being written; everything
// before it is in closed segments.
func (w *WAL) ActiveStart() Position { return w.active().start }

// SegmentStarts lists the start of every segment, oldest first.
func (w *WAL) SegmentStarts() []Position {
	w.segMu.RLock()
	defer w.segMu.RUnlock()
	out := make([]Position, len(w.segs))
	for i, s := range w.segs {
		out[i] = s.start
	}
	return out
}

// Close flushes and fsyncs what was appended, stops the flusher and closes
// the files. Waiters on unflushed data get ErrClosed.
func (w *WAL) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	w.space.Broadcast()
	w.mu.Unlock()
	select {
	case w.flushReq <- struct{}{}:
	default:
	}
	<-w.done
	w.prewrite.stop()
	w.drop.stop()
	w.closeFiles()
	if e := w.failed.Load(); e != nil {
		return *e
	}
	return nil
}

func (w *WAL) closeFiles() {
	w.segMu.Lock()
	defer w.segMu.Unlock()
	for _, s := range w.segs {
		s.close()
	}
}

func truncateFile(fs vfs.FS, path string, size int64) error {
	f, err := fs.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Truncate(size)
}
