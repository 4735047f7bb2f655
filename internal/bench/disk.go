package bench

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/braidstream/braid/internal/vfs"
)

// Disk measures what bounds a durable log on a device: sequential writes
// each made durable before the next, the way the WAL's group commit writes.
// It writes a file in DiskChunk writes, each followed by fdatasync, twice:
// first into a freshly preallocated file (the filesystem still has to
// record that the extents are written), then over the same file again (a
// WAL segment reused from the spare pool). The second is usually the
// faster one. A third pass reads the file back in DiskChunk reads after
// asking the kernel to drop it from the page cache: the device's
// sequential read bandwidth, the bound of a catch-up read from disk.

// DiskChunk is the size of one write of the disk benchmark.
const DiskChunk = 1 << 20

// DiskResult is what the disk benchmark measured; MB is 10^6 bytes.
type DiskResult struct {
	Dir               string  `json:"dir"`
	Bytes             int64   `json:"bytes"`
	FreshSeconds      float64 `json:"fresh_seconds"`
	FreshMBPerSec     float64 `json:"fresh_mb_per_sec"`
	OverwriteSeconds  float64 `json:"overwrite_seconds"`
	OverwriteMBPerSec float64 `json:"overwrite_mb_per_sec"`
	// ColdRead is the read-back pass, after the file was dropped from the
	// page cache (on tmpfs, which cannot drop it, it measures memory).
	ColdReadSeconds  float64 `json:"cold_read_seconds"`
	ColdReadMBPerSec float64 `json:"cold_read_mb_per_sec"`
}

// Disk runs the disk benchmark on a file of size bytes (a whole number of
// DiskChunk) in dir, and removes the file. progress, if set, gets a line
// per pass.
func Disk(ctx context.Context, fs vfs.FS, dir string, size int64, progress io.Writer) (*DiskResult, error) {
	if size < DiskChunk || size%DiskChunk != 0 {
		return nil, fmt.Errorf("disk benchmark size %d: must be a positive multiple of 1 MiB", size)
	}
	if st, err := fs.Stat(dir); err != nil {
		return nil, fmt.Errorf("disk benchmark directory: %w", err)
	} else if !st.IsDir {
		return nil, fmt.Errorf("disk benchmark directory %s: not a directory", dir)
	}
	f, remove, err := scratchFile(fs, dir, "braid-bench-disk", size)
	if err != nil {
		return nil, fmt.Errorf("disk benchmark: %w", err)
	}
	defer remove()
	buf := make([]byte, DiskChunk)
	rand.Read(buf) // incompressible, in case the device compresses
	if err := f.Sync(); err != nil {
		return nil, fmt.Errorf("disk benchmark: sync after preallocation: %w", err)
	}
	res := &DiskResult{Dir: dir, Bytes: size}
	for _, pass := range []struct {
		name    string
		seconds *float64
		mbps    *float64
	}{
		{"fresh (preallocated)", &res.FreshSeconds, &res.FreshMBPerSec},
		{"overwrite", &res.OverwriteSeconds, &res.OverwriteMBPerSec},
	} {
		took, err := writeDurably(ctx, f, buf, size)
		if err != nil {
			return nil, fmt.Errorf("disk benchmark, %s pass: %w", pass.name, err)
		}
		*pass.seconds = took.Seconds()
		*pass.mbps = float64(size) / 1e6 / took.Seconds()
		if progress != nil {
			fmt.Fprintf(progress, "disk: %s: %d bytes in %s, %.1f MB/s\n", pass.name, size, took.Round(time.Millisecond), *pass.mbps)
		}
	}
	vfs.DontNeed(f, 0, size) // durable, so clean: the kernel drops it
	took, err := readAll(ctx, f, buf, size)
	if err != nil {
		return nil, fmt.Errorf("disk benchmark, read pass: %w", err)
	}
	res.ColdReadSeconds = took.Seconds()
	res.ColdReadMBPerSec = float64(size) / 1e6 / took.Seconds()
	if progress != nil {
		fmt.Fprintf(progress, "disk: read back, page cache dropped: %d bytes in %s, %.1f MB/s\n",
			size, took.Round(time.Millisecond), res.ColdReadMBPerSec)
	}
	return res, nil
}

// readAll reads size bytes from offset 0 in len(buf) reads and returns how
// long that took.
func readAll(ctx context.Context, f vfs.File, buf []byte, size int64) (time.Duration, error) {
	began := time.Now()
	for off := int64(0); off < size; off += int64(len(buf)) {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		if _, err := f.ReadAt(buf, off); err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
	}
	return time.Since(began), nil
}

// writeDurably writes size bytes from offset 0 in len(buf) writes, each
// followed by fdatasync, and returns how long that took.
func writeDurably(ctx context.Context, f vfs.File, buf []byte, size int64) (time.Duration, error) {
	began := time.Now()
	for off := int64(0); off < size; off += int64(len(buf)) {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		if _, err := f.WriteAt(buf, off); err != nil {
			return 0, err
		}
		if err := f.Datasync(); err != nil {
			return 0, err
		}
	}
	return time.Since(began), nil
}

