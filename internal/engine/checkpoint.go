package engine

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/braidstream/braid/internal/shard"
	"github.com/braidstream/braid/internal/vfs"
	"github.com/braidstream/braid/internal/wal"
)

// A checkpoint is a chain: a base file, "checkpoint", holding every
// shard's whole index, followed by deltas, "checkpoint.<chain>.<seq>",
// each holding what changed since the one before (for most shards, the
// batches appended and how many left the front). A checkpoint's cost so
// follows what was written since the last one, not everything retained;
// the base is written again once its deltas add up to its size or number
// maxCheckpointDeltas (docs/design/storage.md).
//
// checkpointMagic starts a base and deltaMagic a delta, whose shard
// snapshots store entries packed (shard.SnapshotPacked). Still read:
// "BRDCKPT3" and its deltas "BRDCKDL1" (entries plain), "BRDCKPT2" (also
// no chain: no deltas follow) and "BRDCKPT1" (also before transactions:
// no transaction state per shard, no coordinator section).
const (
	checkpointMagic     = "BRDCKPT4"
	checkpointMagicV3   = "BRDCKPT3"
	checkpointMagicV2   = "BRDCKPT2"
	checkpointMagicV1   = "BRDCKPT1"
	deltaMagic          = "BRDCKDL2"
	deltaMagicV1        = "BRDCKDL1"
	checkpointName      = "checkpoint"
	maxCheckpointDeltas = 64
)

