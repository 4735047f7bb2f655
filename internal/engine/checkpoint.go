package engine

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"time"

	"github.com/braidstream/braid/internal/shard"
	"github.com/braidstream/braid/internal/vfs"
	"github.com/braidstream/braid/internal/wal"
)

// checkpointMagic starts every checkpoint; "BRDCKPT1" (before
// transactions: no transaction state per shard, no coordinator section) is
// still read.
const (
	checkpointMagic   = "BRDCKPT2"
	checkpointMagicV1 = "BRDCKPT1"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrCorruptCheckpoint marks a checkpoint file that fails its checks.
var ErrCorruptCheckpoint = errors.New("engine: corrupt checkpoint")

type checkpointData struct {
	replayFrom wal.Position
	shards     []shard.Snapshot
	offsets    []byte // group.Offsets snapshot
	txns       []byte // txn.Coordinator snapshot
}

func loadCheckpoint(fs vfs.FS, path string) (checkpointData, error) {
	data, err := vfs.ReadFile(fs, path)
	if errors.Is(err, os.ErrNotExist) {
		return checkpointData{}, nil
	}
	if err != nil {
		return checkpointData{}, fmt.Errorf("engine: read checkpoint: %w", err)
	}
	return decodeCheckpoint(data)
}

func decodeCheckpoint(data []byte) (checkpointData, error) {
	var ck checkpointData
	if len(data) < len(checkpointMagic)+16 || string(data[:8]) != checkpointMagic && string(data[:8]) != checkpointMagicV1 {
		return ck, fmt.Errorf("%w: bad header", ErrCorruptCheckpoint)
	}
	v2 := string(data[:8]) == checkpointMagic
	body, sum := data[:len(data)-4], binary.LittleEndian.Uint32(data[len(data)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return ck, fmt.Errorf("%w: checksum mismatch", ErrCorruptCheckpoint)
	}
	ck.replayFrom = wal.Position(binary.LittleEndian.Uint64(body[8:]))
	n := int(binary.LittleEndian.Uint32(body[16:]))
	rest := body[20:]
	for range n {
		snap, r, err := shard.ReadSnapshot(rest, v2)
		if err != nil {
			return ck, fmt.Errorf("%w: %v", ErrCorruptCheckpoint, err)
		}
		ck.shards = append(ck.shards, snap)
		rest = r
	}
	if len(rest) < 4 {
		return ck, fmt.Errorf("%w: no offsets section", ErrCorruptCheckpoint)
	}
	n = int(binary.LittleEndian.Uint32(rest))
	if !v2 {
		if n != len(rest)-4 {
			return ck, fmt.Errorf("%w: offsets section of %d bytes in %d", ErrCorruptCheckpoint, n, len(rest)-4)
		}
		ck.offsets = rest[4:]
		return ck, nil
	}
	if n > len(rest)-8 {
		return ck, fmt.Errorf("%w: offsets section of %d bytes in %d", ErrCorruptCheckpoint, n, len(rest)-4)
	}
	ck.offsets, rest = rest[4:4+n], rest[4+n:]
	n = int(binary.LittleEndian.Uint32(rest))
	if n != len(rest)-4 {
		return ck, fmt.Errorf("%w: transactions section of %d bytes in %d", ErrCorruptCheckpoint, n, len(rest)-4)
	}
	ck.txns = rest[4:]
	return ck, nil
}

// checkpoint snapshots every shard's index up to the durable log position
// and writes it atomically; afterwards recovery replays only what follows.
func (e *Engine) checkpoint() error {
	e.ckptMu.Lock()
	defer e.ckptMu.Unlock()
	began := time.Now()
	upTo := e.wal.Durable()
	buf := []byte(checkpointMagic)
	buf = binary.LittleEndian.AppendUint64(buf, uint64(upTo))
	countAt := len(buf)
	buf = append(buf, 0, 0, 0, 0)
	n := 0
	need := upTo
	for _, st := range e.Streams() {
		for _, sh := range st.Shards {
			snap := sh.Snapshot(upTo)
			need = min(need, snapshotOldestWAL(snap, upTo))
			buf = shard.AppendSnapshot(buf, snap)
			n++
		}
	}
	binary.LittleEndian.PutUint32(buf[countAt:], uint32(n))
	offsets := e.offsets.Snapshot()
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(offsets)))
	buf = append(buf, offsets...)
	txns := e.txns.Snapshot()
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(txns)))
	buf = append(buf, txns...)
	buf = binary.LittleEndian.AppendUint32(buf, crc32.Checksum(buf, castagnoli))
	if err := vfs.WriteFileAtomic(e.opts.FS, filepath.Join(e.opts.Dir, "checkpoint"), buf); err != nil {
		return fmt.Errorf("engine: write checkpoint: %w", err)
	}
	e.ckptNeed.Store(int64(need))
	e.lastCkptPos.Store(int64(upTo))
	if e.opts.OnCheckpoint != nil {
		e.opts.OnCheckpoint()
	}
	e.opts.Logger.Debug("engine: checkpoint written", "replay_from", upTo, "shards", n, "bytes", len(buf), "took", time.Since(began))
	return nil
}

// snapshotOldestWAL returns the oldest WAL position snap's entries point
// at, or def if none is in the WAL.
func snapshotOldestWAL(snap shard.Snapshot, def wal.Position) wal.Position {
	for _, en := range snap.Entries {
		if en.Loc.Seg == shard.InWAL {
			return min(def, en.Loc.Pos)
		}
	}
	return def
}

func (ck checkpointData) oldestWAL() wal.Position {
	need := ck.replayFrom
	for _, snap := range ck.shards {
		need = min(need, snapshotOldestWAL(snap, need))
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