// ParseByteSize reads a size such as 1073741824, 512MiB, 1GiB or 10GB:
// KiB, MiB, GiB and TiB are powers of 1024; KB, MB, GB and TB powers of
// 1000 (as bench's MB/s); B or no unit is bytes.
func ParseByteSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	units := []struct {
		suffix string
		mult   float64
	}{
		{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
		{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1},
	}
	mult := 1.0
	for _, u := range units {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, fmt.Errorf("size %q: want a number of bytes, optionally with a unit (KiB, MiB, GiB, TiB, KB, MB, GB, TB)", s)
	}
	n := v * mult
	if n > math.MaxInt64/2 {
		return 0, errors.New("size " + strconv.Quote(s) + ": too large")
	}
	return int64(n), nil
}

// DiskLatencyResult is the latency of durable writes at a steady rate: the
// floor under a log's commit latency on this device at that rate.
type DiskLatencyResult struct {
	Dir         string  `json:"dir"`
	BytesPerSec float64 `json:"bytes_per_sec"`
	WriteBytes  int     `json:"write_bytes"`
	Seconds     float64 `json:"seconds"`
	// Prewritten: writes over blocks written beforehand (a WAL segment
	// from the spare pool, pre-written or reclaimed); Preallocated: writes
	// into fallocated space (a fresh WAL segment).
	Prewritten   LatencySummary `json:"prewritten"`
	Preallocated LatencySummary `json:"preallocated"`
	// GroupCommit is the latency of each record of RecordBytes arriving
	// at BytesPerSec, from its arrival to the end of the write+fdatasync
	// that held it, when every write takes all the records that arrived
	// since the last one (the best a group-committing log can do on this
	// device): a stall of the device counts for every record that waited
	// behind it, as it does in a producer's latency, and not once as in
	// the passes above.
	RecordBytes int            `json:"record_bytes"`
	GroupCommit LatencySummary `json:"group_commit"`
}

// groupCommitMaxWrite bounds one write of the group-commit pass.
const groupCommitMaxWrite = 8 << 20

// DiskLatency times writes of writeBytes, each followed by fdatasync, sent
// at bytesPerSec for d, twice: over a file written beforehand (cycling
// through 256 MiB of it), then into a freshly preallocated file. Each
// sample is one write+fdatasync, the time a log's group commit of that
// size takes at best. A third pass, over a file written beforehand,
// commits records of recordBytes arriving at bytesPerSec in groups (see
// DiskLatencyResult.GroupCommit). The files are removed afterwards.
func DiskLatency(ctx context.Context, fs vfs.FS, dir string, bytesPerSec float64, writeBytes, recordBytes int, d time.Duration, progress io.Writer) (*DiskLatencyResult, error) {
	if bytesPerSec <= 0 || writeBytes < 4096 || d <= 0 || recordBytes < 1 || recordBytes > groupCommitMaxWrite {
		return nil, fmt.Errorf("disk latency: rate %.0f B/s, write %d bytes, record %d bytes, duration %s: want a positive rate, writes of at least 4 KiB, records of 1 byte to 8 MiB and a positive duration", bytesPerSec, writeBytes, recordBytes, d)
	}
	res := &DiskLatencyResult{Dir: dir, BytesPerSec: bytesPerSec, WriteBytes: writeBytes, RecordBytes: recordBytes, Seconds: d.Seconds()}
	buf := make([]byte, writeBytes)
	rand.Read(buf)
	const cycle = 256 << 20
	fresh := int64(bytesPerSec*d.Seconds()) + int64(writeBytes)
	for _, pass := range []struct {
		name string
		out  *LatencySummary
		size int64
		pre  bool
	}{
		{"pre-written", &res.Prewritten, max(cycle, int64(writeBytes)), true},
		{"preallocated", &res.Preallocated, fresh, false},
	} {
		s, err := diskLatencyPass(ctx, fs, dir, buf, pass.size, pass.pre, bytesPerSec, d)
		if err != nil {
			return nil, fmt.Errorf("disk latency, %s pass: %w", pass.name, err)
		}
		*pass.out = s
		if progress != nil {
			fmt.Fprintf(progress, "disk: latency %s at %.1f MB/s in %d-byte writes: p50 %s p99 %s p99.9 %s max %s\n",
				pass.name, bytesPerSec/1e6, writeBytes, s.P50.Round(10*time.Microsecond), s.P99.Round(10*time.Microsecond), s.P999.Round(10*time.Microsecond), s.Max.Round(10*time.Microsecond))
		}
	}
	s, err := groupCommitPass(ctx, fs, dir, max(cycle, groupCommitMaxWrite), recordBytes, bytesPerSec, d)
	if err != nil {
		return nil, fmt.Errorf("disk latency, group-commit pass: %w", err)
	}
	res.GroupCommit = s
	if progress != nil {
		fmt.Fprintf(progress, "disk: latency of %d-byte records at %.1f MB/s, group commit: p50 %s p99 %s p99.9 %s max %s\n",
			recordBytes, bytesPerSec/1e6, s.P50.Round(10*time.Microsecond), s.P99.Round(10*time.Microsecond), s.P999.Round(10*time.Microsecond), s.Max.Round(10*time.Microsecond))
	}
	return res, nil
}