// A delta holds each shard either whole or as a change to the one before.
const (
	deltaShardWhole  = 0
	deltaShardChange = 1
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrCorruptCheckpoint marks a checkpoint file that fails its checks.
var ErrCorruptCheckpoint = errors.New("engine: corrupt checkpoint")

type checkpointData struct {
	replayFrom wal.Position
	chain      uint64 // the base's chain; 0 for a base written before chains
	deltas     int    // deltas applied by loadCheckpoint
	shards     []shard.Snapshot
	offsets    []byte // group.Offsets snapshot
	txns       []byte // txn.Coordinator snapshot
}

// checkpointChain is what the engine knows of the chain it writes.
type checkpointChain struct {
	id         uint64
	deltas     int   // written since the base
	baseBytes  int64 // the base's size
	deltaBytes int64 // the deltas' sizes, summed
	// marks is what the last checkpoint holds of each shard; nil until
	// this engine has written a base.
	marks map[shard.Key]shard.CheckpointMark
}

func deltaName(chain uint64, seq int) string {
	return fmt.Sprintf("%s.%d.%d", checkpointName, chain, seq)
}

// parseDeltaName returns the chain and sequence number of a delta's file
// name; ok is false for any other name.
func parseDeltaName(name string) (chain uint64, seq int, ok bool) {
	rest, found := strings.CutPrefix(name, checkpointName+".")
	if !found {
		return 0, 0, false
	}
	c, q, found := strings.Cut(rest, ".")
	if !found {
		return 0, 0, false
	}
	chain, err := strconv.ParseUint(c, 10, 64)
	if err != nil {
		return 0, 0, false
	}
	seq, err = strconv.Atoi(q)
	if err != nil || seq < 1 {
		return 0, 0, false
	}
	return chain, seq, true
}

// loadCheckpoint reads the checkpoint chain in dir: the base and, in
// order, every delta of its chain. A missing delta before one that is
// there, or a delta that fails its checks, is corruption: deltas are
// written one at a time, each durable before the next, so neither comes
// from a crash.
func loadCheckpoint(fs vfs.FS, dir string) (checkpointData, error) {
	data, err := vfs.ReadFile(fs, filepath.Join(dir, checkpointName))
	if errors.Is(err, os.ErrNotExist) {
		return checkpointData{}, nil
	}
	if err != nil {
		return checkpointData{}, fmt.Errorf("engine: read checkpoint: %w", err)
	}
	ck, err := decodeCheckpoint(data)
	if err != nil || ck.chain == 0 {
		return ck, err
	}
	names, err := fs.List(dir)
	if err != nil {
		return ck, fmt.Errorf("engine: list checkpoint deltas: %w", err)
	}
	var seqs []int
	for _, name := range names {
		if chain, seq, ok := parseDeltaName(name); ok && chain == ck.chain {
			seqs = append(seqs, seq)
		}
	}
	slices.Sort(seqs)
	for i, seq := range seqs {
		if seq != i+1 {
			return ck, fmt.Errorf("%w: delta %s is missing, %s is there", ErrCorruptCheckpoint, deltaName(ck.chain, i+1), deltaName(ck.chain, seq))
		}
		name := deltaName(ck.chain, seq)
		data, err := vfs.ReadFile(fs, filepath.Join(dir, name))
		if err != nil {
			return ck, fmt.Errorf("engine: read checkpoint delta: %w", err)
		}
		if err := ck.applyDelta(data, seq); err != nil {
			return ck, fmt.Errorf("%w: %s: %v", ErrCorruptCheckpoint, name, err)
		}
	}
	return ck, nil
}

// checkedBody returns data without its trailing checksum, which it checks.
func checkedBody(data []byte) ([]byte, error) {
	body, sum := data[:len(data)-4], binary.LittleEndian.Uint32(data[len(data)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, errors.New("checksum mismatch")
	}
	return body, nil
}

func decodeCheckpoint(data []byte) (checkpointData, error) {
	var ck checkpointData
	if len(data) < len(checkpointMagic)+16 {
		return ck, fmt.Errorf("%w: bad header", ErrCorruptCheckpoint)
	}
	format, chained := shard.SnapshotPacked, true
	switch string(data[:8]) {
	case checkpointMagic:
	case checkpointMagicV3:
		format = shard.SnapshotPlain
	case checkpointMagicV2:
		format, chained = shard.SnapshotPlain, false
	case checkpointMagicV1:
		format, chained = shard.SnapshotPlainNoTxns, false
	default:
		if strings.HasPrefix(string(data[:8]), checkpointMagic[:7]) {
			return ck, fmt.Errorf("%w: format %q, newer than this version of Braid reads (up to %s): written by a later version",
				ErrCorruptCheckpoint, data[:8], checkpointMagic)
		}
		return ck, fmt.Errorf("%w: bad header", ErrCorruptCheckpoint)
	}
	body, err := checkedBody(data)
	if err != nil {
		return ck, fmt.Errorf("%w: %v", ErrCorruptCheckpoint, err)
	}
	ck.replayFrom = wal.Position(binary.LittleEndian.Uint64(body[8:]))
	rest := body[16:]
	if chained {
		if len(rest) < 12 {
			return ck, fmt.Errorf("%w: bad header", ErrCorruptCheckpoint)
		}
		ck.chain = binary.LittleEndian.Uint64(rest)
		if ck.chain == 0 {
			return ck, fmt.Errorf("%w: chain 0", ErrCorruptCheckpoint)
		}
		rest = rest[8:]
	}
	n := int(binary.LittleEndian.Uint32(rest))
	rest = rest[4:]
	for range n {
		snap, r, err := shard.ReadSnapshot(rest, format)
		if err != nil {
			return ck, fmt.Errorf("%w: %v", ErrCorruptCheckpoint, err)
		}
		ck.shards = append(ck.shards, snap)
		rest = r
	}
	if err := ck.decodeSections(rest, format != shard.SnapshotPlainNoTxns); err != nil {
		return ck, fmt.Errorf("%w: %v", ErrCorruptCheckpoint, err)
	}
	return ck, nil
}

// decodeSections reads the committed offsets and transactions sections
// that end a base and a delta.
func (ck *checkpointData) decodeSections(rest []byte, withTxns bool) error {
	if len(rest) < 4 {
		return errors.New("no offsets section")
	}
	n := int(binary.LittleEndian.Uint32(rest))
	if !withTxns {
		if n != len(rest)-4 {
			return fmt.Errorf("offsets section of %d bytes in %d", n, len(rest)-4)
		}
		ck.offsets, ck.txns = rest[4:], nil
		return nil
	}
	if n > len(rest)-8 {
		return fmt.Errorf("offsets section of %d bytes in %d", n, len(rest)-4)
	}
	ck.offsets, rest = rest[4:4+n], rest[4+n:]
	n = int(binary.LittleEndian.Uint32(rest))
	if n != len(rest)-4 {
		return fmt.Errorf("transactions section of %d bytes in %d", n, len(rest)-4)
	}
	ck.txns = rest[4:]
	return nil
}

// applyDelta applies delta number seq of ck's chain to ck.
func (ck *checkpointData) applyDelta(data []byte, seq int) error {
	if len(data) < len(deltaMagic)+32 {
		return errors.New("bad header")
	}
	format := shard.SnapshotPacked
	switch string(data[:8]) {
	case deltaMagic:
	case deltaMagicV1:
		format = shard.SnapshotPlain
	default:
		return errors.New("bad header")
	}
	body, err := checkedBody(data)
	if err != nil {
		return err
	}
	le := binary.LittleEndian
	chain, gotSeq := le.Uint64(body[8:]), int(le.Uint32(body[16:]))
	replayFrom := wal.Position(le.Uint64(body[20:]))
	if chain != ck.chain || gotSeq != seq {
		return fmt.Errorf("holds delta %d of chain %d", gotSeq, chain)
	}
	if replayFrom < ck.replayFrom {
		return fmt.Errorf("replays from %d, before %d", replayFrom, ck.replayFrom)
	}
	n := int(le.Uint32(body[28:]))
	rest := body[32:]
	// Maps and slices are sized by n: each shard takes a kind byte and a
	// snapshot header at least.
	if n > len(rest)/(1+32) {
		return fmt.Errorf("%d shards do not fit in %d bytes", n, len(rest))
	}
	byKey := make(map[shard.Key]int, len(ck.shards))
	for i, snap := range ck.shards {
		byKey[snap.Key] = i
	}
	seen := make(map[shard.Key]bool, n)
	shards := make([]shard.Snapshot, 0, n)
	for range n {
		if len(rest) < 1 {
			return errors.New("truncated shard")
		}
		kind, drop := rest[0], 0
		rest = rest[1:]
		switch kind {
		case deltaShardWhole:
		case deltaShardChange:
			if len(rest) < 4 {
				return errors.New("truncated shard")
			}
			drop, rest = int(le.Uint32(rest)), rest[4:]
		default:
			return fmt.Errorf("shard of kind %d", kind)
		}
		snap, r, err := shard.ReadSnapshot(rest, format)
		if err != nil {
			return err
		}
		rest = r
		if seen[snap.Key] {
			return fmt.Errorf("shard %s twice", snap.Key)
		}
		seen[snap.Key] = true
		if kind == deltaShardChange {
			i, ok := byKey[snap.Key]
			if !ok {
				return fmt.Errorf("a change to shard %s, which the checkpoint before does not hold", snap.Key)
			}
			prev := ck.shards[i]
			if err := prev.ApplyChange(snap, drop); err != nil {
				return err
			}
			snap = prev
		}
		shards = append(shards, snap)
	}
	next := checkpointData{replayFrom: replayFrom, chain: ck.chain, deltas: seq, shards: shards}
	if err := next.decodeSections(rest, true); err != nil {
		return err
	}
	*ck = next
	return nil
}

// checkpoint snapshots every shard's index up to the durable log position
// and writes it atomically, as a base or as a delta of the chain this
// engine writes (the first checkpoint of an engine is a base); afterwards
// recovery replays only what follows. The file is written as it is
// encoded, one shard at a time, through a 1 MiB buffer: a base holds every shard's whole index,
// which grows with retention, and encoding it whole first held a second
// copy of it in memory (and copied it each time the buffer grew).
func (e *Engine) checkpoint() error {
	e.ckptMu.Lock()
	defer e.ckptMu.Unlock()
	began := time.Now()
	le := binary.LittleEndian
	c := &e.ckChain
	base := c.marks == nil || c.deltas >= maxCheckpointDeltas || c.deltaBytes >= c.baseBytes
	upTo := e.wal.Durable()
	chain, seq := c.id, c.deltas+1
	var shards []*shard.Shard
	for _, st := range e.Streams() {
		shards = append(shards, st.Shards...)
	}
	marks := make(map[shard.Key]shard.CheckpointMark, len(shards))
	whole := 0
	need := upTo
	name := checkpointName
	if base {
		chain, seq = c.id+1, 0
	} else {
		name = deltaName(chain, seq)
	}
	var size int64
	err := vfs.WriteFileAtomicFunc(e.opts.FS, filepath.Join(e.opts.Dir, name), func(w io.Writer) error {
		bw := bufio.NewWriterSize(w, 1<<20)
		cw := &crcWriter{w: bw}
		var buf []byte // the piece being encoded, reused
		if base {
			buf = append(buf, checkpointMagic...)
			buf = le.AppendUint64(buf, uint64(upTo))
			buf = le.AppendUint64(buf, chain)
		} else {
			buf = append(buf, deltaMagic...)
			buf = le.AppendUint64(buf, chain)
			buf = le.AppendUint32(buf, uint32(seq))
			buf = le.AppendUint64(buf, uint64(upTo))
		}
		buf = le.AppendUint32(buf, uint32(len(shards)))
		cw.write(buf)
		for _, sh := range shards {
			var prev shard.CheckpointMark
			if !base {
				prev = c.marks[sh.Key()]
			}
			snap, drop, full, oldest, mark := sh.SnapshotSince(upTo, prev)
			if oldest >= 0 {
				need = min(need, oldest)
			}
			buf = buf[:0]
			if !base {
				if full {
					buf = append(buf, deltaShardWhole)
					whole++
				} else {
					buf = append(buf, deltaShardChange)
					buf = le.AppendUint32(buf, uint32(drop))
				}
			}
			buf = shard.EncodeSnapshot(buf, &snap, cw.write)
			cw.write(buf)
			marks[snap.Key] = mark
		}
		offsets := e.offsets.Snapshot()
		cw.write(le.AppendUint32(buf[:0], uint32(len(offsets))))
		cw.write(offsets)
		txns := e.txns.Snapshot()
		cw.write(le.AppendUint32(buf[:0], uint32(len(txns))))
		cw.write(txns)
		crc := cw.crc
		cw.write(le.AppendUint32(buf[:0], crc))
		size = cw.n
		if cw.err != nil {
			return cw.err
		}
		return bw.Flush()
	})
	if err != nil {
		return fmt.Errorf("engine: write checkpoint: %w", err)
	}
	if base {
		*c = checkpointChain{id: chain, baseBytes: size, marks: marks}
		e.removeStaleDeltas(chain)
	} else {
		c.deltas, c.deltaBytes, c.marks = seq, c.deltaBytes+size, marks
	}
	e.ckptNeed.Store(int64(need))
	e.lastCkptPos.Store(int64(upTo))
	if e.opts.OnCheckpoint != nil {
		e.opts.OnCheckpoint(size)
	}
	e.opts.Logger.Debug("engine: checkpoint written", "file", name, "replay_from", upTo, "shards", len(shards),
		"shards_whole", whole, "bytes", size, "took", time.Since(began))
	return nil
}

// crcWriter writes a checkpoint file, counting its bytes and their CRC;
// the first error stops it and is kept.
type crcWriter struct {
	w   io.Writer
	crc uint32
	n   int64
	err error
}

func (c *crcWriter) write(p []byte) {
	if c.err != nil {
		return
	}
	c.crc = crc32.Update(c.crc, castagnoli, p)
	c.n += int64(len(p))
	_, c.err = c.w.Write(p)
}

// removeStaleDeltas removes the deltas of chains before chain: the base
// of chain, durable now, holds everything they did. One left behind by a
// crash is never read (its chain is not the base's) and goes at the next
// base.
func (e *Engine) removeStaleDeltas(chain uint64) {
	names, err := e.opts.FS.List(e.opts.Dir)
	if err != nil {
		e.opts.Logger.Warn("engine: list old checkpoint deltas", "err", err)
		return
	}
	for _, name := range names {
		if c, _, ok := parseDeltaName(name); ok && c != chain {
			if err := e.opts.FS.Remove(filepath.Join(e.opts.Dir, name)); err != nil {
				e.opts.Logger.Warn("engine: remove old checkpoint delta", "file", name, "err", err)
			}
		}
	}
}

func (ck checkpointData) oldestWAL() wal.Position {
	need := ck.replayFrom
	for i := range ck.shards {
		if pos, ok := ck.shards[i].OldestInLog(); ok {
			need = min(need, pos)
		}
	}
	return need
}

func frameKey(body []byte) shard.Key {
	return shard.Key{
		Stream: binary.LittleEndian.Uint64(body),
		Shard:  int32(binary.LittleEndian.Uint32(body[8:])),
	}
}

// applyFrame replays one log frame into its shard.
func applyFrame(sh *shard.Shard, pos wal.Position, kind wal.Kind, body []byte) error {
	payload := body[shard.FramePrefixLen:]
	switch kind {
	case shard.KindBatch:
		return sh.Replay(payload, pos+wal.HeaderLen+shard.FramePrefixLen)
	case shard.KindCompact:
		return sh.ReplayCompact(payload)
	case shard.KindLogStart:
		if len(payload) != 8 {
			return fmt.Errorf("log-start frame of %d bytes", len(payload))
		}
		sh.ReplayLogStart(shard.Offset(binary.LittleEndian.Uint64(payload)))
		return nil
	default:
		return fmt.Errorf("unknown frame kind %d", kind)
	}
}
