package wal

import (
	"fmt"
	"io"

	"github.com/braidstream/braid/internal/vfs"
)

// chunkReader reads a segment sequentially in large chunks, so recovery makes
// few syscalls, and hands out frame bodies without a copy where it can.
type chunkReader struct {
	f        vfs.File
	off, end int64 // file offset of the next unread byte; file size
	buf      []byte
	pos      int // next unread byte in buf
}

const chunkSize = 4 << 20

func newChunkReader(f vfs.File, off, end int64) *chunkReader {
	return &chunkReader{f: f, off: off, end: end}
}

// next returns the next n bytes, valid until the following call.
func (r *chunkReader) next(n int) ([]byte, error) {
	if len(r.buf)-r.pos < n {
		rest := copy(r.buf, r.buf[r.pos:])
		need := max(n, chunkSize)
		if cap(r.buf) < need {
			nb := make([]byte, need)
			copy(nb, r.buf[:rest])
			r.buf = nb
		}
		r.buf = r.buf[:need]
		want := min(int64(need-rest), r.end-r.off)
		got, err := r.f.ReadAt(r.buf[rest:rest+int(want)], r.off)
		r.off += int64(got)
		r.buf = r.buf[:rest+got]
		r.pos = 0
		if got < int(want) && err != nil && err != io.EOF {
			return nil, fmt.Errorf("read: %w", err)
		}
		if len(r.buf) < n {
			return nil, io.ErrUnexpectedEOF
		}
	}
	b := r.buf[r.pos : r.pos+n]
	r.pos += n
	return b, nil
}

func (r *chunkReader) read(p []byte) error {
	b, err := r.next(len(p))
	if err != nil {
		return err
	}
	copy(p, b)
	return nil
}