// groupCommitPass writes records of recordBytes arriving at bytesPerSec,
// on schedule whatever the device does, into a file of size bytes written
// beforehand: each write+fdatasync takes every record that has arrived
// (at most groupCommitMaxWrite bytes), and each record's latency runs from
// its arrival to the end of its write. Records that arrived within d are
// all written.
func groupCommitPass(ctx context.Context, fs vfs.FS, dir string, size int64, recordBytes int, bytesPerSec float64, d time.Duration) (LatencySummary, error) {
	buf := make([]byte, groupCommitMaxWrite-groupCommitMaxWrite%recordBytes)
	rand.Read(buf)
	size -= size % int64(len(buf))
	f, remove, err := latencyFile(fs, dir, buf, size, true)
	if err != nil {
		return LatencySummary{}, err
	}
	defer remove()
	every := time.Duration(float64(recordBytes) / bytesPerSec * float64(time.Second))
	if every <= 0 {
		return LatencySummary{}, fmt.Errorf("%d-byte records at %.0f B/s arrive faster than a nanosecond apart", recordBytes, bytesPerSec)
	}
	total := int64(d / every) // records arriving within d: 0 .. total-1
	rec := NewRecorder(DefaultMaxSamples, total, 1)
	began := time.Now()
	var off int64
	for done := int64(0); done < total; {
		if err := ctx.Err(); err != nil {
			return LatencySummary{}, err
		}
		arrived := min(int64(time.Since(began)/every)+1, total)
		if arrived <= done {
			time.Sleep(time.Until(began.Add(time.Duration(done) * every)))
			continue
		}
		n := min(arrived-done, int64(len(buf)/recordBytes))
		b := buf[:n*int64(recordBytes)]
		if off+int64(len(b)) > size {
			off = 0
		}
		if _, err := f.WriteAt(b, off); err != nil {
			return LatencySummary{}, err
		}
		if err := f.Datasync(); err != nil {
			return LatencySummary{}, err
		}
		off += int64(len(b))
		end := time.Since(began)
		for i := done; i < done+n; i++ {
			rec.Record(end - time.Duration(i)*every)
		}
		done += n
	}
	return Summarize(rec), nil
}

// latencyFile creates a scratch file of size bytes for a latency pass,
// written through with buf first if prewrite, and durable.
func latencyFile(fs vfs.FS, dir string, buf []byte, size int64, prewrite bool) (vfs.File, func(), error) {
	f, remove, err := scratchFile(fs, dir, "braid-bench-disk-latency", size)
	if err != nil {
		return nil, nil, err
	}
	if prewrite {
		for off := int64(0); off < size; off += int64(len(buf)) {
			if _, err := f.WriteAt(buf, off); err != nil {
				remove()
				return nil, nil, err
			}
		}
	}
	if err := f.Sync(); err != nil {
		remove()
		return nil, nil, err
	}
	return f, remove, nil
}

func diskLatencyPass(ctx context.Context, fs vfs.FS, dir string, buf []byte, size int64, prewrite bool, bytesPerSec float64, d time.Duration) (LatencySummary, error) {
	size -= size % int64(len(buf))
	f, remove, err := latencyFile(fs, dir, buf, size, prewrite)
	if err != nil {
		return LatencySummary{}, err
	}
	defer remove()
	every := time.Duration(float64(len(buf)) / bytesPerSec * float64(time.Second))
	rec := NewRecorder(DefaultMaxSamples, int64(d/every)+1, 1)
	began := time.Now()
	next := began
	for off := int64(0); time.Since(began) < d; off = (off + int64(len(buf))) % size {
		if err := ctx.Err(); err != nil {
			return LatencySummary{}, err
		}
		if wait := time.Until(next); wait > 0 {
			time.Sleep(wait)
		}
		t := time.Now()
		if _, err := f.WriteAt(buf, off); err != nil {
			return LatencySummary{}, err
		}
		if err := f.Datasync(); err != nil {
			return LatencySummary{}, err
		}
		rec.Record(time.Since(t))
		// A write late by more than one interval does not make the next
		// ones come in a burst: the rate is what a steady producer sends.
		if next = next.Add(every); time.Until(next) < -every {
			next = time.Now()
		}
	}
	return Summarize(rec), nil
}

// scratchFile creates a new file of size preallocated bytes in dir, named
// after prefix, and returns it with the function that closes and removes
// it.
func scratchFile(fs vfs.FS, dir, prefix string, size int64) (vfs.File, func(), error) {
	name := filepath.Join(dir, fmt.Sprintf("%s-%d.tmp", prefix, time.Now().UnixNano()))
	f, err := fs.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, nil, err
	}
	remove := func() {
		f.Close()
		fs.Remove(name)
	}
	if err := f.Preallocate(0, size); err != nil {
		remove()
		return nil, nil, fmt.Errorf("preallocate %d bytes: %w", size, err)
	}
	return f, remove, nil
}
